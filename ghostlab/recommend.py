"""The run's answer: which candidate to ship on this CPU, and why.

The rule (``RULE``): the fastest candidate at the benchmark's headline setting (03,
``bench.headline_cell``) whose top-1 drop against ONNX Runtime fp32 (04, paired on the same images)
has a 95 % bootstrap upper bound within ``evaluate.max_drop_pts``. ORT fp32 is the reference (its
drop is 0 by definition), so it is never the answer on its own: when nothing faster qualifies, the
result says so and names the fastest fp32 candidate. Computed in 04 (``evaluate.run``) and stored as
``evaluation.json``'s ``recommendation``::

    {"candidate": str, "label": str, "runtime": str, "precision": "fp32" | "bf16" | "int8",
     "qualifies": bool,            # false: none qualifies, this is the fastest fp32 candidate
     "img_s": float, "vs_fp32": float, "vs_torch": float | null,   # paired ratios at the headline cell
     "vs_torch_1_thread": float | null,   # the same on one thread each
     "torch_descheduled": bool,           # torch slower on all cores than on one: the text quotes 1 thread
     "top1_drop": float, "top1_drop_ci95": [lo, hi], "images": int, "size_mb": float | null,
     "setting": str, "max_drop_pts": float, "rule": str, "reason": str, "text": str,
     "faster_but_outside": [{"candidate": str, "vs_fp32": float, "top1_drop_upper": float}]}
"""

from __future__ import annotations

from . import fmt

RULE = ("the fastest candidate at the benchmark's headline setting whose top-1 drop against ONNX Runtime fp32 "
        "has a 95% upper bound (paired bootstrap) within {max_drop} pp; none qualifying, the fastest fp32 one")


def recommend(benchmark: dict, accuracy: dict[str, dict], paired: dict[str, dict], candidates: dict[str, dict],
              max_drop: float, reference: str = "fp32") -> dict | None:
    """The recommendation (module docstring) from ``benchmark.json``, 04's ``accuracy`` (candidate ->
    {top1, n}) and ``paired`` (candidate -> paired_stats against ``reference``), and ``candidates``
    (candidate -> ``Candidate.facts()``). None when no evaluated candidate was timed."""
    from .bench import headline_cell, select
    from .bench_report import headline_title

    cell = headline_cell(benchmark)
    pool = [m for m in accuracy if m in cell and m != "torch"]
    if not pool:
        return None

    def upper(m: str) -> float:
        return 0.0 if m == reference else paired[m]["top1_drop_ci95"][1]

    speed = {m: cell[m].get("ratio_vs_fp32") or 0.0 for m in pool}
    ok = [m for m in pool if upper(m) == upper(m) and upper(m) <= max_drop]  # NaN (no bootstrap) fails
    best = max(ok, key=lambda m: speed[m], default=None)
    qualifies = best is not None and best != reference
    if not qualifies:
        fp32 = [m for m in pool if (candidates.get(m, {}).get("precision") or "fp32") == "fp32"] or pool
        best = max(fp32, key=lambda m: speed[m])
    facts, row, stats = candidates.get(best, {}), cell[best], paired.get(best)
    faster = [{"candidate": m, "vs_fp32": speed[m], "top1_drop_upper": upper(m)}
              for m in sorted(pool, key=lambda m: -speed[m]) if speed[m] > speed[best] and m not in ok]
    setting = headline_title(benchmark)
    reason = (f"the fastest candidate at {setting} whose top-1 drop stays within {max_drop:g} pp (95% upper bound)"
              if qualifies else f"no candidate faster than ORT fp32 keeps its top-1 drop within {max_drop:g} pp "
                                f"(95% upper bound), so the fastest fp32 one")
    rec = {
        "candidate": best, "label": facts.get("label", best), "runtime": facts.get("runtime") or row.get("runtime"),
        "precision": facts.get("precision") or row.get("precision"),
        "qualifies": qualifies, "img_s": row.get("img_s"),
        "vs_fp32": row.get("ratio_vs_fp32"), "vs_torch": row.get("ratio_vs_torch"),
        "top1_drop": stats["top1_drop"] if stats else 0.0,
        "top1_drop_ci95": list(stats["top1_drop_ci95"]) if stats else [0.0, 0.0],
        "images": int(accuracy[best]["n"]), "size_mb": (facts.get("size_bytes") or 0) / 1e6 or None,
        "setting": setting, "max_drop_pts": max_drop, "reason": reason,
        "rule": RULE.format(max_drop=max_drop), "faster_but_outside": faster,
        "reference": reference,
        **_torch_one_thread(select, benchmark, best, row),
    }
    rec["text"] = recommendation_text(rec)
    return rec


def _torch_one_thread(select, benchmark: dict, best: str, row: dict) -> dict:
    """The ratio against torch on one thread each, and whether to quote it instead: when torch ran
    clearly slower on all cores than on one (a busy machine descheduling its OpenMP threads, which
    03 warns about), the all-cores ratio flatters every runtime against torch."""
    one = {m: select(benchmark, model=m, batch=row.get("batch"), threads=1) for m in (best, "torch")}
    if not (one[best] and one["torch"]):
        return {"vs_torch_1_thread": None, "torch_descheduled": False}
    torch_all = select(benchmark, model="torch", batch=row.get("batch"), threads=row.get("threads"))
    descheduled = bool(torch_all and row.get("threads", 1) > 1
                       and (torch_all[0].get("img_s") or 0) < 0.8 * (one["torch"][0].get("img_s") or 0))
    return {"vs_torch_1_thread": one[best][0].get("ratio_vs_torch"), "torch_descheduled": descheduled}


def recommendation_text(rec: dict | None) -> str:
    """The recommendation in one sentence, e.g. "Ship OpenVINO bf16: 2.2× ORT fp32, 3.6× torch eager
    on this CPU; top-1 drop +0.10 pp [−0.20, +0.40] on 50,000 images; 20.00 MB"."""
    if not rec:
        return "No recommendation: the benchmark (03) has no timings of the evaluated candidates."

    ratios = [(rec["vs_fp32"], "ORT fp32"), (rec["vs_torch"], "torch eager")]
    if rec.get("torch_descheduled") and rec.get("vs_torch_1_thread"):  # see _torch_one_thread
        ratios[1] = (rec["vs_torch_1_thread"], "torch eager (1 thread each: torch's threads were descheduled "
                                               "on this busy machine)")
    speed = ", ".join(f"{fmt.ratio(v)} {what}" for v, what in ratios if v is not None)
    lo, hi = rec["top1_drop_ci95"]
    # the drop as every table and the index show it (fmt.drop_ci): positive = accuracy lost
    accuracy = (f"top-1 drop {fmt.drop_ci(rec['top1_drop'], lo, hi)} on {fmt.count(rec['images'])} images"
                if rec["candidate"] != rec.get("reference", "fp32") else
                f"the reference, on {fmt.count(rec['images'])} images")
    size = f"; {fmt.size_mb(rec['size_mb'] * 1e6)}" if rec.get("size_mb") else ""
    body = f"{rec['label']}: {speed} on this CPU ({rec['setting']}); {accuracy}{size}"
    if rec["qualifies"]:
        return f"Ship {body}."
    return (f"No candidate faster than ORT fp32 keeps its top-1 drop within {rec['max_drop_pts']:g} pp (95% upper "
            f"bound); the fastest fp32 one is {body}.")


def recommendation_rows(rec: dict | None) -> list[dict]:
    """The recommendation and the faster candidates it passed over, as a small table."""
    if not rec:
        return []
    rows = [{"candidate": rec["candidate"], "what": rec["label"], "× ORT fp32": rec["vs_fp32"],
             "× torch": rec["vs_torch"], "top-1 drop (pp)": rec["top1_drop"],
             "95% upper bound (pp)": rec["top1_drop_ci95"][1],
             "verdict": "recommended" if rec["qualifies"] else "fastest fp32 (none qualifies)"}]
    rows += [{"candidate": f["candidate"], "what": "", "× ORT fp32": f["vs_fp32"], "× torch": None,
              "top-1 drop (pp)": None, "95% upper bound (pp)": f["top1_drop_upper"],
              "verdict": f"faster, but above {rec['max_drop_pts']:g} pp"} for f in rec["faster_but_outside"]]
    return rows
