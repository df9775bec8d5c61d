"""Execute the notebooks with papermill, render HTML reports, write index and manifest.

``run_notebooks(params)`` reads top to bottom as the pipeline: pick notebooks, prepare
the demo assets, then for each notebook: check its upstream, execute, render, record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import steps, system
from .config import Params, dump_params
from .errors import ConfigError, RunError
from .errors import say as _progress
from .index import write_index
from .jsonio import read_json, write_json
from .runfolder import SUMMARY_DIR

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
NOTEBOOK_DIR = steps.NOTEBOOK_DIR
KERNEL_NAME = "ghostlab-python"
KERNEL_TOKEN_VAR = "GHOSTLAB_KERNEL_TOKEN"
_running_kernel: str | None = None  # the token of the kernel executing now, for the signal handler

@dataclass
class NotebookResult:
    name: str
    status: str  # ok | failed | skipped | interrupted
    seconds: float = 0.0
    error: str | None = None
    html: str | None = None
    note: str | None = None
    artifacts: list[str] = field(default_factory=list)
    fingerprint: str | None = None


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


def _kernel_spec_dir(token: str, log: Path) -> Path:
    """A kernelspec for *this* interpreter, so a venv or conda env just works. ``token`` marks
    the kernel's environment so an interrupted run can find and stop it."""
    root = Path(tempfile.mkdtemp(prefix="ghostlab-kernel-"))
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ghostlab._kernel", "-f", "{connection_file}"],
        "display_name": f"ghostlab ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
        "env": {KERNEL_TOKEN_VAR: token, "GHOSTLAB_KERNEL_LOG": str(log)},
    }))
    return root


def kernel_pids(token: str) -> list[int]:
    """Processes started for the kernel that carries ``token`` (Linux /proc; [] elsewhere)."""
    marker = f"{KERNEL_TOKEN_VAR}={token}".encode()
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def stop_kernel(token: str, wait: float = 5.0) -> None:
    """Kill the kernel's process group (it runs in a session of its own, so Ctrl-C never
    reached it). SIGKILL: the executed notebook is saved cell by cell, nothing in the kernel
    is worth a shutdown handler that prints tracebacks onto the user's terminal."""
    for pid in kernel_pids(token):
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
                break
            except OSError:
                continue
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and kernel_pids(token):
        time.sleep(0.05)


def _error_line(err: BaseException) -> str:
    ename = getattr(err, "ename", None)
    if ename:
        return f"{ename}: {getattr(err, 'evalue', '')}".strip()
    return f"{type(err).__name__}: {err}".splitlines()[0]


def execute(nb: Path, out_nb: Path, params_file: Path, run_dir: Path, timeout: int) -> None:
    """One notebook through papermill, on this interpreter's kernel, cwd = run folder."""
    import papermill as pm

    global _running_kernel
    token = _running_kernel = f"{os.getpid()}-{time.time_ns()}"
    spec_root = _kernel_spec_dir(token, run_dir / "kernel.log")
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
        _running_kernel = None
        stop_kernel(token)  # after an interrupt papermill leaves the kernel running; normally a no-op
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


def _new_work_folder(final: Path) -> tuple[Path, str]:
    """``<name>.run-<stamp>`` beside the final folder: a run writes here and never into the
    last complete results, which it replaces only when every notebook completed."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        tag = stamp if n == 0 else f"{stamp}-{n}"
        work = final.parent / f"{final.name}.run-{tag}"
        try:
            work.mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as err:
            raise RunError(f"cannot write the run folder in {final.parent}: {err.strerror}; "
                           f"pass --out DIR somewhere writable") from None
        (work / "artifacts").mkdir()
        return work, tag
    raise RunError(f"too many run folders started this second in {final.parent}")  # pragma: no cover


def _earlier_runs(final: Path) -> list[tuple[Path, dict]]:
    """Earlier runs of this name (complete, failed, interrupted), newest first."""
    found = []
    for folder in [final, *final.parent.glob(f"{final.name}.*-*")]:
        try:
            found.append((folder, read_json(folder / "manifest.json")))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda fm: fm[1].get("started", ""), reverse=True)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in (folder / "artifacts").rglob("*") if p.is_file()}


def _fingerprint(nb: Path, params_text: str, upstream: list[str]) -> str:
    """What a notebook's results depend on: its own cells, the params, the package code, its upstream."""
    h = hashlib.sha256(nb.read_bytes() + params_text.encode())
    for src in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(src.read_bytes())
    for up in upstream:
        h.update(up.encode())
    return h.hexdigest()[:16]


def _copy_results(src: Path, dst: Path, name: str, entry: dict) -> None:
    """A notebook's executed copy, report, summary and artifacts from an earlier run folder."""
    files = [f"{name}.ipynb", f"{name}.html", f"artifacts/{SUMMARY_DIR}/{name}.json", *entry.get("artifacts", [])]
    for rel in files:
        if (src / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dst / rel)


@contextmanager
def _interruptible():
    """Ctrl-C (SIGINT) and SIGTERM stop a run the same way: the running kernel is killed at
    once, papermill's and nbclient's dying words are silenced, and KeyboardInterrupt unwinds
    the run so it is recorded as interrupted."""
    interrupted = []

    def handler(signum, frame):
        logging.disable(logging.CRITICAL)
        interrupted.append(signum)
        if _running_kernel:
            stop_kernel(_running_kernel, wait=0)
        raise KeyboardInterrupt

    try:
        old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        if interrupted:
            _settle_event_loop()
        for sig, previous in old.items():
            signal.signal(sig, previous)
        logging.disable(logging.NOTSET)


def _settle_event_loop() -> None:
    """After an interrupt, while logging is still off: finish what nbclient left on its event loop.

    The interrupt cuts ``run_until_complete`` short; nbclient's own cleanup then runs the loop
    again, and the cell's task ends with ``DeadKernelError`` that nobody retrieves. When the
    garbage collector later frees that task, asyncio logs "Task exception was never retrieved"
    with the traceback, onto the user's terminal once logging is back on: a race with the
    collector. So cancel what is still pending, retrieve every result, and collect now.
    """
    import asyncio
    import gc

    from jupyter_core.utils import ensure_event_loop

    try:
        loop = ensure_event_loop()
        pending = [] if loop.is_running() or loop.is_closed() else [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=5))
            for task in pending:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: asyncio has nothing left to report
    except BaseException:  # noqa: BLE001 - a second Ctrl-C here must not print either
        pass
    gc.collect()


def preflight(params: Params, selected: list[str]) -> Params:
    """Check every input before a notebook starts, so a bad one costs one line, not a failed
    run: demo assets, dataset layout and labels, the weights, every image (decoded once into the
    preprocessed cache the notebooks then read), the calibration count. Returns the params
    with the demo resolved."""
    from . import data, demo, models

    params = demo.prepare(params)  # the one place a run resolves the demo: notebooks read the resolved params
    if not steps.needs_images(selected):
        return params
    dataset = data.load_dataset(params)
    model = models.load_model(params, dataset.num_classes)
    preprocess = data.preprocess_for(params, model)
    data.cached_images(dataset, preprocess, params, show_progress=sys.stderr.isatty())
    if "02_calibrate" in selected:  # decodes a separate calibration folder too
        cached = data.calibration_source(params, preprocess, show_progress=sys.stderr.isatty())
        if params.calibrate.num_images > len(cached):
            raise ConfigError(f"calibrate.num_images is {params.calibrate.num_images} but the {cached.split} set "
                              f"has {len(cached)} images; lower calibrate.num_images or add images")
    return params


def run_notebooks(params: Params, only: list[str] | None = None, out: str | Path | None = None,
                  show_code: bool | None = None, resume: bool = False,
                  around_step: Callable[[str], AbstractContextManager] | None = None,
                  ) -> tuple[Path, list[NotebookResult]]:
    """Run the pipeline; returns the run folder and one result per notebook.

    Every run writes into a new folder beside ``<output_root>/<name>``. When every notebook
    completes, that folder takes the place of the last complete run; otherwise it stays
    beside it as ``<name>.failed-<stamp>`` or ``<name>.interrupted-<stamp>``, readable, and
    the last complete results are left where they were. ``only`` runs some notebooks and keeps
    the others' results from the last complete run; ``resume`` reuses the results of notebooks
    that completed in the latest earlier run with the same params, notebook and package code.
    ``around_step(name)``, when given, is a context manager entered around each notebook that
    executes (a sweep holds the machine's benchmark lock around 03_benchmark with it).
    """
    notebook_dir = Path(params.run.notebook_dir) if params.run.notebook_dir else NOTEBOOK_DIR
    available = list_notebooks(notebook_dir)
    if not available:
        raise RunError(f"no notebooks (NN_name.ipynb) in {notebook_dir}")
    selected = select_notebooks(available, only or params.run.notebooks or None)
    show_code = params.run.show_code if show_code is None else show_code
    final = run_dir_for(params, out)
    weights_given = params.model.weights  # `demo` or `pretrained` reads better than the file it resolves to
    params = preflight(params, [nb.stem for nb in selected])
    earlier = _earlier_runs(final) if final.parent.exists() else []
    complete = next(((f, m) for f, m in earlier if f == final), None)
    latest = earlier[0] if earlier else None
    work, stamp = _new_work_folder(final)

    manifest = {
        "profile": params.profile,
        "params_source": params.source,
        "run_dir": str(final),
        "status": "running",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": system.git_commit(PROJECT_DIR),
        **system.environment(),
        "params": params.to_dict(),
        "weights_given": weights_given,
        "notebooks": {},
    }
    results: list[NotebookResult] = []
    status = "ok"
    with _interruptible():
        try:
            write_json(work / "manifest.json", manifest)
            write_index(work)
            _progress(f"run folder: {work}")
            params_file = work / "params.yaml"
            dump_params(params, params_file)
            results = _run_all(available, selected, params, params_file, work, manifest,
                               complete, latest if resume else None, show_code, around_step)
        except KeyboardInterrupt:
            status = "interrupted"
            results = _results_so_far(manifest, selected)
        if any(r.status == "interrupted" for r in results):
            status = "interrupted"
        elif status == "ok" and not all(r.status == "ok" for r in results):
            status = "failed"
        manifest["status"] = status
        manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        where = final if status == "ok" else final.parent / f"{final.name}.{status}-{stamp}"
        manifest["run_dir"] = str(where)
        write_json(work / "manifest.json", manifest)
        write_index(work)
        _settle(work, final, where)
    total = sum(r.seconds for r in results)
    _progress(f"{status} in {total:.0f}s: " + ", ".join(f"{r.name} {r.status} ({r.seconds:.0f}s)" for r in results))
    if status != "ok" and complete:
        _progress(f"the last complete results are unchanged: {final / 'index.html'}")
    _progress(f"report: {where / 'index.html'}")
    return where, results


def _results_so_far(manifest: dict, selected: list[Path]) -> list[NotebookResult]:
    """The results recorded before a Ctrl-C that came between two notebooks (not inside one,
    where ``_run_one`` records it), plus the next notebook as the interrupted one: the exit
    code says 130, not 0."""
    done = [NotebookResult(**entry) for entry in manifest["notebooks"].values()]
    if not any(r.status == "interrupted" for r in done):
        nxt = next((nb.stem for nb in selected if nb.stem not in manifest["notebooks"]), None)
        done.append(NotebookResult(nxt or "(after the last notebook)", "interrupted", error="interrupted by the user"))
        if nxt:
            manifest["notebooks"][nxt] = done[-1].__dict__
    return done


def _settle(work: Path, final: Path, where: Path) -> None:
    """Move the finished run folder to ``where``; a complete run swaps in for the last one."""
    if where != final:
        os.replace(work, where)
        return
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.replaced-{work.name.rsplit('-', 1)[-1]}"
        os.replace(final, old)
    os.replace(work, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _run_all(available: list[Path], selected: list[Path], params: Params, params_file: Path, work: Path,
             manifest: dict, complete: tuple[Path, dict] | None, resume_from: tuple[Path, dict] | None,
             show_code: bool, around_step: Callable[[str], AbstractContextManager] | None = None,
             ) -> list[NotebookResult]:
    params_text = params_file.read_text()
    results: list[NotebookResult] = []
    failed: set[str] = set()
    prints: dict[str, str] = {}
    todo = [nb for nb in available if nb in selected or (complete and nb.stem in complete[1].get("notebooks", {}))]
    for i, nb in enumerate(todo, 1):
        name, tag = nb.stem, f"[{i}/{len(todo)}] {nb.stem}"
        prints[name] = _fingerprint(nb, params_text, [prints.get(u, "") for u in steps.requires(name)])
        earlier = None
        if nb not in selected:
            earlier, why = complete, "kept from the last complete run (not selected)"
        elif resume_from and resume_from[1].get("notebooks", {}).get(name, {}).get("fingerprint") == prints[name] \
                and resume_from[1]["notebooks"][name].get("status") == "ok":
            earlier, why = resume_from, f"reused from {resume_from[0].name} (same params and code)"
        blockers = [r for r in steps.requires(name) if r in failed]
        if earlier is not None:
            entry = earlier[1]["notebooks"][name]
            _copy_results(earlier[0], work, name, entry)
            res = NotebookResult(name, entry["status"], entry.get("seconds", 0.0), entry.get("error"),
                                 entry.get("html"), note=why, artifacts=entry.get("artifacts", []))
            _progress(f"{tag}: {why}")
        elif blockers:
            res = NotebookResult(name, "skipped", error=f"skipped: {', '.join(blockers)} did not complete")
            _progress(f"{tag}: {res.error}")
        else:
            _progress(f"{tag} ...")
            before = _snapshot(work)
            with around_step(name) if around_step else nullcontext():
                res = _run_one(nb, work, params_file, params.run.cell_timeout, show_code)
            after = _snapshot(work)
            res.artifacts = sorted(k for k, v in after.items() if before.get(k) != v
                                   and not k.startswith(f"artifacts/{SUMMARY_DIR}/"))
            _progress(f"{tag}: {res.status} in {res.seconds:.1f}s" + (f" — {res.error}" if res.error else ""))
        if res.status != "ok":
            failed.add(name)
        res.fingerprint = prints[name]
        results.append(res)
        manifest["notebooks"][name] = res.__dict__
        write_json(work / "manifest.json", manifest)
        write_index(work)
        if res.status == "interrupted":
            break
    return results


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
