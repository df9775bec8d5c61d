"""Static int8 quantization with ONNX Runtime: variants, per-tensor SQNR, sensitivity, mixed precision.

Everything numeric here is ONNX Runtime's own code, driven in a particular order:

1. ``quant_pre_process`` the fp32 model (ORT's shape inference and graph optimisation).
2. Split the class-balanced calibration images into a range set and a hold-out slice.
3. Per calibration method, ORT's calibrator (``create_calibrator``) fed one chunk of
   ``calibrate.chunk_size`` images per ``collect_data`` call: histogram methods update their
   histograms chunk by chunk, so memory is bounded by one chunk's activations instead of
   every image's (ORT's default when one reader yields the whole set). The ranges are saved
   in ORT's calibration-cache format.
4. Per variant, ``quantize_static`` in QDQ format from that cache; top-1 agreement and mean KL
   against fp32 on the hold-out; per-tensor SQNR with ``qdq_loss_debug``, each tensor tagged
   with its GhostNet role.
5. Sensitivity: each candidate node (suggested by the base variant's SQNR) quantized
   alone (``nodes_to_quantize``), ranked by the mean KL it causes on the hold-out.
6. ``auto``: the base variant with ranked nodes kept in fp32, added while they help, until it
   reaches ``calibrate.auto_target_agreement``.

The notebook calls ``prepare(run)`` and then the steps of the returned ``Calibration``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from .config import CalibrateParams, VariantParams
from .errors import CalibrationError
from .ghostnet import ghostnet_role

# params names -> onnxruntime.quantization enum member names
METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
QUANT_TYPES = {"uint8": "QUInt8", "int8": "QInt8"}
WORK_DIR = "calibrate"  # under artifacts/: the preprocessed model and ORT's range caches
# Ops whose output carries their input's values (or a subset, or the ReLU of them): an fp32 tensor
# stays fp32 only if the tensors these connect it to are fp32 too.
PASS_THROUGH_OPS = {"Relu", "Clip", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity",
                    "MaxPool"}

# ---------------------------------------------------------------- images in, batches out

class Images(Protocol):
    """What calibration reads images from: ``data.CachedImages`` or anything with this method."""

    def normalized(self, indices: np.ndarray) -> np.ndarray:  # float32 NCHW
        ...


class ArrayImages:
    """Images already in memory (N, 3, H, W float32), for scripts and tests."""

    def __init__(self, x: np.ndarray):
        self.x = np.asarray(x, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def normalized(self, indices: np.ndarray) -> np.ndarray:
        return self.x[np.asarray(indices)]


def _reader(images: Images, indices: np.ndarray, input_name: str, batch_size: int):
    """An ORT ``CalibrationDataReader`` over ``indices``, ``batch_size`` images per ``get_next``."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.starts = list(range(0, len(indices), batch_size))
            self.pos = 0

        def get_next(self) -> dict | None:
            if self.pos >= len(self.starts):
                return None
            start = self.starts[self.pos]
            self.pos += 1
            x = images.normalized(indices[start:start + batch_size])
            return {input_name: np.ascontiguousarray(x, dtype=np.float32)}

        def __len__(self) -> int:
            return len(self.starts)

    return _Reader()


@contextlib.contextmanager
def _quiet():
    """ORT's quantization tools print progress and log warnings on the root logger: hide both."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def session(path: str | Path, threads: int = 0):
    """ONNX Runtime on ``path`` (``threads`` 0: all cores), from ``runtimes``."""
    from .runtimes import onnx_candidate

    return onnx_candidate(Path(path).stem, path).session(threads)


def predict(sess, images: Images, indices: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits for ``indices`` (float32, one row per image) from a ``runtimes.Session``."""
    out = [sess(images.normalized(indices[i:i + batch_size])) for i in range(0, len(indices), batch_size)]
    return np.concatenate(out)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def agreement(reference: np.ndarray, logits: np.ndarray) -> dict:
    """Top-1 agreement and mean KL(reference || logits) of the softmax, over rows."""
    ref, test = _log_softmax(reference), _log_softmax(logits)
    kl = (np.exp(ref) * (ref - test)).sum(axis=1)
    return {"top1_agreement": float((reference.argmax(1) == logits.argmax(1)).mean()),
            "mean_kl": float(max(kl.mean(), 0.0))}


# ---------------------------------------------------------------- ORT steps

def preprocess_model(fp32: str | Path, out: str | Path) -> Path:
    """ORT's ``quant_pre_process``: symbolic shape inference + optimisation, required before quantization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _quiet():
            quant_pre_process(str(fp32), str(out))
    except Exception as err:  # ORT raises plain Exceptions with long messages
        raise CalibrationError(f"ONNX Runtime's quant_pre_process failed on {fp32}: "
                               f"{str(err).splitlines()[0][:200]}; re-export with export.opset=17") from None
    return out


def quantizable_op_types() -> list[str]:
    """The op types ``quantize_static`` quantizes by default (and so the ones worth calibrating)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


def collect_ranges(model: str | Path, images: Images, indices: np.ndarray, method: str,
                   percentile: float = 99.999, chunk_size: int = 32, work_dir: str | Path = ".",
                   chunked: bool = True, num_bins: int | None = None):
    """Activation ranges from ORT's calibrator (``TensorsData``).

    ``chunked``: one ``collect_data`` call per chunk of ``chunk_size`` images, so a histogram
    method holds one chunk's activations at a time; False: one reader over every image, ORT's
    default behaviour (kept for the memory benchmark).
    """
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}; use one of {', '.join(METHODS)}")
    if len(indices) == 0:
        raise CalibrationError("no calibration images; raise calibrate.num_images")
    work_dir = Path(work_dir)
    aug = work_dir / f".augmented_{method}.onnx"
    options: dict[str, Any] = {"percentile": percentile} if method == "percentile" else {}
    if num_bins and method in ("percentile", "entropy"):
        options["num_bins"] = num_bins
    input_name = _input_name(model)
    try:
        with _quiet():
            calibrator = create_calibrator(Path(model), quantizable_op_types(), augmented_model_path=str(aug),
                                           calibrate_method=CalibrationMethod[METHODS[method]],
                                           extra_options=options)
            if chunked:
                for start in range(0, len(indices), chunk_size):
                    chunk = indices[start:start + chunk_size]
                    calibrator.collect_data(_reader(images, chunk, input_name, len(chunk)))
            else:
                calibrator.collect_data(_reader(images, indices, input_name, chunk_size))
            ranges = calibrator.compute_data()
    finally:
        aug.unlink(missing_ok=True)
        aug.with_suffix(".onnx.data").unlink(missing_ok=True)
    return ranges


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
        with _quiet():
            quantize_static(
                str(prep_model), str(out), None,
                quant_format=QuantFormat.QDQ,
                per_channel=variant.per_channel,
                reduce_range=variant.reduce_range,
                activation_type=QuantType[QUANT_TYPES[variant.activation_type]],
                weight_type=QuantType[QUANT_TYPES[variant.weight_type]],
                nodes_to_exclude=list(nodes_to_exclude),
                nodes_to_quantize=list(nodes_to_quantize),
                calibrate_method=CalibrationMethod[METHODS[method]],
                calibration_cache_path=str(ranges_cache),
            )
    except (ValueError, RuntimeError, KeyError) as err:
        raise CalibrationError(f"ONNX Runtime could not quantize variant {variant.name!r}: "
                               f"{str(err).splitlines()[0][:200]}") from None
    return out


def _input_name(model: str | Path) -> str:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return next(i.name for i in graph.input if i.name not in inits)


# ---------------------------------------------------------------- per-tensor SQNR (qdq_loss_debug)

def sqnr_db(reference: Sequence[np.ndarray] | np.ndarray, test: Sequence[np.ndarray] | np.ndarray) -> float:
    """ORT's SQNR (dB) of ``test`` against ``reference``; ``inf`` when they are identical.

    ORT clamps a zero error to machine epsilon and so returns a large finite number for a tensor
    that was never quantized; here that case is infinite, never a number that looks measured.
    """
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    ref = [reference] if isinstance(reference, np.ndarray) else list(reference)
    tst = [test] if isinstance(test, np.ndarray) else list(test)
    if len(ref) == len(tst) and all(np.array_equal(a, b) for a, b in zip(ref, tst)):
        return math.inf
    return float(compute_signal_to_quantization_noice_ratio(ref, tst))


@dataclass
class GraphIndex:
    """Where each tensor sits in the preprocessed fp32 graph."""

    producer: dict[str, tuple[int, str, str]]  # tensor -> (depth, node name, op type)
    consumers: dict[str, list[tuple[int, str, str]]]
    nodes: dict[str, tuple[int, str, list[str], list[str]]]  # name -> (depth, op, inputs, outputs)
    initializers: set[str]

    @classmethod
    def of(cls, model: str | Path) -> "GraphIndex":
        import onnx

        graph = onnx.load(str(model)).graph
        producer, consumers, nodes = {}, {}, {}
        for g in graph.input:
            producer[g.name] = (0, g.name, "input")
        for depth, node in enumerate(graph.node, 1):
            nodes[node.name] = (depth, node.op_type, list(node.input), list(node.output))
            for t in node.output:
                producer[t] = (depth, node.name, node.op_type)
            for t in node.input:
                consumers.setdefault(t, []).append((depth, node.name, node.op_type))
        return cls(producer, consumers, nodes, {i.name for i in graph.initializer})

    def island(self, node: str) -> list[str]:
        """``node`` and every node that touches one of its activation tensors, following ops that pass
        values through (ReLU, Flatten, ...) both ways, in graph order.

        Excluding only ``node`` leaves its tensors quantized whenever a neighbour is quantized (the
        neighbour puts QuantizeLinear/DequantizeLinear on them), and ORT folds a ReLU into the
        quantization of the tensor before it; keeping ``node``'s inputs and outputs in fp32 takes
        this whole island.
        """
        nodes, seen = {node}, set()
        stack = [t for t in self.nodes[node][2] + self.nodes[node][3] if t and t not in self.initializers]
        while stack:
            tensor = stack.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            producer = self.producer.get(tensor)
            touching = [c[1] for c in self.consumers.get(tensor, [])]
            if producer and producer[2] != "input":
                touching.append(producer[1])
            for other in touching:
                nodes.add(other)
                _, op, inputs, outputs = self.nodes[other]
                if op in PASS_THROUGH_OPS:
                    stack.extend(t for t in inputs + outputs if t and t not in self.initializers)
        return sorted(nodes, key=lambda n: self.nodes[n][0])

    def weight_kind(self, tensor: str) -> str:
        """``bias`` for the third input of a Conv/Gemm, else ``weight``."""
        for _, node, _ in self.consumers.get(tensor, []):
            _, op, inputs, _ = self.nodes[node]
            if op in ("Conv", "Gemm", "ConvTranspose") and len(inputs) > 2 and inputs[2] == tensor:
                return "bias"
        return "weight"

    def place(self, tensor: str, kind: str) -> tuple[int, str, str]:
        """(depth, node, op) of an activation's producer or a weight's (or bias's) first consumer."""
        if kind != "activation":
            return (self.consumers.get(tensor) or [(0, "?", "?")])[0]
        return self.producer.get(tensor, (0, "?", "?"))


class ActivationCapture:
    """fp32 activations of a slice of images (ORT ``collect_activations``), kept to compare variants."""

    def __init__(self, prep_model: Path, images: Images, indices: np.ndarray, work_dir: Path, batch_size: int):
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                             modify_model_output_intermediate_tensors)

        self.images, self.indices, self.work_dir, self.batch_size = images, indices, work_dir, batch_size
        self.input_name = _input_name(prep_model)
        aug = work_dir / ".fp32_activations.onnx"
        try:
            with _quiet():
                modify_model_output_intermediate_tensors(str(prep_model), str(aug))
                self.float_acts = collect_activations(str(aug), self._reader())
        finally:
            aug.unlink(missing_ok=True)

    def _reader(self):
        return _reader(self.images, self.indices, self.input_name, self.batch_size)

    def int8_activations(self, int8_model: Path) -> dict:
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                             modify_model_output_intermediate_tensors)

        aug = self.work_dir / f".{int8_model.stem}_activations.onnx"
        try:
            with _quiet():
                modify_model_output_intermediate_tensors(str(int8_model), str(aug))
                return collect_activations(str(aug), self._reader())
        finally:
            aug.unlink(missing_ok=True)


def tensor_errors(prep_model: Path, int8_model: Path, capture: ActivationCapture, graph: GraphIndex,
                  calibrated: Iterable[str], excluded: Iterable[str] = ()) -> list[dict]:
    """One row per tensor: SQNR of weights and activations, GhostNet role, depth in the graph.

    Activations: ``sqnr_db`` compares the int8 model's tensor with the fp32 model's (error
    accumulated up to here), ``local_sqnr_db`` the tensor before and after its own QuantizeLinear/
    DequantizeLinear pair (error added here). Weights and biases: fp32 vs dequantized (both columns).
    A calibrated tensor the variant did not quantize has ``quantized`` False and SQNR ``inf`` (a
    node's output folded into the ReLU after it is one; ``kept_fp32`` marks the tensors of nodes
    in ``excluded``).
    """
    from onnxruntime.quantization.qdq_loss_debug import create_activation_matching, create_weight_matching

    with _quiet():
        qdq_acts = capture.int8_activations(int8_model)
        acts = create_activation_matching(qdq_acts, capture.float_acts)
        weights = create_weight_matching(str(prep_model), str(int8_model))
    del qdq_acts
    rows = []
    for name in sorted(set(calibrated) | set(acts)):
        match = acts.get(name)
        if match is None:
            rows.append(_tensor_row(name, "activation", graph, False, math.inf, math.inf))
            continue
        pre = match["pre_qdq"]
        if graph.producer.get(name, (0, "", ""))[2] == "Relu":
            # ORT folds a ReLU into the QuantizeLinear after it (uint8 zero point at 0): the tensor
            # before Q is then the pre-ReLU value, so the ReLU is applied before comparing.
            pre = [np.maximum(a, 0) for a in pre]
        local = sqnr_db(pre, match["post_qdq"])
        total = sqnr_db(match["float"], match["post_qdq"]) if "float" in match else local
        rows.append(_tensor_row(name, "activation", graph, True, total, local))
    for name, match in sorted(weights.items()):
        value = sqnr_db(match["float"], match["dequantized"])
        rows.append(_tensor_row(name, graph.weight_kind(name), graph, True, value, value))
    excluded = set(excluded)
    for r in rows:
        r["kept_fp32"] = r["node"] in excluded
    rows.sort(key=lambda r: (r["depth"], r["kind"] == "activation", r["tensor"]))
    return rows


def _tensor_row(name: str, kind: str, graph: GraphIndex, quantized: bool, total: float, local: float) -> dict:
    depth, node, op = graph.place(name, kind)
    role = "stem" if op == "input" else ghostnet_role(node)
    return {"tensor": name, "kind": kind, "node": node, "op": op, "role": role, "depth": depth,
            "quantized": quantized, "sqnr_db": total, "local_sqnr_db": local}


def sqnr_summary(rows: list[dict]) -> dict:
    """Median and worst local SQNR over quantized tensors, and the output's SQNR vs fp32."""
    local = [r["local_sqnr_db"] for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])]
    worst = min((r for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])),
                key=lambda r: r["local_sqnr_db"], default=None)
    acts = [r for r in rows if r["kind"] == "activation" and r["quantized"] and math.isfinite(r["sqnr_db"])]
    deepest = max(acts, key=lambda r: r["depth"], default=None)
    return {
        "median_sqnr_db": float(np.median(local)) if local else math.nan,
        "worst_sqnr_db": worst["local_sqnr_db"] if worst else math.nan,
        "worst_tensor": worst["tensor"] if worst else "",
        "output_sqnr_db": deepest["sqnr_db"] if deepest else math.nan,
        "tensors_quantized": sum(r["quantized"] for r in rows),
        "tensors_fp32": sum(not r["quantized"] for r in rows),
    }


def worst_tensors(rows: list[dict], n: int = 10) -> list[dict]:
    """The ``n`` quantized tensors with the lowest local SQNR, for a table."""
    ranked = sorted((r for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])),
                    key=lambda r: r["local_sqnr_db"])[:n]
    return [{"tensor": r["tensor"], "kind": r["kind"], "role": r["role"], "depth": r["depth"],
             "local SQNR (dB)": r["local_sqnr_db"], "SQNR vs fp32 (dB)": r["sqnr_db"]} for r in ranked]


# ---------------------------------------------------------------- warnings the user can act on

def variant_warnings(variants: Sequence[VariantParams], cpu: dict, machine: str | None = None) -> list[str]:
    """Type choices that are slow or can saturate on this CPU."""
    machine = (machine or platform.machine()).lower()
    x86 = machine in ("x86_64", "amd64", "i386", "i686")
    out = []
    for v in variants:
        if v.method == "auto":
            continue
        if x86 and v.activation_type == "int8" and v.weight_type == "int8":
            out.append(f"variant {v.name}: int8 activations with int8 weights (S8S8) run far slower than U8S8 "
                       f"in ONNX Runtime on x86; set activation_type: uint8")
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


# ---------------------------------------------------------------- the calibration run

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

    @property
    def summary(self) -> dict:
        return sqnr_summary(self.tensors)

    def summary_row(self) -> dict:
        s = self.summary
        return {"variant": self.name, "method": self.method, "size_mb": self.size_bytes / 1e6,
                "median_sqnr_db": s["median_sqnr_db"], "worst_sqnr_db": s["worst_sqnr_db"],
                "output_sqnr_db": s["output_sqnr_db"], "top1_agreement": self.top1_agreement,
                "mean_kl": self.mean_kl, "fp32_nodes": len(self.nodes_to_exclude)}

    def to_json(self, calibration: dict) -> dict:
        return {"variant": self.name, "method": self.method, "settings": self.settings,
                "model": self.path.name, "size_bytes": self.size_bytes, "calibration": calibration,
                "nodes_to_exclude": self.nodes_to_exclude,
                "holdout": {"top1_agreement": self.top1_agreement, "mean_kl": self.mean_kl},
                "summary": self.summary, "ranges": self.ranges,
                "sqnr": [{**r, "sqnr_db": _finite_or_none(r["sqnr_db"]),
                          "local_sqnr_db": _finite_or_none(r["local_sqnr_db"])} for r in self.tensors],
                "auto": self.auto, "seconds": self.seconds}


def _finite_or_none(x: float) -> float | None:
    """JSON has no infinity: an unquantized tensor's SQNR is written as null (with quantized: false)."""
    return x if math.isfinite(x) else None


@dataclass
class Calibration:
    """The state one calibration report works on (``prepare(run)`` builds it)."""

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
    sensitivities: dict[str, list[dict]] = field(default_factory=dict)
    _ranges: dict[tuple, tuple[Path, Any]] = field(default_factory=dict)
    _holdout_logits: np.ndarray | None = None
    _capture: ActivationCapture | None = None
    _graph: GraphIndex | None = None

    @property
    def work_dir(self) -> Path:
        return self.artifacts / WORK_DIR

    @property
    def graph(self) -> GraphIndex:
        if self._graph is None:
            self._graph = GraphIndex.of(self.prep_model)
        return self._graph

    # ---- what the report shows first
    def setup_rows(self) -> list[dict]:
        p = self.params
        return [
            {"item": "calibration images (ranges)", "value": len(self.calibration_indices)},
            {"item": "hold-out images (agreement, sensitivity)", "value": len(self.holdout_indices)},
            {"item": "images for SQNR", "value": min(p.sqnr_images, len(self.holdout_indices))},
            {"item": "classes", "value": self.num_classes},
            {"item": "source", "value": self.source},
            {"item": "chunk size (images per collect_data)", "value": p.chunk_size},
            {"item": "fp32 model", "value": self.fp32_model.name},
        ]

    def warnings(self, cpu: dict | None = None) -> list[str]:
        from .system import cpu_info

        return (data_warnings(len(self.calibration_indices), self.num_classes)
                + variant_warnings(self.params.variants, cpu or cpu_info()))

    # ---- shared inputs, computed once
    def holdout_logits(self) -> np.ndarray:
        if self._holdout_logits is None:
            self._holdout_logits = predict(session(self.prep_model), self.images, self.holdout_indices,
                                           self.params.chunk_size)
        return self._holdout_logits

    def capture(self) -> ActivationCapture:
        if self._capture is None:
            n = min(self.params.sqnr_images, len(self.holdout_indices))
            self._capture = ActivationCapture(self.prep_model, self.images, self.holdout_indices[:n],
                                              self.work_dir, self.params.chunk_size)
        return self._capture

    def ranges(self, variant: VariantParams) -> tuple[Path, Any]:
        """ORT range cache for the variant's method (computed once per method and percentile)."""
        histogram = variant.method in ("percentile", "entropy")
        key = (variant.method, variant.percentile if variant.method == "percentile" else None,
               variant.num_bins if histogram else None)
        if key not in self._ranges:
            data = collect_ranges(self.prep_model, self.images, self.calibration_indices, variant.method,
                                  variant.percentile, self.params.chunk_size, self.work_dir,
                                  num_bins=variant.num_bins)
            suffix = (f"_{variant.percentile:g}" if key[1] is not None else "") + \
                (f"_{variant.num_bins}bins" if key[2] else "")
            path = save_ranges(data, self.work_dir / f"ranges_{variant.method}{suffix}.json")
            self._ranges[key] = (path, data)
        return self._ranges[key]

    def evaluate(self, model: Path) -> dict:
        """Top-1 agreement and mean KL against fp32 on the hold-out."""
        logits = predict(session(model), self.images, self.holdout_indices, self.params.chunk_size)
        return agreement(self.holdout_logits(), logits)

    def _check_nodes(self, names: Iterable[str], where: str) -> None:
        import difflib

        for name in names:
            if name not in self.graph.nodes:
                close = difflib.get_close_matches(name, list(self.graph.nodes), n=1, cutoff=0.5)
                hint = f" — did you mean {close[0]}?" if close else " (node names are listed in the SQNR table)"
                raise CalibrationError(f"{where}: no node named {name!r} in the model{hint}")

    # ---- step: a plain variant
    def build(self, variant: VariantParams, nodes_to_exclude: Sequence[str] | None = None,
              auto: dict | None = None, name: str | None = None) -> VariantResult:
        """Calibrate (or reuse the method's ranges), quantize, measure; write the variant's artifacts."""
        t0 = time.perf_counter()
        name = name or variant.name
        excluded = list(variant.nodes_to_exclude if nodes_to_exclude is None else nodes_to_exclude)
        self._check_nodes(excluded, f"calibrate.variants[{name}].nodes_to_exclude")
        cache, data = self.ranges(variant)
        path = quantize(self.prep_model, self.artifacts / f"int8_{name}.onnx", cache, variant.method,
                        variant, nodes_to_exclude=excluded)
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
        self.write(result)
        return result

    def write(self, result: VariantResult) -> Path:
        from .jsonio import write_json

        calibration = {"images": len(self.calibration_indices), "holdout_images": len(self.holdout_indices),
                       "sqnr_images": min(self.params.sqnr_images, len(self.holdout_indices)),
                       "chunk_size": self.params.chunk_size, "source": self.source,
                       "ranges_method": result.ranges_method}
        return write_json(self.artifacts / f"calibration_{result.name}.json", result.to_json(calibration))

    def params_of(self, name: str) -> VariantParams:
        for v in self.params.variants:
            if v.name == name:
                return v
        raise CalibrationError(f"calibrate.variants: no variant named {name!r} "
                               f"(have {', '.join(v.name for v in self.params.variants)})")

    def build_variants(self) -> list[VariantResult]:
        """Every variant except ``auto`` ones, in params order."""
        return [self.build(v) for v in self.params.variants if v.method != "auto"]

    # ---- step: sensitivity
    def base_for(self, auto: VariantParams) -> VariantParams:
        """``auto.base`` or, when unset, the built variant with the best hold-out agreement (then lowest KL)."""
        if auto.base:
            base = self.params_of(auto.base)
            if base.method == "auto":
                raise CalibrationError(f"calibrate.variants[{auto.name}].base must name a non-auto variant")
            return base
        built = [r for r in self.results.values() if r.auto is None]
        if not built:
            plain = [v for v in self.params.variants if v.method != "auto"]
            if not plain:
                raise CalibrationError("an auto variant needs a non-auto variant to start from; add one to "
                                       "calibrate.variants")
            return plain[0]
        best = max(built, key=lambda r: (r.top1_agreement, -r.mean_kl))
        return self.params_of(best.name)

    def candidates(self, base: VariantParams) -> list[dict]:
        """Nodes worth ranking, as the base variant's SQNR suggests (up to ``sensitivity_candidates``).

        Two lists, taken in turn: nodes touching the tensors with the lowest local SQNR (noisy
        quantization right there), and nodes whose output lost the most SQNR against fp32 compared
        with their inputs (error made inside the node, e.g. an input whose range is dominated by one
        outlier channel: its own SQNR looks fine while the other channels are lost).
        """
        result = self.results.get(base.name) or self.build(base)
        local: dict[str, float] = {}
        total: dict[str, float] = {}
        for r in result.tensors:
            if not r["quantized"] or not math.isfinite(r["local_sqnr_db"]):
                continue
            if r["kind"] == "activation":
                total[r["tensor"]] = r["sqnr_db"]
            touching = [r["node"]] if r["kind"] != "activation" else \
                [r["node"]] + [c[1] for c in self.graph.consumers.get(r["tensor"], [])]
            for node in touching:
                if node in self.graph.nodes:
                    local[node] = min(local.get(node, math.inf), r["local_sqnr_db"])
        drop: dict[str, float] = {}
        for node, (_, _, inputs, outputs) in self.graph.nodes.items():
            ins = [total[t] for t in inputs if t in total and math.isfinite(total[t])]
            outs = [total[t] for t in outputs if t in total and math.isfinite(total[t])]
            if ins and outs:
                drop[node] = min(ins) - min(outs)
        by_local = [n for n, _ in sorted(local.items(), key=lambda kv: kv[1])]
        by_drop = [n for n, _ in sorted(drop.items(), key=lambda kv: -kv[1])]
        chosen: list[str] = []
        for pair in zip(by_local, by_drop + [""] * max(0, len(by_local) - len(by_drop))):
            for n in pair:
                if n and n not in chosen and len(chosen) < self.params.sensitivity_candidates:
                    chosen.append(n)
        return [{"node": n, "min_sqnr_db": _finite_or_none(local.get(n, math.inf)),
                 "sqnr_drop_db": _finite_or_none(drop.get(n, math.inf))} for n in chosen]

    def sensitivity(self, base: VariantParams) -> list[dict]:
        """Each candidate node quantized alone; ranked by mean KL on the hold-out (worst first)."""
        if base.name in self.sensitivities:
            return self.sensitivities[base.name]
        cache, _ = self.ranges(base)
        rows = []
        tmp = self.work_dir / ".one_node.onnx"
        for cand in self.candidates(base):
            node = cand["node"]
            depth, op = self.graph.nodes[node][:2]
            try:
                quantize(self.prep_model, tmp, cache, base.method, base, nodes_to_quantize=[node])
                scores = self.evaluate(tmp)
            finally:
                tmp.unlink(missing_ok=True)
            rows.append({"node": node, "op": op, "role": ghostnet_role(node), "depth": depth,
                         "min_sqnr_db": cand["min_sqnr_db"], "sqnr_drop_db": cand["sqnr_drop_db"], **scores})
        rows.sort(key=lambda r: (-r["mean_kl"], r["top1_agreement"]))
        for rank, r in enumerate(rows, 1):
            r["rank"] = rank
        self.sensitivities[base.name] = rows
        return rows

    # ---- step: auto (mixed precision)
    def build_auto(self, auto: VariantParams) -> VariantResult:
        """The base variant with a few ranked nodes kept in fp32, to reach the target agreement.

        Walks down the sensitivity ranking (at most ``auto_max_excluded`` nodes): each node is tried
        on top of those already kept and kept itself only if the hold-out improves (higher agreement,
        or the same with lower KL); it stops as soon as the target is met (``greedy_select``). Each
        kept node goes to fp32 with its island (the neighbours that would otherwise quantize its
        tensors), so what stays fp32 is the node's whole input-to-output path.
        """
        base = self.base_for(auto)
        base_result = self.results.get(base.name) or self.build(base)
        target = self.params.auto_target_agreement
        fixed = list(base.nodes_to_exclude)
        ranking = [r["node"] for r in self.sensitivity(base) if r["node"] not in fixed]
        limit = min(self.params.auto_max_excluded, len(ranking))
        cache, _ = self.ranges(base)
        tmp = self.work_dir / ".auto_try.onnx"

        def excluded(nodes: Sequence[str]) -> list[str]:
            """The islands of ``nodes`` (see ``GraphIndex.island``), after the base's own exclusions."""
            out = list(fixed)
            for node in nodes:
                out += [n for n in self.graph.island(node) if n not in out]
            return out

        steps = {(): {"top1_agreement": base_result.top1_agreement, "mean_kl": base_result.mean_kl}}

        def score(nodes: Sequence[str]) -> dict:
            key = tuple(nodes)
            if key not in steps:
                try:
                    quantize(self.prep_model, tmp, cache, base.method, base, nodes_to_exclude=excluded(nodes))
                    steps[key] = self.evaluate(tmp)
                finally:
                    tmp.unlink(missing_ok=True)
            return {**steps[key], "fp32_nodes": len(excluded(nodes))}

        picked, trials = greedy_select(ranking[:limit], score, lambda sc: sc["top1_agreement"] >= target)
        best = [t for t in trials if t["accepted"]][-1]
        reached = best["top1_agreement"] >= target
        info = {"base": base.name, "target_agreement": target, "reached": reached,
                "ranked_nodes": picked, "kept_fp32": excluded(picked),
                "max_ranked_nodes": self.params.auto_max_excluded, "steps": trials,
                "sensitivity": self.sensitivity(base)}
        return self.build(base, nodes_to_exclude=excluded(picked), auto=info, name=auto.name)

    def build_autos(self) -> list[VariantResult]:
        return [self.build_auto(v) for v in self.params.variants if v.method == "auto"]

    # ---- step: speed cost
    def speed(self, names: Sequence[str] | None = None, rounds: int | None = None) -> list[dict]:
        """A quick side-by-side latency (batch 1, one thread, interleaved rounds) of fp32 and variants.

        For the auto variants the default compares fp32, each base and the auto model.
        """
        if names is None:
            names = []
            for r in self.results.values():
                if r.auto:
                    names += [r.auto["base"], r.name]
            names = list(dict.fromkeys(names)) or list(self.results)
        models = {"fp32": self.prep_model, **{n: self.results[n].path for n in names}}
        rows = time_models(models, self.input_size, rounds or self.params.timing_rounds)
        for r in self.results.values():
            if r.auto:
                r.auto["speed"] = [row for row in rows if row["model"] in ("fp32", r.auto["base"], r.name)]
                self.write(r)
        return rows

    # ---- tables and figure inputs for the report
    def summary_rows(self) -> list[dict]:
        """One row per built variant: size, SQNR, hold-out agreement (the index's table)."""
        return [r.summary_row() for r in self.results.values()]

    def rank_nodes(self) -> tuple[str, list[dict]]:
        """(base variant, sensitivity ranking) for the first auto variant, or the best built variant."""
        autos = [v for v in self.params.variants if v.method == "auto"]
        base = self.base_for(autos[0] if autos else VariantParams(name="auto", method="auto"))
        return base.name, self.sensitivity(base)

    def sensitivity_rows(self, top: int = 15) -> list[dict]:
        _, rows = self.rank_nodes()
        return [{"rank": r["rank"], "node": r["node"], "role": r["role"], "op": r["op"], "depth": r["depth"],
                 "min SQNR (dB)": r["min_sqnr_db"], "SQNR drop (dB)": r["sqnr_drop_db"],
                 "top1 agreement": r["top1_agreement"],
                 "mean KL": r["mean_kl"]} for r in rows[:top]]

    def auto_rows(self) -> list[dict]:
        """Per auto variant: base, target, whether it was reached, and which nodes stayed fp32."""
        rows = []
        for r in self.results.values():
            if r.auto:
                rows.append({"variant": r.name, "base": r.auto["base"], "target": r.auto["target_agreement"],
                             "reached": r.auto["reached"], "top1_agreement": r.top1_agreement,
                             "mean_kl": r.mean_kl, "ranked nodes": ", ".join(r.auto["ranked_nodes"]) or "(none)",
                             "fp32_nodes": len(r.nodes_to_exclude),
                             "kept in fp32": ", ".join(r.nodes_to_exclude) or "(none)"})
        return rows

    def auto_steps(self) -> list[dict]:
        """Every node the auto search tried, whether it was kept, and the hold-out scores."""
        return [{"variant": r.name, **step} for r in self.results.values() if r.auto for step in r.auto["steps"]]

    def tensor_tables(self) -> dict[str, list[dict]]:
        """{variant: per-tensor rows}, for ``plots.sqnr_by_depth``."""
        return {name: r.tensors for name, r in self.results.items() if r.tensors}

    def worst_tables(self, n: int = 10) -> dict[str, list[dict]]:
        """{variant: its ``n`` worst tensors by local SQNR}."""
        return {name: worst_tensors(r.tensors, n) for name, r in self.results.items()}

    def headline(self) -> dict:
        """A few values for the index page."""
        rows = self.summary_rows()
        best = max(rows, key=lambda r: (r["top1_agreement"], -r["mean_kl"]), default=None)
        out = {"calibration_images": len(self.calibration_indices), "holdout_images": len(self.holdout_indices)}
        if best:
            out["best_variant"] = best["variant"]
            out["best_top1_agreement"] = best["top1_agreement"]
        for r in self.results.values():
            if r.auto:
                out[f"{r.name}_fp32_nodes"] = len(r.nodes_to_exclude)
                out[f"{r.name}_reached_target"] = r.auto["reached"]
        return out


def greedy_select(candidates: Sequence[str], score: Callable[[list[str]], dict],
                  meets: Callable[[dict], bool], cache: dict | None = None) -> tuple[list[str], list[dict]]:
    """Candidates kept, in order, and every trial: walk ``candidates``, keep one when adding it to those
    kept improves ``score`` (higher ``top1_agreement``, then lower ``mean_kl``); stop once ``meets``.

    ``score(nodes)`` returns a dict with ``top1_agreement`` and ``mean_kl``; at most
    ``len(candidates) + 1`` calls.
    """
    kept: list[str] = []
    best = score([])
    trials = [{"tried": "(base)", "accepted": True, "kept": 0, **best}]
    for node in candidates:
        if meets(best):
            break
        trial = score(kept + [node])
        better = (trial["top1_agreement"], -trial["mean_kl"]) > (best["top1_agreement"], -best["mean_kl"])
        if better:
            kept, best = kept + [node], trial
        trials.append({"tried": node, "accepted": better, "kept": len(kept), **trial})
    return kept, trials


def time_models(models: dict[str, Path], input_size: int, rounds: int = 30, threads: int = 1,
                batch: int = 1) -> list[dict]:
    """Median latency (ms) per model, measured in interleaved rounds so machine noise hits all alike."""
    x = np.random.default_rng(0).standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
    sessions = {k: session(p, threads=threads) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    for k, s in sessions.items():
        for _ in range(3):
            s.run(None, feeds[k])
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds[k])
            times[k].append(time.perf_counter() - t0)
    ref = float(np.median(times["fp32"])) if "fp32" in times else None
    return [{"model": k, "median_ms": 1e3 * float(np.median(v)),
             "vs_fp32": (float(np.median(v)) / ref) if ref else math.nan,
             "batch": batch, "threads": threads, "rounds": rounds} for k, v in times.items()]


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
    order = rng.permutation(n)
    # round-robin over classes in a seeded order: the hold-out takes the first `holdout` picks
    by_class: dict[int, list[int]] = {}
    for pos in order:
        by_class.setdefault(int(labels[pos]), []).append(int(pos))
    picks, queues = [], list(by_class.values())
    while len(picks) < holdout:
        for q in queues:
            if q and len(picks) < holdout:
                picks.append(q.pop(0))
    held = np.array(sorted(picks), dtype=np.int64)
    rest = np.setdiff1d(np.arange(n), held)
    return rest, held


def prepare(run) -> Calibration:
    """Preprocess the run's ``model.onnx`` and pick the calibration and hold-out images."""
    from . import data

    params = run.params
    fp32 = run.require("model.onnx", "01_export")
    work = run.artifacts / WORK_DIR
    prep = preprocess_model(fp32, work / "model_prep.onnx")
    preprocess = data.preprocess_for(params)
    images, indices = data.calibration_set(params, preprocess)
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(images.labels)[indices]
    rest, held = split_holdout(labels, params.calibrate.holdout_images, params.calibrate.seed)
    num_classes = params.model.num_classes or int(labels.max()) + 1
    source = getattr(images, "source", None) or (params.data.calibration_root or params.data.root or "")
    return Calibration(params=params.calibrate, fp32_model=fp32, prep_model=prep, artifacts=run.artifacts,
                       images=images, calibration_indices=indices[rest], holdout_indices=indices[held],
                       num_classes=num_classes, source=str(source), input_size=params.model.input_size)
