"""The run's landing page, ``index.html``: plain HTML and CSS, self-contained, no script.

Top to bottom: the run's facts (date, commit, CPU, runtimes) and, for a demo or random-weights run,
the banner every page carries; the verdict in words (what to ship and why: ``evaluation.json``'s
``recommendation`` when 04 wrote one, else a sentence computed here by the same rule), the table
behind it (every candidate's accuracy, drop and interval, speed at one stated setting, size), the
headline figures (click for full size), one card per notebook, and the manifest.
``verdict(run_dir)`` computes from the artifacts; ``write_index`` shows it. Every number goes
through ``fmt``, so it reads the same here as on the notebook page it comes from.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from . import conclude, fmt
from .config import EvaluateParams
from .jsonio import read_json, read_json_dict
from .runfolder import SUMMARY_DIR, facts_html, honesty_banner
from .steps import STEPS

# Figures lifted from the notebooks' published summaries into the verdict, in step order.
HEADLINE_FIGURES = tuple((s.name, key, caption) for s in STEPS for key, caption in s.headline_figures)


DEFAULT_MAX_DROP_PTS = EvaluateParams().max_drop_pts  # when the run's params predate the key


def _speed_cell(bench: dict) -> tuple[dict, str]:
    """Per-candidate rows of the benchmark's headline setting, and that setting in words."""
    from .bench import headline_cell

    head = bench.get("headline") or {}
    rows = headline_cell(bench)
    shape = bench.get("input_shape") or []
    threads = head.get("threads")
    label = (f"batch {head.get('batch')}, {threads} thread{'s' if threads != 1 else ''}"
             + (f", {shape[-1]} px input" if shape else ""))
    return rows, label


def _size_bytes(art: Path, name: str, bench: dict | None) -> float | None:
    """The candidate's size as 03 reports it (bench knows an OpenVINO IR is .xml + .bin), else its file."""
    facts = ((bench or {}).get("models") or {}).get(name) or {}
    if facts.get("size_mb") is not None:
        return facts["size_mb"] * 1e6
    path = art / ("model.onnx" if name == "fp32" else f"{name}.onnx")
    return path.stat().st_size if path.is_file() else None


def verdict(run_dir: Path) -> dict:
    """The numbers a reader wants first, from the run's artifacts (missing ones are left out), and
    the verdict in words (``sentences``)."""
    art = run_dir / "artifacts"
    export, ev, bench = read_json_dict(art / "export.json"), read_json_dict(art / "evaluation.json"), read_json_dict(art / "benchmark.json")
    manifest = read_json_dict(run_dir / "manifest.json") or {}
    speed, speed_label = _speed_cell(bench) if bench else ({}, None)
    names = list((ev or {}).get("models", {})) or [n for n in speed if n != "torch"]
    rows = []
    for name in names:
        acc = (ev or {}).get("models", {}).get(name, {})
        paired = (ev or {}).get("paired", {}).get(name, {})
        cell = speed.get(name, {})
        row = {"candidate": name, "top-1 %": acc.get("top1"),
               "top-1 drop (pp)": paired.get("top1_drop"), "95% CI (pp)": paired.get("top1_drop_ci95"),
               "McNemar p": paired.get("mcnemar_p"),
               "p50 ms": cell.get("p50_ms"), "img/s": cell.get("img_s"),
               "× faster than fp32": cell.get("ratio_vs_fp32"),
               "size (MB)": (lambda b: None if b is None else b / 1e6)(_size_bytes(art, name, bench))}
        rows.append(row)
    max_drop = ((manifest.get("params") or {}).get("evaluate") or {}).get("max_drop_pts", DEFAULT_MAX_DROP_PTS)
    return {
        "model": (export or {}).get("name"),
        "params": (export or {}).get("params"),
        "input_size": (export or {}).get("input_size"),
        "preprocess": (ev or {}).get("preprocess") or (export or {}).get("preprocess"),
        "images": ((ev or {}).get("models", {}).get("fp32") or {}).get("n"),
        "top1_by_chance": (((ev or {}).get("top_k") or {}).get("chance_percent") or {}).get("top1"),
        "num_classes": (ev or {}).get("num_classes"),
        "speed_setting": speed_label,
        "speed_size": ((bench or {}).get("input_shape") or [None])[-1],
        "torch_ratio": ((bench or {}).get("headline") or {}).get("fp32_vs_torch"),
        "rows": rows,
        "max_drop": max_drop,
        "recommendation": (ev or {}).get("recommendation") or None,
        "sentences": verdict_sentences(rows, (ev or {}).get("recommendation"), max_drop, speed_label,
                                       ((bench or {}).get("headline") or {}).get("fp32_vs_torch"), bench),
    }


def _acceptable(row: dict, max_drop: float) -> bool:
    """fp32 itself, or an int8/other candidate whose top-1 drop's 95 % upper bound is within ``max_drop``."""
    if row["candidate"] == "fp32":
        return True
    ci = row.get("95% CI (pp)") or [None, None]
    bound = ci[1] if ci[1] is not None else row.get("top-1 drop (pp)")
    return bound is not None and bound == bound and bound <= max_drop


def verdict_sentences(rows: list[dict], recommendation: dict | None, max_drop: float,
                      setting: str | None, fp32_vs_torch: float | None, bench: dict | None = None) -> list[str]:
    """What to ship and why, in two or three sentences (plain text; numbers in ``fmt``'s forms).

    The pick is the recommendation 04 recorded when there is one; otherwise the same rule computed
    here: the fastest candidate at the headline setting whose drop's 95 % upper bound is within
    ``max_drop`` percentage points."""
    by_name = {r["candidate"]: r for r in rows}
    timed = [r for r in rows if r.get("img/s") is not None]
    if not rows:
        return ["No accuracy or speed results in this run yet."]
    rec_name = (recommendation or {}).get("candidate") if isinstance(recommendation, dict) else None
    if rec_name:
        pick = by_name.get(rec_name, {"candidate": rec_name})
    elif timed:
        ok = [r for r in timed if _acceptable(r, max_drop)]
        pick = max(ok or timed, key=lambda r: r["img/s"])
    else:
        pick = None
    out = []
    limit = f"within {fmt.drop(max_drop).lstrip('+')} of fp32's top-1 (95 % upper bound)"
    if pick is None:
        best = max(rows, key=lambda r: r.get("top-1 %") or -1)
        return [f"No speed measured in this run: by accuracy alone, {best['candidate']} is best "
                f"({fmt.accuracy(best.get('top-1 %'))} top-1)."]
    name = pick["candidate"]
    where = f" at {setting}" if setting else ""
    if name == "fp32":
        faster = [r for r in timed if r["candidate"] != "fp32" and (r.get("× faster than fp32") or 0) > 1]
        why = ("no int8 candidate is faster than fp32 on this CPU" if not faster else
               "the candidates that are faster lose more accuracy than allowed (" + ", ".join(
                   f"{r['candidate']} {fmt.drop_ci(r.get('top-1 drop (pp)'), *(r.get('95% CI (pp)') or [None, None]))}"
                   for r in faster) + ")")
        out.append(f"Ship {name} (ONNX Runtime, the unquantized model): {why}"
                   + (f"; it runs at {fmt.img_s(pick.get('img/s'))}{where}." if pick.get("img/s") else "."))
        slower = [r for r in timed if r["candidate"] not in ("fp32", "torch")]
        if slower and not faster:
            best = max(slower, key=lambda r: r.get("× faster than fp32") or 0)
            why = conclude.int8_loss(bench or {}, best["candidate"])
            out.append(f"The best int8 model, {best['candidate']}, is {fmt.faster(best.get('× faster than fp32'), 'fp32')}"
                       + (f", {why}." if why else "."))
    else:
        speed = pick.get("× faster than fp32")
        acc = fmt.drop_ci(pick.get("top-1 drop (pp)"), *(pick.get("95% CI (pp)") or [None, None]))
        reason = (recommendation or {}).get("reason") if isinstance(recommendation, dict) else None
        label = (recommendation or {}).get("label") if isinstance(recommendation, dict) else None
        shown = f"{name} ({label})" if label and label != name and "(" not in label else (
            f"{name} — {label}" if label and label != name else name)
        out.append(f"Ship {shown}: " + (f"{reason}. " if reason else
                   f"it is the fastest candidate whose accuracy stays {limit}. ")
                   + f"It is {fmt.faster(speed, 'fp32')}{where}, with top-1 {fmt.accuracy(pick.get('top-1 %'))}"
                   + (f" (drop {acc})." if pick.get("top-1 drop (pp)") is not None else "."))
        fp32 = by_name.get("fp32", {})
        if pick.get("size (MB)") and fp32.get("size (MB)") and fmt.size_mb(pick["size (MB)"] * 1e6) != fmt.size_mb(
                fp32["size (MB)"] * 1e6):  # same size (bf16, f32 hints): nothing to say
            out.append(f"Its file is {fmt.size_mb(pick['size (MB)'] * 1e6)} against fp32's "
                       f"{fmt.size_mb(fp32['size (MB)'] * 1e6)}.")
    if fp32_vs_torch:
        out.append(f"ONNX Runtime fp32 is {fmt.faster(fp32_vs_torch, 'torch eager')} at the same setting.")
    return out


# ---------------------------------------------------------------- showing it

_CSS_FILE = Path(__file__).resolve().parent / "templates" / "ghostlab_report" / "report.css"


def _table(rows: list[dict], caption: str | None = None) -> str:
    from .tables import html_table

    return html_table(rows, caption=caption) if rows else ""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _summary(run_dir: Path, name: str) -> dict:
    return read_json_dict(run_dir / "artifacts" / SUMMARY_DIR / f"{name}.json") or {}


def _figure(run_dir: Path, nb: str, key: str, caption: str, link: bool = True) -> str:
    """A published figure that opens full size: a link to the image file itself."""
    summary = _summary(run_dir, nb)
    rel = summary.get("figures", {}).get(key)
    if not rel or not (run_dir / rel).exists():
        return ""
    e = html.escape
    alt = summary.get("figure_alt", {}).get(key) or caption
    img = _img(run_dir / rel, alt)
    inner = f"<a href='{e(rel)}' title='open full size'>{img}</a>" if link else img
    return (f"<figure>{inner}<figcaption>{e(caption)} — from <a href='{e(nb)}.html'>{e(nb)}</a> "
            f"(click the figure for full size)</figcaption></figure>")


def _verdict_html(run_dir: Path, v: dict) -> str:
    e = html.escape
    facts = []
    if v["model"]:
        facts.append(f"<b>{e(v['model'])}</b>")
    if v["params"]:
        facts.append(f"{e(fmt.count(v['params']))} parameters")  # as 01's model card shows it
    if v["images"]:
        facts.append(f"accuracy on {e(fmt.count(v['images']))} images at {e(str(v['input_size']))} px")
    if v.get("top1_by_chance"):  # what guessing reaches: 25 % top-1 on 4 classes is no result
        facts.append(f"Top-1 by chance: {e(fmt.accuracy(v['top1_by_chance']))} "
                     f"(1 of {round(100 / v['top1_by_chance'])} classes)")
    if v.get("speed_size") and v["input_size"] and v["speed_size"] != v["input_size"]:
        facts.append(f"<b>speed measured at {v['speed_size']} px, not at the {v['input_size']} px of the accuracy</b>")
    parts = ["<section class='verdict'><h2>Verdict</h2>",
             "<p class='words'>" + " ".join(e(s) for s in v["sentences"]) + "</p>",
             f"<p>{' · '.join(facts)}</p>"]
    if v["rows"]:
        caption = (f"Every candidate: accuracy from 04_evaluate; speed from 03_benchmark at {v['speed_setting']}"
                   if v["speed_setting"] else "Every candidate: accuracy from 04_evaluate")
        parts.append(_table(v["rows"], caption=caption))
        notes = []
        if v["preprocess"]:
            notes.append(f"Preprocessing: {e(str(v['preprocess']))}.")
        notes.append("Top-1 drop: fp32 minus the candidate, in percentage points (pp), with a paired bootstrap "
                     "95 % interval; McNemar's exact p says whether the flips are more than noise. "
                     "× faster than fp32: throughput over fp32's in the same rounds (> 1: faster). "
                     "Sizes in MB (10^6 bytes).")
        parts.append(f"<p class='note'>{' '.join(notes)}</p>")
    figs = [_figure(run_dir, nb, key, caption) for nb, key, caption in HEADLINE_FIGURES]
    figs = [f for f in figs if f]
    if figs:
        parts.append(f"<div class='figs'>{''.join(figs)}</div>")
    parts.append("</section>")
    return "".join(parts)


def _card(run_dir: Path, name: str, res: dict) -> str:
    e = html.escape
    link = f"<a href='{e(res['html'])}'>{e(name)}</a>" if res.get("html") else e(name)
    note = "; ".join(x for x in (res.get("error"), res.get("note")) if x)
    out = [f"<div class='card'><h3>{link}</h3>",
           f"<p><span class='{e(res['status'])}'>{e(res['status'])}</span> in "
           f"{e(fmt.seconds(res.get('seconds', 0)))}</p>"]
    if note:
        out.append(f"<p class='note'>{e(note)}</p>")
    summary = _summary(run_dir, name)
    values = dict(summary.get("values", {}))
    answer = values.pop("conclusion", None)
    if answer:
        out.append(f"<p class='answer'>{e(str(answer))}</p>")
    if values:
        out.append(_table([{"result": fmt.label(k), "value": fmt.value(v, k)} for k, v in values.items()]))
    for title, table in summary.get("tables", {}).items():
        out.append(f"<details><summary>{e(title)}</summary>{_table(table)}</details>")
    lifted = {key for nb, key, _ in HEADLINE_FIGURES if nb == name}
    for key in summary.get("figures", {}):
        if key not in lifted:
            out.append(_figure(run_dir, name, key, fmt.label(key)))
    out.append("</div>")
    return "".join(out)


def write_index(run_dir: Path) -> Path:
    """index.html from manifest.json and the artifacts; self-contained, no network, no script."""
    manifest = read_json(run_dir / "manifest.json")
    e = html.escape
    params = manifest.get("params", {})
    model = params.get("model", {})
    status = manifest.get("status", "ok")
    profile = str(manifest.get("profile"))
    name = (params.get("run") or {}).get("name") or profile
    parts = [f"<header class='gl-header'><h1>ghostlab · {e(name)}</h1>",
             f"<p class='sub'>{e(str(model.get('name')))} · run <span class='{e(status)}'>{e(status)}</span></p>",
             facts_html(manifest, params),
             honesty_banner(params, manifest.get("weights_given")),
             "</header>"]
    if status != "ok":
        parts.append(f"<div class='gl-banner'><b>This run is {e(status)}.</b> "
                     + ("Notebooks are still running." if status == "running" else
                        "Its results are incomplete; the last complete run (if any) was left in place.")
                     + "</div>")
    parts.append(_verdict_html(run_dir, verdict(run_dir)))
    cards = [_card(run_dir, nb, res) for nb, res in manifest.get("notebooks", {}).items()]
    parts.append("<h2>Notebooks</h2><div class='cards'>" + "".join(cards) + "</div>")
    parts.append("<details><summary>manifest.json</summary><pre>"
                 + e(json.dumps(manifest, indent=2)) + "</pre></details>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>ghostlab: {e(name)}</title><style>{_CSS_FILE.read_text()}</style></head><body><main>"
            + "\n".join(parts) + "</main></body></html>")
    out = run_dir / "index.html"
    out.write_text(page)
    return out
