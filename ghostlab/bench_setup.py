"""What a benchmark measures: the grid of settings (batch x threads, plus K parallel sessions) and the
models (runtimes candidates with their MACs per image), before any timing happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import RunError
from .runtimes import Candidate, onnx_candidate, set_torch_threads, torch_candidate

QUICK = {"warmup": 1, "rounds": 2, "images_per_round": 1, "max_batch_sizes": 2}


@dataclass(frozen=True)
class Cell:
    """One setting of the grid: batch size, intra-op threads per session, parallel sessions."""

    batch: int
    threads: int
    sessions: int = 1

    def label(self) -> str:
        if self.sessions > 1:
            return f"b{self.batch} · {self.sessions}×{self.threads}t"
        return f"b{self.batch} · {self.threads}t"


def _cores(count: int, cores: int) -> int:
    return cores if count == 0 else count


def effective_settings(bench: Any) -> dict:
    """The grid and round counts actually used (quick mode shrinks them)."""
    s = {
        "batch_sizes": list(bench.batch_sizes),
        "threads": list(bench.threads),
        "sessions": list(bench.sessions),
        "warmup": bench.warmup,
        "rounds": bench.rounds,
        "images_per_round": bench.images_per_round,
        "quick": bench.quick,
    }
    if bench.quick:
        s["batch_sizes"] = s["batch_sizes"][:QUICK["max_batch_sizes"]]
        s["warmup"] = min(s["warmup"], QUICK["warmup"])
        s["rounds"] = min(s["rounds"], QUICK["rounds"])
        s["images_per_round"] = min(s["images_per_round"], QUICK["images_per_round"])
    return s


def grid(settings: dict, cores: int) -> list[Cell]:
    """Cells in measuring order: per batch size, each thread count (one session), then each K > 1
    sessions of one thread.

    Thread and session counts of 0 mean all cores; cells that resolve to the same setting
    (e.g. threads 1 and 0 on a one-core machine) appear once.
    """
    cells: list[Cell] = []
    for batch in settings["batch_sizes"]:
        cells.extend(Cell(batch, _cores(t, cores), 1) for t in settings["threads"])
        cells.extend(Cell(batch, 1, _cores(k, cores)) for k in settings["sessions"] if _cores(k, cores) > 1)
    return list(dict.fromkeys(cells))


def runs_per_round(batch: int, images_per_round: int) -> int:
    """Inferences per model per round: enough for ``images_per_round`` images, at least one."""
    return max(1, -(-images_per_round // batch))


@dataclass
class BenchModel:
    """A model to time: ``make_runner(threads)`` returns ``run(x)``, one inference on a batch."""

    name: str
    kind: str  # onnx | openvino | torch
    precision: str  # fp32 | bf16 | int8
    macs: int
    make_runner: Callable[[int], Callable[[np.ndarray], Any]]
    path: Path | None = None
    activation_type: str | None = None
    weight_type: str | None = None
    set_threads: Callable[[int], None] | None = None
    """torch: the intra-op thread count is process-wide, so a cell sets it once for all runners."""
    candidate: Candidate | None = None
    """What ``runtimes`` builds the sessions from."""

    @property
    def runtime(self) -> str:
        return self.candidate.runtime if self.candidate else ("onnxruntime" if self.kind == "onnx" else self.kind)

    def facts(self) -> dict:
        c = self.candidate
        size = c.size_bytes() if c else (self.path.stat().st_size if self.path and self.path.exists() else None)
        return {
            "kind": self.kind, "runtime": self.runtime, "precision": self.precision,
            "label": c.label if c else self.name,
            "inference_precision": dict(c.options).get("inference_precision") if c else None,
            "path": self.path.name if self.path else None,  # beside benchmark.json: run folders move
            "activation_type": self.activation_type, "weight_type": self.weight_type,
            "macs": self.macs,
            "size_mb": size / 1e6 if size is not None else None,  # MB = 10^6 bytes (ghostlab.fmt)
        }


def _runner(candidate: Candidate, spin: bool) -> Callable[[int], Callable[[np.ndarray], Any]]:
    # Idle ORT workers that spin would steal the cores of the model that runs next.
    return lambda threads: candidate.session(threads, spin=spin)


def check_input(path: str | Path, batch_sizes: Sequence[int], size: int) -> None:
    """Raise when the model's input has a fixed axis the benchmark would feed another size."""
    import onnx

    path = Path(path)
    graph = onnx.load(str(path), load_external_data=False).graph
    init = {i.name for i in graph.initializer}
    inp = next(i for i in graph.input if i.name not in init)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    problems = []
    if dims and dims[0] is not None and any(b != dims[0] for b in batch_sizes):
        problems.append(f"the batch is fixed at {dims[0]}")
    for axis, what in ((2, "height"), (3, "width")):
        if len(dims) > axis and dims[axis] not in (None, size):
            problems.append(f"the {what} is fixed at {dims[axis]} (the benchmark feeds {size})")
    if problems:
        raise RunError(f"{path.name}: {' and '.join(problems)}; re-export with export.dynamic_batch and "
                       f"export.dynamic_spatial true (or set benchmark.input_size to the export size)")


def candidate_model(candidate: Candidate, macs: int, spin: bool = False) -> BenchModel:
    """A candidate (``runtimes``) to time; torch sets its threads once per cell for all runners."""
    session_threads = set_torch_threads if candidate.runtime == "torch" else None
    types = dict(candidate.options)
    return BenchModel(candidate.name, "onnx" if candidate.runtime == "onnxruntime" else candidate.runtime,
                      candidate.precision, macs, _runner(candidate, spin), candidate.artifact,
                      activation_type=types.get("activation_type"), weight_type=types.get("weight_type"),
                      set_threads=session_threads, candidate=candidate)


def onnx_model(name: str, path: str | Path, macs: int, spin: bool = False) -> BenchModel:
    return candidate_model(onnx_candidate(name, path), macs, spin)


def torch_model(model: Any, macs: int, name: str = "torch") -> BenchModel:
    """Torch eager in eval mode under ``inference_mode``; the fair baseline."""
    return candidate_model(torch_candidate(model, name), macs)


def closest(values: Sequence[int], target: int) -> int:
    """The value nearest ``target``; the larger one on a tie."""
    return min(values, key=lambda v: (abs(v - target), -v))


def headline_setting(settings: dict, cores: int, batch: int) -> Cell:
    """The cell ``headline`` reports: the batch closest to ``batch``, the most threads, one session."""
    return Cell(closest(settings["batch_sizes"], batch), max(_cores(t, cores) for t in settings["threads"]), 1)
