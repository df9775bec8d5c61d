"""Ghost feature maps: capture them with forward hooks and measure how redundant each layer is,
in GhostNet and in a trained conventional network beside it.

GhostNet builds each Ghost module's output from a few *intrinsic* maps (an ordinary
convolution, ``primary_conv``) and *ghost* maps made from them by a cheap depthwise
convolution (``cheap_operation``); ghost channel ``j`` is made from intrinsic channel
``j // (ratio - 1)``. This module captures both, for every Ghost module, and measures:

- each ghost map's cosine similarity to its source intrinsic map;
- per layer, how redundant its output maps are (``ghostlab.redundancy`` defines the numbers:
  mean max cosine to the nearest other channel, share of channels with a near twin, effective
  rank in two definitions, each over its ceiling), for GhostNet's Ghost modules and for the
  comparison network's residual blocks, at relative depth 0..1, as mean and standard deviation
  over ``ghost_maps.metric_images`` evaluation images.

The comparison network (``ghost_maps.resnet_weights``): with real weights (timm's cache or a
checkpoint) ResNet-50, whose first residual group the paper's Fig. 1 looks at; offline, on the
demo, ``demo_resnet``, a basic-block ResNet ``ghostlab.demo`` trains on the same images. Both
networks see the same images, preprocessed alike, at the same input size. Maps are *shown* at a
larger input (an integer multiple) when the training size leaves the deepest shown module below
7x7; the metrics always use the training size.

Where the maps come from, per module type (timm ``timm/models/ghostnet.py``):

- ``GhostModule`` / ``GhostModuleV2``: outputs of ``primary_conv`` and ``cheap_operation``.
  V2 multiplies the concatenation by an attention gate afterwards; the intrinsic and
  ghost maps are taken before the gate, the module output after it.
- ``GhostModuleV3`` (training form) sums three conv branches (the cheap side also a 1x1
  scale branch and a BatchNorm skip) and then applies one activation; the outputs of
  ``primary_activation`` and ``cheap_activation`` are the intrinsic and ghost maps. After
  re-parameterization those activations close ``primary_conv`` / ``cheap_operation``, so
  the same hooks give the same maps in both forms.

Similarities are computed on maps average-pooled to at most ``ghost_maps.similarity_size``
per side (bounded cost). Computation only: figures are in ``ghostlab.plots``, the explorer in
``ghostlab.widgets``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, DataError, ModelError
from .ghostnet import is_ghost_module
from .runtimes import torch_threads
from .redundancy import map_metrics, stats, subsample, summarize

RESNET_NAME = "resnet50"
RESNET_FIRST_GROUP = "layer1"
DEFAULT_DETAIL_MODULES = 3
MIN_VIEW_SIDE = 7
"""Shown maps at least this many pixels a side: else the networks are run larger for the figures."""
METRIC_CHUNK = 4
"""Images captured at once while measuring (bounds the memory of all layers' maps)."""


# ---------------------------------------------------------------- captured maps

@dataclass
class LayerMaps:
    """One hooked layer's maps for N images (float32 arrays, N x C x H x W)."""

    name: str
    stage: int
    kind: str
    output: np.ndarray
    intrinsic: np.ndarray | None = None
    ghost: np.ndarray | None = None
    """The ghost channels the module keeps (its output drops any beyond ``out_chs``)."""
    ghosts_per_intrinsic: int = 1
    """``ratio - 1``: ghost channel j is made from intrinsic channel j // ghosts_per_intrinsic."""

    @property
    def channels(self) -> int:
        return int(self.output.shape[1])

    def source_channel(self, ghost_channel: int) -> int:
        """The intrinsic channel a ghost channel is made from (depthwise cheap operation)."""
        return ghost_channel // self.ghosts_per_intrinsic

    def ghosts_of(self, intrinsic_channel: int) -> list[int]:
        """The kept ghost channels made from one intrinsic channel."""
        n = 0 if self.ghost is None else self.ghost.shape[1]
        k = self.ghosts_per_intrinsic
        return [j for j in range(intrinsic_channel * k, (intrinsic_channel + 1) * k) if j < n]


def ghost_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Ghost module (V1, V2, V3) in forward order."""
    return [(n, m) for n, m in model.named_modules() if is_ghost_module(m)]


def _ghost_ratio(module: nn.Module) -> int:
    """Ghost channels per intrinsic channel, read from the cheap depthwise conv."""
    if type(module).__name__ == "GhostModuleV3" and hasattr(module, "cheap_rpr_conv"):
        conv = module.cheap_rpr_conv[0].conv
    else:
        conv = next(m for m in module.cheap_operation.modules() if isinstance(m, nn.Conv2d))
    if conv.groups != conv.in_channels:
        raise ModelError(f"{type(module).__name__}'s cheap operation is not depthwise; "
                         f"ghostlab maps ghost channels to intrinsic ones only for depthwise cheap ops")
    return conv.out_channels // conv.groups


def _stage(name: str) -> int:
    """``blocks.3.1.ghost1`` -> 3 (GhostNet), ``layer2.0`` -> 2 (ResNet)."""
    m = re.match(r"(?:blocks\.|layer)(\d+)", name)
    return int(m.group(1)) if m else 0


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


@contextlib.contextmanager
def _hooks(targets: dict[str, nn.Module], store: dict[str, np.ndarray]) -> Iterator[None]:
    """Forward hooks that copy each target's output into ``store`` (copies: timm adds
    residuals in place afterwards). Removed on exit, even after an error."""
    handles = []

    def hook_for(key: str):
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            store[key] = _to_numpy(output)
        return hook

    try:
        for key, module in targets.items():
            handles.append(module.register_forward_hook(hook_for(key)))
        yield
    finally:
        for h in handles:
            h.remove()


def capture_ghost_maps(model: nn.Module, x: torch.Tensor) -> list[LayerMaps]:
    """Intrinsic, ghost and output maps of every Ghost module for the batch ``x``."""
    modules = ghost_modules(model)
    if not modules:
        raise ModelError(f"{type(model).__name__} has no Ghost modules; ghost maps need a timm GhostNet")
    targets: dict[str, nn.Module] = {}
    for name, m in modules:
        v3 = type(m).__name__ == "GhostModuleV3"
        targets[f"{name}|intrinsic"] = m.primary_activation if v3 else m.primary_conv
        targets[f"{name}|ghost"] = m.cheap_activation if v3 else m.cheap_operation
        targets[f"{name}|output"] = m
    store: dict[str, np.ndarray] = {}
    with _hooks(targets, store), torch.no_grad():
        model.eval()(x)
    layers = []
    for name, m in modules:
        intrinsic, ghost, output = (store[f"{name}|{k}"] for k in ("intrinsic", "ghost", "output"))
        kept = max(0, min(ghost.shape[1], output.shape[1] - intrinsic.shape[1]))
        layers.append(LayerMaps(name=name, stage=_stage(name), kind=type(m).__name__, output=output,
                                intrinsic=intrinsic, ghost=ghost[:, :kept], ghosts_per_intrinsic=_ghost_ratio(m)))
    return layers


def resnet_blocks(model: nn.Module) -> list[str]:
    """Names of ResNet's residual blocks in forward order (``layer1.0`` ... ``layer4.2``)."""
    return [n for n, _ in model.named_modules() if re.fullmatch(r"layer\d+\.\d+", n)]


def capture_outputs(model: nn.Module, x: torch.Tensor, names: list[str], kind: str = "block") -> list[LayerMaps]:
    """Output maps of the named submodules for the batch ``x``."""
    modules = dict(model.named_modules())
    store: dict[str, np.ndarray] = {}
    with _hooks({n: modules[n] for n in names}, store), torch.no_grad():
        model.eval()(x)
    return [LayerMaps(name=n, stage=_stage(n), kind=kind, output=store[n]) for n in names]



# ---------------------------------------------------------------- ghost maps vs their source

def ghost_similarity(layer: LayerMaps, size: int) -> np.ndarray:
    """N x G cosine similarity of each kept ghost map to its source intrinsic map (NaN if either is zero)."""
    if layer.ghost is None or layer.intrinsic is None:
        raise ValueError(f"{layer.name} is not a Ghost module")
    ghost = subsample(layer.ghost, size)
    intrinsic = subsample(layer.intrinsic, size)
    n, g = ghost.shape[:2]
    src = [layer.source_channel(j) for j in range(g)]
    a = ghost.reshape(n, g, -1).astype(np.float64)
    b = intrinsic[:, src].reshape(n, g, -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=2), np.linalg.norm(b, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = (a * b).sum(axis=2) / (na * nb)
    sim[(na == 0) | (nb == 0)] = np.nan
    return np.clip(sim, -1.0, 1.0)



@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """A few images through a network and many small matrix products and eigen-solves: one
    thread is about as fast, and on a busy machine many times faster than threads that wait
    for each other at every step (ResNet-50 forward: 0.2 s vs up to 3 s measured here)."""
    with torch_threads(1):
        yield


# ---------------------------------------------------------------- measuring a network over images

def measure(capture: Callable[[torch.Tensor], list[LayerMaps]], x: torch.Tensor, size: int,
            threshold: float) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Per-layer redundancy of one network over the images ``x`` (captured ``METRIC_CHUNK`` at a
    time): rows with the layer's shape, its relative depth and each ``redundancy.METRICS`` as mean
    and ``_sd`` over the images; and per Ghost module every ghost map's cosine to its source."""
    per_image: dict[str, list[dict]] = {}
    info: dict[str, dict] = {}
    ghost_sims: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), METRIC_CHUNK):
        for layer in capture(x[start:start + METRIC_CHUNK]):
            out = subsample(layer.output, size)
            per_image.setdefault(layer.name, []).extend(map_metrics(img, threshold) for img in out)
            if layer.name not in info:
                info[layer.name] = {
                    "name": layer.name, "stage": layer.stage, "kind": layer.kind, "channels": layer.channels,
                    "height": int(layer.output.shape[-2]), "width": int(layer.output.shape[-1]),
                    "similarity_pixels": int(out.shape[-1] * out.shape[-2]),
                    "max_rank": min(layer.channels, int(out.shape[-1] * out.shape[-2]))}
                if layer.intrinsic is not None:
                    info[layer.name].update(intrinsic_channels=int(layer.intrinsic.shape[1]),
                                            ghost_channels=int(layer.ghost.shape[1]),
                                            ghosts_per_intrinsic=layer.ghosts_per_intrinsic)
            if layer.intrinsic is not None:
                ghost_sims.setdefault(layer.name, []).append(ghost_similarity(layer, size).ravel())
    n = len(info)
    rows = []
    for i, (name, row) in enumerate(info.items()):
        row = {**row, "depth": i / max(n - 1, 1), "images": len(per_image[name]), **summarize(per_image[name])}
        if name in ghost_sims:
            row["ghost_similarity"] = stats(np.concatenate(ghost_sims[name]))
        rows.append(row)
    return rows, {name: np.concatenate(v) for name, v in ghost_sims.items()}


# ---------------------------------------------------------------- images

def default_image() -> Path:
    """The photo matplotlib ships (Grace Hopper): ``ghost_maps.image: grace_hopper``."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _class_label(dataset: Any, i: int) -> str:
    label = int(dataset.labels[i])
    return dataset.class_names[label] if dataset.class_names else f"class {label}"


def image_inputs(params: Any) -> list[tuple[str, Path]]:
    """(label, path) of the images to show: ``ghost_maps.image`` (a file, or ``grace_hopper``) if set,
    then the evaluation images at ``ghost_maps.dataset_indices`` labelled with their class."""
    g = params.ghost_maps
    inputs = []
    if g.image:
        path = default_image() if g.image == "grace_hopper" else Path(g.image)
        if not path.is_file():
            raise DataError(f"ghost_maps.image {path} is not an image file; point it at a JPEG/PNG, "
                            f"use grace_hopper for the bundled photo, or leave it empty")
        inputs.append((path.name, path))
    if g.dataset_indices:
        from . import data

        dataset = data.load_dataset(params, "eval")
        for i in g.dataset_indices:
            if not 0 <= i < len(dataset):
                raise ConfigError(f"ghost_maps.dataset_indices: {i} is out of range; "
                                  f"the evaluation set has {len(dataset)} images (0..{len(dataset) - 1})")
            inputs.append((f"#{i} {_class_label(dataset, i)}", dataset.files[i]))
    return inputs


def metric_inputs(params: Any) -> list[tuple[str, Path]]:
    """(label, path) of the ``ghost_maps.metric_images`` evaluation images the metrics average over
    (class-balanced, seeded by run.seed); the shown images when it is 0."""
    from . import data

    n = params.ghost_maps.metric_images
    if n == 0:
        return image_inputs(params)
    dataset = data.load_dataset(params, "eval")
    return [(f"#{i} {_class_label(dataset, i)}", dataset.files[i])
            for i in data.calibration_indices(dataset.labels, n, params.run.seed)]


def load_pictures(inputs: list[tuple[str, Path]], preprocess: Any) -> np.ndarray:
    """uint8 (N, crop, crop, 3): each image resized and cropped as ``preprocess`` says."""
    from . import data

    pictures = []
    for _, path in inputs:
        try:
            pictures.append(preprocess(data.load_image(path)))
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read image {path} ({type(err).__name__}); "
                            f"pass a JPEG/PNG as ghost_maps.image") from None
    return np.stack(pictures)


# ---------------------------------------------------------------- the comparison network

@dataclass
class Comparison:
    """The conventional network GhostNet is compared with, and what is known about its weights."""

    name: str
    """``resnet50`` or ``demo_resnet``."""
    weights: str
    """Where its weights come from, in the user's words: demo, pretrained, random or the checkpoint path."""
    checkpoint: str | None
    trained: bool
    accuracy: float | None
    """Top-1 (0..1) where ghostlab measured it (the demo ResNet on the demo's val split), else None."""
    accuracy_note: str
    params: int
    macs: int
    model: nn.Module


def _resnet50(weights: str, seed: int) -> Comparison:
    with torch.random.fork_rng():  # random weights: the same maps on every run, global RNG untouched
        torch.manual_seed(seed)
        model = load_resnet(weights)
    trained = weights != "random"
    note = ("ImageNet-trained (timm's published top-1; not measured here)" if trained
            else "untrained: random weights, asked for explicitly")
    return Comparison(RESNET_NAME, weights, None if weights in ("random", "pretrained") else weights, trained,
                      None, note, sum(p.numel() for p in model.parameters()), 0, model)


def load_comparison(params: Any) -> tuple[Comparison | None, str]:
    """The comparison network ``ghost_maps.resnet_weights`` asks for, or None and why not
    (see ``GhostMapsParams.resnet_weights``; ``auto`` and ``demo`` on the demo were resolved to the
    demo ResNet's checkpoint by ``demo.prepare``)."""
    from . import demo, models

    g = params.ghost_maps
    if not g.compare_resnet:
        return None, "ghost_maps.compare_resnet is off"
    weights = g.resnet_weights
    if weights == "demo":
        raise ConfigError("ghost_maps.resnet_weights=demo trains the demo ResNet on the demo's images; it needs "
                          "data.dataset: demo (or model.weights: demo); use pretrained or a checkpoint otherwise")
    if weights == "auto":
        if models.cached_pretrained_file(RESNET_NAME) is None:
            return None, (f"no trained ResNet offline: timm's cache has no {RESNET_NAME} weights and the GhostNet "
                          f"is not the demo's; set ghost_maps.resnet_weights to a checkpoint")
        weights = "pretrained"
    trained = demo.comparison_metrics(weights)
    if trained is None:
        return _resnet50(weights, params.run.seed), ""
    model, m = demo.load_comparison(weights)
    return Comparison(m["model"], "demo", weights, True, m["val_top1"],
                      f"val top-1 on the demo's val split ({m['val_images']} images), after "
                      f"{m['epochs']} epochs in {m['train_seconds']:.0f} s", m["params"], m["macs"], model), ""



# ---------------------------------------------------------------- ResNet-50 for comparison

def load_resnet(weights: str) -> nn.Module:
    """timm ``resnet50`` in eval mode, with the same weights rules as ``model.weights``:
    ``random``, ``pretrained`` (timm's local cache only; never downloads) or a checkpoint path."""
    import timm

    from . import models

    if weights == "demo":
        raise ConfigError("ghost_maps.resnet_weights cannot be 'demo' (ghostlab trains no ResNet); "
                          "use random, pretrained or a checkpoint path")
    if weights == "random":
        return timm.create_model(RESNET_NAME, pretrained=False).eval()
    if weights == "pretrained":
        path = models.cached_pretrained_file(RESNET_NAME)
        if path is None:
            raise ModelError(f"no local copy of {RESNET_NAME}'s pretrained weights in timm's cache (offline: "
                             f"nothing is downloaded); set ghost_maps.resnet_weights to random or a checkpoint path")
    else:
        path = Path(weights)
    state = models.read_checkpoint(path)
    fc = state.get("fc.weight")
    model = timm.create_model(RESNET_NAME, pretrained=False,
                              num_classes=int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 1000)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:160]
        raise ModelError(f"checkpoint {path} does not fit {RESNET_NAME} ({first}); "
                         f"ghost_maps.resnet_weights needs a timm resnet50 state dict") from None
    return model.eval()




# ---------------------------------------------------------------- one notebook's worth

@dataclass
class GhostMapsResult:
    """Everything notebook 05 shows: metrics over the metric images (training size), maps of the
    shown images (view size) for both networks, which modules to detail, the networks themselves."""

    model_name: str
    weights: str
    accuracy: float | None
    accuracy_note: str
    preprocess: str
    input_size: int
    view_scale: int
    image_labels: list[str]
    pictures: np.ndarray
    """The shown images at the view size (uint8, N x H x W x 3)."""
    layers: list[LayerMaps]
    """GhostNet's maps of the shown images, at the view size."""
    metrics: list[dict]
    ghost_sims: dict[str, np.ndarray]
    """Per Ghost module, every ghost map's cosine to its source over the metric images."""
    metric_labels: list[str]
    detail: list[str]
    similarity_size: int
    max_channels: int
    twin_threshold: float
    model: nn.Module | None = None
    view_preprocess: Any = None
    comparison: Comparison | None = None
    comparison_note: str = ""
    comparison_layers: list[LayerMaps] = field(default_factory=list)
    comparison_metrics: list[dict] = field(default_factory=list)
    metric_inputs: list[tuple[str, Path]] = field(default_factory=list)

    def layer(self, name: str) -> LayerMaps:
        return next(layer for layer in self.layers if layer.name == name)

    def first_group(self) -> LayerMaps | None:
        """The comparison network's first residual group output (its last block in ``layer1``)."""
        group = [la for la in self.comparison_layers if la.name.startswith(RESNET_FIRST_GROUP + ".")]
        return group[-1] if group else None


def detail_modules(layers: list[LayerMaps], requested: list[str], count: int = DEFAULT_DETAIL_MODULES) -> list[str]:
    """The modules to show in detail: ``requested`` (checked), else ``count`` expansion
    modules (``ghost1``, post-ReLU) at least 4x4 in size, spread over the map sizes
    (the first module at each size: a stage's entry)."""
    names = [layer.name for layer in layers]
    for name in requested:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" — did you mean {close[0]}?" if close else f"; Ghost modules: {', '.join(names[:6])}, ..."
            raise ConfigError(f"ghost_maps.modules: no Ghost module {name!r}{hint}")
    if requested:
        return list(requested)
    pool = [layer for layer in layers if layer.name.endswith("ghost1") and min(layer.output.shape[-2:]) >= 4]
    by_size: dict[tuple, LayerMaps] = {}
    for layer in pool or layers:
        by_size.setdefault(layer.output.shape[-2:], layer)
    pool = list(by_size.values())
    picks = np.unique(np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int))
    return [pool[i].name for i in picks]


def view_scale(layers: list[LayerMaps], detail: list[str]) -> int:
    """The integer factor that makes the smallest shown module's maps at least ``MIN_VIEW_SIDE`` a side."""
    side = min(min(layer.output.shape[-2:]) for layer in layers if layer.name in detail)
    return 1 if side >= MIN_VIEW_SIDE else math.ceil(MIN_VIEW_SIDE / max(side, 1))


def capture_view(result: GhostMapsResult, picture: np.ndarray) -> tuple[list[LayerMaps], list[LayerMaps]]:
    """Both networks' maps of one more image (uint8 at the view size), for the explorer."""
    x = torch.from_numpy(result.view_preprocess.normalize(picture[None]))
    with _one_thread():
        ghost = capture_ghost_maps(result.model, x)
        other = ([] if result.comparison is None else
                 capture_outputs(result.comparison.model, x, resnet_blocks(result.comparison.model)))
    return ghost, other


def compute(params: Any) -> GhostMapsResult:
    """Build the run's GhostNet and the comparison network, measure both over the metric images at
    the training size, and capture the shown images' maps at the view size."""
    with _one_thread():
        return _compute(params)


def _ghostnet_accuracy(params: Any) -> tuple[float | None, str]:
    from . import demo

    metrics = demo.training_metrics(params)
    if metrics and "val_top1" in metrics:
        return metrics["val_top1"], f"val top-1 on the demo's val split ({metrics['val_images']} images)"
    return None, "see notebook 04"


def _compute(params: Any) -> GhostMapsResult:
    from . import data, models

    g = params.ghost_maps
    shown, measured = image_inputs(params), metric_inputs(params)
    # The classifier plays no part in feature maps: None takes a checkpoint's own class count.
    with torch.random.fork_rng():  # random weights: the same maps on every run, global RNG untouched
        torch.manual_seed(params.run.seed)
        model = models.load_model(params, None).eval()
    comparison, note = load_comparison(params)
    preprocess = data.preprocess_for(params, model)
    x = torch.from_numpy(preprocess.normalize(load_pictures(measured, preprocess)))
    metrics, ghost_sims = measure(lambda b: capture_ghost_maps(model, b), x, g.similarity_size, g.twin_threshold)
    other_metrics = [] if comparison is None else measure(
        lambda b: capture_outputs(comparison.model, b, resnet_blocks(comparison.model)), x, g.similarity_size,
        g.twin_threshold)[0]
    at_training_size = capture_ghost_maps(model, torch.from_numpy(
        preprocess.normalize(load_pictures(shown[:1], preprocess))))
    detail = detail_modules(at_training_size, list(g.modules))
    scale = view_scale(at_training_size, detail)
    view = preprocess if scale == 1 else dataclasses.replace(
        preprocess, name=f"{preprocess.name}, x{scale} for display", resize=preprocess.resize * scale,
        crop=preprocess.crop * scale)
    pictures = load_pictures(shown, view)
    xv = torch.from_numpy(view.normalize(pictures))
    accuracy, accuracy_note = _ghostnet_accuracy(params)
    return GhostMapsResult(
        model_name=params.model.name, weights=params.model.weights, accuracy=accuracy, accuracy_note=accuracy_note,
        preprocess=preprocess.describe(), input_size=preprocess.crop, view_scale=scale,
        image_labels=[label for label, _ in shown], pictures=pictures, layers=capture_ghost_maps(model, xv),
        metrics=metrics, ghost_sims=ghost_sims, metric_labels=[label for label, _ in measured], detail=detail,
        similarity_size=g.similarity_size, max_channels=g.max_channels, twin_threshold=g.twin_threshold,
        model=model, view_preprocess=view, comparison=comparison, comparison_note=note,
        comparison_layers=[] if comparison is None else capture_outputs(
            comparison.model, xv, resnet_blocks(comparison.model)),
        comparison_metrics=other_metrics, metric_inputs=measured)

