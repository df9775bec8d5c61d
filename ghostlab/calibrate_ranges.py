"""Activation ranges for int8: minmax, percentile and entropy (KL divergence), independent of the chunk size.

The images go through the model one chunk of ``chunk_size`` images at a time, so memory is
bounded by one chunk's activations; the ranges do not depend on the chunk size:

1. ``minmax_pass``: ONNX Runtime's MinMax calibrator (ReduceMin/ReduceMax added to the graph),
   fed chunk by chunk: each calibrated tensor's exact min and max over every image. This is the
   ``minmax`` method's result, and fixes the histogram range of the other two.
2. ``histogram_pass``: every calibrated tensor into a fixed-range histogram, accumulated exactly
   over the chunks (bin counts add up; no bins are added or re-binned later). ``entropy``: the
   values over ``[-A, A]``, ``A = max(|min|, |max|)`` (the layout of ORT's histogram
   calibrator); ``percentile``: ``|x|`` over ``[0, A]`` (ORT's symmetric percentile).
3. One threshold search per tensor on the merged histogram: ``entropy_threshold`` (TensorRT's
   KL calibration: the symmetric window whose 128-level quantization loses least KL, on a fine
   histogram of ``num_bins``, 2048 by default) and ``percentile_threshold``. Both are
   vectorised numpy versions of ORT's ``HistogramCollector.get_entropy_threshold`` /
   ``compute_percentile``, which tests/test_calibrate_ranges.py checks them against on the same
   histograms (ORT's own loop is pure Python: seconds per tensor at 2048 bins).

ORT's calibrator, fed chunk by chunk, instead starts each histogram at the first chunk's range
and lets ``merge_histogram`` append bins for later chunks, so its entropy ranges move with the
chunk size; fed every image at once it holds all activations in memory.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import CalibrationError

DEFAULT_BINS = 2048
"""Histogram bins of percentile and entropy (TensorRT's KL calibration uses 2048)."""
QUANTIZED_BINS = 128
"""Quantized levels the KL search compares against (half of uint8's 256, as in TensorRT and ORT)."""
HISTOGRAM_METHODS = ("percentile", "entropy")
_BLOCK = 1 << 18  # values binned per numpy call: the temporaries stay in cache


class Images(Protocol):
    """What calibration reads images from: ``data.CachedImages`` or anything with this method."""

    def normalized(self, indices: np.ndarray) -> np.ndarray:  # float32 NCHW
        ...


@contextlib.contextmanager
def quiet():
    """ORT's quantization tools print progress and log warnings on the root logger: hide both."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def input_name(model: str | Path) -> str:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return next(i.name for i in graph.input if i.name not in inits)


def quantizable_op_types() -> list[str]:
    """The op types ``quantize_static`` quantizes by default (and so the ones worth calibrating)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


def chunks(images: Images, indices: np.ndarray, chunk_size: int):
    """Float32 NCHW batches of ``chunk_size`` images (the last may be smaller)."""
    for start in range(0, len(indices), chunk_size):
        yield np.ascontiguousarray(images.normalized(indices[start:start + chunk_size]), dtype=np.float32)


def reader(batches, name: str):
    """An ORT ``CalibrationDataReader`` over an iterable of batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict | None:
            x = next(self.it, None)
            return None if x is None else {name: x}

    return _Reader()


@contextlib.contextmanager
def _calibrator(model: str | Path, method: str, work_dir: Path):
    """ORT's calibrator of ``method`` (its augmented graph and session), cleaned up after."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    aug = Path(work_dir) / f".augmented_{method}.onnx"
    aug.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet():
            yield create_calibrator(Path(model), quantizable_op_types(), augmented_model_path=str(aug),
                                    calibrate_method=CalibrationMethod[method])
    finally:
        aug.unlink(missing_ok=True)
        aug.with_suffix(".onnx.data").unlink(missing_ok=True)


# ---------------------------------------------------------------- pass 1: exact min / max

def minmax_pass(model: str | Path, images: Images, indices: np.ndarray, chunk_size: int,
                work_dir: str | Path) -> dict[str, tuple[np.float32, np.float32]]:
    """{tensor: (min, max)} over every image, from ORT's MinMax calibrator fed chunk by chunk."""
    name = input_name(model)
    with _calibrator(model, "MinMax", Path(work_dir)) as cal:
        with quiet():
            for x in chunks(images, indices, chunk_size):
                cal.collect_data(reader([x], name))
            data = cal.compute_data()
    return {t: (np.float32(np.min(d.range_value[0])), np.float32(np.max(d.range_value[1])))
            for t, d in data.items()}


# ---------------------------------------------------------------- pass 2: fixed-range histograms

@dataclass
class Histogram:
    """Counts of one tensor's values over fixed bins (ORT's ``(hist, hist_edges, min, max)``)."""

    counts: np.ndarray  # int64, len bins
    edges: np.ndarray  # float32, len bins + 1
    low: np.float32
    high: np.float32
    absolute: bool  # |x| over [0, A] (percentile), else x over [-A, A] (entropy)

    @classmethod
    def empty(cls, low: float, high: float, bins: int, absolute: bool) -> "Histogram":
        amax = np.float32(max(abs(float(low)), abs(float(high))))
        start = np.float32(0) if absolute else -amax
        edges = np.linspace(start, amax, bins + 1, dtype=np.float32)
        return cls(np.zeros(bins, np.int64), edges, np.float32(low), np.float32(high), absolute)

    def add(self, x: np.ndarray) -> None:
        """Count ``x`` (any shape) into the bins; values on the top edge go to the last bin."""
        bins = len(self.counts)
        start, stop = float(self.edges[0]), float(self.edges[-1])
        scale = np.float32(bins / (stop - start)) if stop > start else np.float32(0)
        flat = x.reshape(-1)
        buf = np.empty(min(_BLOCK, flat.size), np.float32)
        for s in range(0, flat.size, _BLOCK):
            b = buf[:min(_BLOCK, flat.size - s)]
            if self.absolute:
                np.abs(flat[s:s + _BLOCK], out=b)
            else:
                np.subtract(flat[s:s + _BLOCK], np.float32(start), out=b)
            np.multiply(b, scale, out=b)
            idx = b.astype(np.intp)
            np.maximum(idx, 0, out=idx)  # a value a rounding past the range: into the end bins
            np.minimum(idx, bins - 1, out=idx)
            self.counts += np.bincount(idx, minlength=bins)

    def ort_tuple(self) -> tuple:
        """ORT's histogram tuple, for its reference searches (``HistogramCollector``)."""
        threshold = np.float32(self.edges[-1])
        return (self.counts, self.edges, self.low, self.high, threshold)


def histogram_pass(model: str | Path, images: Images, indices: np.ndarray, chunk_size: int,
                   work_dir: str | Path, ranges: dict[str, tuple], bins: int, absolute: bool
                   ) -> dict[str, Histogram]:
    """{tensor: Histogram} over every image, bins fixed by ``ranges`` (from ``minmax_pass``)."""
    hists = {t: Histogram.empty(lo, hi, bins, absolute) for t, (lo, hi) in ranges.items()}
    name = input_name(model)
    # ORT's histogram calibrator's augmented graph (every calibrated tensor an output) and session
    with _calibrator(model, "Entropy", Path(work_dir)) as cal:
        sess = cal.infer_session
        outputs = [o.name for o in sess.get_outputs()]
        wanted = [i for i, t in enumerate(outputs) if t in hists]
        missing = set(hists) - {outputs[i] for i in wanted}
        if missing:
            raise CalibrationError(f"{len(missing)} calibrated tensor(s) are not outputs of the histogram "
                                   f"graph, e.g. {sorted(missing)[0]!r}")
        for x in chunks(images, indices, chunk_size):
            values = sess.run([outputs[i] for i in wanted], {name: x})
            for i, v in zip(wanted, values):
                hists[outputs[i]].add(v)
            del values
    return hists


# ---------------------------------------------------------------- pass 3: threshold searches

def percentile_threshold(h: Histogram, percentile: float) -> tuple[np.float32, np.float32]:
    """ORT's symmetric percentile (``compute_percentile``): ``±`` the edge where the cdf of ``|x|``
    reaches ``percentile``, clipped to the tensor's [min, max]."""
    cdf = np.cumsum(h.counts / h.counts.sum())
    edge = h.edges[np.searchsorted(cdf, percentile / 100.0)]
    return max(-edge, h.low), min(edge, h.high)


@lru_cache(maxsize=4)
def _kl_layout(bins: int, levels: int) -> dict[str, np.ndarray]:
    """Index arrays of every candidate window of ORT's KL search, packed row after row.

    Candidate ``r`` is the window ``[zero - i, min(zero + i + 1, bins))``, ``i = levels // 2 + r``;
    its ``L`` bins are merged ``m = L // levels`` at a time into ``levels`` quantized bins (the
    last also takes the ``L - levels * m`` bins left over, which the expanded ``q`` leaves at 0).
    """
    zero, half = bins // 2, levels // 2
    i = np.arange(half, zero + 1)
    start = zero - i
    end = np.minimum(zero + i + 1, bins)
    length = end - start
    merged = length // levels
    offsets = np.concatenate([[0], np.cumsum(length)])
    row = np.repeat(np.arange(len(i)), length)
    j = np.arange(offsets[-1]) - offsets[row]  # position inside the window
    block = np.minimum(j // merged[row], levels)  # == levels: a left-over bin (q = 0 there)
    return {"start": start, "end": end, "length": length, "merged": merged, "offsets": offsets[:-1],
            "row": row, "pos": start[row] + j, "q_at": row * (levels + 1) + block,
            "first": offsets[:-1], "last": offsets[1:] - 1, "exact": length == levels * merged}


def entropy_kl(counts: np.ndarray, levels: int = QUANTIZED_BINS) -> np.ndarray:
    """KL divergence of every candidate window of ORT's ``get_entropy_threshold``, vectorised.

    Same definitions as ORT: ``p`` is the window with the outliers added to its end bins; ``q``
    quantizes the window (without outliers) to ``levels`` bins and spreads each back over the
    bins where ``p`` is non-zero (integer division, as ORT's int64 ``q``); both are smoothed
    (``smooth_distribution``, eps 1e-4) and normalised. Computed in float64 (ORT: float32).
    """
    counts = np.asarray(counts, dtype=np.int64)
    bins = len(counts)
    lay = _kl_layout(bins, levels)
    rows = len(lay["start"])
    cum = np.concatenate([[0], np.cumsum(counts)])
    nzcum = np.concatenate([[0], np.cumsum(counts != 0)])
    start, end, merged = lay["start"], lay["end"], lay["merged"]

    p = counts[lay["pos"]].copy()
    p[lay["first"]] += cum[start]
    p[lay["last"]] += cum[-1] - cum[end]

    k = np.arange(levels)
    lo = start[:, None] + k[None, :] * merged[:, None]
    hi = lo + merged[:, None]
    quant = cum[hi] - cum[lo]
    quant[:, -1] += cum[end] - cum[hi[:, -1]]
    norm = nzcum[hi] - nzcum[lo]
    # p's first and last bins carry the outliers: their non-zero flags can differ from counts'
    norm[:, 0] += (p[lay["first"]] != 0).astype(np.int64) - (counts[start] != 0)
    exact = lay["exact"]  # the window's last bin lies in the last quantized bin
    norm[exact, -1] += ((p[lay["last"]] != 0).astype(np.int64) - (counts[end - 1] != 0))[exact]
    per_bin = np.zeros((rows, levels + 1), np.int64)  # column `levels`: the left-over bins
    with np.errstate(divide="ignore", invalid="ignore"):
        per_bin[:, :levels] = np.where(norm != 0, quant / np.where(norm != 0, norm, 1), 0)
    q = per_bin.reshape(-1)[lay["q_at"]]
    return _smoothed_kl(p, q, lay["row"], lay["offsets"], lay["length"])


def _smoothed_kl(p: np.ndarray, q: np.ndarray, row: np.ndarray, offsets: np.ndarray, length: np.ndarray,
                 eps: float = 1e-4) -> np.ndarray:
    """Per row: KL(smooth(p) || smooth(q)), ``inf`` where either is all zeros (ORT: ``None``).

    Smoothing moves eps onto each zero bin and takes as much off the non-zero ones, so a row's
    total is unchanged: KL = sum(ps * (log ps - log qs)) / P + log(Q / P).
    """
    def smooth(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nonzero = d != 0
        nz = np.add.reduceat(nonzero.astype(np.int64), offsets)
        eps1 = eps * (length - nz) / np.maximum(nz, 1)
        total = np.add.reduceat(d, offsets).astype(np.float64)
        return np.where(nonzero, d - eps1[row], eps), nz, total

    ps, pnz, total_p = smooth(p)
    qs, qnz, total_q = smooth(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.add.reduceat(ps * np.log(ps / qs), offsets) / total_p + np.log(total_q / total_p)
    kl[(pnz == 0) | (qnz == 0)] = np.inf
    return kl


def entropy_threshold(h: Histogram, levels: int = QUANTIZED_BINS) -> tuple[np.float32, np.float32]:
    """The window with the least KL (first on ties, as ``np.argmin``), clipped to [min, max]."""
    lay = _kl_layout(len(h.counts), levels)
    best = int(np.argmin(entropy_kl(h.counts, levels)))
    low, high = h.edges[lay["start"][best]], h.edges[lay["end"][best]]
    return max(low, h.low), min(high, h.high)


def search(h: Histogram, method: str, percentile: float = 99.999) -> tuple[np.float32, np.float32]:
    return entropy_threshold(h) if method == "entropy" else percentile_threshold(h, percentile)


# ---------------------------------------------------------------- ranges as ORT's TensorsData

def collect_ranges(model: str | Path, images: Images, indices: np.ndarray, method: str,
                   percentile: float = 99.999, chunk_size: int = 32, work_dir: str | Path = ".",
                   num_bins: int | None = None, minmax: dict | None = None):
    """ORT ``TensorsData`` of ``method`` over ``indices``: the same for any ``chunk_size``.

    ``minmax``: the ``minmax_pass`` result when already computed (the histogram methods need it).
    """
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    if method not in ("minmax", *HISTOGRAM_METHODS):
        raise CalibrationError(f"unknown range method {method!r}; use minmax, percentile or entropy")
    if len(indices) == 0:
        raise CalibrationError("no calibration images; raise calibrate.num_images")
    indices = np.asarray(indices)
    if minmax is None:
        minmax = minmax_pass(model, images, indices, chunk_size, work_dir)
    if method == "minmax":
        return TensorsData(CalibrationMethod.MinMax,
                           {t: TensorData(lowest=lo, highest=hi) for t, (lo, hi) in minmax.items()})
    hists = histogram_pass(model, images, indices, chunk_size, work_dir, minmax, num_bins or DEFAULT_BINS,
                           absolute=method == "percentile")
    data = {}
    for t, h in hists.items():
        lo, hi = search(h, method, percentile)
        data[t] = TensorData(lowest=np.float32(lo), highest=np.float32(hi), hist=h.counts, bins=h.edges)
    return TensorsData(CalibrationMethod[{"percentile": "Percentile", "entropy": "Entropy"}[method]], data)
