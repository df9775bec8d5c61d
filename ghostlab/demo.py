"""The embedded default: a procedural image dataset and a small GhostNet trained on it.

``prepare(params)`` makes both on first use and caches them under ``demo.root`` (default
``<run.output_root>/_demo``) in folders named by a hash of what made them, so a second call
costs milliseconds and a change of params builds a new one. The dataset is written in the
seed layout (one folder per split: ``val/*.JPEG``, ``val_label.txt``, ``label.txt``), so the
rest of ghostlab reads it exactly as it reads ImageNet.

Each class is a combination of a shape, a colour family and a texture; every value of each
attribute is shared by several classes, so a model has to use all three together. Images
carry smaller distractor objects (drawn from every attribute), a blotchy background, colour
jitter, pixel noise and JPEG compression.

Notebook 05 compares GhostNet's feature maps with a conventional network's; offline, that is
``demo_resnet``, a small basic-block ResNet trained here on the same images at the same input size
and cached beside the GhostNet (``resnet-<hash>/``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .config import Params
from .errors import ConfigError
from .errors import say as _progress
from .runtimes import torch_threads

GENERATOR_VERSION = 1
TRAINER_VERSION = 2
SPLITS = ("train", "calibration", "val")

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {"red": 0.0, "blue": 0.62, "green": 0.33, "yellow": 0.14}
TEXTURES = ("plain", "striped", "checked")
# Attribute grids by class count: the smallest mixed radix that fits, so each attribute value is shared.
_GRIDS = ((3, 2, 2), (4, 3, 3))


# ---------------------------------------------------------------- classes

def class_attributes(num_classes: int) -> list[tuple[str, str, str]]:
    """(shape, colour, texture) per class index."""
    grid = next((g for g in _GRIDS if g[0] * g[1] * g[2] >= num_classes), None)
    if grid is None or num_classes < 2:
        raise ConfigError(f"demo.num_classes must be 2..{math.prod(_GRIDS[-1])}, got {num_classes}")
    ns, nc, nt = grid
    colours = list(COLOURS)
    return [(SHAPES[k % ns], colours[(k // ns) % nc], TEXTURES[(k // (ns * nc)) % nt]) for k in range(num_classes)]


def class_names(num_classes: int) -> list[str]:
    return [f"{colour} {texture} {shape}" for shape, colour, texture in class_attributes(num_classes)]


# ---------------------------------------------------------------- drawing

def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-mask in object coordinates (circumradius ~1)."""
    if shape == "circle":
        return u * u + v * v <= 0.85
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.72
    if shape == "triangle":
        return (v >= -0.55) & (v <= 1.05 - math.sqrt(3) * np.abs(u))
    if shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95))
    raise ValueError(shape)


def _texture(texture: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shade weight in [0, 1]: 0 keeps the colour, 1 darkens it."""
    freq = rng.uniform(2.2, 2.8)  # cycles per object radius
    if texture == "plain":
        return np.zeros_like(u)
    if texture == "striped":
        a = rng.uniform(0, math.pi)
        return (np.sin(2 * math.pi * freq * (u * math.cos(a) + v * math.sin(a))) > 0).astype(np.float32)
    if texture == "checked":
        return ((np.sin(2 * math.pi * freq * u) * np.sin(2 * math.pi * freq * v)) > 0).astype(np.float32)
    raise ValueError(texture)


def _draw(canvas: np.ndarray, shape: str, hue: float, texture: str, cx: float, cy: float, radius: float,
          rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    dx, dy = (xx - cx) / radius, (yy - cy) / radius
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    mask = _shape_mask(shape, u, v)
    colour = _hsv_to_rgb(hue + rng.normal(0, 0.02), rng.uniform(0.6, 1.0), rng.uniform(0.65, 1.0)) * 255
    shade = _texture(texture, u, v, rng)[..., None]
    dark = rng.uniform(0.25, 0.45)
    pixels = colour * (1 - (1 - dark) * shade)
    canvas[mask] = pixels[mask]


def render(label: int, num_classes: int, size: int, rng: np.random.Generator) -> Image.Image:
    """One image of class ``label``: the class object, distractors, background, noise (RGB, ``size`` px)."""
    big = size * 2  # draw at twice the size, then downsample: anti-aliased edges and stripes
    low = rng.uniform(40, 200, size=(4, 4, 3)).astype(np.uint8)
    bg = np.asarray(Image.fromarray(low).resize((big, big), Image.BILINEAR), dtype=np.float32)
    canvas = bg * rng.uniform(0.5, 0.9) + rng.uniform(0, 40)
    attrs = class_attributes(num_classes)
    for _ in range(rng.integers(2, 5)):  # distractors: any shape, colour and texture, smaller
        _draw(canvas, SHAPES[rng.integers(len(SHAPES))], rng.uniform(0, 1), TEXTURES[rng.integers(len(TEXTURES))],
              rng.uniform(0.05, 0.95) * big, rng.uniform(0.05, 0.95) * big, rng.uniform(0.1, 0.17) * big, rng)
    shape, colour, texture = attrs[label]
    _draw(canvas, shape, COLOURS[colour], texture, rng.uniform(0.38, 0.62) * big, rng.uniform(0.38, 0.62) * big,
          rng.uniform(0.24, 0.34) * big, rng)
    if rng.random() < 0.3:  # an occluder over part of the object
        _draw(canvas, SHAPES[rng.integers(len(SHAPES))], rng.uniform(0, 1), TEXTURES[rng.integers(len(TEXTURES))],
              rng.uniform(0.2, 0.8) * big, rng.uniform(0.2, 0.8) * big, rng.uniform(0.08, 0.12) * big, rng)
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize((size, size), Image.BOX)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr * rng.uniform(0.8, 1.15) + rng.normal(0, rng.uniform(4, 12), size=arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- the dataset

def _key(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _data_spec(params: Params) -> dict:
    d = params.demo
    return {"generator": GENERATOR_VERSION, "num_classes": d.num_classes, "image_size": d.image_size,
            "train_per_class": d.train_per_class, "calibration_per_class": d.calibration_per_class,
            "val_per_class": d.val_per_class, "seed": d.seed}


def demo_root(params: Params) -> Path:
    return Path(params.demo.root) if params.demo.root else Path(params.run.output_root) / "_demo"


def _write_split(args: tuple) -> None:
    out, split, split_id, per_class, num_classes, size, seed, start, stop = args
    for i in range(start, stop):
        label = i % num_classes
        rng = np.random.default_rng([seed, split_id, i])
        render(label, num_classes, size, rng).save(out / "val" / f"DEMO_{split}_{i + 1:08d}.JPEG", quality=90)


def build_dataset(spec: dict, folder: Path, workers: int = 0) -> None:
    """Write the three splits in the seed layout under ``folder`` (all cores)."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    n = spec["num_classes"]
    names = class_names(n)
    jobs = []
    for split_id, split in enumerate(SPLITS):
        out = folder / split
        (out / "val").mkdir(parents=True, exist_ok=True)
        count = spec[f"{split}_per_class"] * n
        (out / "label.txt").write_text("\n".join(names) + "\n")
        (out / "val_label.txt").write_text("".join(f"DEMO_{split}_{i + 1:08d}.JPEG {i % n}\n" for i in range(count)))
        step = 64
        jobs += [(out, split, split_id, None, n, spec["image_size"], spec["seed"], s, min(s + step, count))
                 for s in range(0, count, step)]
    workers = workers or len(os.sched_getaffinity(0))
    if workers <= 1 or len(jobs) <= 2:
        for job in jobs:
            _write_split(job)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            list(pool.map(_write_split, jobs))


def _with_split(params: Params, folder: Path, split: str) -> Params:
    root = folder / split
    data = dataclasses.replace(params.data, dataset="seed", root=str(root), calibration_root=None,
                               label_file=str(root / "label.txt"), max_images=None, on_bad_image="stop")
    return params.replace(data=data)


# ---------------------------------------------------------------- training

def _model_spec(params: Params, data_key: str) -> dict:
    from .data import preprocess_for

    d = params.demo
    return {"trainer": TRAINER_VERSION, "data": data_key, "model": params.model.name,
            "preprocess": preprocess_for(params).to_dict(), "epochs": d.epochs, "batch_size": d.batch_size,
            "learning_rate": d.learning_rate, "seed": d.seed}


def _augment(x: "torch.Tensor", gen: "torch.Generator") -> "torch.Tensor":
    """Random horizontal flips. (Shifts cost accuracy in the time budget: objects are already placed at
    random, and fresh generated images teach more than shifted copies.)"""
    import torch

    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def evaluate_top1(model: "torch.nn.Module", cached, batch_size: int = 256) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y, _ in cached.batches(batch_size):
            correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
    return correct / max(1, len(cached))


def _fit(params: Params, train_set, show_progress: bool, comparison: bool = False
         ) -> tuple["torch.nn.Module", list[dict]]:
    """Seeded AdamW + one-cycle training with label smoothing; a progress bar per step. The run's
    GhostNet, or with ``comparison`` the conventional ResNet notebook 05 compares it with."""
    import torch
    from tqdm import tqdm

    from .models import create_model

    d = params.demo
    torch.manual_seed(d.seed)
    gen = torch.Generator().manual_seed(d.seed)
    x_all = torch.from_numpy(train_set.normalized())
    y_all = torch.from_numpy(train_set.labels)
    if comparison:
        name, epochs = COMPARISON_NAME, d.resnet_epochs or d.epochs
        model = build_comparison(_comparison_arch(params), d.num_classes).train()
    else:
        name, epochs = params.model.name, d.epochs
        model = create_model(params.model.name, "random", d.num_classes).train()
    steps_per_epoch = math.ceil(len(x_all) / d.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=d.learning_rate, weight_decay=0.02)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=d.learning_rate, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    history = []
    bar = tqdm(total=epochs * steps_per_epoch, desc=f"training demo {name}", unit="step",
               disable=not show_progress, leave=False)
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        seen, correct, total_loss = 0, 0, 0.0
        for s in range(steps_per_epoch):
            idx = order[s * d.batch_size:(s + 1) * d.batch_size]
            x, y = _augment(x_all[idx], gen), y_all[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            total_loss += loss.item() * len(y)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        history.append({"epoch": epoch + 1, "loss": total_loss / seen, "train_top1": correct / seen})
    bar.close()
    return model.eval(), history


def train(params: Params, folder: Path, out: Path, show_progress: bool = True, comparison: bool = False) -> dict:
    """Train ``model.name`` (or with ``comparison`` the demo ResNet) on the demo's train split; save
    ``model.safetensors`` and ``training.json`` into ``out``; returns the metrics (val top-1 measured
    on the val split)."""
    from safetensors.torch import save_file

    from . import data
    from .jsonio import write_json

    d = params.demo
    started = time.perf_counter()
    preprocess = data.preprocess_for(params)
    splits = {}
    for split in ("train", "val"):
        split_params = _with_split(params, folder, split)
        splits[split] = data.cached_images(data.load_dataset(split_params), preprocess, split_params, show_progress)
    threads = d.threads or len(os.sched_getaffinity(0))
    with torch_threads(threads):
        model, history = _fit(params, splits["train"], show_progress, comparison)
        train_seconds = time.perf_counter() - started
        val_top1 = evaluate_top1(model, splits["val"])
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / ".model.safetensors.tmp"))
    os.replace(out / ".model.safetensors.tmp", out / "model.safetensors")
    data_key = folder.name.split("-", 1)[-1]
    metrics = {"model": params.model.name, "num_classes": d.num_classes, "class_names": class_names(d.num_classes),
               "train_images": len(splits["train"]), "val_images": len(splits["val"]), "epochs": len(history),
               "train_seconds": round(train_seconds, 1), "threads": threads, "val_top1": val_top1,
               "history": history, "preprocess": preprocess.describe(),
               "spec": _model_spec(params, data_key)}
    if comparison:
        from .models import count_macs

        metrics.update({"model": COMPARISON_NAME, "architecture": _comparison_arch(params),
                        "params": sum(p.numel() for p in model.parameters()),
                        "macs": count_macs(model, preprocess.crop), "input_size": preprocess.crop,
                        "spec": _comparison_spec(params, data_key)})
    write_json(out / "training.json", metrics)
    return metrics


# ---------------------------------------------------------------- the comparison ResNet

COMPARISON_NAME = "demo_resnet"
"""Notebook 05's comparison network when no real ResNet-50 weights are at hand: a conventional
ResNet (timm's ``ResNet`` class, basic blocks, no Ghost modules) trained here on the same images
at the same input size as the demo GhostNet, so both sides of the redundancy comparison are trained."""


def _comparison_arch(params: Params) -> dict:
    d = params.demo
    w = d.resnet_width
    return {"block": "basic", "layers": list(d.resnet_blocks), "channels": [w, 2 * w, 4 * w, 8 * w], "stem_width": w}


def build_comparison(arch: dict, num_classes: int) -> "torch.nn.Module":
    """The demo ResNet from its ``architecture`` dict (as training.json records it), random weights."""
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    block = {"basic": BasicBlock, "bottleneck": Bottleneck}[arch["block"]]
    return ResNet(block, tuple(arch["layers"]), num_classes=num_classes, channels=tuple(arch["channels"]),
                  stem_width=arch["stem_width"])


def _comparison_spec(params: Params, data_key: str) -> dict:
    spec = _model_spec(params, data_key)
    spec.update(model=COMPARISON_NAME, architecture=_comparison_arch(params),
                epochs=params.demo.resnet_epochs or params.demo.epochs)
    return spec


def _wants_comparison(params: Params) -> bool:
    """Notebook 05 compares with the demo ResNet: asked for (``demo``, on the demo's data or model), or
    ``auto`` beside the demo GhostNet (model.weights ``demo``): both trained on the same images."""
    g = params.ghost_maps
    on_demo = params.data.dataset == "demo" or params.model.weights == "demo"
    return g.compare_resnet and on_demo and (g.resnet_weights == "demo" or
                                             (g.resnet_weights == "auto" and params.model.weights == "demo"))


def comparison_metrics(weights: str) -> dict | None:
    """training.json of a demo ResNet checkpoint (``model.safetensors`` beside it), else None."""
    path = Path(weights).parent / "training.json"
    if not (weights.endswith("model.safetensors") and path.exists()):
        return None
    metrics = json.loads(path.read_text())
    return metrics if metrics.get("model") == COMPARISON_NAME else None


def load_comparison(weights: str) -> tuple["torch.nn.Module", dict]:
    """The trained demo ResNet (eval mode) and its training metrics, from the checkpoint path
    ``prepare`` put into ``ghost_maps.resnet_weights``."""
    from safetensors.torch import load_file

    metrics = comparison_metrics(weights)
    if metrics is None:
        raise ConfigError(f"{weights} is not a demo ResNet checkpoint (no training.json naming {COMPARISON_NAME} "
                          f"beside it)")
    model = build_comparison(metrics["architecture"], metrics["num_classes"])
    model.load_state_dict(load_file(weights))
    return model.eval(), metrics


# ---------------------------------------------------------------- prepare

def prepare(params: Params, show_progress: bool = True) -> Params:
    """Make (or reuse) the demo dataset and, when model.weights is ``demo``, the trained checkpoint, and
    when notebook 05 compares with the demo ResNet (``ghost_maps.resnet_weights`` ``demo``, or ``auto`` beside
    the demo GhostNet) that ResNet's checkpoint; return params pointing at them (data.dataset=seed,
    data.root/calibration_root/label_file, model.weights, model.num_classes, ghost_maps.resnet_weights).
    Idempotent; milliseconds when all are cached."""
    from .data import _locked

    root = demo_root(params)
    spec = _data_spec(params)
    data_key = _key(spec)
    folder = root / f"data-{data_key}"
    if params.data.dataset == "demo" or params.model.weights == "demo" or _wants_comparison(params):
        class_attributes(params.demo.num_classes)  # validates the class count
        if not (folder / "done.json").exists():
            with _locked(root / ".lock"):
                if not (folder / "done.json").exists():
                    _progress(f"writing the demo dataset to {folder}")
                    build_dataset(spec, folder, params.data.workers)
                    (folder / "done.json").write_text(json.dumps(spec, indent=1))
    out = params
    if params.data.dataset == "demo":
        data = dataclasses.replace(params.data, dataset="seed", root=str(folder / "val"),
                                   calibration_root=str(folder / "calibration"),
                                   label_file=str(folder / "val" / "label.txt"))
        out = out.replace(data=data)
    if params.model.weights == "demo":
        model_dir = root / f"model-{_key(_model_spec(params, data_key))}"
        if not (model_dir / "training.json").exists():
            with _locked(root / ".lock"):
                if not (model_dir / "training.json").exists():
                    _progress(f"training the demo {params.model.name} into {model_dir}")
                    metrics = train(params, folder, model_dir, show_progress)
                    _progress(f"demo model: val top-1 {metrics['val_top1']:.1%} after {metrics['train_seconds']:.0f}s")
        model = dataclasses.replace(params.model, weights=str(model_dir / "model.safetensors"),
                                    num_classes=params.demo.num_classes)
        out = out.replace(model=model)
    if _wants_comparison(params):  # notebook 05's trained comparison network, cached like the GhostNet
        resnet_dir = root / f"resnet-{_key(_comparison_spec(params, data_key))}"
        if not (resnet_dir / "training.json").exists():
            with _locked(root / ".lock"):
                if not (resnet_dir / "training.json").exists():
                    _progress(f"training the demo's comparison ResNet into {resnet_dir}")
                    metrics = train(params, folder, resnet_dir, show_progress, comparison=True)
                    _progress(f"demo ResNet: val top-1 {metrics['val_top1']:.1%} after {metrics['train_seconds']:.0f}s")
        ghost_maps = dataclasses.replace(params.ghost_maps, resnet_weights=str(resnet_dir / "model.safetensors"))
        out = out.replace(ghost_maps=ghost_maps)
    return out


def training_metrics(params: Params) -> dict | None:
    """The prepared demo checkpoint's training.json (None when the weights are not the demo's)."""
    path = Path(params.model.weights).parent / "training.json"
    if params.model.weights.endswith("model.safetensors") and path.exists():
        return json.loads(path.read_text())
    return None
