"""Candidates and their sessions: the one place that turns a model artifact into something that runs.

A *candidate* is what a user could ship: ``(name, runtime, precision, artifact)``, e.g.
``("fp32", "onnxruntime", "fp32", model.onnx)``, ``("int8_minmax", "onnxruntime", "int8", ...)``
or ``("torch", "torch", "fp32", None)`` (eager PyTorch, the baseline a user would otherwise
deploy). ``candidate.session(threads)`` returns a :class:`Session`: ``session(x) -> logits`` on a
float32 NCHW batch. Export parity (01), the calibration hold-out (02), the benchmark (03) and the
evaluation (04) all get their sessions here; no other module builds an ONNX Runtime session or
sets torch's inference threads.

Runtimes are a table (``RUNTIMES``: runtime name -> session builder); adding one is one builder
and one row (docs/ARCHITECTURE.md, "add a runtime").
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

# ORT's WeightBiasQuantization re-quantizes, at session load, an fp32 Conv that sits between
# DequantizeLinear and QuantizeLinear: the nodes a variant keeps in fp32 would quietly run int8.
# ORT accepts unknown names here silently; tests/test_runtimes.py checks the guard still bites.
KEEP_FP32_NODES = ["WeightBiasQuantization"]

PRECISIONS = ("fp32", "bf16", "int8")


@dataclass
class Session:
    """One loaded model: ``session(x)`` runs a batch and returns its logits (numpy, float32)."""

    run: Callable[[np.ndarray], np.ndarray]
    runtime: str
    raw: Any = None
    """The runtime's own object (ORT ``InferenceSession``, torch module) for what only it can do."""
    set_threads: Callable[[int], None] | None = None
    """torch: the intra-op thread count is process-wide, so a caller sets it once for all sessions."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)

    def end_profiling(self) -> str:
        """ORT only: stop the profiler and return the JSON trace's path."""
        return self.raw.end_profiling()


@dataclass(frozen=True)
class Candidate:
    """A deployable model: which runtime runs which artifact at which precision."""

    name: str
    runtime: str
    precision: str
    artifact: Path | None = None
    module: Any = field(default=None, compare=False, repr=False)
    """torch: the ``nn.Module`` itself (eager candidates have no file)."""
    options: tuple = ()
    """Runtime-specific settings as ``(key, value)`` pairs, recorded with the candidate."""

    def session(self, threads: int = 0, *, spin: bool = True, profile_prefix: str | None = None) -> Session:
        """A session on ``threads`` intra-op threads (0: all cores). ``spin`` False keeps idle
        workers from stealing the cores of whatever runs next (benchmarks); ``profile_prefix``
        turns on the runtime's profiler where it has one."""
        try:
            build = RUNTIMES[self.runtime]
        except KeyError:
            raise ValueError(f"unknown runtime {self.runtime!r}; known: {', '.join(RUNTIMES)}") from None
        return build(self, threads, spin, profile_prefix)

    def facts(self) -> dict:
        """What a report says about the candidate (JSON-ready; the file by name only: run folders move)."""
        size = self.artifact.stat().st_size if self.artifact and Path(self.artifact).exists() else None
        return {"name": self.name, "runtime": self.runtime, "precision": self.precision,
                "artifact": Path(self.artifact).name if self.artifact else None,
                "size_bytes": size, **dict(self.options)}


# ---------------------------------------------------------------- ONNX Runtime

def ort_session(path: str | Path, threads: int = 0, spin: bool = True, profile_prefix: str | None = None):
    """An ONNX Runtime ``InferenceSession`` on the CPU; nodes a quantized model keeps in fp32
    stay fp32 (``KEEP_FP32_NODES``). Prefer ``Candidate.session``; this is for code that needs
    ORT's own object (input names, profiling)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if not spin:
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=KEEP_FP32_NODES)


def _ort(candidate: Candidate, threads: int, spin: bool, profile_prefix: str | None) -> Session:
    sess = ort_session(candidate.artifact, threads, spin, profile_prefix)
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return Session(run, "onnxruntime", raw=sess)


_ONNX_INT_TYPES = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16"}


def quant_types(path: str | Path) -> dict:
    """The activation and weight integer types of a QDQ/QOperator ONNX graph (most common
    zero-point type of each), ``None`` for a float graph."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    init_types = {i.name: i.data_type for i in graph.initializer}
    act: Counter = Counter()
    weight: Counter = Counter()
    for node in graph.node:
        ins = list(node.input)
        if node.op_type == "QuantizeLinear" and len(ins) > 2:
            act[_ONNX_INT_TYPES.get(init_types.get(ins[2], 2), "?")] += 1
        elif node.op_type == "DequantizeLinear" and ins and ins[0] in init_types:
            if init_types[ins[0]] in (2, 3):  # int32 biases are not weights
                weight[_ONNX_INT_TYPES[init_types[ins[0]]]] += 1
        elif node.op_type in ("QLinearConv", "QLinearMatMul") and len(ins) > 5:
            act[_ONNX_INT_TYPES.get(init_types.get(ins[2], 2), "?")] += 1
            weight[_ONNX_INT_TYPES.get(init_types.get(ins[5], 3), "?")] += 1
    return {
        "activation_type": act.most_common(1)[0][0] if act else None,
        "weight_type": weight.most_common(1)[0][0] if weight else None,
    }


def onnx_candidate(name: str, path: str | Path) -> Candidate:
    """ONNX Runtime running ``path``; the precision is read from the graph (int8 if it has QDQ nodes)."""
    types = quant_types(path)
    precision = "int8" if types["activation_type"] or types["weight_type"] else "fp32"
    return Candidate(name, "onnxruntime", precision, Path(path),
                     options=tuple((k, v) for k, v in types.items() if v))


# ---------------------------------------------------------------- torch eager

def _torch(candidate: Candidate, threads: int, spin: bool, profile_prefix: str | None) -> Session:
    import torch

    model = candidate.module.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    if threads:
        set_torch_threads(threads)
    return Session(run, "torch", raw=model, set_threads=set_torch_threads)


def torch_candidate(module: Any, name: str = "torch") -> Candidate:
    """Eager PyTorch in eval mode under ``inference_mode``: the baseline a user would otherwise deploy."""
    return Candidate(name, "torch", "fp32", None, module=module)


def set_torch_threads(threads: int) -> None:
    """torch's intra-op threads for inference (process-wide; 0: all cores)."""
    import os

    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run a block on ``threads`` torch threads and restore the count after, errors included."""
    import torch

    before = torch.get_num_threads()
    set_torch_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


RUNTIMES: dict[str, Callable[[Candidate, int, bool, str | None], Session]] = {
    "onnxruntime": _ort,
    "torch": _torch,
}


# ---------------------------------------------------------------- a run's candidates

def run_candidates(run: Any, torch_module: Any = None) -> list[Candidate]:
    """The run's candidates in report order: ORT fp32, each int8 variant, then torch eager
    when a module is given. ``run`` is a ``NotebookRun``."""
    out = [onnx_candidate(name, path) for name, path in run.onnx_models().items()]
    if torch_module is not None:
        out.append(torch_candidate(torch_module))
    return out
