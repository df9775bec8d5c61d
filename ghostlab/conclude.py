"""Each notebook's answer to its question, in one or two sentences, computed from the run's artifacts.

A notebook ends with ``answer = conclude.<step>(run.artifacts)``, publishes it for the index card and
shows it with ``plots.conclusion(answer)``. Every function reads only the JSON files the steps wrote
(so the sentence cannot disagree with the tables beside it) and formats every number with ``fmt``.
A missing artifact gives a sentence saying what is missing, never an exception.
"""

from __future__ import annotations

from pathlib import Path

from . import fmt
from .jsonio import read_json_dict


def export(artifacts: Path) -> str:
    """01: is the ONNX file the same model?"""
    ex = read_json_dict(Path(artifacts) / "export.json") or {}
    parity = ex.get("parity") or {}
    agree, diff, n = parity.get("top1_agreement"), parity.get("max_abs_diff"), parity.get("n")
    if agree is None:
        return "No parity check was recorded (export.json has none)."
    same = agree == 1 and diff is not None and diff < 1e-3
    return (("Yes: the ONNX file computes the same model. " if same else
             "Not quite: the ONNX file's outputs differ from torch's more than an export should. ")
            + f"On {fmt.count(n)} evaluation images, torch and ONNX Runtime agree on the top-1 class for "
            f"{fmt.accuracy(100 * agree)} of them and their logits differ by at most {fmt.number(diff)}.")


def _calibrations(artifacts: Path) -> list[dict]:
    out = []
    for path in sorted(Path(artifacts).glob("calibration_*.json")):
        doc = read_json_dict(path)
        # an alias (auto that kept no node in fp32) is its base's file: counted once, as the base
        if isinstance(doc, dict) and doc.get("holdout") and not doc.get("alias_of"):
            out.append(doc)
    return out


def calibrate(artifacts: Path) -> str:
    """02: which int8 variant keeps accuracy best, and why one loses."""
    docs = _calibrations(artifacts)
    if not docs:
        return "No int8 variant was built in this run."

    def key(d: dict) -> tuple:
        h = d["holdout"]
        return (h.get("top1_agreement") or 0, -(h.get("mean_kl") or 0))

    best, worst = max(docs, key=key), min(docs, key=key)
    hb = best["holdout"]
    out = [f"int8_{best['variant']} stays closest to fp32: it agrees with fp32's top-1 on "
           f"{fmt.accuracy(100 * hb['top1_agreement'])} of the hold-out images (mean KL {fmt.number(hb['mean_kl'])})"
           + (f", keeping {fmt.count(len(best['nodes_to_exclude']))} nodes in fp32" if best.get("nodes_to_exclude") else "")
           + "."]
    agreement = {d["holdout"].get("top1_agreement") for d in docs}
    if len(agreement) == 1:
        out = [f"Every int8 variant agrees with fp32's top-1 on {fmt.accuracy(100 * agreement.pop())} of the "
               f"hold-out images; int8_{best['variant']}'s outputs are closest (mean KL {fmt.number(hb['mean_kl'])})."]
        return " ".join(out)
    if worst is not best and key(worst) < key(best):
        hw = worst["holdout"]
        tensors = [t for t in worst.get("sqnr") or [] if t.get("quantized") and t.get("local_sqnr_db") is not None]
        weakest = min(tensors, key=lambda t: t["local_sqnr_db"], default=None)
        why = ""
        if weakest:
            role = weakest.get("role")
            why = (f": its noisiest tensor, {weakest.get('tensor') or weakest.get('name')}"
                   + (f" ({role})" if role else "") + f", keeps only {fmt.db(weakest['local_sqnr_db'])} of signal"
                   + (f" against {fmt.db(best['summary'].get('worst_sqnr_db'))} at worst in int8_{best['variant']}"
                      if (best.get("summary") or {}).get("worst_sqnr_db") is not None else ""))
        out.append(f"int8_{worst['variant']} ({worst['method']}) loses most, {fmt.accuracy(100 * hw['top1_agreement'])} "
                   f"agreement{why}.")
    else:
        out.append("Every variant agrees with fp32 equally well on the hold-out images.")
    return " ".join(out)


def _headline_rows(bench: dict) -> list[dict]:
    h = bench.get("headline") or {}
    return [r for r in bench.get("results", []) if r.get("batch") == h.get("batch")
            and r.get("threads") == h.get("threads") and r.get("sessions", 1) == 1]


def setting(bench: dict) -> str:
    """The benchmark's headline setting in words: ``batch 8, 2 threads, 64 px input``."""
    h = bench.get("headline") or {}
    shape = bench.get("input_shape") or []
    t = h.get("threads")
    return (f"batch {h.get('batch')}, {t} thread{'s' if t != 1 else ''}"
            + (f", {shape[-1]} px input" if shape else ""))


def benchmark(artifacts: Path) -> str:
    """03: how fast is each candidate on this CPU, and why int8 wins or loses."""
    bench = read_json_dict(Path(artifacts) / "benchmark.json")
    if not bench:
        return "No benchmark in this run."
    rows = _headline_rows(bench)
    if not rows:
        return "No single-session measurement to compare."
    fastest = max(rows, key=lambda r: r["img_s"])
    where = setting(bench)
    name = fastest["model"]
    out = [f"On this CPU ({where}) the fastest candidate is {name} at {fmt.img_s(fastest['img_s'])}"
           + ("" if name == "fp32" else f", {fmt.faster(fastest.get('ratio_vs_fp32'), 'ONNX Runtime fp32')}")
           + (f"; ONNX Runtime fp32 is {fmt.faster(_ratio(rows, 'fp32', 'ratio_vs_torch'), 'torch eager')}"
              if _ratio(rows, "fp32", "ratio_vs_torch") else "") + "."]
    int8 = [r for r in rows if r.get("precision") == "int8" and r.get("ratio_vs_fp32")]
    if int8:
        best = max(int8, key=lambda r: r["ratio_vs_fp32"])
        if best["ratio_vs_fp32"] < 1:
            sentence = (f"int8 loses here: the best int8 candidate, {best['model']}, is "
                        f"{fmt.faster(best['ratio_vs_fp32'], 'fp32')}")
            where_lost = int8_loss(bench, best["model"])
            out.append(sentence + (f"; {where_lost}" if where_lost else "") + ".")
        elif best["ratio_vs_fp32"] < 1.1:
            out.append(f"int8 gains little here: the best int8 candidate, {best['model']}, is "
                       f"{fmt.faster(best['ratio_vs_fp32'], 'fp32')}.")
        else:
            out.append(f"int8 pays off: {best['model']} is {fmt.faster(best['ratio_vs_fp32'], 'fp32')}.")
    return " ".join(out)


def int8_loss(bench: dict, model: str) -> str | None:
    """Where an int8 model loses its time against fp32, from the benchmark's per-part profile:
    ``most of it on cheap depthwise op (1.80 ms against fp32's 0.186 ms per image, per-part profile in 03)``."""
    parts = ((bench.get("profile") or {}).get("models")) or {}
    lost = _biggest_loss(parts.get(model), parts.get("fp32"))
    if not lost:
        return None
    part, q, f = lost
    return f"most of it on {part} ({fmt.ms(q)} against fp32's {fmt.ms(f)} per image, per-part profile in 03)"


def _ratio(rows: list[dict], model: str, key: str) -> float | None:
    return next((r.get(key) for r in rows if r["model"] == model), None)


def _biggest_loss(quant: dict | None, ref: dict | None) -> tuple[str, float, float] | None:
    """The GhostNet part where the int8 model spends the most extra time over fp32."""
    if not quant or not ref:
        return None
    extra = {p: quant[p] - ref.get(p, 0.0) for p in quant}
    part = max(extra, key=extra.get, default=None)
    return (part, quant[part], ref.get(part, 0.0)) if part and extra[part] > 0 else None


def evaluate(artifacts: Path, max_drop: float | None = None) -> str:
    """04: how accurate is each candidate, and is any int8 drop real?"""
    ev = read_json_dict(Path(artifacts) / "evaluation.json")
    if not ev or not ev.get("models"):
        return "No evaluation in this run."
    fp32 = ev["models"].get("fp32") or {}
    out = [f"fp32 reaches {fmt.accuracy(fp32.get('top1'))} top-1 on {fmt.count(fp32.get('n'))} images."]
    paired = ev.get("paired") or {}
    if paired:
        real = [m for m, s in paired.items() if (s.get("mcnemar_p") or 1) < 0.05]
        worst = max(paired, key=lambda m: paired[m].get("top1_drop") or 0)
        s = paired[worst]
        ci = s.get("top1_drop_ci95") or [None, None]
        drop = fmt.drop_ci(s.get("top1_drop"), *ci)
        if real:
            out.append("The drop is real (McNemar p < 0.05) for " + ", ".join(
                f"{m} ({fmt.drop_ci(paired[m].get('top1_drop'), *(paired[m].get('top1_drop_ci95') or [None, None]))})"
                for m in real) + ".")
        else:
            out.append(f"No int8 model's drop is more than noise: the largest is {worst}'s, {drop} "
                       f"(McNemar p {fmt.p_value(s.get('mcnemar_p'))}).")
        if max_drop is not None:
            within = [m for m, s in paired.items() if (s.get("top1_drop_ci95") or [None, None])[1] is not None
                      and s["top1_drop_ci95"][1] <= max_drop]
            out.append(f"{fmt.count(len(within))} of {fmt.count(len(paired))} stay within "
                       f"{fmt.drop(max_drop).lstrip('+')} of fp32 at the 95 % upper bound"
                       + (f": {', '.join(within)}." if within else "."))
    rec = ev.get("recommendation")
    if isinstance(rec, dict) and rec.get("candidate"):
        out.append(f"Recommended: {rec['candidate']}" + (f" — {rec['reason']}" if rec.get("reason") else "") + ".")
    return " ".join(out)
