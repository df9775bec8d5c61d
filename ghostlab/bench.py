"""Latency and throughput of every model of a run, side by side, on this CPU.

The models are the run's candidates (``runtimes.run_candidates``): ONNX Runtime on the fp32 export
and every int8 variant, OpenVINO on the same files (f32 hint; bf16 where the CPU has it) and on
NNCF's int8 IR, and torch eager (eval mode, ``torch.inference_mode``) as the baseline a user would
otherwise deploy (``benchmark.runtimes`` picks runtimes). All are fed the
canonical ``1 x 3 x S x S`` input (``benchmark.input_size``, 224 by default) whatever size the
profile trains at: the export has dynamic height/width.

The grid (``bench_setup.grid``) is every batch size x every intra-op thread count (one session), plus
every batch size x each ``sessions`` count K > 1: K sessions of one thread each, run in
parallel from K Python threads (ONNX Runtime and torch release the GIL), like a vendor
tool's instances. The headline cell (``headline_batch``, most threads, one session) is measured
first with every model; with ``benchmark.grid_candidates`` N, the other cells time only ORT fp32,
torch and the N fastest at the headline cell. For each cell, every model is warmed up and then
timed in ``rounds``;
within a round the models run one after another, the order rotating round by round, so drift
on a shared machine (other jobs, clock changes) hits every model alike. A round runs at least
``images_per_round`` images per model (several inferences at small batch sizes).

Per cell and model (``summarize_cell``):
- latency percentiles p50/p90 over every timed inference (ms per batch), and p99 only from
  100 samples or more; with fewer the tail shown is the maximum, labelled "max of N" (``tail``);
- throughput ``img_s``: the median over rounds of images / wall time of the round;
- ``ratio_vs_fp32``: the median over rounds of (model's img/s) / (fp32's img/s) *in the same
  round*: paired, so a slow spell that hits a round hits both sides of its ratio.
  ``ratio_vs_torch`` likewise against torch eager.

Roofline (``peak_macs_per_s``): a model uses ``macs_per_image x img_s`` MAC/s of an
estimated peak of ``MACs per cycle per core x GHz x cores used``, where, per core and cycle,
fp32 does ``FMA lanes x FMA units`` MACs (lanes 16 with AVX-512, 8 with AVX2/FMA, 4 otherwise;
2 FMA units) and int8 does 4x the fp32 lanes with VNNI (``vpdpbusd``: 4 u8 x s8 products per
32-bit lane), 2x without (``vpmaddubsw`` + ``vpmaddwd``), and 1024 with AMX-INT8; CPUs whose
flags mislead (AMD Zen 4 runs AVX-512 on 256-bit units: 16 fp32 / 64 int8, not 32 / 128) come
from ``MICROARCHITECTURES`` instead. The clock (``clock``) is cpufreq's cpuinfo_max_freq where the
kernel exposes it, else the first "cpu MHz" of /proc/cpuinfo, a current reading; the report names
which. Beside this ISA figure stands a measured roof (``gemm_roofs``): the best rate ONNX Runtime
reaches on a large dense MatMul, fp32 and int8 (QDQ, u8 x s8), on the same thread counts. Both
are upper bounds: depthwise and 1x1 convolutions on small feature maps are memory-bound, so a
few percent of the ISA peak is normal for GhostNet.

``artifacts/benchmark.json`` (``write_json`` of ``run_benchmark``'s result)::

    {
      "version": 1,
      "input_shape": [3, 224, 224],
      "cpu": {...},                 # ghostlab.system.cpu_info(): model, cores, mhz, flags, vnni
      "settings": {"batch_sizes": [..], "threads": [..], "sessions": [..], "warmup": int,
                   "rounds": int, "images_per_round": int, "quick": bool},
      "models": {"<model>": {"kind": "onnx" | "openvino" | "torch", "runtime": "onnxruntime" | "openvino" | "torch",
                             "precision": "fp32" | "bf16" | "int8", "label": str,   # "OpenVINO bf16"
                             "inference_precision": "f32" | "bf16" | null,          # OpenVINO's hint
                             "path": "<file in artifacts/>" | null, "activation_type": "uint8" | "int8" | null,
                             "weight_type": "int8" | "uint8" | null, "macs": int, "size_mb": float}},
      "peak": {"ghz": float, "clock_source": str,   # cpuinfo_max_freq, or /proc/cpuinfo's current reading
               "microarchitecture": str | null,     # a MICROARCHITECTURES row, null: the ISA rule
               "fp32_macs_per_cycle_per_core": int, "int8_macs_per_cycle_per_core": int, "formula": str,
               "measured": {"runtime": "onnxruntime", "shape_mkn": [M, K, N],   # null: no ORT model timed
                            "fp32": {"<threads>": GMAC/s}, "int8": {"<threads>": GMAC/s}}},
      "results": [                  # one row per model and grid cell
        {"model": "fp32" | "int8_<variant>" | "ov_<...>" | "torch", "kind": ..., "runtime": ...,
         "precision": ...,
         "batch": int, "threads": int,   # intra-op threads per session, resolved (0 -> cores)
         "sessions": int,                # parallel sessions (1: a single session)
         "all_cores": bool,              # threads x sessions == cores
         "p50_ms": float, "p90_ms": float, "mean_ms": float,  # per inference
         "p99_ms": float | null,        # only from >= 100 samples
         "max_ms": float, "tail": "p99" | "max of N",   # which tail the tables show
         "img_s": float, "ratio_vs_fp32": float | null, "ratio_vs_fp32_iqr": [q25, q75] | null,
         "ratio_vs_torch": float | null, "gmac_s": float, "peak_gmac_s": float,
         "peak_fraction": float, "samples": int, "latencies_ms": [float], "round_img_s": [float]}
      ],
      "headline": {"batch": int, "threads": int, "fp32_img_s": float, "torch_img_s": float | null,
                   "fp32_vs_torch": float | null, "fp32_vs_torch_1_thread": float | null,
                   "best_int8": str | null,        # ONNX Runtime's best int8 variant
                   "best_int8_img_s": float | null, "best_int8_vs_fp32": float | null,
                   "best": str | null,             # the fastest candidate at this cell (any runtime)
                   "best_runtime": str | null, "best_precision": str | null, "best_img_s": float | null,
                   "best_vs_fp32": float | null, "best_vs_torch": float | null},
      "extra_sizes": [{"input_size": int, "cell": str, "error": str | null,   # benchmark.extra_input_sizes
                       "results": [{"model", "p50_ms", "img_s", "ratio_vs_fp32", "ratio_vs_torch"}]}],
      "profile": {"batch": int, "threads": 1, "runs": int,   # null when benchmark.profile is false
                  "runtimes": {"<model>": "onnxruntime" | "openvino"},
                  "models": {"<model>": {"<GhostNet part>": ms per image}}},  # ORT profiler / OV counters
      "warnings": [str],
      "load_average": {"before": [1, 5, 15 min], "after": [...]},
      "seconds": float
    }

Readers pick rows with ``select(result, model=..., batch=..., threads=..., sessions=1)`` and the
headline cell's rows with ``headline_cell(result)``; nothing else parses the file.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .bench_profile import profile_parts
from .bench_roofs import PEAK_FORMULA, clock, gemm_roofs, microarchitecture, peak_macs_per_cycle, peak_macs_per_s
from .bench_setup import (BenchModel, Cell, closest, candidate_model, check_input, effective_settings, grid,
                          headline_setting, runs_per_round)
from .jsonio import read_json_dict
from .runtimes import s8s8_warning, set_torch_threads

VERSION = 1
RESULT_KEYS = ("model", "kind", "runtime", "precision", "batch", "threads", "sessions", "all_cores", "p50_ms", "p90_ms",
               "p99_ms", "max_ms", "tail", "mean_ms", "img_s", "ratio_vs_fp32", "ratio_vs_fp32_iqr", "ratio_vs_torch", "gmac_s",
               "peak_gmac_s", "peak_fraction", "samples", "latencies_ms", "round_img_s")
P99_MIN_SAMPLES = 100  # fewer samples: the 99th percentile is the maximum, reported as "max of N"


# ---------------------------------------------------------------- timing

@dataclass
class Round:
    """One model's share of one round: per-inference latencies and the round's wall time."""

    latencies: list[float]  # seconds
    wall: float  # seconds, first start to last end
    images: int

    @property
    def img_s(self) -> float:
        return self.images / self.wall if self.wall > 0 else float("nan")


def _timed(fn: Callable[[np.ndarray], Any], x: np.ndarray, runs: int) -> tuple[list[float], float, float]:
    lat = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        lat.append(time.perf_counter() - t0)
    return lat, start, time.perf_counter()


def _one_round(runners: list[Callable[[np.ndarray], Any]], x: np.ndarray, runs: int,
               pool: ThreadPoolExecutor | None) -> Round:
    batch = len(x)
    if pool is None:
        lat, start, end = _timed(runners[0], x, runs)
        return Round(lat, end - start, runs * batch)
    barrier = threading.Barrier(len(runners))

    def work(fn: Callable[[np.ndarray], Any]) -> tuple[list[float], float, float]:
        barrier.wait()  # all sessions start together
        return _timed(fn, x, runs)

    parts = [f.result() for f in [pool.submit(work, fn) for fn in runners]]
    wall = max(p[2] for p in parts) - min(p[1] for p in parts)
    return Round([t for p in parts for t in p[0]], wall, runs * batch * len(runners))


def measure_cell(cell: Cell, models: Sequence[BenchModel], settings: dict, size: int,
                 cache: dict | None = None) -> dict[str, list[Round]]:
    """Warm up every model at this cell, then time ``rounds`` interleaved rounds.

    ``cache`` keeps runners (ONNX Runtime sessions) between cells: key (model, threads, i).
    """
    cache = {} if cache is None else cache
    for m in models:
        if m.set_threads:
            m.set_threads(cell.threads)
    runners = {}
    for m in models:
        # Sessions are kept between cells of the same thread count (session i of K reused).
        for i in range(cell.sessions):
            if (m.name, cell.threads, i) not in cache:
                cache[(m.name, cell.threads, i)] = m.make_runner(cell.threads)
        runners[m.name] = [cache[(m.name, cell.threads, i)] for i in range(cell.sessions)]
    x = canonical_input(cell.batch, size)
    runs = runs_per_round(cell.batch, settings["images_per_round"])
    pool = ThreadPoolExecutor(cell.sessions) if cell.sessions > 1 else None
    try:
        for _ in range(settings["warmup"]):
            for m in models:
                _one_round(runners[m.name], x, runs, pool)
        out: dict[str, list[Round]] = {m.name: [] for m in models}
        for r in range(settings["rounds"]):
            for m in _rotated(models, r):
                out[m.name].append(_one_round(runners[m.name], x, runs, pool))
        return out
    finally:
        if pool is not None:
            pool.shutdown()


def _rotated(items: Sequence, r: int) -> list:
    k = r % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


# ---------------------------------------------------------------- summaries

def percentiles_ms(latencies: Sequence[float]) -> dict:
    """p50/p90, mean and max of latencies given in seconds, in milliseconds (linear interpolation).

    p99 only from ``P99_MIN_SAMPLES`` samples or more: from 10-20 it is the maximum under another
    name. ``tail`` says which the tables show: "p99", or "max of N" (then ``p99_ms`` is None).
    """
    a = np.asarray(latencies, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    enough = len(a) >= P99_MIN_SAMPLES
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99) if enough else None,
            "max_ms": float(a.max()), "tail": "p99" if enough else f"max of {len(a)}", "mean_ms": float(a.mean())}


def tail_ms(row: dict) -> float:
    """The row's tail latency: p99 when it had enough samples, else the maximum (``row["tail"]`` says which)."""
    return row["p99_ms"] if row.get("p99_ms") is not None else row["max_ms"]


def paired_ratio(rounds: Sequence[Round], reference: Sequence[Round]) -> tuple[float, list[float]]:
    """Median and inter-quartile range over rounds of img/s(model) / img/s(reference) in the same round."""
    ratios = np.array([a.img_s / b.img_s for a, b in zip(rounds, reference)], dtype=np.float64)
    if not len(ratios):
        return float("nan"), [float("nan"), float("nan")]
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return float(q50), [float(q25), float(q75)]


def summarize_cell(cell: Cell, timings: dict[str, list[Round]], models: Sequence[BenchModel],
                   cpu: dict, reference: str = "fp32", baseline: str = "torch") -> list[dict]:
    """One result row per model for one cell (the layout in the module docstring)."""
    rows = []
    cores_used = min(cell.threads * cell.sessions, cpu.get("cores") or 1)
    for m in models:
        rounds = timings[m.name]
        lat = [t for r in rounds for t in r.latencies]
        img_s = float(np.median([r.img_s for r in rounds]))
        row = {"model": m.name, "kind": m.kind, "runtime": m.runtime, "precision": m.precision, "batch": cell.batch,
               "threads": cell.threads, "sessions": cell.sessions,
               "all_cores": cell.threads * cell.sessions == cpu.get("cores"),
               **percentiles_ms(lat), "img_s": img_s,
               "ratio_vs_fp32": None, "ratio_vs_fp32_iqr": None, "ratio_vs_torch": None}
        if reference in timings:
            row["ratio_vs_fp32"], row["ratio_vs_fp32_iqr"] = paired_ratio(rounds, timings[reference])
        if baseline in timings:
            row["ratio_vs_torch"] = paired_ratio(rounds, timings[baseline])[0]
        peak = peak_macs_per_s(cpu, m.precision, cores_used)
        row["gmac_s"] = m.macs * img_s / 1e9
        row["peak_gmac_s"] = peak / 1e9
        row["peak_fraction"] = m.macs * img_s / peak if peak > 0 else None
        row["samples"] = len(lat)
        row["latencies_ms"] = [round(t * 1e3, 4) for t in lat]
        row["round_img_s"] = [round(r.img_s, 3) for r in rounds]
        rows.append(row)
    return rows


def read_result(path: str | Path) -> dict:
    """``benchmark.json`` as written by ``run``; {} when it is missing, unreadable or being written."""
    return read_json_dict(path) or {}


def select(result: dict, model: str | None = None, batch: int | None = None,
           threads: int | None = None, sessions: int | None = 1) -> list[dict]:
    """Result rows matching every given key (None: any); [] for a document without results."""
    want = {"model": model, "batch": batch, "threads": threads, "sessions": sessions}
    rows = result.get("results") if isinstance(result, dict) else None
    return [r for r in rows or [] if isinstance(r, dict)
            and all(v is None or r.get(k, 1 if k == "sessions" else None) == v for k, v in want.items())]


def headline_cell(result: dict) -> dict[str, dict]:
    """model -> result row at the headline setting (``result["headline"]``); {} when there is none."""
    h = (result.get("headline") if isinstance(result, dict) else None) or {}
    if not h.get("batch"):
        return {}
    return {r["model"]: r for r in select(result, batch=h["batch"], threads=h["threads"])}


def headline(rows: list[dict], cores: int, batch: int = 8) -> dict:
    """Best int8 over fp32 and fp32 over torch at ``batch`` (or the closest batch), all cores, one session.

    The best int8 variant is the one fastest relative to fp32 over the whole grid (geometric mean
    of its ratios), so that the reported ratio is not the maximum of several noisy ones.
    """
    batches = sorted({r["batch"] for r in rows if r["sessions"] == 1})
    if not batches:
        return {}
    b = closest(batches, batch)
    cell = [r for r in rows if r["batch"] == b and r["sessions"] == 1]
    threads = max(r["threads"] for r in cell)  # all cores when the grid has it
    cell = {r["model"]: r for r in cell if r["threads"] == threads}
    int8 = [r for r in cell.values() if r["precision"] == "int8" and r["ratio_vs_fp32"] is not None
            and r.get("runtime", "onnxruntime") == "onnxruntime"]
    # Variants often run the same graph at the same speed: picking the best by the headline ratio
    # itself would pick the luckiest noise. Rank by the geometric mean ratio over every cell instead.
    score = {m: float(np.mean(np.log([r["ratio_vs_fp32"] for r in rows if r["model"] == m
                                      and r["ratio_vs_fp32"] and r["ratio_vs_fp32"] > 0] or [1e-9])))
             for m in {r["model"] for r in int8}}
    best = max(int8, key=lambda r: (score[r["model"]], r["ratio_vs_fp32"]), default=None)
    fp32, torch = cell.get("fp32"), cell.get("torch")
    # The fastest candidate of any runtime, by its paired ratio at this cell.
    fastest = max((r for r in cell.values() if r["ratio_vs_fp32"] is not None and r["model"] != "torch"),
                  key=lambda r: r["ratio_vs_fp32"], default=None)
    # One thread is immune to a busy machine descheduling one of torch's OpenMP threads.
    single = {r["model"]: r for r in rows if r["batch"] == b and r["sessions"] == 1 and r["threads"] == 1}
    return {
        "batch": b, "threads": threads, "all_cores": threads == cores,
        "fp32_img_s": fp32["img_s"] if fp32 else None,
        "torch_img_s": torch["img_s"] if torch else None,
        "fp32_vs_torch": fp32["ratio_vs_torch"] if fp32 else None,
        "fp32_vs_torch_1_thread": single["fp32"]["ratio_vs_torch"] if "fp32" in single else None,
        "best_int8": best["model"] if best else None,
        "best_int8_img_s": best["img_s"] if best else None,
        "best_int8_vs_fp32": best["ratio_vs_fp32"] if best else None,
        "best": fastest["model"] if fastest else None,
        "best_runtime": fastest.get("runtime") if fastest else None,
        "best_precision": fastest["precision"] if fastest else None,
        "best_img_s": fastest["img_s"] if fastest else None,
        "best_vs_fp32": fastest["ratio_vs_fp32"] if fastest else None,
        "best_vs_torch": fastest["ratio_vs_torch"] if fastest else None,
    }


def leading(models: Sequence[BenchModel], rows: list[dict], count: int | None) -> list[BenchModel]:
    """ORT fp32, torch and the ``count`` fastest other models by their ratio in ``rows`` (one cell);
    every model when ``count`` is None."""
    if count is None:
        return list(models)
    ratio = {r["model"]: r["ratio_vs_fp32"] or 0.0 for r in rows}
    others = sorted((m for m in models if m.name not in ("fp32", "torch")), key=lambda m: -ratio.get(m.name, 0.0))
    keep = {"fp32", "torch"} | {m.name for m in others[:count]}
    return [m for m in models if m.name in keep]


# ---------------------------------------------------------------- warnings

def isa_warnings(cpu: dict, models: Sequence[BenchModel] | dict) -> list[str]:
    """What in the CPU or the models makes int8 (or everything) slower than it could be."""
    facts = models if isinstance(models, dict) else {m.name: m.facts() for m in models}
    out = []
    int8 = {n: f for n, f in facts.items() if f["precision"] == "int8"}
    flags = cpu.get("flags", {})
    if not flags.get("avx2"):
        out.append("this CPU has no AVX2: ONNX Runtime falls back to SSE kernels and every model runs slowly")
    if int8 and not cpu.get("vnni"):
        out.append("this CPU has no VNNI (avx512_vnni, avx_vnni or amx_int8): int8 convolutions use the older "
                   "u8 x s8 multiply-add path and are likely to be little or no faster than fp32")
    x86 = str(cpu.get("machine", "")).lower() in ("x86_64", "amd64", "i686", "x86")
    for name, f in int8.items():
        if x86 and f["activation_type"] == "int8" and f["weight_type"] == "int8":
            out.append(s8s8_warning(name))
    return out


def scaling_warnings(rows: list[dict], slower: float = 0.8) -> list[str]:
    """Models that ran clearly slower on more threads than on one (same batch, one session).

    On a shared machine that is the sign of threads being descheduled mid-inference; torch's
    OpenMP suffers most, as every op waits for its slowest thread.
    """
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        worse = []
        for b in sorted({r["batch"] for r in rows if r["model"] == model}):
            cell = {r["threads"]: r["img_s"] for r in rows if r["model"] == model and r["batch"] == b
                    and r["sessions"] == 1}
            top = max(cell, default=1)
            if top > 1 and 1 in cell and cell[top] < slower * cell[1]:
                worse.append(f"batch {b}: {cell[top]:.0f} vs {cell[1]:.0f} img/s")
        if worse:
            out.append(f"{model} ran slower on all threads than on one ({'; '.join(worse)}): its threads were "
                       f"probably descheduled by other work, so compare it on the 1-thread rows")
    return out


def load_warning(before: Sequence[float], cores: int) -> str | None:
    if before and before[0] > 0.5 * cores:
        return (f"the machine was busy when the benchmark started (1-min load {before[0]:.1f} on {cores} cores): "
                f"absolute timings are noisy; the paired ratios hold up better")
    return None




# ---------------------------------------------------------------- the whole benchmark

def canonical_input(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def run_benchmark(models: Sequence[BenchModel], bench: Any, cpu: dict | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Measure every model on every cell of ``bench`` (BenchmarkParams); returns the
    ``benchmark.json`` layout (module docstring)."""
    from .system import cpu_info

    cpu = cpu or cpu_info()
    settings = effective_settings(bench)
    cells = grid(settings, cpu["cores"])
    before = list(os.getloadavg())
    t0 = time.perf_counter()
    rows: list[dict] = []
    cache: dict = {}
    head = headline_setting(settings, cpu["cores"], bench.headline_batch)
    count = getattr(bench, "grid_candidates", None)
    timed = list(models)
    try:
        # Every model at the headline cell first; the rest of the grid times the leading ones.
        for i, cell in enumerate(sorted(cells, key=lambda c: c != head)):
            if progress:
                progress(f"[{i + 1}/{len(cells)}] {cell.label()}" + (f" ({len(timed)} of {len(models)} models)"
                                                                       if len(timed) < len(models) else ""))
            timings = measure_cell(cell, timed, settings, bench.input_size, cache)
            cell_rows = summarize_cell(cell, timings, timed, cpu)
            rows.extend(cell_rows)
            if cell == head:
                timed = leading(models, cell_rows, count)
        extra = [extra_size(head, models, settings, size, cache, cpu, progress)
                 for size in getattr(bench, "extra_input_sizes", None) or [] if size != bench.input_size]
    finally:
        cache.clear()
        _restore_torch_threads(cpu["cores"])
    rows.sort(key=lambda r: cells.index(Cell(r["batch"], r["threads"], r["sessions"])))
    roofs = None
    if any(m.runtime == "onnxruntime" for m in models):
        if progress:
            progress("measuring the GEMM roof")
        roofs = gemm_roofs({c.threads for c in cells} | {1}, seconds=0.1 if settings["quick"] else 0.3,
                           spin=bench.spin)
    profile = None
    if bench.profile and any(m.runtime in ("onnxruntime", "openvino") for m in models):
        if progress:
            progress("profiling by GhostNet part")
        x = canonical_input(closest(settings["batch_sizes"], bench.headline_batch), bench.input_size)
        profile = profile_parts(models, x, runs=2 if settings["quick"] else 5)
    facts = {m.name: m.facts() for m in models}
    after = list(os.getloadavg())
    warnings = isa_warnings(cpu, facts) + scaling_warnings(rows)
    busy = load_warning(before, cpu["cores"])
    if busy:
        warnings.append(busy)
    if settings["quick"]:
        warnings.append("quick mode (benchmark.quick): few rounds on a reduced grid; numbers are indicative only")
    return {
        "version": VERSION,
        "input_shape": [3, bench.input_size, bench.input_size],
        "cpu": cpu,
        "settings": settings,
        "models": facts,
        "peak": {"ghz": clock(cpu)[0], "clock_source": clock(cpu)[1],
                 "microarchitecture": (microarchitecture(cpu) or [None])[0],
                 "fp32_macs_per_cycle_per_core": peak_macs_per_cycle(cpu, "fp32"),
                 "int8_macs_per_cycle_per_core": peak_macs_per_cycle(cpu, "int8"),
                 "formula": PEAK_FORMULA, "measured": roofs},
        "results": rows,
        "headline": headline(rows, cpu["cores"], bench.headline_batch),
        "extra_sizes": extra,
        "profile": profile,
        "warnings": warnings,
        "load_average": {"before": before, "after": after},
        "seconds": time.perf_counter() - t0,
    }


EXTRA_KEYS = ("model", "p50_ms", "img_s", "ratio_vs_fp32", "ratio_vs_torch")


def extra_size(cell: Cell, models: Sequence[BenchModel], settings: dict, size: int, cache: dict, cpu: dict,
               progress: Callable[[str], None] | None = None) -> dict:
    """Every model at the headline ``cell`` and another input side (``benchmark.extra_input_sizes``):
    ``{"input_size", "cell", "results": [{model, p50_ms, img_s, ratio_vs_fp32, ratio_vs_torch}], "error"}``.
    Rates only: the roofline fields need the MACs at that size. A failure is recorded, not raised."""
    if progress:
        progress(f"{cell.label()} at {size} px")
    try:
        rows = summarize_cell(cell, measure_cell(cell, models, settings, size, cache), models, cpu)
    except Exception as err:  # noqa: BLE001 - one extra size failing must not lose the whole benchmark
        return {"input_size": size, "cell": cell.label(), "results": [], "error": f"{type(err).__name__}: {err}"}
    return {"input_size": size, "cell": cell.label(), "results": [{k: r[k] for k in EXTRA_KEYS} for r in rows],
            "error": None}


def _restore_torch_threads(cores: int) -> None:
    import sys

    if "torch" in sys.modules:
        set_torch_threads(cores)


def run_models(run: Any) -> tuple[list[BenchModel], dict]:
    """The run's candidates (``runtimes.run_candidates``, the runtimes ``benchmark.runtimes`` names,
    torch eager when ``benchmark.include_torch``); plus facts about the network (MACs at the
    benchmark's input size, the export's input size)."""
    from . import models as gm
    from .jsonio import read_json
    from .runtimes import run_candidates

    p = run.params
    export = read_json(run.require("export.json", "01_export"))
    onnx_paths = run.onnx_models()
    if "fp32" not in onnx_paths:
        run.require("model.onnx", "01_export")
    net = gm.load_model(p, export.get("num_classes"))
    size = p.benchmark.input_size
    macs = gm.count_macs(net, size)

    batches = effective_settings(p.benchmark)["batch_sizes"]
    for path in onnx_paths.values():
        check_input(path, batches, size)
    runtimes = list(p.benchmark.runtimes) + ["torch"]
    candidates = run_candidates(run, net if p.benchmark.include_torch else None, runtimes=runtimes)
    out = [candidate_model(c, macs, p.benchmark.spin) for c in candidates]
    return out, {"macs": macs, "input_size": size, "export_input_size": export.get("input_size")}


def run(run: Any, progress: Callable[[str], None] | None = None) -> dict:
    """Notebook 03: measure the run's models, write ``artifacts/benchmark.json``, return it."""
    from .jsonio import write_json

    models, facts = run_models(run)
    result = run_benchmark(models, run.params.benchmark, progress=progress)
    result["model_facts"] = facts
    write_json(run.artifact("benchmark.json"), result)
    return result
