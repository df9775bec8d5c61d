"""Candidates and their sessions: the one place that turns a model artifact into something that runs.

A *candidate* is what a user could ship: ``(name, runtime, precision, artifact)``, e.g.
``("fp32", "onnxruntime", "fp32", model.onnx)``, ``("int8_minmax", "onnxruntime", "int8", ...)``,
``("ov_bf16", "openvino", "bf16", model.onnx)``, ``("ov_nncf", "openvino", "int8", ov_nncf.xml)``
or ``("torch", "torch", "fp32", None)`` (eager PyTorch, the baseline a user would otherwise
deploy). ``run_candidates(run)`` is the one list every step uses. ``candidate.session(threads)``
returns a :class:`Session`: ``session(x) -> logits`` on a float32 NCHW batch. Export parity (01), the calibration hold-out (02), the benchmark (03) and the
evaluation (04) all get their sessions here; no other module builds an ONNX Runtime session or
sets torch's inference threads or compiles an OpenVINO model.

OpenVINO (``openvino_candidate``): its CPU plugin infers in bf16 by default wherever the ISA has
it, so every OpenVINO candidate sets ``INFERENCE_PRECISION_HINT`` explicitly (``OV_HINTS``: f32
for fp32 and int8 models, bf16 only for a ``bf16`` candidate, made only where the CPU has
avx512_bf16 or AMX-BF16) and the session checks what the compiled model reports. Threads are
``INFERENCE_NUM_THREADS`` with one stream (``NUM_STREAMS``, its analogue of parallel instances:
the benchmark runs K single-thread sessions instead). Models compile at dynamic shapes:
``Model.reshape()`` on ORT's QDQ files crashed openvino 2026.4.1.

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


def s8s8_warning(name: str) -> str:
    """The one wording of ORT's slow x86 type pair (02 warns before calibrating, 03 when timing)."""
    return (f"{name} uses int8 activations with int8 weights (S8S8): on x86 ONNX Runtime runs this far slower "
            f"than uint8 activations (U8S8); calibrate it with activation_type: uint8")

PRECISIONS = ("fp32", "bf16", "int8")


@dataclass
class Session:
    """One loaded model: ``session(x)`` runs a batch and returns its logits (numpy, float32)."""

    run: Callable[[np.ndarray], np.ndarray]
    runtime: str
    raw: Any = None
    """The runtime's own object (ORT ``InferenceSession``, OpenVINO ``InferRequest``, torch module)."""
    set_threads: Callable[[int], None] | None = None
    """torch: the intra-op thread count is process-wide, so a caller sets it once for all sessions."""
    reported: dict = field(default_factory=dict)
    """What the runtime says it compiled (OpenVINO: inference precision, threads, streams)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)

    def end_profiling(self) -> str:
        """ORT only: stop the profiler and return the JSON trace's path."""
        return self.raw.end_profiling()

    def perf_counts(self) -> list[tuple[str, str, float]]:
        """OpenVINO only (session built with ``profile_prefix``): ``(node name, node type, ms)`` of
        every executed node of the last inference, from the CPU plugin's performance counters."""
        return [(i.node_name, i.node_type, i.real_time.total_seconds() * 1e3)
                for i in self.raw.get_profiling_info() if str(i.status).endswith("EXECUTED")]


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
    note: str = ""
    """What the artifact is, in words (e.g. "ORT's minmax QDQ file"), for labels."""

    def session(self, threads: int = 0, *, spin: bool = True, profile_prefix: str | None = None) -> Session:
        """A session on ``threads`` intra-op threads (0: all cores). ``spin`` False keeps idle
        workers from stealing the cores of whatever runs next (benchmarks); ``profile_prefix``
        turns on the runtime's profiler where it has one."""
        try:
            build = RUNTIMES[self.runtime]
        except KeyError:
            raise ValueError(f"unknown runtime {self.runtime!r}; known: {', '.join(RUNTIMES)}") from None
        return build(self, threads, spin, profile_prefix)

    @property
    def label(self) -> str:
        """The candidate in words: "OpenVINO bf16", "ONNX Runtime int8 (minmax)"."""
        return f"{RUNTIME_LABELS.get(self.runtime, self.runtime)} {self.precision}" + (
            f" ({self.note})" if self.note else "")

    def size_bytes(self) -> int | None:
        """The artifact's size on disk (an OpenVINO IR counts its .bin too); None without a file."""
        if not self.artifact or not Path(self.artifact).exists():
            return None
        path = Path(self.artifact)
        weights = path.with_suffix(".bin") if path.suffix == ".xml" else None
        return path.stat().st_size + (weights.stat().st_size if weights and weights.exists() else 0)

    def facts(self) -> dict:
        """What a report says about the candidate (JSON-ready; the file by name only: run folders move)."""
        return {"name": self.name, "runtime": self.runtime, "precision": self.precision, "label": self.label,
                "artifact": Path(self.artifact).name if self.artifact else None,
                "size_bytes": self.size_bytes(), **dict(self.options)}


RUNTIME_LABELS = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "torch": "torch eager"}


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
                     options=tuple((k, v) for k, v in types.items() if v), note=_variant_note(name))


def _variant_note(name: str) -> str:
    """"minmax" for int8_minmax / ov_int8_minmax; "" for the fp32 export."""
    for prefix in ("ov_int8_", "int8_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return ""


# ---------------------------------------------------------------- OpenVINO

OV_HINTS = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}
"""``INFERENCE_PRECISION_HINT`` per candidate precision: an int8 model's unquantized ops run f32."""
# Pinning one single-thread session per core collides when several run in parallel (the
# benchmark's K-session cells) and when other jobs share the cores; ORT does not pin either.
_OV_FIXED = {"NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False}


def has_bf16(flags: dict | None = None) -> bool:
    """Whether the CPU computes bf16 natively (avx512_bf16 or AMX-BF16). ``flags``: name -> bool as
    in ``system.cpu_info()["flags"]`` (default: this machine's)."""
    if flags is None:
        from .system import cpu_info

        flags = cpu_info()["flags"]
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def openvino_candidate(name: str, path: str | Path, precision: str | None = None, note: str = "") -> Candidate:
    """OpenVINO's CPU plugin running ``path`` (ONNX or IR ``.xml``) with an explicit precision hint.

    ``precision``: ``bf16`` for bf16 inference of a float model; None reads an ONNX graph (int8 if it
    has QDQ nodes, else fp32). The hint is recorded in ``options`` as ``inference_precision``.
    """
    path = Path(path)
    if precision is None:
        if path.suffix != ".onnx":
            raise ValueError(f"{path.name}: give the precision of an OpenVINO IR candidate")
        types = quant_types(path)
        precision = "int8" if types["activation_type"] or types["weight_type"] else "fp32"
    if precision not in OV_HINTS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(OV_HINTS)}")
    return Candidate(name, "openvino", precision, path, options=(("inference_precision", OV_HINTS[precision]),),
                     note=note or _variant_note(name))


_OV_CORE: Any = None


def _ov_core() -> Any:
    global _OV_CORE
    if _OV_CORE is None:
        import openvino as ov

        _OV_CORE = ov.Core()
    return _OV_CORE


def ov_config(candidate: Candidate, threads: int, profile: bool = False) -> dict:
    """The compile settings of an OpenVINO candidate: precision hint, threads (0: the plugin's
    default, all cores), one stream, no pinning, performance counters when profiling."""
    hint = dict(candidate.options).get("inference_precision") or OV_HINTS[candidate.precision]
    return {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": int(threads), **_OV_FIXED,
            "PERF_COUNT": bool(profile)}


def _openvino(candidate: Candidate, threads: int, spin: bool, profile_prefix: str | None) -> Session:
    config = ov_config(candidate, threads, profile_prefix is not None)
    # Dynamic shapes as exported: reshape() on ORT's QDQ files crashed openvino 2026.4.1.
    compiled = _ov_core().compile_model(str(candidate.artifact), "CPU", config)
    reported = {"inference_precision": compiled.get_property("INFERENCE_PRECISION_HINT").to_string(),
                "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
                "streams": int(compiled.get_property("NUM_STREAMS"))}
    if reported["inference_precision"] != config["INFERENCE_PRECISION_HINT"]:
        raise RuntimeError(f"{candidate.name}: OpenVINO compiled at {reported['inference_precision']}, "
                           f"asked for {config['INFERENCE_PRECISION_HINT']}")
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return request.infer([np.ascontiguousarray(x, dtype=np.float32)])[0]  # a copy: share_outputs=False

    return Session(run, "openvino", raw=request, reported=reported)


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
    "openvino": _openvino,
    "torch": _torch,
}


# ---------------------------------------------------------------- a run's candidates

NNCF_VARIANTS = {"ov_nncf": "NNCF", "ov_nncf_nodw": "NNCF, depthwise in f32"}
"""OpenVINO IR files 02 writes (``artifacts/<name>.xml``, ``calibrate_nncf``) and their notes."""


def openvino_candidates(ort: list[Candidate], ir_models: dict[str, Path] | None = None,
                        cpu_flags: dict | None = None) -> list[Candidate]:
    """OpenVINO beside ORT, on the same files at the precision ORT read from them: the fp32 export at
    f32 (and at bf16 where the CPU has it), every int8 QDQ file (f32 for what it leaves unquantized),
    then the NNCF int8 IR files. ``ort``: the ONNX Runtime candidates, ``fp32`` first."""
    out = []
    for c in ort:
        if c.name == "fp32":
            out.append(openvino_candidate("ov_fp32", c.artifact, "fp32"))
            if has_bf16(cpu_flags):
                out.append(openvino_candidate("ov_bf16", c.artifact, "bf16"))
        else:
            out.append(openvino_candidate(f"ov_{c.name}", c.artifact, c.precision,
                                          note=f"{_variant_note(c.name)}, ORT's QDQ file"))
    out += [openvino_candidate(name, path, "int8", note=NNCF_VARIANTS.get(name, "NNCF"))
            for name, path in (ir_models or {}).items()]
    return out


def nncf_models(artifacts: str | Path) -> dict[str, Path]:
    """The NNCF IR files in an artifacts folder, in ``NNCF_VARIANTS`` order."""
    return {name: Path(artifacts) / f"{name}.xml" for name in NNCF_VARIANTS
            if (Path(artifacts) / f"{name}.xml").exists()}


def run_candidates(run: Any, torch_module: Any = None, runtimes: Any = None,
                   cpu_flags: dict | None = None) -> list[Candidate]:
    """The run's candidates in report order: ORT fp32, each ORT int8 variant, the OpenVINO ones
    (``openvino_candidates``), then torch eager when a module is given. ``run`` is a ``NotebookRun``;
    ``runtimes`` keeps only those runtimes (None: all); ``cpu_flags`` stands in for this CPU's."""
    out = [onnx_candidate(name, path) for name, path in run.onnx_models().items()]
    out += openvino_candidates(out, nncf_models(run.artifacts), cpu_flags)
    if torch_module is not None:
        out.append(torch_candidate(torch_module))
    # ORT fp32 is every comparison's reference: it stays whatever ``runtimes`` says.
    return [c for c in out if runtimes is None or c.runtime in runtimes or c.name == "fp32"]
