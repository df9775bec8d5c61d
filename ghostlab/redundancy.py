"""How redundant a layer's feature maps are: channel similarity, near twins, effective rank.

Everything here takes one image's maps of one layer, ``(C, H, W)`` or flattened ``(C, D)``, and
returns numbers; ``ghostlab.ghosts`` captures the maps and averages these over images.

Definitions (the report and ``ghost_maps.json`` use these names):

- ``mean_max_similarity``: each active channel's highest cosine similarity to *another* channel
  of the layer, averaged over the channels (1 = every map has an exact twin).
- ``twin_share``: the share of active channels whose highest cosine to another channel exceeds
  the threshold (``ghost_maps.twin_threshold``): channels with a near twin.
- ``effective_rank`` (the kit's "shape" rank): Roy & Vetterli's effective rank after dropping
  inactive maps and scaling every other map to unit norm, so it counts independent *shapes*,
  not energy: copies or multiples of one map have rank 1, n orthogonal maps rank n.
- ``effective_rank_raw``: plain Roy & Vetterli (2007) on the raw maps, where strong maps weigh
  more; 1-15 % lower than the shape rank on trained layers.
- both ranks are also given as a fraction of their ceiling, ``max_rank = min(channels, pixels)``
  (the rank a C x D matrix can have at most; D = pixels compared).

Roy & Vetterli: with singular values s_k of the C x D matrix of maps, p_k = s_k / sum(s),
effective rank = exp(-sum p_k log p_k). A channel whose norm is below 1e-6 of the layer's largest
is *inactive* (dead after a ReLU): it has no direction, so it is left out of similarities.
Similarities are computed on maps average-pooled to at most ``size`` pixels per side (``subsample``).
"""

from __future__ import annotations

import numpy as np
import torch

DEAD = 1e-6
"""A channel whose norm is below this fraction of the layer's largest is inactive."""
MIN_PIXELS = 16
"""Layers compared over fewer pixels (deep layers of a small input: 2x2, 1x1) are left out of
network-wide summaries and faded in figures: over so few pixels any two maps look alike."""
METRICS = ("mean_max_similarity", "twin_share", "effective_rank", "effective_rank_raw",
           "effective_rank_fraction", "effective_rank_raw_fraction", "inactive_channels")
"""The per-image numbers ``map_metrics`` returns; ``summarize`` gives each one's mean and spread."""


def subsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Average-pool (..., H, W) maps to at most ``size`` per side (bounded similarity cost)."""
    h, w = maps.shape[-2:]
    if h <= size and w <= size:
        return maps
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
    lead = t.shape[:-2]
    t = torch.nn.functional.adaptive_avg_pool2d(t.reshape(-1, 1, h, w), (min(h, size), min(w, size)))
    return t.reshape(*lead, *t.shape[-2:]).numpy()


def flat(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) or (C, D) -> (C, D) float64."""
    maps = np.asarray(maps, dtype=np.float64)
    return maps.reshape(maps.shape[0], -1)


def active(flat_maps: np.ndarray) -> np.ndarray:
    """Boolean per channel: not all (nearly) zero."""
    norms = np.linalg.norm(flat_maps, axis=1)
    top = norms.max() if norms.size else 0.0
    return norms > max(top * DEAD, 1e-30)


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
    f = flat(maps)
    on = active(f)
    unit = np.zeros_like(f)
    unit[on] = f[on] / np.linalg.norm(f[on], axis=1, keepdims=True)
    u = torch.from_numpy(unit)
    sim = np.clip((u @ u.T).numpy(), -1.0, 1.0)
    sim[~on, :] = np.nan
    sim[:, ~on] = np.nan
    return sim


def max_similarity(sim: np.ndarray) -> np.ndarray:
    """Each channel's highest similarity to *another* channel (NaN for inactive channels)."""
    off = sim.copy()
    np.fill_diagonal(off, np.nan)
    out = np.full(off.shape[0], np.nan)
    rows = ~np.all(np.isnan(off), axis=1)
    out[rows] = np.nanmax(off[rows], axis=1)
    return out


def _singular_values(f: np.ndarray) -> np.ndarray:
    # From the eigenvalues of the smaller Gram matrix: the same numbers as an SVD, at a
    # fraction of its cost for the 2048 x 49 maps of ResNet-50's last stage.
    t = torch.from_numpy(f)
    gram = t @ t.T if f.shape[0] <= f.shape[1] else t.T @ t
    return np.sqrt(np.clip(torch.linalg.eigvalsh(gram).numpy(), 0.0, None))


def effective_rank(maps: np.ndarray, unit_norm: bool = True) -> float:
    """Roy & Vetterli's effective rank of one layer's maps ((C, H, W) or (C, D)): exp of the entropy
    of the singular values normalised to sum 1.

    ``unit_norm=True`` (the kit's shape rank): inactive maps dropped, every other map scaled to unit
    norm first, so it counts independent shapes: a stack of copies (or multiples) of one map has
    rank 1, n orthogonal maps have rank n whatever their norms. ``unit_norm=False``: plain Roy &
    Vetterli on the raw maps (a weak map counts less). 0 when no map is active.
    """
    f = flat(maps)
    f = f[active(f)]
    if f.shape[0] == 0:
        return 0.0
    if unit_norm:
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
    s = _singular_values(f)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def map_metrics(maps: np.ndarray, threshold: float) -> dict:
    """The ``METRICS`` of one image's maps of one layer ((C, H, W), already subsampled)."""
    f = flat(maps)
    on = active(f)
    best = max_similarity(channel_similarity(f))
    best = best[np.isfinite(best)]
    ceiling = max(1, min(f.shape[0], f.shape[1]))
    rank, raw = effective_rank(f), effective_rank(f, unit_norm=False)
    return {"mean_max_similarity": float(best.mean()) if best.size else float("nan"),
            "twin_share": float((best > threshold).mean()) if best.size else float("nan"),
            "effective_rank": rank, "effective_rank_raw": raw,
            "effective_rank_fraction": rank / ceiling, "effective_rank_raw_fraction": raw / ceiling,
            "inactive_channels": float((~on).sum())}


def summarize(per_image: list[dict]) -> dict:
    """Mean over images of each metric as ``<metric>`` and its standard deviation as ``<metric>_sd``
    (NaN images left out; None when no image has a value)."""
    out = {}
    for key in METRICS:
        v = np.asarray([m[key] for m in per_image], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[key] = float(v.mean()) if v.size else None
        out[f"{key}_sd"] = float(v.std()) if v.size else None
    return out


def stats(values: np.ndarray) -> dict:
    """count, mean, median, p10, p90, min, max of the finite values (None when there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"count": 0, "mean": None, "median": None, "p10": None, "p90": None, "min": None, "max": None}
    return {"count": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90)),
            "min": float(v.min()), "max": float(v.max())}


def nanmean(values: list) -> float:
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
