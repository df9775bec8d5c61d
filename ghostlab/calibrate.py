"""Static int8 quantization with ONNX Runtime: ranges, variants and what each costs against fp32.

The steps, in the order notebook 02 runs them (``run(run)`` prepares, the ``Calibration`` it
returns does the rest):

1. ``quant_pre_process`` the fp32 model (ORT's shape inference and graph optimisation).
2. Draw the class-balanced calibration images once, split them into a range set and a hold-out
   slice, and record both in ``calibration_images.json`` (``calibrate_images``).
3. Per range method, activation ranges over the range set (``calibrate_ranges``): exact min/max,
   then for percentile and entropy fixed-range histograms accumulated chunk by chunk and one
   threshold search, so ranges do not depend on ``calibrate.chunk_size`` (which bounds memory
   only). Saved in ORT's calibration-cache format.
4. Per variant, dispatched through ``METHODS`` (method -> builder): ``quantize_static`` in QDQ
   format from that cache; top-1 agreement and mean KL against fp32 on the hold-out; per-tensor
   SQNR (``calibrate_error``), each tensor tagged with its GhostNet role; one
   ``calibration_<variant>.json`` each, written once.
5. ``auto`` (``calibrate_auto``): node sensitivity and the mixed-precision search on top of a base
   variant; when it keeps no node in fp32 it is recorded as an alias of the base, not a new file.
"""

from __future__ import annotations

import dataclasses
import difflib
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import calibrate_images
from .calibrate_auto import MixedPrecision, alias_note
from .calibrate_error import (ActivationCapture, GraphIndex, finite_or_none, sqnr_summary, tensor_errors,
                              worst_tensors)
from .calibrate_ranges import DEFAULT_BINS, HISTOGRAM_METHODS, Images, collect_ranges, minmax_pass, quiet
from .config import CalibrateParams, VariantParams
from .errors import CalibrationError
from .evaluate import kl_divergence
from .runtimes import s8s8_warning

QUANT_TYPES = {"uint8": "QUInt8", "int8": "QInt8"}  # params names -> onnxruntime QuantType members
WORK_DIR = "calibrate"  # under artifacts/: the preprocessed model and the range caches


@dataclass(frozen=True)
class Method:
    """How a variant of one ``VariantParams.method`` is built."""

    build: Callable[["Calibration", VariantParams], "VariantResult"]
    derived: bool = False
    """Starts from another variant's result (built after the others; its type settings are the base's)."""
    ort_name: str = ""
    """ORT's ``CalibrationMethod`` member the ranges are saved under."""


def _plain(cal: "Calibration", variant: VariantParams) -> "VariantResult":
    return cal.build(variant)


def _auto(cal: "Calibration", variant: VariantParams) -> "VariantResult":
    return cal.mixed.build(variant)


METHODS: dict[str, Method] = {
    "minmax": Method(_plain, ort_name="MinMax"),
    "percentile": Method(_plain, ort_name="Percentile"),
    "entropy": Method(_plain, ort_name="Entropy"),
    "auto": Method(_auto, derived=True),
}


class ArrayImages:
    """Images already in memory (N, 3, H, W float32), for scripts and tests."""

    def __init__(self, x: np.ndarray):
        self.x = np.asarray(x, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def normalized(self, indices: np.ndarray) -> np.ndarray:
        return self.x[np.asarray(indices)]


def logits(sess: Callable[[np.ndarray], np.ndarray], images: Images, indices: np.ndarray,
           batch_size: int = 64) -> np.ndarray:
    """Logits for ``indices`` (float32, one row per image) from a ``runtimes.Session``."""
    return np.concatenate([sess(images.normalized(indices[i:i + batch_size]))
                           for i in range(0, len(indices), batch_size)])


def session(path: str | Path, threads: int = 0):
    """ONNX Runtime on ``path`` (``threads`` 0: all cores), from ``runtimes``."""
    from .runtimes import onnx_candidate

    return onnx_candidate(Path(path).stem, path).session(threads)


def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    """Top-1 agreement and mean KL(reference || other) of the softmax, over rows."""
    return {"top1_agreement": float((reference.argmax(1) == other.argmax(1)).mean()),
            "mean_kl": float(kl_divergence(reference, other).mean())}


# ---------------------------------------------------------------- ORT steps

def preprocess_model(fp32: str | Path, out: str | Path) -> Path:
    """ORT's ``quant_pre_process``: symbolic shape inference + optimisation, required before quantization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet():
            quant_pre_process(str(fp32), str(out))
    except Exception as err:  # ORT raises plain Exceptions with long messages
        raise CalibrationError(f"ONNX Runtime's quant_pre_process failed on {fp32}: "
                               f"{str(err).splitlines()[0][:200]}; re-export with export.opset=17") from None
    return out


def save_ranges(ranges, path: str | Path) -> Path:
    """ORT's calibration-cache file, which ``quantize_static`` reads back instead of calibrating again."""
    from onnxruntime.quantization.calibrate import save_tensors_data

    path = Path(path)
    save_tensors_data(ranges, path)
    return path


def ranges_table(ranges) -> dict[str, list[float]]:
    """{tensor: [low, high]} from ORT's ``TensorsData``."""
    out = {}
    for name, data in ranges.items():
        low, high = data.range_value
        out[name] = [float(np.asarray(low).min()), float(np.asarray(high).max())]
    return dict(sorted(out.items()))


def quantize(prep_model: str | Path, out: str | Path, ranges_cache: str | Path, method: str,
             variant: VariantParams, nodes_to_exclude: Sequence[str] = (),
             nodes_to_quantize: Sequence[str] = ()) -> Path:
    """ORT ``quantize_static`` in QDQ format with the ranges in ``ranges_cache``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out = Path(out)
    try:
        with quiet():
            quantize_static(
                str(prep_model), str(out), None,
                quant_format=QuantFormat.QDQ,
                per_channel=variant.per_channel,
                reduce_range=variant.reduce_range,
                activation_type=QuantType[QUANT_TYPES[variant.activation_type]],
                weight_type=QuantType[QUANT_TYPES[variant.weight_type]],
                nodes_to_exclude=list(nodes_to_exclude),
                nodes_to_quantize=list(nodes_to_quantize),
                calibrate_method=CalibrationMethod[METHODS[method].ort_name],
                calibration_cache_path=str(ranges_cache),
            )
    except (ValueError, RuntimeError, KeyError) as err:
        raise CalibrationError(f"ONNX Runtime could not quantize variant {variant.name!r}: "
                               f"{str(err).splitlines()[0][:200]}") from None
    return out


# ---------------------------------------------------------------- warnings the user can act on

def variant_warnings(variants: Sequence[VariantParams], cpu: dict, machine: str | None = None) -> list[str]:
    """Type choices that are slow or can saturate on this CPU (derived variants take their base's types)."""
    machine = (machine or platform.machine()).lower()
    x86 = machine in ("x86_64", "amd64", "i386", "i686")
    out = []
    for v in variants:
        if METHODS[v.method].derived:
            continue
        if x86 and v.activation_type == "int8" and v.weight_type == "int8":
            out.append(s8s8_warning(f"variant {v.name}"))
        if x86 and v.activation_type == "uint8" and v.weight_type == "int8" and not v.reduce_range \
                and not cpu.get("vnni"):
            out.append(f"variant {v.name}: this CPU has no VNNI, where U8S8 int8 kernels can saturate their "
                       f"16-bit intermediate sums and lose accuracy; set reduce_range: true for this variant")
    return out


def data_warnings(num_calibration: int, num_classes: int) -> list[str]:
    if num_calibration < num_classes:
        return [f"only {num_calibration} calibration images for {num_classes} classes: some classes are never "
                f"seen; raise calibrate.num_images to at least {num_classes} (a few per class is better)"]
    return []


# ---------------------------------------------------------------- one variant's result

@dataclass
class VariantResult:
    """One int8 model and what we know about it."""

    name: str
    method: str
    settings: dict
    path: Path
    size_bytes: int
    nodes_to_exclude: list[str]
    top1_agreement: float
    mean_kl: float
    tensors: list[dict]
    ranges: dict[str, list[float]]
    seconds: float
    ranges_method: str = ""
    auto: dict | None = None
    alias_of: str | None = None
    """The variant whose file this one is, byte for byte (an ``auto`` that kept no node in fp32)."""

    @property
    def summary(self) -> dict:
        return sqnr_summary(self.tensors)

    def summary_row(self) -> dict:
        s = self.summary
        method = f"{self.method} (= {self.alias_of})" if self.alias_of else self.method
        return {"variant": self.name, "method": method, "size_mb": self.size_bytes / 1e6,
                "median_sqnr_db": s["median_sqnr_db"], "worst_sqnr_db": s["worst_sqnr_db"],
                "output_sqnr_db": s["output_sqnr_db"], "top1_agreement": self.top1_agreement,
                "mean_kl": self.mean_kl, "fp32_nodes": len(self.nodes_to_exclude)}

    def to_json(self, calibration: dict) -> dict:
        return {"variant": self.name, "method": self.method, "settings": self.settings,
                "model": self.path.name, "alias_of": self.alias_of, "note": alias_note(self),
                "size_bytes": self.size_bytes, "calibration": calibration,
                "nodes_to_exclude": self.nodes_to_exclude,
                "holdout": {"top1_agreement": self.top1_agreement, "mean_kl": self.mean_kl},
                "summary": self.summary, "ranges": self.ranges,
                "sqnr": [{**r, "sqnr_db": finite_or_none(r["sqnr_db"]),
                          "local_sqnr_db": finite_or_none(r["local_sqnr_db"])} for r in self.tensors],
                "auto": self.auto, "seconds": self.seconds}


# ---------------------------------------------------------------- the calibration run

@dataclass
class Calibration:
    """The state one calibration report works on (``run(run)`` builds it)."""

    params: CalibrateParams
    fp32_model: Path
    prep_model: Path
    artifacts: Path
    images: Any
    calibration_indices: np.ndarray
    holdout_indices: np.ndarray
    num_classes: int
    source: str = ""
    input_size: int = 224
    results: dict[str, VariantResult] = field(default_factory=dict)
    _ranges: dict[tuple, tuple[Path, Any]] = field(default_factory=dict)
    _minmax: dict | None = None
    _holdout_logits: np.ndarray | None = None
    _capture: ActivationCapture | None = None
    _graph: GraphIndex | None = None

    def __post_init__(self) -> None:
        self.mixed = MixedPrecision(self)

    @property
    def work_dir(self) -> Path:
        return self.artifacts / WORK_DIR

    @property
    def graph(self) -> GraphIndex:
        if self._graph is None:
            self._graph = GraphIndex.of(self.prep_model)
        return self._graph

    def plain_variants(self) -> list[VariantParams]:
        return [v for v in self.params.variants if not METHODS[v.method].derived]

    def derived_variants(self) -> list[VariantParams]:
        return [v for v in self.params.variants if METHODS[v.method].derived]

    def params_of(self, name: str) -> VariantParams:
        for v in self.params.variants:
            if v.name == name:
                return v
        raise CalibrationError(f"calibrate.variants: no variant named {name!r} "
                               f"(have {', '.join(v.name for v in self.params.variants)})")

    # ---- shared inputs, computed once
    def holdout_logits(self) -> np.ndarray:
        """The fp32 model's logits on the hold-out: what every variant is compared with."""
        if self._holdout_logits is None:
            self._holdout_logits = logits(session(self.prep_model), self.images, self.holdout_indices,
                                          self.params.chunk_size)
        return self._holdout_logits

    def capture(self) -> ActivationCapture:
        if self._capture is None:
            n = min(self.params.sqnr_images, len(self.holdout_indices))
            self._capture = ActivationCapture(self.prep_model, self.images, self.holdout_indices[:n],
                                              self.work_dir, self.params.chunk_size)
        return self._capture

    def ranges(self, variant: VariantParams) -> tuple[Path, Any]:
        """ORT range cache for the variant's method (computed once per method, percentile and bins;
        the min/max pass once for all methods)."""
        method = variant.method
        histogram = method in HISTOGRAM_METHODS
        bins = (variant.num_bins or DEFAULT_BINS) if histogram else None
        key = (method, variant.percentile if method == "percentile" else None, bins)
        if key not in self._ranges:
            args = (self.prep_model, self.images, self.calibration_indices)
            if self._minmax is None:
                self._minmax = minmax_pass(*args, self.params.chunk_size, self.work_dir)
            data = collect_ranges(*args, method, variant.percentile, self.params.chunk_size, self.work_dir,
                                  num_bins=bins, minmax=self._minmax)
            suffix = (f"_{variant.percentile:g}" if key[1] is not None else "") + (f"_{bins}bins" if bins else "")
            self._ranges[key] = (save_ranges(data, self.work_dir / f"ranges_{method}{suffix}.json"), data)
        return self._ranges[key]

    def quantize(self, variant: VariantParams, out: Path, nodes_to_exclude: Sequence[str] = (),
                 nodes_to_quantize: Sequence[str] = ()) -> Path:
        cache, _ = self.ranges(variant)
        return quantize(self.prep_model, out, cache, variant.method, variant, nodes_to_exclude, nodes_to_quantize)

    def evaluate(self, model: Path) -> dict:
        """Top-1 agreement and mean KL against fp32 on the hold-out."""
        return agreement(self.holdout_logits(),
                         logits(session(model), self.images, self.holdout_indices, self.params.chunk_size))

    def _check_nodes(self, names: Iterable[str], where: str) -> None:
        for name in names:
            if name not in self.graph.nodes:
                close = difflib.get_close_matches(name, list(self.graph.nodes), n=1, cutoff=0.5)
                hint = f" — did you mean {close[0]}?" if close else " (node names are listed in the SQNR table)"
                raise CalibrationError(f"{where}: no node named {name!r} in the model{hint}")

    # ---- building variants
    def build_variants(self, derived: bool = False) -> list[VariantResult]:
        """Every variant whose method is (not) ``derived``, in params order, each through ``METHODS``."""
        return [METHODS[v.method].build(self, v) for v in self.params.variants if METHODS[v.method].derived == derived]

    def build(self, variant: VariantParams, nodes_to_exclude: Sequence[str] | None = None,
              auto: dict | None = None, name: str | None = None, write: bool = True) -> VariantResult:
        """Calibrate (or reuse the method's ranges), quantize, measure; write the variant's artifacts."""
        t0 = time.perf_counter()
        name = name or variant.name
        excluded = list(variant.nodes_to_exclude if nodes_to_exclude is None else nodes_to_exclude)
        self._check_nodes(excluded, f"calibrate.variants[{name}].nodes_to_exclude")
        _, data = self.ranges(variant)
        path = self.quantize(variant, self.artifacts / f"int8_{name}.onnx", nodes_to_exclude=excluded)
        scores = self.evaluate(path)
        tensors = (tensor_errors(self.prep_model, path, self.capture(), self.graph, data.keys(), excluded)
                   if self.params.sqnr else [])
        settings = dataclasses.asdict(variant)
        if auto is not None:
            settings = {**settings, "name": name, "method": "auto", "base": variant.name}
        result = VariantResult(name=name, method="auto" if auto is not None else variant.method,
                               settings=settings, path=path, size_bytes=path.stat().st_size,
                               nodes_to_exclude=excluded, top1_agreement=scores["top1_agreement"],
                               mean_kl=scores["mean_kl"], tensors=tensors, ranges=ranges_table(data),
                               seconds=time.perf_counter() - t0, ranges_method=variant.method, auto=auto)
        self.results[name] = result
        if write:
            self.write(result)
        return result

    def alias(self, base: VariantResult, name: str, auto: dict) -> VariantResult:
        """``name`` is ``base``'s model byte for byte: recorded as such, no second file (03 and 04
        then time and evaluate it once)."""
        (self.artifacts / f"int8_{name}.onnx").unlink(missing_ok=True)  # from an earlier run
        result = dataclasses.replace(base, name=name, method="auto", auto=auto, alias_of=base.name, seconds=0.0,
                                     settings={**base.settings, "name": name, "method": "auto", "base": base.name})
        self.results[name] = result
        return result

    def write(self, result: VariantResult) -> Path:
        from .jsonio import write_json

        calibration = {"images": len(self.calibration_indices), "holdout_images": len(self.holdout_indices),
                       "sqnr_images": min(self.params.sqnr_images, len(self.holdout_indices)),
                       "chunk_size": self.params.chunk_size, "source": self.source,
                       "ranges_method": result.ranges_method, "image_list": calibrate_images.FILE}
        return write_json(self.artifacts / f"calibration_{result.name}.json", result.to_json(calibration))


# ---------------------------------------------------------------- what the report shows

def setup_rows(cal: Calibration) -> list[dict]:
    p = cal.params
    return [
        {"item": "calibration images (ranges)", "value": len(cal.calibration_indices)},
        {"item": "hold-out images (agreement, sensitivity)", "value": len(cal.holdout_indices)},
        {"item": "images for SQNR", "value": min(p.sqnr_images, len(cal.holdout_indices))},
        {"item": "classes", "value": cal.num_classes},
        {"item": "source", "value": cal.source},
        {"item": "chunk size (images per pass through the model; memory only, not the ranges)",
         "value": p.chunk_size},
        {"item": "fp32 model", "value": cal.fp32_model.name},
    ]


def warnings(cal: Calibration, cpu: dict | None = None) -> list[str]:
    from .system import cpu_info

    return (data_warnings(len(cal.calibration_indices), cal.num_classes)
            + variant_warnings(cal.params.variants, cpu or cpu_info()))


def summary_rows(cal: Calibration) -> list[dict]:
    """One row per built variant: size, SQNR, hold-out agreement (the index's table)."""
    return [r.summary_row() for r in cal.results.values()]


def tensor_tables(cal: Calibration) -> dict[str, list[dict]]:
    """{variant: per-tensor rows}, for ``plots.sqnr_by_depth`` (an alias is its base: not drawn twice)."""
    return {name: r.tensors for name, r in cal.results.items() if r.tensors and not r.alias_of}


def worst_tables(cal: Calibration, n: int = 10) -> dict[str, list[dict]]:
    """{variant: its ``n`` worst tensors by local SQNR}."""
    return {name: worst_tensors(r.tensors, n) for name, r in cal.results.items() if not r.alias_of}


def headline(cal: Calibration) -> dict:
    """A few values for the index page."""
    rows = summary_rows(cal)
    best = max(rows, key=lambda r: (r["top1_agreement"], -r["mean_kl"]), default=None)
    out = {"calibration_images": len(cal.calibration_indices), "holdout_images": len(cal.holdout_indices)}
    if best:
        out["best_variant"] = best["variant"]
        out["best_top1_agreement"] = best["top1_agreement"]
    return {**out, **cal.mixed.headline()}


# ---------------------------------------------------------------- from a run folder

def split_holdout(labels: np.ndarray, holdout: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (range set, hold-out) into a calibration set: a class-balanced hold-out of ``holdout``.

    Keeps at least half of the images for the ranges when the set is small.
    """
    n = len(labels)
    if n < 2:
        raise CalibrationError(f"only {n} calibration image(s); raise calibrate.num_images (at least 2)")
    holdout = max(1, min(holdout, n // 2))
    rng = np.random.default_rng(seed)
    # round-robin over classes in a seeded order: the hold-out takes the first `holdout` picks
    by_class: dict[int, list[int]] = {}
    for pos in rng.permutation(n):
        by_class.setdefault(int(labels[pos]), []).append(int(pos))
    picks, queues = [], list(by_class.values())
    while len(picks) < holdout:
        for q in queues:
            if q and len(picks) < holdout:
                picks.append(q.pop(0))
    held = np.array(sorted(picks), dtype=np.int64)
    return np.setdiff1d(np.arange(n), held), held


def run(run) -> Calibration:
    """Notebook 02's entry: preprocess the run's ``model.onnx``, draw the calibration images once
    (recorded in ``calibration_images.json``) and split off the hold-out."""
    from . import data

    params = run.params
    fp32 = run.require("model.onnx", "01_export")
    prep = preprocess_model(fp32, run.artifacts / WORK_DIR / "model_prep.onnx")
    images, indices = data.calibration_set(params, data.preprocess_for(params))
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(images.labels)[indices]
    rest, held = split_holdout(labels, params.calibrate.holdout_images, params.calibrate.seed)
    num_classes = params.model.num_classes or int(labels.max()) + 1
    source = str(getattr(images, "source", None) or (params.data.calibration_root or params.data.root or ""))
    calibrate_images.write(run.artifact(calibrate_images.FILE), images, indices[rest], indices[held], source,
                           getattr(images, "split", "eval"), params.calibrate.seed)
    return Calibration(params=params.calibrate, fp32_model=fp32, prep_model=prep, artifacts=run.artifacts,
                       images=images, calibration_indices=indices[rest], holdout_indices=indices[held],
                       num_classes=num_classes, source=source, input_size=params.model.input_size)
