"""Runs side by side: ``compare.json`` (the numbers) and ``compare.html`` (the page).

``compare_runs(runs)`` computes, top to bottom:

1. the params that differ between the runs (only those) and the environments that differ
   (package versions, Python, CPU, git commit: from each ``manifest.json``);
2. each run's recommendation (``evaluation.json``'s ``recommendation``; "none recorded" without one);
3. accuracy per model, each run beside the first (the baseline). Where both evaluated the same
   images (same dataset root, same file and label), the change gets the kit's paired statistics
   from the two ``predictions_<model>.csv`` files: flips, exact McNemar p, bootstrap interval
   (``evaluate.paired_stats``);
4. speed per model at the baseline's headline benchmark cell, grouped by CPU: runs on different
   CPUs are never compared with each other. A change is flagged only when the two runs'
   round-to-round inter-quartile ranges of img/s (``round_img_s`` in ``benchmark.json``) do not
   overlap, i.e. beyond the benchmark's own spread;
5. the regressions, in words.

``write_compare(doc, out_dir)`` writes both files; the page is self-contained (no script, no
network) and every text that comes from a file is HTML-escaped.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import fmt
from .errors import RunError
from .jsonio import read_json_dict, write_json

VERSION = 1
ALPHA = 0.05
# Keys that differ between any two runs without meaning anything: the folder name is the run's
# label already, the clock is read when the run starts, the interpreter path is where a venv lives.
IGNORED_PARAMS = ("run.name",)
IGNORED_ENV = ("cpu.mhz", "executable")
CSS_FILE = Path(__file__).resolve().parent / "templates" / "ghostlab_report" / "report.css"  # every report's


@dataclass
class RunInfo:
    """One run as the comparison reads it. A sweep point that failed before its run folder
    existed is a RunInfo with ``path=None``, status ``failed`` and its error."""

    name: str
    path: Path | None = None
    status: str = "ok"
    error: str | None = None
    manifest: dict = field(default_factory=dict)
    evaluation: dict | None = None
    benchmark: dict | None = None


def first_error(manifest: dict) -> str | None:
    """The first notebook error a run recorded, as ``notebook: error``."""
    for name, res in (manifest.get("notebooks") or {}).items():
        if isinstance(res, dict) and res.get("status") not in ("ok", None) and res.get("error"):
            return f"{name}: {res['error']}"
    return None


def load_run(path: str | Path) -> RunInfo:
    """A run folder (complete, failed or interrupted): its manifest and result files."""
    path = Path(path).expanduser().resolve()
    manifest = read_json_dict(path / "manifest.json")
    if manifest is None:
        raise RunError(f"{path} is not a run folder (no readable manifest.json); pass folders that "
                       f"`ghostlab run` wrote, e.g. outputs/demo")
    art = path / "artifacts"
    return RunInfo(name=path.name, path=path, status=str(manifest.get("status", "ok")), error=first_error(manifest),
                   manifest=manifest, evaluation=read_json_dict(art / "evaluation.json"), benchmark=read_json_dict(art / "benchmark.json"))


# ---------------------------------------------------------------- what differs

def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"section.key": value}``; lists stay whole values."""
    if not isinstance(doc, dict):
        return {prefix: doc} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def differing(docs: dict[str, dict], ignore: tuple[str, ...] = ()) -> list[dict]:
    """Keys whose values are not the same in every doc: ``[{"key", "values": {run: value}}]``
    (a key one doc lacks counts as differing; its value is None there)."""
    flat = {name: flatten(doc) for name, doc in docs.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    rows = []
    for key in keys:
        if key in ignore:
            continue
        values = {name: f.get(key) for name, f in flat.items()}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            rows.append({"key": key, "values": values})
    return rows


def environment(manifest: dict) -> dict:
    """What a manifest says about the software and machine."""
    cpu = dict(manifest.get("cpu") or {})
    return {"python": manifest.get("python"), "platform": manifest.get("platform"),
            "packages": manifest.get("packages") or {}, "cpu": cpu, "git": manifest.get("git") or {}}


def cpu_label(manifest: dict) -> str:
    """The CPU as speed groups name it: model and the cores the run could use."""
    cpu = manifest.get("cpu") or {}
    if not cpu:
        return "unknown CPU"
    return f"{cpu.get('model', 'unknown CPU')} · {cpu.get('cores', '?')} cores"


def recommendation(ev: dict | None) -> dict | None:
    rec = (ev or {}).get("recommendation")
    return rec if isinstance(rec, dict) and rec else None


def recommendation_text(rec: dict | None) -> str:
    """One line from whatever the recommendation object holds (candidate first)."""
    if not rec:
        return "none recorded"
    num = lambda k: isinstance(rec.get(k), (int, float)) and not isinstance(rec.get(k), bool)  # noqa: E731
    if "candidate" in rec and num("vs_fp32"):  # recommend.py's layout: the fields a reader compares
        how = ", ".join(str(rec[k]) for k in ("runtime", "precision") if rec.get(k))
        parts = [f"{rec['candidate']}" + (f" ({how})" if how else ""), fmt.faster(rec["vs_fp32"], "ORT fp32")]
        if num("vs_torch"):
            parts[-1] += f", {fmt.faster(rec['vs_torch'], 'torch eager')}"
        if num("top1_drop"):  # in the form every report writes a drop (fmt.drop_ci)
            ci = rec.get("top1_drop_ci95")
            lo, hi = ci if isinstance(ci, list) and len(ci) == 2 else (None, None)
            parts.append(f"top-1 drop {fmt.drop_ci(rec['top1_drop'], lo, hi)}")
        if rec.get("qualifies") is False:
            parts.append("nothing faster keeps the accuracy")
        return " · ".join(parts)
    first = [k for k in ("candidate", "runtime", "precision") if k in rec]

    def show(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} {show(x)}" for k, x in v.items()) + "}"
        return str(v)

    return "; ".join(f"{k} {show(rec[k])}" for k in first + [k for k in rec if k not in first])


# ---------------------------------------------------------------- accuracy

def _predictions(run: RunInfo, model: str) -> dict[tuple[str, str], tuple[int, int]] | None:
    """(dataset root, file) -> (label, top-1) from the run's predictions file; None when absent."""
    from .evaluate import read_predictions_csv

    if run.path is None or not run.evaluation:
        return None
    csv = run.path / "artifacts" / f"predictions_{model}.csv"
    if not csv.exists():
        return None
    root = str((run.evaluation.get("data") or {}).get("root"))
    try:
        rows = read_predictions_csv(csv)
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return {(root, r["file"]): (r["label"], r["pred"][0]) for r in rows if r["pred"]}


def paired_change(base: RunInfo, other: RunInfo, model: str, draws: int = 1000, seed: int = 0) -> dict | None:
    """``evaluate.paired_stats`` of ``model`` from base to other on the images both evaluated
    (same root, file and label); None when they share none or a predictions file is missing.
    ``top1_drop`` > 0 means the other run gets fewer images right."""
    from .evaluate import paired_stats
    from .evaluate_report import change_significance

    a, b = _predictions(base, model), _predictions(other, model)
    if not a or not b:
        return None
    shared = [k for k in a if k in b and a[k][0] == b[k][0]]
    if not shared:
        return None
    labels = np.array([a[k][0] for k in shared], dtype=np.int64)
    stats = paired_stats(labels, np.array([a[k][1] for k in shared]), np.array([b[k][1] for k in shared]),
                         draws=draws, seed=seed)
    stats["images_base"], stats["images_other"] = len(a), len(b)
    stats["verdict"] = change_significance(stats, ALPHA)
    return stats


def accuracy_table(runs: list[RunInfo]) -> list[dict]:
    """Per model: each run's top-1/top-5 and, for every run after the first, the change."""
    base = runs[0]
    models = list(dict.fromkeys(m for r in runs for m in ((r.evaluation or {}).get("models") or {})))
    draws = int(((base.manifest.get("params") or {}).get("evaluate") or {}).get("bootstrap") or 1000)
    seed = int(((base.manifest.get("params") or {}).get("evaluate") or {}).get("seed") or 0)
    out = []
    for m in models:
        per_run = {}
        for r in runs:
            acc = ((r.evaluation or {}).get("models") or {}).get(m)
            if isinstance(acc, dict):
                per_run[r.name] = {k: acc.get(k) for k in ("top1", "top5", "n")}
        changes = []
        for r in runs[1:]:
            if base.name not in per_run or r.name not in per_run:
                continue
            a, b = per_run[base.name]["top1"], per_run[r.name]["top1"]
            paired = paired_change(base, r, m, draws, seed)
            regression = bool(paired and paired["mcnemar_p"] < ALPHA and paired["top1_drop"] > 0)
            changes.append({"from": base.name, "to": r.name,
                            "top1_change": b - a if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None,
                            "paired": paired, "regression": regression})
        out.append({"model": m, "runs": per_run, "changes": changes})
    return out


# ---------------------------------------------------------------- speed

def _quartiles(values: list) -> list[float] | None:
    vals = [float(v) for v in values or [] if isinstance(v, (int, float))]
    if not vals:
        return None
    q25, q75 = np.percentile(vals, [25, 75])
    return [float(q25), float(q75)]


def _headline_cell(bench: dict) -> tuple[int | None, int | None]:
    head = bench.get("headline") or {}
    return head.get("batch"), head.get("threads")


def speed_row(bench: dict, model: str, batch: int | None, threads: int | None) -> dict | None:
    """One model's measurement at (batch, threads, one session): img/s, its round IQR, × fp32."""
    for r in bench.get("results") or []:
        if (isinstance(r, dict) and r.get("model") == model and r.get("batch") == batch
                and r.get("threads") == threads and r.get("sessions", 1) == 1):
            return {"img_s": r.get("img_s"), "img_s_iqr": _quartiles(r.get("round_img_s")),
                    "ratio_vs_fp32": r.get("ratio_vs_fp32"), "ratio_vs_fp32_iqr": r.get("ratio_vs_fp32_iqr"),
                    "p50_ms": r.get("p50_ms")}
    return None


def speed_change(a: dict, b: dict) -> dict:
    """b against a: the img/s ratio and whether it lies beyond both runs' round-to-round spread."""
    ratio = b["img_s"] / a["img_s"] if a.get("img_s") and b.get("img_s") else None
    qa, qb = a.get("img_s_iqr"), b.get("img_s_iqr")
    direction = "within spread"
    if qa and qb:
        if qb[1] < qa[0]:
            direction = "slower"
        elif qb[0] > qa[1]:
            direction = "faster"
    elif ratio is not None:
        direction = "no spread recorded"
    return {"ratio": ratio, "direction": direction, "regression": direction == "slower"}


def speed_groups(runs: list[RunInfo]) -> list[dict]:
    """Runs with a benchmark, grouped by CPU; in each group every run against the group's first,
    at the first run's headline cell (batch, threads) and input shape."""
    groups: dict[str, list[RunInfo]] = {}
    for r in runs:
        if r.benchmark and r.benchmark.get("results"):
            groups.setdefault(cpu_label(r.manifest), []).append(r)
    out = []
    for cpu, members in groups.items():
        first = members[0]
        batch, threads = _headline_cell(first.benchmark)
        shape = first.benchmark.get("input_shape")
        models = list(dict.fromkeys(row.get("model") for r in members for row in r.benchmark["results"]
                                    if isinstance(row, dict) and isinstance(row.get("model"), str)))
        rows = []
        for m in models:
            per_run = {}
            for r in members:
                if r.benchmark.get("input_shape") != shape:
                    continue
                row = speed_row(r.benchmark, m, batch, threads)
                if row and row["img_s"]:
                    per_run[r.name] = row
            changes = [{"from": first.name, "to": r.name, **speed_change(per_run[first.name], per_run[r.name])}
                       for r in members[1:] if first.name in per_run and r.name in per_run]
            if per_run:
                rows.append({"model": m, "runs": per_run, "changes": changes})
        out.append({"cpu": cpu, "runs": [r.name for r in members], "batch": batch, "threads": threads,
                    "input_shape": shape, "models": rows})
    return out


# ---------------------------------------------------------------- the comparison

def regressions(accuracy: list[dict], speed: list[dict]) -> list[str]:
    """Every regression as a sentence."""
    out = []
    for row in accuracy:
        for c in row["changes"]:
            if c["regression"]:
                p = c["paired"]
                lo, hi = p["top1_drop_ci95"]
                out.append(f"Accuracy: {row['model']} top-1 falls {p['top1_drop']:.2f} points from {c['from']} "
                           f"to {c['to']} on {p['n']} shared images ({p['flips_right_to_wrong']} right→wrong, "
                           f"{p['flips_wrong_to_right']} wrong→right, McNemar p {p['mcnemar_p']:.2g}, "
                           f"95% interval of the drop [{lo:.2f}, {hi:.2f}]).")
    for g in speed:
        for row in g["models"]:
            for c in row["changes"]:
                if c["regression"]:
                    out.append(f"Speed: {row['model']} runs at {c['ratio']:.2f}× the img/s in {c['to']} as in "
                               f"{c['from']} (batch {g['batch']}, {g['threads']} thread(s), {g['cpu']}), "
                               f"beyond both runs' round-to-round spread.")
    return out


def compare_runs(runs: list[RunInfo]) -> dict:
    """The ``compare.json`` document for ``runs`` (the first is the baseline)."""
    if not runs:
        raise RunError("nothing to compare: pass at least one run folder")
    names = [r.name for r in runs]
    for i, r in enumerate(runs):  # labels must be unique: two folders can share a name
        if names.count(r.name) > 1:
            r.name = f"{r.name} #{names[:i + 1].count(r.name)}"
    with_manifest = [r for r in runs if r.manifest]
    params = differing({r.name: r.manifest.get("params") or {} for r in with_manifest}, IGNORED_PARAMS)
    env = differing({r.name: environment(r.manifest) for r in with_manifest}, IGNORED_ENV)
    accuracy = accuracy_table(runs) if runs[0].evaluation else []
    speed = speed_groups(runs)
    return {
        "version": VERSION,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "baseline": runs[0].name,
        "runs": [{"name": r.name, "path": str(r.path) if r.path else None, "status": r.status, "error": r.error,
                  "profile": r.manifest.get("profile"),
                  "model": ((r.manifest.get("params") or {}).get("model") or {}).get("name"),
                  "cpu": cpu_label(r.manifest) if r.manifest else None,
                  "commit": ((r.manifest.get("git") or {}).get("commit") or "")[:10] or None,
                  "evaluated": bool(r.evaluation), "benchmarked": bool(r.benchmark),
                  "recommendation": recommendation(r.evaluation)} for r in runs],
        "params_differ": params,
        "environment_differ": env,
        "accuracy": accuracy,
        "speed": speed,
        "cpus_differ": len(speed) > 1,
        "regressions": regressions(accuracy, speed),
        "failed": [{"run": r.name, "error": r.error} for r in runs if r.status != "ok"],
    }


def default_out(paths: list[Path]) -> Path:
    """``compare-<names>`` beside the first run folder (short when there are many runs)."""
    names = [re.sub(r"[^A-Za-z0-9_.+=-]", "_", Path(p).name) for p in paths]
    label = "-".join(names)
    if len(label) > 80:
        digest = hashlib.sha256("\0".join(map(str, paths)).encode()).hexdigest()[:6]
        label = f"{names[0][:40]}-and-{len(names) - 1}-more-{digest}"
    return Path(paths[0]).expanduser().resolve().parent / f"compare-{label}"


def write_compare(doc: dict, out_dir: str | Path) -> Path:
    """``compare.json`` and ``compare.html`` into ``out_dir``; returns the page."""
    out_dir = Path(out_dir).expanduser().resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot write the comparison to {out_dir}: {err.strerror}; pass --out DIR") from None
    write_json(out_dir / "compare.json", doc)
    page = out_dir / "compare.html"
    tmp = out_dir / ".compare.html.tmp"
    tmp.write_text(render(doc, out_dir))
    tmp.replace(page)
    return page


def compare(paths: list[str | Path], out: str | Path | None = None) -> tuple[Path, dict]:
    """Load the run folders, compare them (the first is the baseline), write; returns (page, doc)."""
    doc = compare_runs([load_run(p) for p in paths])
    return write_compare(doc, out or default_out([Path(p) for p in paths])), doc


# ---------------------------------------------------------------- showing it

def _show(value: Any) -> str:
    """A param or environment value as written (compact JSON), so no column format reshapes it."""
    if value is None:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _diff_rows(diff: list[dict], names: list[str]) -> list[dict]:
    return [{"key": d["key"], **{n: _show(d["values"].get(n)) for n in names if n in d["values"]}} for d in diff]


def summary_sentences(doc: dict) -> list[str]:
    """The top of the page: regressions, failures and what could not be compared, in words."""
    out = list(doc["regressions"])
    for f in doc["failed"]:
        out.append(f"{f['run']} did not complete: {f['error'] or 'no error recorded (see its index page)'}.")
    accuracy = any(c["paired"] for row in doc["accuracy"] for c in row["changes"])
    speed = any(row["changes"] for g in doc["speed"] for row in g["models"])
    if len(doc["runs"]) > 1 and not doc["regressions"]:
        checked = [text for done, text in ((accuracy, "no top-1 change is significant on shared images (exact "
                                                      "McNemar p < 0.05)"),
                                           (speed, "no speed change lies beyond the benchmarks' round-to-round "
                                                   "spread")) if done]
        out.insert(0, f"No regression: {' and '.join(checked)}." if checked else
                   "Nothing to test for a regression: no two runs have paired accuracy or speed on the same CPU.")
    unpaired = sorted({c["to"] for row in doc["accuracy"] for c in row["changes"] if c["paired"] is None})
    if unpaired:
        out.append(f"Not tested for accuracy (no images in common with {doc['baseline']}): {', '.join(unpaired)}.")
    if doc["cpus_differ"]:
        groups = "; ".join(f"{g['cpu']}: {', '.join(g['runs'])}" for g in doc["speed"])
        out.append(f"Speed is compared only between runs on the same CPU: {groups}.")
    return out


def _accuracy_html(doc: dict, names: list[str]) -> str:
    if not doc["accuracy"]:
        return f"<p class='note'>{html.escape(doc['baseline'])} recorded no evaluation: nothing to compare.</p>"
    top = [{"model": row["model"], **{f"{n} top-1 %": (row["runs"].get(n) or {}).get("top1") for n in names}}
           for row in doc["accuracy"]]
    parts = [_table(top, "Top-1 per run (%)")]
    changes = []
    for row in doc["accuracy"]:
        for c in row["changes"]:
            p = c["paired"] or {}
            ci = p.get("top1_drop_ci95") or [None, None]
            changes.append({"model": row["model"], "run": c["to"], "top-1 change (pts)": c["top1_change"],
                            "shared images": p.get("n"), "right→wrong": p.get("flips_right_to_wrong"),
                            "wrong→right": p.get("flips_wrong_to_right"), "McNemar p": p.get("mcnemar_p"),
                            "drop 95% CI (pts)": ci if None not in ci else None,
                            "verdict": ("REGRESSION: " if c["regression"] else "") + p.get(
                                "verdict", "not paired: no images in common")})
    if changes:
        parts.append(_table(changes, f"Each run against {doc['baseline']}, paired on the images both evaluated"))
    return "".join(parts)


def _speed_html(doc: dict) -> str:
    if not doc["speed"]:
        return "<p class='note'>No run recorded a benchmark.</p>"
    parts = []
    for g in doc["speed"]:
        shape = "×".join(str(v) for v in g.get("input_shape") or [])
        parts.append(f"<h3>{html.escape(g['cpu'])}</h3><p class='note'>batch {html.escape(str(g['batch']))}, "
                     f"{html.escape(str(g['threads']))} thread(s), input {html.escape(shape)}; img/s is the median "
                     f"over rounds, [q25, q75] its spread; × fp32 is paired within each run's rounds.</p>")
        rows = []
        for row in g["models"]:
            r = {"model": row["model"]}
            for n in g["runs"]:
                m = row["runs"].get(n)
                r[f"{n} img/s"] = m["img_s"] if m else None
                r[f"{n} spread"] = (m or {}).get("img_s_iqr")
                r[f"{n} × fp32"] = (m or {}).get("ratio_vs_fp32")
            for c in row["changes"]:
                r[f"{c['to']} vs {c['from']} (×)"] = c["ratio"]
                r[f"{c['to']} change"] = ("REGRESSION: " if c["regression"] else "") + c["direction"]
            rows.append(r)
        parts.append(_table(rows))
    return "".join(parts)


def _table(rows: list[dict], caption: str | None = None) -> str:
    from .plots import html_table

    return html_table(rows, digits=2, caption=caption) if rows else ""


def render(doc: dict, out_dir: Path) -> str:
    """The comparison page: self-contained HTML, no script; every text from a file escaped."""
    import os

    e = html.escape
    names = [r["name"] for r in doc["runs"]]
    links = []
    for r in doc["runs"]:
        if r["path"] and (Path(r["path"]) / "index.html").exists():
            href = os.path.relpath(Path(r["path"]) / "index.html", out_dir)
            links.append(f"<a href='{e(href)}'>{e(r['name'])}</a>")
        else:
            links.append(e(r["name"]))
    parts = [f"<header class='gl-header'><h1>ghostlab · compare</h1><nav class='gl-nav'>{''.join(links)}</nav>"
             f"<p class='sub'>{len(names)} run(s) · baseline {e(doc['baseline'])} · written {e(doc['created'])}</p>"
             f"</header>"]
    status = "failed" if doc["regressions"] or doc["failed"] else "ok"
    items = "".join(f"<li>{e(s)}</li>" for s in summary_sentences(doc))
    parts.append(f"<section class='verdict'><h2 class='{status}'>"
                 f"{'Regression' if doc['regressions'] else 'What changed'}</h2><ul>{items}</ul></section>")
    runs = [{"run": r["name"], "status": r["status"], "profile": r["profile"], "model": r["model"], "CPU": r["cpu"],
             "commit": r["commit"], "recommendation": recommendation_text(r["recommendation"]),
             "error": r["error"] or ""} for r in doc["runs"]]
    parts.append("<h2>Runs</h2>" + _table(runs))
    parts.append("<h2>Params that differ</h2>" + (_table(_diff_rows(doc["params_differ"], names)) or
                                                    "<p class='note'>None: every run used the same params.</p>"))
    parts.append("<h2>Environments that differ</h2>" + (
        _table(_diff_rows(doc["environment_differ"], names)) or
        "<p class='note'>None: same packages, Python, CPU and commit.</p>"))
    parts.append("<h2>Accuracy</h2>" + _accuracy_html(doc, names))
    parts.append("<h2>Speed, grouped by CPU</h2>" + _speed_html(doc))
    parts.append("<p class='note'>Accuracy changes are paired on the images both runs evaluated (same dataset, "
                 "file and label): flips, exact McNemar p and a bootstrap 95% interval of the top-1 drop, as in "
                 "04_evaluate. A speed change is flagged only when the two runs' [q25, q75] img/s ranges over "
                 "their benchmark rounds do not overlap; runs on different CPUs are never compared.</p>")
    title = f"ghostlab: compare {', '.join(names)}"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{e(title)}</title><style>{CSS_FILE.read_text()}</style></head><body><main>"
            + "\n".join(parts) + "</main></body></html>")
