"""What notebook 04 shows from an evaluate.Evaluation (or evaluation.json): the rows of its
tables, accuracy beside latency (from benchmark.json), and the values published for the index.
Data in, rows out; no inference here.
"""

from __future__ import annotations

from typing import Any

from .bench import read_result
from .evaluate import REFERENCE_MODEL, TOPK, Evaluation, chance_percent, reference_rows, same_recipe, topk_name

def accuracy_rows(ev: Evaluation) -> list[dict]:
    """Our models, then the published reference rows (when the model is ghostnet_100 on ImageNet);
    each top-k beside what chance reaches (k/C), top-k named top-C when there are only C <= 5 classes."""
    c, topk = ev.num_classes, topk_name(ev.num_classes)
    chance = {"top-1 by chance %": chance_percent(1, c), f"{topk} by chance %": chance_percent(TOPK, c)}

    def row(model: str, top1: float, top5: float, images: int, preprocessing: str) -> dict:
        return {"model": model, "top-1 %": top1, "top-1 by chance %": chance["top-1 by chance %"],
                f"{topk} %": top5, f"{topk} by chance %": chance[f"{topk} by chance %"],
                "images": images, "preprocessing": preprocessing}

    rows = [row(m, a["top1"], a["top5"], a["n"], ev.preprocess if m == REFERENCE_MODEL else "same")
            for m, a in ev.accuracy.items()]
    for r in reference_rows(ev.model_name, ev.num_classes):
        rows.append(row(f"reference: {r['source']}", r["top1"], r["top5"], 50_000, r["preprocessing"]
                        + (" — the same as ours" if same_recipe(r, ev.preprocess_spec) else "")))
    return rows


def change_significance(stats: dict, alpha: float = 0.05) -> str:
    """One phrase: is the fp32 → int8 change in top-1 real (McNemar p < alpha) or noise?"""
    if stats["flips_right_to_wrong"] + stats["flips_wrong_to_right"] == 0:
        return "identical top-1 correctness"
    if stats["mcnemar_p"] < alpha:
        return "real drop" if stats["top1_drop"] > 0 else "real gain"
    return "within noise"


def paired_rows(ev: Evaluation) -> list[dict]:
    """One row per int8 model: how it differs from fp32 on the same images."""
    rows = []
    for m, s in ev.paired.items():
        lo, hi = s["top1_drop_ci95"]
        # numbers stay numbers: plots.html_table formats each by its column (ghostlab.fmt)
        rows.append({"candidate": m, "top-1 drop (pp)": s["top1_drop"], "95% CI (pp)": [lo, hi],
                     "agreement %": s["agreement"], "right→wrong": s["flips_right_to_wrong"],
                     "wrong→right": s["flips_wrong_to_right"], "McNemar p": s["mcnemar_p"],
                     "KL(fp32‖int8)": s["kl_mean"], "verdict": change_significance(s)})
    return rows


def class_loss_rows(ev: Evaluation, model: str | None = None) -> list[dict]:
    """The classes that lose most top-1 under int8 (all variants, or one), worst first."""
    rows = []
    for m, losses in ev.class_losses.items():
        if model is not None and m != model:
            continue
        rows += [{"candidate": m, "class": r["class"], "images": r["images"], "fp32 top-1 %": r["fp32_top1"],
                  "its top-1 %": r["int8_top1"], "drop (pp)": r["drop"], "images lost": r["images_lost"]}
                 for r in losses] or [{"candidate": m, "class": "(no class loses top-1)"}]
    return rows


def drop_interval_rows(ev: Evaluation) -> list[dict]:
    """What ``plots.top1_drop_intervals`` draws."""
    return [{"model": m, "top1_drop": s["top1_drop"], "ci_low": s["top1_drop_ci95"][0],
             "ci_high": s["top1_drop_ci95"][1], "significant": s["mcnemar_p"] < 0.05}
            for m, s in ev.paired.items()]


def data_rows(ev: Evaluation) -> list[dict]:
    """What was evaluated: images, preprocessing, and what happened to calibration images."""
    d = ev.data
    if not d["calibration_from_eval_set"]:
        calib = f"from a separate folder ({d['calibration_root']}): no overlap with these images"
    elif d["exclude_calibration"]:
        calib = (f"drawn from this evaluation set; the {d['calibration_excluded']} calibration images are "
                 f"excluded (evaluate.exclude_calibration: true)")
    else:
        calib = (f"drawn from this evaluation set and NOT excluded: {d['calibration_images']} of these images "
                 f"also set the int8 ranges, so int8 numbers may be slightly optimistic "
                 f"(set evaluate.exclude_calibration: true)")
    rows = [
        {"what": "dataset", "value": f"{d['root']} ({d['layout']} layout, {d['num_classes']} classes)"},
        {"what": "images in the set", "value": d["images"]},
        {"what": "images evaluated", "value": d["evaluated"]},
        {"what": "preprocessing", "value": d["preprocess"]},
        {"what": "calibration images", "value": calib},
    ]
    names = ev.class_names
    if names:  # lets a reader check that labels map to the right names
        shown = "; ".join(f"{i}: {names[i]}" for i in sorted({0, 1, len(names) - 1}) if i < len(names))
        rows.append({"what": "class names", "value": shown + (" …" if len(names) > 3 else "")})
    if d["skipped"]:
        rows.insert(2, {"what": "images skipped (unreadable)", "value": d["skipped"]})
    wall = ev.speed.get("wall_seconds")
    if wall is not None:
        rows.append({"what": "evaluation pass (wall time)",
                     "value": f"{_duration(wall)} for {ev.speed['images']} images through {ev.speed['models']} "
                              f"models, reading included; not a speed comparison (03_benchmark measures speed)"})
    if d["export_preprocess"] and d["export_preprocess"] != d["preprocess"]:
        rows.append({"what": "WARNING", "value": f"01_export checked parity with other preprocessing: "
                                                 f"{d['export_preprocess']}"})
    return rows


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _setting_label(batch: Any, threads: Any, sessions: Any) -> str:
    parts = [f"batch {batch}" if batch is not None else None,
             (f"{threads} thread{'s' if threads != 1 else ''}" if threads else "all cores") if threads is not None else None,
             f"{sessions} sessions" if sessions not in (None, 1) else None]
    return ", ".join(p for p in parts if p)


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (latency, accuracy) pairs: True where no other point is as fast and as accurate, and better in one."""
    return [not any(l2 <= l1 and a2 >= a1 and (l2 < l1 or a2 > a1) for l2, a2 in points) for l1, a1 in points]


def latency_points(accuracy_by_model: dict[str, dict], benchmark: Any) -> list[dict]:
    """Top-1 beside a p50 latency per model, from ``benchmark.json`` read defensively.

    Takes one setting for every model (the benchmark's headline cell when every model has it, else
    batch 1 and one thread, else the setting most models share, smallest batch first), so the
    comparison is like for like and matches the index's table. Measurements
    of models this run did not evaluate (e.g. torch) are left out. [] when nothing fits.
    """
    from .bench import select

    by_setting: dict[tuple, dict[str, float]] = {}
    for r in select(benchmark, sessions=None):
        try:
            p50 = float(r.get("p50_ms"))
        except (TypeError, ValueError):
            continue
        if r.get("model") not in accuracy_by_model or not p50 > 0:
            continue
        key = (r.get("batch"), r.get("threads"), r.get("sessions"))
        by_setting.setdefault(key, {})[r["model"]] = p50

    # the benchmark's headline cell first: the index shows this figure beside its headline table
    head = (benchmark.get("headline") or {}) if isinstance(benchmark, dict) else {}
    headline_key = (head.get("batch"), head.get("threads"), 1)

    def rank(item: tuple) -> tuple:
        (batch, threads, sessions), models = item
        return (-len(models), (batch, threads, sessions or 1) != headline_key, batch != 1, threads != 1,
                sessions not in (None, 1), batch if isinstance(batch, (int, float)) else 1e9)

    if not by_setting:
        return []
    (batch, threads, sessions), lat = min(by_setting.items(), key=rank)
    names = [m for m in accuracy_by_model if m in lat]
    front = pareto_front([(lat[m], accuracy_by_model[m]["top1"]) for m in names])
    setting = _setting_label(batch, threads, sessions)
    shape = benchmark.get("input_shape") if isinstance(benchmark, dict) else None
    if isinstance(shape, list) and shape:
        setting += ", input " + "×".join(str(v) for v in shape)
    return [{"model": m, "latency_ms": lat[m], "top1": accuracy_by_model[m]["top1"], "pareto": f,
             "setting": setting} for m, f in zip(names, front)]


def run_latency_points(run: Any, ev: Evaluation) -> list[dict]:
    """``latency_points`` from the run's ``benchmark.json``; [] when it is missing or unreadable."""
    return latency_points(ev.accuracy, read_result(run.artifact("benchmark.json")))


def summary_values(ev: Evaluation) -> dict:
    """The key numbers for the index page."""
    out: dict[str, Any] = {"images": ev.data["evaluated"]}
    for m, a in ev.accuracy.items():
        out[f"{m}_top1"] = round(a["top1"], 3)
        out[f"{m}_{topk_name(ev.num_classes).replace('-', '')}"] = round(a["top5"], 3)
    out["top1_by_chance"] = round(chance_percent(1, ev.num_classes), 3)
    out[f"{topk_name(ev.num_classes).replace('-', '')}_by_chance"] = round(chance_percent(TOPK, ev.num_classes), 3)
    for m, s in ev.paired.items():
        out[f"{m}_mcnemar_p"] = float(f"{s['mcnemar_p']:.3g}")
    return out


def file_rows(ev: Evaluation) -> list[dict]:
    """The artifacts this step wrote, with sizes."""
    return [{"file": f"artifacts/{p.name}", "KiB": round(p.stat().st_size / 1024, 1)}
            for p in ev.written if p.exists()]
