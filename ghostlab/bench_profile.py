"""Where the time goes: each candidate's time per image split by GhostNet part, from ONNX Runtime's
profiler (ORT candidates) and OpenVINO's per-layer performance counters (OpenVINO candidates), so a
reader sees why one runtime or precision wins (e.g. int8 losing on GhostNet's few-channel depthwise
cheap operations).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .ghostnet import ghostnet_role

_LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "Transpose"}


_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def part_of(node_name: str, op_type: str) -> str:
    """The GhostNet part an executed ORT node belongs to (calibrate's roles), or the layout /
    quantize work ORT adds around the graph."""

    role = ghostnet_role(node_name)
    if role != "other":
        return role
    if op_type in _LAYOUT_OPS:
        return "layout reorder"
    if op_type in _QDQ_OPS:
        return "quantize / dequantize"
    return "other"


_OV_LAYOUT_TYPES = {"Reorder", "Transpose"}


_OV_QDQ_TYPES = {"FakeQuantize", "Convert"}


def ov_part_of(node_name: str, node_type: str) -> str:
    """The GhostNet part an executed OpenVINO node belongs to. The CPU plugin keeps the ONNX node
    names of the layers it runs (``.../cheap_operation.0/Conv/WithoutBiases``) and names the
    reorders it inserts after their consumer, so layout and quantize nodes go by type first."""
    if node_type in _OV_LAYOUT_TYPES:
        return "layout reorder"
    if node_type in _OV_QDQ_TYPES:
        return "quantize / dequantize"
    return part_of(node_name, node_type)


def _parse_counts(per_run: list[list[tuple[str, str, float]]]) -> dict[str, list[float]]:
    """ms per GhostNet part in each inference, from OpenVINO's performance counters."""
    counters = []
    for nodes in per_run:
        c: Counter = Counter()
        for name, node_type, ms in nodes:
            c[ov_part_of(name, node_type)] += ms
        counters.append(c)
    parts = sorted({k for c in counters for k in c})
    return {k: [c.get(k, 0.0) for c in counters] for k in parts}


def _parse_profile(events: list[dict], runs: int) -> dict[str, list[float]]:
    """ms per GhostNet part in each of the last ``runs`` inferences of an ORT profile."""
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[-runs:]
    per_run: list[Counter] = [Counter() for _ in windows]
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        for i, (start, end) in enumerate(windows):
            if start <= e["ts"] <= end:
                per_run[i][part_of(e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", ""))] \
                    += e["dur"] / 1e3
                break
    parts = sorted({k for c in per_run for k in c})
    return {k: [c.get(k, 0.0) for c in per_run] for k in parts}


def profile_parts(models: Sequence[Any], x: np.ndarray, runs: int = 5, threads: int = 1) -> dict:
    """Time per image (ms, median over ``runs`` interleaved inferences on the batch ``x``) that each
    GhostNet part takes in each ORT and OpenVINO model (``bench_setup.BenchModel``), from ONNX Runtime's profiler and OpenVINO's per-node
    performance counters (``PERF_COUNT``) on ``threads`` threads.

    The profiler adds a little overhead per node, so totals run above the timed table; the split
    is what it is for: which parts int8 speeds up and which it slows down.
    """
    import json
    import tempfile

    profiled = [m for m in models if m.runtime in ("onnxruntime", "openvino") and m.candidate is not None]
    batch = len(x)
    counts: dict[str, list] = {m.name: [] for m in profiled if m.runtime == "openvino"}
    with tempfile.TemporaryDirectory(prefix="ghostlab-profile-") as tmp:
        sessions = {}
        for m in profiled:
            sessions[m.name] = m.candidate.session(threads, profile_prefix=str(Path(tmp) / m.name))
        for r in range(runs + 1):  # one warm-up inference, left out below
            k = r % len(profiled)
            for m in profiled[k:] + profiled[:k]:  # a different model first each run
                sessions[m.name](x)
                if m.name in counts and r > 0:
                    counts[m.name].append(sessions[m.name].perf_counts())
        parts = {name: (_parse_counts(counts[name]) if name in counts
                        else _parse_profile(json.loads(Path(s.end_profiling()).read_text()), runs))
                 for name, s in sessions.items()}
    return {"batch": batch, "threads": threads, "runs": runs,
            "runtimes": {m.name: m.runtime for m in profiled},
            "models": {name: {k: float(np.median(v)) / batch for k, v in by_part.items()}
                       for name, by_part in parts.items()}}


def profile_rows(result: dict) -> list[dict]:
    """ms per image by GhostNet part, one column per model, largest fp32 part first."""
    prof = result.get("profile") or {}
    models = prof.get("models", {})
    if not models:
        return []
    parts = sorted({p for m in models.values() for p in m},
                   key=lambda p: -models.get("fp32", next(iter(models.values()))).get(p, 0.0))
    rows = [{"part": p, **{f"{m} ms": models[m].get(p, 0.0) for m in models}} for p in parts]
    rows.append({"part": "total", **{f"{m} ms": sum(models[m].values()) for m in models}})
    return rows


def profile_models(result: dict) -> list[str]:
    """The models the where-the-time-goes figure compares: ORT fp32, ORT's best int8, OpenVINO fp32
    and the fastest candidate (those that were profiled)."""
    h, prof = result.get("headline") or {}, (result.get("profile") or {}).get("models", {})
    wanted = ["fp32", h.get("best_int8"), "ov_fp32", h.get("best")]
    return [m for m in dict.fromkeys(wanted) if m and m in prof]
