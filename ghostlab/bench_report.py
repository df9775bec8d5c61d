"""What notebook 03 shows from benchmark.json: the rows of its tables and its answer in words.
Data in (the dict bench.run returns or benchmark.json), rows or text out; no timing here.
"""

from __future__ import annotations

from .bench import select, tail_ms
from .bench_setup import Cell
from .bench_roofs import measured_roof_gmac_s

def extra_size_rows(result: dict) -> list[dict]:
    """03's table of the extra input sizes: one row per size and model."""
    out = []
    for block in result.get("extra_sizes") or []:
        if block.get("error"):
            out.append({"input": f"{block['input_size']} px", "model": "(failed)", "error": block["error"]})
        for r in block["results"]:
            out.append({"input": f"{block['input_size']} px", "model": r["model"], "p50 ms": r["p50_ms"],
                        "img/s": r["img_s"], "× faster than fp32": r["ratio_vs_fp32"],
                        "× faster than torch": r["ratio_vs_torch"]})
    return out


def machine_rows(result: dict) -> list[dict]:
    cpu, s = result["cpu"], result["settings"]
    flags = ", ".join(f for f, on in cpu.get("flags", {}).items() if on) or "none"
    return [
        {"fact": "CPU", "value": cpu.get("model")},
        {"fact": "cores available", "value": cpu.get("cores")},
        *peak_rows(result),
        {"fact": "ISA flags", "value": flags},
        {"fact": "VNNI (fast int8)", "value": "yes" if cpu.get("vnni") else "no"},
        {"fact": "input", "value": "1×" + "×".join(map(str, result["input_shape"])) + " per image"},
        {"fact": "grid", "value": f"batch {s['batch_sizes']}, threads {s['threads']} (0: all cores), "
                                  f"sessions {s['sessions']}"},
        {"fact": "rounds", "value": f"{s['warmup']} warm-up + {s['rounds']} timed, ≥{s['images_per_round']} "
                                    f"images per model per round" + (" (quick mode)" if s["quick"] else "")},
        {"fact": "load average before / after", "value": " / ".join(
            f"{v[0]:.2f}" for v in (result["load_average"]["before"], result["load_average"]["after"]))},
        {"fact": "measured in", "value": f"{result['seconds']:.1f} s"},
    ]


def model_rows(result: dict) -> list[dict]:
    return [{"model": n, "runtime": f.get("label") or f["kind"], "precision": f["precision"],
             "precision hint": f.get("inference_precision"),
             "activations": f["activation_type"] or "fp32", "weights": f["weight_type"] or "fp32",
             "MMACs / image": f["macs"] / 1e6, "size (MB)": f["size_mb"]}
            for n, f in result["models"].items()]


def warning_rows(result: dict) -> list[dict]:
    return [{"warning": w} for w in result["warnings"]] or [{"warning": "none"}]


def result_rows(result: dict) -> list[dict]:
    """The full table: one row per cell and model."""
    return [{"setting": Cell(r["batch"], r["threads"], r["sessions"]).label(), "model": r["model"],
             "p50 ms": r["p50_ms"], "p90 ms": r["p90_ms"], "tail": r.get("tail", "p99"), "tail ms": tail_ms(r),
             "img/s": r["img_s"],
             "× fp32": r["ratio_vs_fp32"], "× torch": r["ratio_vs_torch"], "samples": r["samples"]}
            for r in result["results"]]


def headline_rows(result: dict) -> list[dict]:
    """The cell the report leads with (batch 8, all cores): each model's numbers side by side."""
    h = result["headline"]
    if not h:
        return []
    def rounded(v: float | None, digits: int) -> float | None:
        return None if v is None else round(v, digits)

    return [{"model": r["model"], "p50 ms": rounded(r["p50_ms"], 2), "img/s": rounded(r["img_s"], 1),
             "× fp32": rounded(r["ratio_vs_fp32"], 2), "× torch": rounded(r["ratio_vs_torch"], 2),
             "% of peak": rounded(100 * r["peak_fraction"], 2) if r["peak_fraction"] is not None else None}
            for r in select(result, batch=h["batch"], threads=h["threads"])]


def headline_title(result: dict) -> str:
    h = result["headline"]
    if not h:
        return "no single-session cell"
    return f"batch {h['batch']}, {h['threads']} thread{'s' if h['threads'] > 1 else ''}" + (
        " (all cores)" if h["all_cores"] else "")


def headline_values(result: dict) -> dict:
    """Key numbers for the index page."""
    h = result["headline"]
    if not h:
        return {}
    out = {"setting": headline_title(result),
           "fp32 img/s": round(h["fp32_img_s"], 1) if h["fp32_img_s"] else None}
    if h.get("best"):
        out["fastest candidate"] = h["best"]
        out["fastest × ORT fp32"] = round(h["best_vs_fp32"], 2)
        if h.get("best_vs_torch") is not None:
            out["fastest × torch eager"] = round(h["best_vs_torch"], 2)
    if h["best_int8"]:
        out[f"best ORT int8 ({h['best_int8']}) × fp32"] = round(h["best_int8_vs_fp32"], 2)
    if h["fp32_vs_torch"] is not None:
        out["ORT fp32 × torch eager"] = round(h["fp32_vs_torch"], 2)
    if h["fp32_vs_torch_1_thread"] is not None and h["threads"] != 1:
        out["ORT fp32 × torch eager, 1 thread"] = round(h["fp32_vs_torch_1_thread"], 2)
    return out


def fastest_text(result: dict) -> str:
    """The benchmark's answer in words: the fastest candidate at the headline setting and its ratios.
    Whether it can ship is 04's call (its accuracy against ``evaluate.max_drop_pts``)."""
    h = result.get("headline") or {}
    if not h.get("best"):
        return "No candidate was timed against ORT fp32 at the headline setting."
    label = (result.get("models", {}).get(h["best"]) or {}).get("label", h["best"])
    torch = f", {h['best_vs_torch']:.2f}× torch eager" if h.get("best_vs_torch") is not None else ""
    return (f"Fastest at {headline_title(result)}: {label} ({h['best']}), {h['best_vs_fp32']:.2f}× ORT fp32{torch} "
            f"on this CPU. 04_evaluate recommends the fastest candidate whose top-1 drop stays within "
            f"evaluate.max_drop_pts (95% upper bound).")


def headline_value_rows(result: dict) -> list[dict]:
    return [{"result": k, "value": v} for k, v in headline_values(result).items()]


def peak_rows(result: dict) -> list[dict]:
    """Where the roofs come from: the clock and its source, MACs per cycle (table or ISA rule), the
    measured GEMM roof."""
    peak, cpu = result.get("peak") or {}, result["cpu"]
    ident = " ".join(str(v) for v in (cpu.get("vendor"), cpu.get("family") and f"family {cpu['family']}",
                                        cpu.get("model_number") is not None and f"model {cpu['model_number']}") if v)
    rows = [{"fact": "clock for the ISA peak", "value": f"{1e3 * peak.get('ghz', 0):.0f} MHz from "
                                                        f"{peak.get('clock_source', 'unknown')}"},
            {"fact": "MACs per cycle per core (fp32 / int8)",
             "value": f"{peak.get('fp32_macs_per_cycle_per_core')} / {peak.get('int8_macs_per_cycle_per_core')} "
                      + (f"({peak['microarchitecture']}: microarchitecture table, {ident})"
                         if peak.get("microarchitecture") else f"(from the ISA flags; {ident or 'CPU'} not in "
                                                                 f"the microarchitecture table)")}]
    roofs = peak.get("measured")
    if roofs:
        rows.append({"fact": "measured GEMM roof (GMAC/s, ONNX Runtime)", "value": "; ".join(
            f"{p} " + ", ".join(f"{t} thread{'s' if t != '1' else ''} {v:.0f}" for t, v in roofs[p].items())
            for p in ("fp32", "int8"))})
    return rows


def roofline_rows(result: dict) -> list[dict]:
    """MAC rate each model reaches against the ISA peak of the cores it used and, beside it, the
    GEMM roof ONNX Runtime measured on the same threads."""
    rows = []
    for r in result["results"]:
        if r["sessions"] != 1 or r["threads"] != max(x["threads"] for x in result["results"] if x["sessions"] == 1):
            continue
        roof = measured_roof_gmac_s(result, r)
        rows.append({"setting": Cell(r["batch"], r["threads"], r["sessions"]).label(), "model": r["model"],
                     "GMAC/s": r["gmac_s"], "ISA peak GMAC/s": r["peak_gmac_s"],
                     "% of ISA peak": 100 * r["peak_fraction"] if r["peak_fraction"] is not None else None,
                     "GEMM roof GMAC/s": roof, "% of GEMM roof": 100 * r["gmac_s"] / roof if roof else None})
    return rows
