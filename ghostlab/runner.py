"""Execute the notebooks with papermill, render HTML reports, write index and manifest.

``run_notebooks(params)`` reads top to bottom as the pipeline: pick notebooks, prepare
the demo assets, then for each notebook: check its upstream, execute, render, record.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import system
from .config import Params, dump_params
from .errors import RunError
from .runfolder import SUMMARY_DIR, read_json, write_json

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
NOTEBOOK_DIR = PROJECT_DIR / "notebooks"
KERNEL_NAME = "ghostlab-python"

# Which notebooks read another's artifacts: a notebook is skipped when one of these failed.
REQUIRES = {
    "02_calibrate": ("01_export",),
    "03_benchmark": ("01_export", "02_calibrate"),
    "04_evaluate": ("01_export", "02_calibrate"),
}


@dataclass
class NotebookResult:
    name: str
    status: str  # ok | failed | skipped | interrupted
    seconds: float = 0.0
    error: str | None = None
    html: str | None = None


def list_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(available: list[Path], only: list[str] | None) -> list[Path]:
    """``only`` entries match by full stem (01_export), number (01) or name (export)."""
    if not only:
        return available
    chosen = []
    for want in only:
        hits = [p for p in available if want in (p.stem, p.stem[:2], p.stem[3:])]
        if not hits:
            names = ", ".join(p.stem for p in available)
            raise RunError(f"--only {want}: no such notebook; choose from {names}")
        chosen.extend(h for h in hits if h not in chosen)
    return sorted(chosen)


def run_dir_for(params: Params, out: str | Path | None = None) -> Path:
    if out:
        return Path(out).expanduser().resolve()
    return Path(params.run.output_root) / (params.run.name or params.profile)


def _kernel_spec_dir() -> Path:
    """A kernelspec for *this* interpreter, so a venv or conda env just works."""
    root = Path(tempfile.mkdtemp(prefix="ghostlab-kernel-"))
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        # ERROR: keeps the kernel's transport notice off the user's terminal; cell errors still show
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=ERROR"],
        "display_name": f"ghostlab ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }))
    return root


def _error_line(err: BaseException) -> str:
    ename = getattr(err, "ename", None)
    if ename:
        return f"{ename}: {getattr(err, 'evalue', '')}".strip()
    return f"{type(err).__name__}: {err}".splitlines()[0]


def execute(nb: Path, out_nb: Path, params_file: Path, run_dir: Path, timeout: int) -> None:
    """One notebook through papermill, on this interpreter's kernel, cwd = run folder."""
    import os

    import papermill as pm

    spec_root = _kernel_spec_dir()
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(spec_root), old]))
    try:
        pm.execute_notebook(
            str(nb), str(out_nb),
            parameters={"params_file": str(params_file), "run_dir": str(run_dir)},
            kernel_name=KERNEL_NAME,
            cwd=str(run_dir),
            progress_bar=sys.stderr.isatty(),
            log_output=False,
            execution_timeout=timeout,
        )
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
        shutil.rmtree(spec_root, ignore_errors=True)


def render_html(executed: Path, show_code: bool = False) -> Path:
    """A self-contained HTML report beside the executed notebook (figures embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("widgets", None)  # saved widget state needs a CDN renderer; reports carry static figures
    exporter = HTMLExporter(template_name="ghostlab_report", extra_template_basedirs=[str(PACKAGE_DIR / "templates")])
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    out = executed.with_suffix(".html")
    out.write_text(body)
    return out


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_notebooks(params: Params, only: list[str] | None = None, out: str | Path | None = None,
                  show_code: bool | None = None, notebook_dir: Path = NOTEBOOK_DIR,
                  ) -> tuple[Path, list[NotebookResult]]:
    """Run the pipeline; returns the run folder and one result per notebook."""
    notebooks = select_notebooks(list_notebooks(notebook_dir), only or params.run.notebooks or None)
    if not notebooks:
        raise RunError(f"no notebooks (NN_name.ipynb) in {notebook_dir}")
    run_dir = run_dir_for(params, out)
    try:
        (run_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot write the run folder {run_dir}: {err.strerror}; pass --out DIR somewhere writable") from None
    show_code = params.run.show_code if show_code is None else show_code

    if params.data.dataset == "demo" or params.model.weights == "demo":
        from . import demo

        _progress("preparing the demo dataset and model (cached after the first run)")
        params = demo.prepare(params)
    params_file = run_dir / "params.yaml"
    dump_params(params, params_file)

    manifest = {
        "profile": params.profile,
        "params_source": params.source,
        "run_dir": str(run_dir),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": system.git_commit(PROJECT_DIR),
        **system.environment(),
        "params": params.to_dict(),
        "notebooks": {},
    }
    results: list[NotebookResult] = []
    failed: set[str] = set()
    for i, nb in enumerate(notebooks, 1):
        name = nb.stem
        blockers = [r for r in REQUIRES.get(name, ()) if r in failed]
        if blockers:
            res = NotebookResult(name, "skipped", error=f"skipped: {', '.join(blockers)} did not complete")
            failed.add(name)
            _progress(f"[{i}/{len(notebooks)}] {name}: {res.error}")
        else:
            _progress(f"[{i}/{len(notebooks)}] {name} ...")
            res = _run_one(nb, run_dir, params_file, params.run.cell_timeout, show_code)
            if res.status != "ok":
                failed.add(name)
            _progress(f"[{i}/{len(notebooks)}] {name}: {res.status} in {res.seconds:.1f}s"
                      + (f" — {res.error}" if res.error else ""))
        results.append(res)
        manifest["notebooks"][name] = res.__dict__
        manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json(run_dir / "manifest.json", manifest)
        write_index(run_dir)
        if res.status == "interrupted":
            break
    total = sum(r.seconds for r in results)
    _progress(f"done in {total:.0f}s: " + ", ".join(f"{r.name} {r.status}" for r in results))
    _progress(f"report: {run_dir / 'index.html'}")
    return run_dir, results


def _run_one(nb: Path, run_dir: Path, params_file: Path, timeout: int, show_code: bool) -> NotebookResult:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    out_nb = run_dir / nb.name
    t0 = time.perf_counter()
    status, error = "ok", None
    try:
        execute(nb, out_nb, params_file, run_dir, timeout)
    except PapermillExecutionError as err:
        status, error = "failed", _error_line(err)
    except CellTimeoutError:
        status, error = "failed", f"a cell ran longer than run.cell_timeout={timeout}s"
    except DeadKernelError as err:
        status, error = "failed", f"the kernel died: {err}".splitlines()[0]
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
    seconds = time.perf_counter() - t0
    html_path = None
    if out_nb.exists():
        try:
            html_path = render_html(out_nb, show_code).name
        except Exception as err:  # a broken render must not hide the run's status
            error = (error + "; " if error else "") + f"HTML render failed: {_error_line(err)}"
    return NotebookResult(nb.stem, status, seconds, error, html_path)


# ---------------------------------------------------------------- index page

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5em 0 1em} th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3} .ok{color:#1a7f37;font-weight:600} .failed,.interrupted{color:#c0392b;font-weight:600}
.skipped{color:#8a6d00;font-weight:600} .card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.banner{background:#fde2e1;border:2px solid #c0392b;padding:8px;margin:8px 0}
img{max-width:100%} details pre{background:#f7f7f7;padding:1em;overflow:auto;max-height:30em}
"""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'>"


def write_index(run_dir: Path) -> Path:
    """index.html from manifest.json and each notebook's published summary; self-contained."""
    manifest = read_json(run_dir / "manifest.json")
    e = html.escape
    params = manifest.get("params", {})
    model = params.get("model", {})
    parts = [f"<h1>ghostlab report: {e(str(manifest.get('profile')))}</h1>",
             f"<p class='sub'>model <b>{e(str(model.get('name')))}</b>, weights {e(str(model.get('weights')))}, "
             f"started {e(str(manifest.get('started')))}</p>"]
    if model.get("weights") == "random":
        parts.append("<div class='banner'><b>Random weights:</b> accuracy numbers in this run are meaningless.</div>")
    rows = []
    for name, res in manifest.get("notebooks", {}).items():
        link = f"<a href='{e(res['html'])}'>{e(name)}</a>" if res.get("html") else e(name)
        rows.append(f"<tr><td>{link}</td><td class='{e(res['status'])}'>{e(res['status'])}</td>"
                    f"<td>{res.get('seconds', 0):.1f}s</td><td>{e(res.get('error') or '')}</td></tr>")
    parts.append("<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>time</th><th>note</th></tr>"
                  + "".join(rows) + "</table>")
    for name in manifest.get("notebooks", {}):
        summary_path = run_dir / "artifacts" / SUMMARY_DIR / f"{name}.json"
        if not summary_path.exists():
            continue
        summary = read_json(summary_path)
        card = [f"<div class='card'><h2>{e(name)}</h2>"]
        values = summary.get("values", {})
        if values:
            card.append(_table([{"result": k, "value": v} for k, v in values.items()]))
        for title, table in summary.get("tables", {}).items():
            card.append(f"<h3>{e(title)}</h3>" + _table(table))
        for fig in summary.get("figures", {}).values():
            if (run_dir / fig).exists():
                card.append(_img(run_dir / fig))
        card.append("</div>")
        parts.append("".join(card))
    parts.append("<details><summary>manifest.json</summary><pre>"
                 + e(json.dumps(manifest, indent=2)) + "</pre></details>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>ghostlab: "
            f"{e(str(manifest.get('profile')))}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    out = run_dir / "index.html"
    out.write_text(page)
    return out
