"""The run's landing page, ``index.html``: plain HTML and CSS, self-contained, no script.

Top to bottom: the verdict (model, the fp32 vs int8 table with top-1 drop and its interval,
speed-up over fp32 and size), the accuracy-vs-latency and redundancy-vs-depth figures, one
card per notebook (status, duration, link, what it published), and the manifest.
``verdict(run_dir)`` computes the table from the artifacts; ``write_index`` shows it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .jsonio import read_json
from .runfolder import SUMMARY_DIR
from .steps import STEPS

# Figures lifted from the notebooks' published summaries into the verdict, in step order.
HEADLINE_FIGURES = tuple((s.name, key, caption) for s in STEPS for key, caption in s.headline_figures)


def _load(path: Path) -> dict | None:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _speed_cell(bench: dict) -> tuple[dict, str]:
    """Per-model rows of the benchmark's headline setting (batch 8, all cores when measured)."""
    head = bench.get("headline") or {}
    rows = {r["model"]: r for r in bench.get("results", [])
            if r.get("batch") == head.get("batch") and r.get("threads") == head.get("threads")
            and r.get("sessions", 1) == 1}
    label = f"batch {head.get('batch')}, {head.get('threads')} thread(s), {tuple(bench.get('input_shape', []))} input"
    return rows, label


def verdict(run_dir: Path) -> dict:
    """The numbers a reader wants first, from the run's artifacts (missing ones are left out)."""
    art = run_dir / "artifacts"
    export, ev, bench = _load(art / "export.json"), _load(art / "evaluation.json"), _load(art / "benchmark.json")
    speed, speed_label = _speed_cell(bench) if bench else ({}, None)
    names = list((ev or {}).get("models", {})) or [n for n in speed if n != "torch"]
    rows = []
    for name in names:
        acc = (ev or {}).get("models", {}).get(name, {})
        paired = (ev or {}).get("paired", {}).get(name, {})
        onnx = art / ("model.onnx" if name == "fp32" else f"{name}.onnx")
        row = {"model": name, "top-1 %": acc.get("top1"), "top-5 %": acc.get("top5")}
        if name != "fp32":
            ci = paired.get("top1_drop_ci95") or [None, None]
            row.update({"top-1 drop (pts)": paired.get("top1_drop"),
                        "drop 95% CI": f"[{ci[0]:.2f}, {ci[1]:.2f}]" if None not in ci else None,
                        "McNemar p": paired.get("mcnemar_p"), "agreement %": paired.get("agreement")})
        cell = speed.get(name, {})
        row.update({"img/s": cell.get("img_s"), "× fp32": cell.get("ratio_vs_fp32"),
                    "size MB": round(onnx.stat().st_size / 2**20, 2) if onnx.exists() else None})
        rows.append(row)
    return {
        "model": (export or {}).get("name"),
        "params": (export or {}).get("params"),
        "macs": (export or {}).get("macs"),
        "input_size": (export or {}).get("input_size"),
        "preprocess": (ev or {}).get("preprocess") or (export or {}).get("preprocess"),
        "images": ((ev or {}).get("models", {}).get("fp32") or {}).get("n"),
        "speed_setting": speed_label,
        "torch_ratio": ((bench or {}).get("headline") or {}).get("fp32_vs_torch"),
        "rows": rows,
    }


# ---------------------------------------------------------------- showing it

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em;line-height:1.4}
h1{margin-bottom:.1em} .sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.95em} th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600} .failed,.interrupted{color:#c0392b;font-weight:600}
.skipped,.running{color:#8a6d00;font-weight:600}
.verdict{border:2px solid #4c72b0;border-radius:8px;padding:.5em 1.2em;margin:1em 0}
.figs{display:flex;flex-wrap:wrap;gap:1em} .figs figure{flex:1 1 480px;margin:0}
figcaption{color:#555;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}
.card h3{margin:.2em 0} .card img{max-width:100%}
.banner{background:#fde2e1;border:2px solid #c0392b;padding:8px;margin:8px 0}
img{max-width:100%} details pre{background:#f7f7f7;padding:1em;overflow:auto;max-height:30em}
.note{color:#555;font-size:.9em}
"""


def _table(rows: list[dict]) -> str:
    from .plots import html_table

    return html_table(rows, digits=2) if rows else ""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _summary(run_dir: Path, name: str) -> dict:
    return _load(run_dir / "artifacts" / SUMMARY_DIR / f"{name}.json") or {}


def _verdict_html(run_dir: Path, v: dict) -> str:
    e = html.escape
    facts = []
    if v["model"]:
        facts.append(f"<b>{e(v['model'])}</b>")
    if v["params"]:
        facts.append(f"{v['params'] / 1e6:.2f}M params")
    if v["macs"]:
        facts.append(f"{v['macs'] / 1e6:.1f}M MACs at {v['input_size']}px")
    if v["images"]:
        facts.append(f"accuracy on {v['images']:,} images")
    parts = ["<section class='verdict'><h2>Verdict</h2>", f"<p>{' · '.join(facts)}</p>"]
    if v["rows"]:
        parts.append(_table(v["rows"]))
        notes = []
        if v["preprocess"]:
            notes.append(f"Preprocessing: {e(str(v['preprocess']))}.")
        if v["speed_setting"]:
            notes.append(f"Speed: ONNX Runtime on this CPU, {e(v['speed_setting'])}; × fp32 is the paired "
                         f"ratio from the same rounds.")
        if v["torch_ratio"]:
            notes.append(f"ORT fp32 runs {v['torch_ratio']:.2f}× torch eager at that setting.")
        notes.append("Top-1 drop: fp32 minus int8 in points, with a paired bootstrap 95% interval; "
                     "McNemar's exact p says whether the flips are more than noise.")
        parts.append(f"<p class='note'>{' '.join(notes)}</p>")
    else:
        parts.append("<p class='note'>No accuracy or speed results in this run yet.</p>")
    figs = []
    for nb, key, caption in HEADLINE_FIGURES:
        rel = _summary(run_dir, nb).get("figures", {}).get(key)
        if rel and (run_dir / rel).exists():
            figs.append(f"<figure>{_img(run_dir / rel, caption)}<figcaption>{e(caption)}</figcaption></figure>")
    if figs:
        parts.append(f"<div class='figs'>{''.join(figs)}</div>")
    parts.append("</section>")
    return "".join(parts)


def _card(run_dir: Path, name: str, res: dict) -> str:
    e = html.escape
    link = f"<a href='{e(res['html'])}'>{e(name)}</a>" if res.get("html") else e(name)
    note = "; ".join(x for x in (res.get("error"), res.get("note")) if x)
    out = [f"<div class='card'><h3>{link}</h3>",
           f"<p><span class='{e(res['status'])}'>{e(res['status'])}</span> in {res.get('seconds', 0):.1f}s</p>"]
    if note:
        out.append(f"<p class='note'>{e(note)}</p>")
    summary = _summary(run_dir, name)
    values = summary.get("values", {})
    if values:
        out.append(_table([{"result": k, "value": v} for k, v in values.items()]))
    for title, table in summary.get("tables", {}).items():
        out.append(f"<details><summary>{e(title)}</summary>{_table(table)}</details>")
    lifted = {key for nb, key, _ in HEADLINE_FIGURES if nb == name}
    for key, rel in summary.get("figures", {}).items():
        if key not in lifted and (run_dir / rel).exists():
            out.append(_img(run_dir / rel, f"{name} {key}"))
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
    weights = str(model.get("weights"))
    given = manifest.get("weights_given") or weights
    shown = given if given == weights else f"{given} ({Path(weights).name})"
    parts = [f"<h1>ghostlab · {e(profile)}</h1>",
             f"<p class='sub'>{e(str(model.get('name')))} · weights {e(shown)} · "
             f"run <span class='{e(status)}'>{e(status)}</span> · started {e(str(manifest.get('started')))}</p>"]
    if status != "ok":
        parts.append(f"<div class='banner'><b>This run is {e(status)}.</b> "
                     + ("Notebooks are still running." if status == "running" else
                        "Its results are incomplete; the last complete run (if any) was left in place.")
                     + "</div>")
    if model.get("weights") == "random":
        parts.append("<div class='banner'><b>Random weights:</b> accuracy numbers in this run are meaningless.</div>")
    parts.append(_verdict_html(run_dir, verdict(run_dir)))
    cards = [_card(run_dir, name, res) for name, res in manifest.get("notebooks", {}).items()]
    parts.append("<h2>Notebooks</h2><div class='cards'>" + "".join(cards) + "</div>")
    parts.append("<details><summary>manifest.json</summary><pre>"
                 + e(json.dumps(manifest, indent=2)) + "</pre></details>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>ghostlab: {e(profile)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    out = run_dir / "index.html"
    out.write_text(page)
    return out
