"""The roofs a benchmark is measured against: the ISA peak (MACs per cycle per core from a
microarchitecture table where the CPU is listed, else from its ISA flags, times the clock) and the
measured roof (the best dense GEMM rate ONNX Runtime reaches here on the same threads).

Zen 4, for one, has AVX-512 and VNNI but runs them on 256-bit units: its flags alone would double
the peak. The clock says where it comes from (cpufreq's maximum, else /proc/cpuinfo's current reading).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .runtimes import onnx_candidate

FMA_UNITS = 2


AMX_INT8_MACS_PER_CYCLE = 1024


# MACs per cycle per core where the ISA flags mislead: (vendor, family, model numbers, name, fp32, int8).
# AMD Zen 4 has AVX-512 and VNNI but runs them on 256-bit units: 2 x 8 fp32 FMA lanes = 16 and 4 x that
# = 64 int8 (vpdpbusd), not the 32 / 128 the flags suggest; Zen and Zen+ have 128-bit FMA units.
# Unlisted CPUs get the ISA rule (module docstring).
MICROARCHITECTURES = (
    ("AuthenticAMD", 23, range(0x00, 0x30), "Zen / Zen+", 8, 16),
    ("AuthenticAMD", 23, range(0x30, 0x100), "Zen 2", 16, 32),
    ("AuthenticAMD", 25, (*range(0x00, 0x10), *range(0x20, 0x60)), "Zen 3", 16, 32),
    ("AuthenticAMD", 25, (*range(0x10, 0x20), *range(0x60, 0x80), *range(0xA0, 0xB0)), "Zen 4", 16, 64),
    ("AuthenticAMD", 26, (*range(0x00, 0x20), *range(0x40, 0x50)), "Zen 5 (512-bit units)", 32, 128),
)


PEAK_FORMULA = ("ISA peak MAC/s = MACs per cycle per core x GHz x cores used; MACs per cycle from the "
                "microarchitecture table where the CPU is listed (Zen 4: 16 fp32, 64 int8), else fp32: FMA lanes "
                "(16 AVX-512, 8 AVX2, 4 SSE) x 2 FMA units; int8: 4x the fp32 lanes with VNNI, 2x without, "
                "1024 with AMX-INT8. GEMM roof: the best dense MatMul rate ONNX Runtime measured here on the "
                "same threads")


GEMM_SHAPE = (256, 1024, 1024)  # M x K x N of the measured roof: 0.27 GMAC per run


def microarchitecture(cpu: dict) -> tuple[str, int, int] | None:
    """(name, fp32, int8 MACs per cycle per core) from ``MICROARCHITECTURES``; None: not listed."""
    for vendor, family, models, name, fp32, int8 in MICROARCHITECTURES:
        if cpu.get("vendor") == vendor and cpu.get("family") == family and cpu.get("model_number") in models:
            return name, fp32, int8
    return None


def peak_macs_per_cycle(cpu: dict, precision: str) -> int:
    """MACs one core can start per cycle for ``precision``: the microarchitecture table where the
    CPU is listed, else the ISA rule (see the module docstring)."""
    known = microarchitecture(cpu)
    if known:
        return known[2] if precision == "int8" else known[1]
    flags = cpu.get("flags", {})
    lanes = 16 if flags.get("avx512f") else 8 if (flags.get("avx2") or flags.get("fma")) else 4
    fp32 = lanes * FMA_UNITS
    if precision != "int8":
        return fp32
    if flags.get("amx_int8"):
        return AMX_INT8_MACS_PER_CYCLE
    return fp32 * (4 if cpu.get("vnni") else 2)


def clock(cpu: dict) -> tuple[float, str]:
    """The GHz the ISA peak is computed at, and where that figure comes from."""
    if cpu.get("max_mhz"):
        return cpu["max_mhz"] / 1e3, "cpuinfo_max_freq (the highest clock cpufreq reports)"
    if cpu.get("mhz"):
        return cpu["mhz"] / 1e3, '/proc/cpuinfo "cpu MHz" (a current reading, not a rated clock)'
    return 0.0, "unknown"


def peak_macs_per_s(cpu: dict, precision: str, cores_used: int) -> float:
    return peak_macs_per_cycle(cpu, precision) * clock(cpu)[0] * 1e9 * cores_used


def _gemm_models(folder: Path) -> dict[str, Path]:
    """A MatMul with constant weights (``GEMM_SHAPE``), fp32 and as the int8 variants run it
    (QDQ: uint8 activations, int8 weights; ORT fuses it into one integer GEMM)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = GEMM_SHAPE
    w = (np.random.default_rng(0).standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    ws = float(np.abs(w).max() / 127)
    io = ([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])])
    const = numpy_helper.from_array
    graphs = {
        "fp32": helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm_fp32", *io,
                                  [const(w, "w")]),
        "int8": helper.make_graph([
            helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
            helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"]),
            helper.make_node("MatMul", ["xd", "wd"], ["yf"]),
            helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["yq"]),
            helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
        ], "gemm_int8", *io, [
            const(np.clip(np.round(w / ws), -127, 127).astype(np.int8), "wq"), const(np.float32(ws), "ws"),
            const(np.int8(0), "wz"), const(np.float32(8 / 255), "xs"), const(np.uint8(128), "xz"),
            const(np.float32(np.sqrt(k) / 255), "ys"), const(np.uint8(128), "yz")]),
    }
    paths = {}
    for precision, graph in graphs.items():
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        paths[precision] = folder / f"gemm_{precision}.onnx"
        onnx.save(model, str(paths[precision]))
    return paths


def gemm_roofs(threads: Sequence[int], seconds: float = 0.5, spin: bool = False) -> dict:
    """The measured roof: the best dense GEMM rate (GMAC/s) ONNX Runtime reaches on this machine,
    fp32 and int8, per intra-op thread count (the fastest of the runs in ``seconds``)."""
    import tempfile

    m, k, n = GEMM_SHAPE
    x = np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)
    out: dict = {"runtime": "onnxruntime", "shape_mkn": list(GEMM_SHAPE), "fp32": {}, "int8": {}}
    with tempfile.TemporaryDirectory(prefix="ghostlab-gemm-") as tmp:
        for precision, path in _gemm_models(Path(tmp)).items():
            for t in sorted(set(threads)):
                run = onnx_candidate(f"gemm_{precision}", path).session(t, spin=spin)
                run(x)  # warm-up
                best, end = float("inf"), time.perf_counter() + seconds
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    run(x)
                    best = min(best, time.perf_counter() - t0)
                out[precision][str(t)] = m * k * n / best / 1e9
    return out


def measured_roof_gmac_s(result: dict, row: dict) -> float | None:
    """The GEMM roof for a result row: ONNX Runtime rows only, at the row's threads (K sessions of
    one thread: K x the one-thread roof); None where nothing was measured."""
    roofs = (result.get("peak") or {}).get("measured") or {}
    runtime = row.get("runtime") or ("onnxruntime" if row.get("kind") == "onnx" else row.get("kind"))
    if runtime != roofs.get("runtime"):
        return None
    by_threads = roofs.get(row.get("precision"), {})
    sessions = row.get("sessions", 1)
    rate = by_threads.get(str(row["threads"] if sessions == 1 else 1))
    return rate * sessions if rate else None


