"""Ghost feature maps: capture them with forward hooks and measure how redundant each layer is.

GhostNet builds each Ghost module's output from a few *intrinsic* maps (an ordinary
convolution, ``primary_conv``) and *ghost* maps made from them by a cheap depthwise
convolution (``cheap_operation``); ghost channel ``j`` is made from intrinsic channel
``j // (ratio - 1)``. This module captures both, for every Ghost module, and compares:

- each ghost map with its source intrinsic map (cosine similarity);
- every pair of channels of a layer's output (channel-similarity matrix), and from it
  each channel's highest similarity to another channel ("mean max similarity");
- the effective rank of a layer's flattened maps (exp of the entropy of the normalised
  singular values; Roy & Vetterli 2007): how many independent maps the layer really holds;
- the same for ResNet-50's residual blocks, the network the GhostNet paper's first figure
  looks at.

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
per side (bounded cost). Channels whose map is all zero (dead after a ReLU) have no
direction: they are left out of every similarity and counted as ``inactive_channels``.
Computation only: figures are in ``ghostlab.plots``, the explorer in ``ghostlab.widgets``.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, DataError, ModelError
from .ghostnet import is_ghost_module

RESNET_NAME = "resnet50"
RESNET_FIRST_GROUP = "layer1"
DEFAULT_DETAIL_MODULES = 3
_DEAD = 1e-6  # a channel whose norm is below this fraction of the layer's largest is inactive


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


# ---------------------------------------------------------------- similarity and rank

def subsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Average-pool (..., H, W) maps to at most ``size`` per side (bounded similarity cost)."""
    h, w = maps.shape[-2:]
    if h <= size and w <= size:
        return maps
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
    lead = t.shape[:-2]
    t = torch.nn.functional.adaptive_avg_pool2d(t.reshape(-1, 1, h, w), (min(h, size), min(w, size)))
    return t.reshape(*lead, *t.shape[-2:]).numpy()


def _flat(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) or (C, D) -> (C, D) float64."""
    maps = np.asarray(maps, dtype=np.float64)
    return maps.reshape(maps.shape[0], -1)


def _active(flat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(flat, axis=1)
    top = norms.max() if norms.size else 0.0
    return norms > max(top * _DEAD, 1e-30)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two maps (any shape, flattened); NaN when either is all zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def channel_similarity(maps: np.ndarray) -> np.ndarray:
    """C x C cosine similarity of every pair of channel maps ((C, H, W) or (C, D)).

    Rows and columns of inactive (all-zero) channels are NaN.
    """
    flat = _flat(maps)
    active = _active(flat)
    unit = np.zeros_like(flat)
    unit[active] = flat[active] / np.linalg.norm(flat[active], axis=1, keepdims=True)
    u = torch.from_numpy(unit)
    sim = np.clip((u @ u.T).numpy(), -1.0, 1.0)
    sim[~active, :] = np.nan
    sim[:, ~active] = np.nan
    return sim


def max_similarity(sim: np.ndarray) -> np.ndarray:
    """Each channel's highest similarity to *another* channel (NaN for inactive channels)."""
    off = sim.copy()
    np.fill_diagonal(off, np.nan)
    out = np.full(off.shape[0], np.nan)
    rows = ~np.all(np.isnan(off), axis=1)
    out[rows] = np.nanmax(off[rows], axis=1)
    return out


def effective_rank(maps: np.ndarray) -> float:
    """exp(entropy of the normalised singular values) of the active maps, each scaled to unit norm.

    Unit norms make it count independent *shapes*, not energy: a stack of copies (or
    multiples) of one map has rank 1, n orthogonal maps have rank n. 0 when no map is active.
    """
    flat = _flat(maps)
    flat = flat[_active(flat)]
    if flat.shape[0] == 0:
        return 0.0
    flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    # Singular values from the eigenvalues of the smaller Gram matrix: the same numbers as
    # an SVD, at a fraction of its cost for the 2048 x 49 maps of ResNet's last stage.
    f = torch.from_numpy(flat)
    gram = f @ f.T if flat.shape[0] <= flat.shape[1] else f.T @ f
    s = np.sqrt(np.clip(torch.linalg.eigvalsh(gram).numpy(), 0.0, None))
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


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


def _stats(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"count": 0, "mean": None, "median": None, "p10": None, "p90": None, "min": None, "max": None}
    return {"count": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90)),
            "min": float(v.min()), "max": float(v.max())}


def _nanmean(values: list[float]) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def layer_metrics(layer: LayerMaps, size: int, depth: float) -> dict:
    """What ghost_maps.json records for one layer (metrics averaged over the images)."""
    out = subsample(layer.output, size)
    mean_max, ranks, inactive = [], [], []
    for img in out:
        flat = _flat(img)
        mean_max.append(_nanmean(list(max_similarity(channel_similarity(flat)))))
        ranks.append(effective_rank(flat))
        inactive.append(int((~_active(flat)).sum()))
    pixels = int(out.shape[-1] * out.shape[-2])
    row = {
        "name": layer.name, "stage": layer.stage, "kind": layer.kind, "depth": depth,
        "channels": layer.channels, "height": int(layer.output.shape[-2]), "width": int(layer.output.shape[-1]),
        "similarity_pixels": pixels,
        "inactive_channels": float(np.mean(inactive)),
        "mean_max_similarity": _nanmean(mean_max),
        "effective_rank": float(np.mean(ranks)),
        "max_rank": min(layer.channels, pixels),
    }
    row["effective_rank_fraction"] = row["effective_rank"] / row["max_rank"]
    if layer.intrinsic is not None:
        row["intrinsic_channels"] = int(layer.intrinsic.shape[1])
        row["ghost_channels"] = int(layer.ghost.shape[1])
        row["ghosts_per_intrinsic"] = layer.ghosts_per_intrinsic
        row["ghost_similarity"] = _stats(ghost_similarity(layer, size).ravel())
    return row


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One image through a network and many small matrix products and eigen-solves: one
    thread is about as fast, and on a busy machine many times faster than threads that wait
    for each other at every step (ResNet-50 forward: 0.2 s vs up to 3 s measured here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def network_metrics(layers: list[LayerMaps], size: int) -> list[dict]:
    """``layer_metrics`` of every layer, with its relative depth (0 = first, 1 = last)."""
    n = len(layers)
    with _one_thread():  # a no-op inside compute(), which already runs on one thread
        return [layer_metrics(layer, size, i / max(n - 1, 1)) for i, layer in enumerate(layers)]


def similar_pairs(maps: np.ndarray, count: int, size: int) -> list[tuple[int, int, float]]:
    """The ``count`` most similar channel pairs (a, b, cosine) of one image's (C, H, W) maps,
    each channel used at most once, most similar first."""
    sim = channel_similarity(subsample(maps, size))
    iu = np.triu_indices(sim.shape[0], k=1)
    values = sim[iu]
    order = np.argsort(np.where(np.isnan(values), -np.inf, values))[::-1]
    used: set[int] = set()
    pairs = []
    for k in order:
        if np.isnan(values[k]) or len(pairs) >= count:
            break
        a, b = int(iu[0][k]), int(iu[1][k])
        if a in used or b in used:
            continue
        used.update((a, b))
        pairs.append((a, b, float(values[k])))
    return pairs


# ---------------------------------------------------------------- images

def default_image() -> Path:
    """The photo matplotlib ships (Grace Hopper), so the report needs no download."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def image_inputs(params: Any) -> list[tuple[str, Path]]:
    """(label, path) of the images to look at: ``ghost_maps.image`` (default: the bundled
    photo) first, then the evaluation images at ``ghost_maps.dataset_indices``."""
    g = params.ghost_maps
    path = Path(g.image) if g.image else default_image()
    if not path.is_file():
        raise DataError(f"ghost_maps.image {path} is not an image file; point it at a JPEG/PNG "
                        f"or leave it empty for the bundled photo")
    inputs = [(path.name, path)]
    if g.dataset_indices:
        from . import data

        dataset = data.load_dataset(params, "eval")
        for i in g.dataset_indices:
            if not 0 <= i < len(dataset):
                raise ConfigError(f"ghost_maps.dataset_indices: {i} is out of range; "
                                  f"the evaluation set has {len(dataset)} images (0..{len(dataset) - 1})")
            label = dataset.class_names[dataset.labels[i]] if dataset.class_names else str(dataset.labels[i])
            inputs.append((f"#{i} {label}", dataset.files[i]))
    return inputs


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


def resnet_preprocess(model: nn.Module) -> Any:
    """ResNet-50's own eval preprocessing (timm's pretrained config: 224 crop)."""
    import math

    from timm.data import resolve_data_config

    from .data import Preprocess

    cfg = resolve_data_config({}, model=model)
    crop = int(cfg["input_size"][-1])
    interpolation = cfg["interpolation"] if cfg["interpolation"] in ("bilinear", "bicubic", "nearest") else "bicubic"
    return Preprocess(f"timm {RESNET_NAME}", math.floor(crop / cfg["crop_pct"]), crop, interpolation,
                      tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"]))


# ---------------------------------------------------------------- one notebook's worth

@dataclass
class GhostMapsResult:
    """Everything notebook 05 shows: captured maps, per-layer metrics, which modules to detail."""

    model_name: str
    weights: str
    preprocess: str
    image_labels: list[str]
    pictures: np.ndarray
    layers: list[LayerMaps]
    metrics: list[dict]
    detail: list[str]
    similarity_size: int
    max_channels: int
    resnet_weights: str | None = None
    resnet_preprocess: str | None = None
    resnet_pictures: np.ndarray | None = None
    resnet_layers: list[LayerMaps] = field(default_factory=list)
    resnet_metrics: list[dict] = field(default_factory=list)

    def layer(self, name: str) -> LayerMaps:
        return next(layer for layer in self.layers if layer.name == name)


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


def compute(params: Any) -> GhostMapsResult:
    """Build the run's model, capture its ghost maps on the chosen images, measure every
    layer; the same for ResNet-50 when ``ghost_maps.compare_resnet`` is set."""
    with _one_thread():
        return _compute(params)


def _compute(params: Any) -> GhostMapsResult:
    from . import data, models

    g = params.ghost_maps
    inputs = image_inputs(params)
    # The classifier plays no part in feature maps: None takes a checkpoint's own class count.
    with torch.random.fork_rng():  # random weights: the same maps on every run, global RNG untouched
        torch.manual_seed(params.run.seed)
        model = models.load_model(params, None)
    preprocess = data.preprocess_for(params, model)
    pictures = load_pictures(inputs, preprocess)
    x = torch.from_numpy(preprocess.normalize(pictures))
    layers = capture_ghost_maps(model, x)
    result = GhostMapsResult(
        model_name=params.model.name, weights=params.model.weights, preprocess=preprocess.describe(),
        image_labels=[label for label, _ in inputs], pictures=pictures, layers=layers,
        metrics=network_metrics(layers, g.similarity_size), detail=detail_modules(layers, list(g.modules)),
        similarity_size=g.similarity_size, max_channels=g.max_channels,
    )
    if g.compare_resnet:
        with torch.random.fork_rng():
            torch.manual_seed(params.run.seed)
            resnet = load_resnet(g.resnet_weights)
        rpre = resnet_preprocess(resnet)
        rpictures = load_pictures(inputs, rpre)
        rlayers = capture_outputs(resnet, torch.from_numpy(rpre.normalize(rpictures)), resnet_blocks(resnet))
        result.resnet_weights = g.resnet_weights
        result.resnet_preprocess = rpre.describe()
        result.resnet_pictures = rpictures
        result.resnet_layers = rlayers
        result.resnet_metrics = network_metrics(rlayers, g.similarity_size)
    return result


def summary(result: GhostMapsResult) -> dict:
    """The content of ``artifacts/ghost_maps.json``."""
    out = {
        "model": result.model_name, "weights": result.weights, "preprocess": result.preprocess,
        "images": result.image_labels, "similarity_size": result.similarity_size,
        "similarity": "cosine of maps average-pooled to at most similarity_size per side; "
                      "metrics are means over the images",
        "detail_modules": result.detail,
        "modules": result.metrics,
        "resnet": None,
    }
    if result.resnet_weights is not None:
        out["resnet"] = {"model": RESNET_NAME, "weights": result.resnet_weights,
                         "random_weights": result.resnet_weights == "random",
                         "preprocess": result.resnet_preprocess, "blocks": result.resnet_metrics}
    return out


def run_ghost_maps(run: Any) -> GhostMapsResult:
    """Notebook 05's computation: ``compute`` on the run's params, then write ghost_maps.json."""
    from .jsonio import write_json

    result = compute(run.params)
    write_json(run.artifact("ghost_maps.json"), summary(result))
    return result


# ---------------------------------------------------------------- what the figures show

def _energy_order(maps: np.ndarray) -> np.ndarray:
    """Channel indices of (C, H, W) maps, strongest (largest norm) first."""
    return np.argsort(-np.linalg.norm(maps.reshape(maps.shape[0], -1), axis=1), kind="stable")


def source_pairs(layer: LayerMaps, image: int, count: int, size: int) -> list[dict]:
    """Up to ``count`` (intrinsic map, a ghost map made from it) pairs of one image, strongest
    intrinsic channels first, with their cosine similarity."""
    sims = ghost_similarity(layer, size)[image]
    pairs = []
    for i in _energy_order(layer.intrinsic[image]):
        ghosts = layer.ghosts_of(int(i))
        if ghosts:
            j = ghosts[0]
            pairs.append({"intrinsic": int(i), "ghost": j, "similarity": float(sims[j]),
                          "intrinsic_map": layer.intrinsic[image, i], "ghost_map": layer.ghost[image, j]})
        if len(pairs) >= count:
            break
    return pairs


def source_pair_panels(result: GhostMapsResult, image: int = 0) -> list[dict]:
    """One panel per detail module: its name and its intrinsic/ghost pairs."""
    return [{"name": name, "pairs": source_pairs(result.layer(name), image, result.max_channels,
                                                  result.similarity_size)}
            for name in result.detail]


def ghost_similarity_by_module(result: GhostMapsResult) -> dict:
    """Every kept ghost map's similarity to its source, per module (all images), with stages."""
    names, values, stages = [], [], []
    for layer in result.layers:
        sims = ghost_similarity(layer, result.similarity_size).ravel()
        names.append(layer.name)
        values.append(sims[np.isfinite(sims)])
        stages.append(layer.stage)
    return {"names": names, "values": values, "stages": stages, "model": result.model_name}


def heatmap_panels(result: GhostMapsResult, image: int = 0) -> list[dict]:
    """Channel-similarity matrix of each detail module's output; ``split`` = intrinsic channels
    (the output is [intrinsic | ghost], so ghost pairs sit on a band ``split`` off the diagonal)."""
    panels = []
    for name in result.detail:
        layer = result.layer(name)
        sim = channel_similarity(subsample(layer.output[image], result.similarity_size))
        panels.append({"name": name, "matrix": sim, "split": int(layer.intrinsic.shape[1])})
    return panels


def resnet_banner(result: GhostMapsResult) -> str | None:
    """The warning every ResNet-50 figure carries when its weights are random."""
    if result.resnet_weights == "random":
        return ("ResNet-50 has random weights: this compares with an untrained network. "
                "Set ghost_maps.resnet_weights to pretrained (timm cache) or a checkpoint.")
    return None


def _gallery(title: str, maps: np.ndarray, count: int, size: int, banner: str | None = None) -> dict:
    pairs = [{"a": a, "b": b, "similarity": s, "map_a": maps[a], "map_b": maps[b]}
             for a, b, s in similar_pairs(maps, count, size)]
    return {"title": title, "pairs": pairs, "banner": banner}


def gallery_panels(result: GhostMapsResult, image: int = 0) -> list[dict]:
    """The most similar channel pairs ("ghost pairs"): in GhostNet's first detail module's output
    and, when compared, in the output of ResNet-50's first residual group (as in the paper's Fig. 1)."""
    name = result.detail[0]
    weights = "" if result.weights != "random" else ", random weights"
    panels = [_gallery(f"{result.model_name}{weights} · {name} output", result.layer(name).output[image],
                       result.max_channels, result.similarity_size)]
    if result.resnet_layers:
        group = [layer for layer in result.resnet_layers if layer.name.startswith(RESNET_FIRST_GROUP + ".")][-1]
        panels.append(_gallery(f"{RESNET_NAME} · first residual group ({RESNET_FIRST_GROUP}) output",
                               group.output[image], result.max_channels, result.similarity_size,
                               resnet_banner(result)))
    return panels


def depth_series(result: GhostMapsResult) -> dict[str, list[dict]]:
    """Per-layer metrics by network, for the redundancy-vs-depth figure."""
    weights = " (random weights)" if result.weights == "random" else ""
    series = {f"{result.model_name}{weights} · Ghost modules": result.metrics}
    if result.resnet_metrics:
        rw = " (random weights)" if result.resnet_weights == "random" else ""
        series[f"{RESNET_NAME}{rw} · residual blocks"] = result.resnet_metrics
    return series


def module_rows(result: GhostMapsResult) -> list[dict]:
    """The per-layer table of the report: GhostNet's Ghost modules, then ResNet-50's blocks if compared."""
    rows = []
    labelled = [(result.model_name, m) for m in result.metrics] + [(RESNET_NAME, m) for m in result.resnet_metrics]
    for network, m in labelled:
        row = {"network": network, "layer": m["name"], "stage": m["stage"], "channels": m["channels"],
               "size": f"{m['height']}x{m['width']}"}
        if "ghost_similarity" in m:
            gs = m["ghost_similarity"]
            row.update({"ghost↔source mean": gs["mean"], "ghost↔source p10": gs["p10"],
                        "ghost↔source p90": gs["p90"]})
        row.update({"mean max similarity": m["mean_max_similarity"], "effective rank": m["effective_rank"],
                    "rank / max": m["effective_rank_fraction"], "inactive": m["inactive_channels"]})
        rows.append(row)
    return rows


def headline(result: GhostMapsResult) -> dict:
    """The few numbers the index page shows."""
    sims = np.concatenate([v for v in ghost_similarity_by_module(result)["values"]] or [np.array([])])
    out = {
        "ghost_modules": len(result.layers),
        "ghost_to_source_similarity_mean": float(sims.mean()) if sims.size else None,
        "ghostnet_mean_max_similarity": _nanmean([m["mean_max_similarity"] for m in result.metrics]),
        "ghostnet_effective_rank_fraction": _nanmean([m["effective_rank_fraction"] for m in result.metrics]),
    }
    if result.resnet_metrics:
        out["resnet50_weights"] = result.resnet_weights
        out["resnet50_mean_max_similarity"] = _nanmean([m["mean_max_similarity"] for m in result.resnet_metrics])
        out["resnet50_effective_rank_fraction"] = _nanmean(
            [m["effective_rank_fraction"] for m in result.resnet_metrics])
    return out
