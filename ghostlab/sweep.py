"""Many runs on a Dask cluster: ``ghostlab sweep SWEEP.yaml``, ending in one compare page.

A sweep file (YAML, ``safe_load``)::

    base: ../demo.yaml            # the profile every point starts from (relative to this file)
    name: demo-models             # optional; default: the file's stem
    set:                          # optional: overrides for every point
      run.notebooks: [01_export, 02_calibrate, 04_evaluate]
    grid:                         # every combination of these overrides ...
      model.name: [ghostnet_050, ghostnet_100]
      calibrate.num_images: [200, 1000]
    runs:                         # ... or a list of points instead (one of grid / runs)
      - {name: small, model.name: ghostnet_050}
      - {model.name: ghostnet_100, calibrate.num_images: 1000}

Overrides are the ``-p section.key=value`` of ``ghostlab run``, checked against the schema when
the file loads. Each point is an ordinary run folder, ``<output_root>/<name>+<key>=<value>...``
(or its ``name``), with its own index, manifest and artifacts. The sweep's own folder,
``<output_root>/sweep-<name>/``, holds ``compare.html`` over every point and ``logs/<point>.log``
(what the runner printed).

Execution (``run_sweep``): a ``distributed.LocalCluster`` of ``workers`` single-threaded worker
processes, or an existing cluster at ``scheduler`` whose workers have ghostlab installed and
share the outputs folder. One point is one task, which runs ``runner.run_notebooks`` on the
worker; at most one 03_benchmark runs at a time per machine (a Dask ``Lock`` named after the
worker's host). Worker processes are started non-daemonic so the image cache can use a process
pool. A failed point does not stop the others. Ctrl-C sets a Dask ``Event`` the tasks watch:
they kill their notebook's kernel and record their run as interrupted; completed runs stay.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, GhostlabError, RunError

SWEEP_KEYS = ("base", "name", "set", "grid", "runs")
STOP_WAIT_S = 30  # after Ctrl-C: how long running points get to record themselves as interrupted
WORKER_WAIT_S = 60
DAEMON_FIX = ("this Dask worker process is daemonic, so it cannot start the processes ghostlab decodes images "
              "with; start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False (or `dask worker --no-nanny`)")


@dataclass
class Point:
    """One run of a sweep: its name (the run folder's) and its overrides, in file order."""

    name: str
    overrides: dict[str, Any]
    run_dir: Path | None = None

    def args(self) -> list[str]:
        """``-p`` strings for ``config.load_params``; values as JSON, which YAML reads back unchanged."""
        return [f"{k}={json.dumps(v)}" for k, v in self.overrides.items()] + [f"run.name={json.dumps(self.name)}"]


@dataclass
class Sweep:
    path: Path
    name: str
    base: Path
    points: list[Point]
    folder: Path
    """``<output_root>/sweep-<name>``: the compare page and the logs."""


@dataclass
class PointResult:
    name: str
    status: str  # ok | failed | interrupted
    run_dir: str | None = None
    error: str | None = None
    seconds: float = 0.0
    host: str | None = None
    reused: bool = False
    notebooks: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- the sweep file

def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "_".join(_value_text(v) for v in value) or "none"
    text = Path(value).stem if isinstance(value, str) and "/" in value else str(value)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def point_name(sweep_name: str, overrides: dict[str, Any]) -> str:
    """``<sweep>+<key>=<value>...`` with the last part of each key (the full key where two clash)."""
    leaves = [k.rsplit(".", 1)[-1] for k in overrides]
    parts = [f"{leaf if leaves.count(leaf) == 1 else key}={_value_text(v)}"
             for key, leaf, v in zip(overrides, leaves, overrides.values())]
    return "+".join([sweep_name, *parts]) if parts else sweep_name


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or "." not in key:
        raise ConfigError(f"{where}: override key {key!r} must name a section and a key, e.g. model.name")
    if key == "run.name":
        raise ConfigError(f"{where}: run.name is set by the sweep (each point's name); give a point a name: instead")
    return key


def _mapping(value: Any, key: str, path: Path) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: key `{key}` must be a mapping of section.key: value, got {type(value).__name__}")
    return {_check_key(k, f"{path}: key `{key}`"): v for k, v in value.items()}


def _points(raw: dict, name: str, path: Path) -> list[Point]:
    common = _mapping(raw.get("set"), "set", path)
    if ("grid" in raw) == ("runs" in raw):
        raise ConfigError(f"{path}: give exactly one of `grid` (combinations of overrides) or `runs` (a list of points)")
    points = []
    if "grid" in raw:
        grid = _mapping(raw["grid"], "grid", path)
        if not grid:
            raise ConfigError(f"{path}: key `grid` is empty; list values per key, e.g. model.name: [ghostnet_050, ghostnet_100]")
        axes = []
        for k, v in grid.items():
            values = v if isinstance(v, list) else [v]
            if not values:
                raise ConfigError(f"{path}: key `grid.{k}` has no values")
            axes.append([(k, x) for x in values])
        for combo in itertools.product(*axes):
            own = dict(combo)
            points.append(Point(point_name(name, own), {**common, **own}))
    else:
        runs = raw["runs"]
        if not isinstance(runs, list) or not runs:
            raise ConfigError(f"{path}: key `runs` must be a non-empty list of mappings, e.g. - {{model.name: ghostnet_050}}")
        for i, entry in enumerate(runs):
            if not isinstance(entry, dict):
                raise ConfigError(f"{path}: key `runs[{i}]` must be a mapping of section.key: value")
            entry = dict(entry)
            given = entry.pop("name", None)
            own = _mapping(entry, f"runs[{i}]", path)
            if given is not None and (not isinstance(given, str) or not re.fullmatch(r"[A-Za-z0-9_.+=-]+", given)):
                raise ConfigError(f"{path}: key `runs[{i}].name` must be a folder name "
                                  f"(letters, digits, _ . + = -), got {given!r}")
            points.append(Point(given or point_name(name, own), {**common, **own}))
    names = [p.name for p in points]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: two points are both named {dup[0]}; give them distinct `name:`s")
    return points


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; every point's params are loaded once here, so a typo in
    any override stops the sweep before a task starts (one line naming the file and key)."""
    from .config import load_params

    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"sweep file {path} does not exist (see params/sweeps/ for an example)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    except OSError as err:
        raise ConfigError(f"cannot read sweep file {path}: {err.strerror}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping with base: and grid: or runs:")
    unknown = [k for k in raw if k not in SWEEP_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key `{unknown[0]}`; a sweep file has {', '.join(SWEEP_KEYS)}")
    if not isinstance(raw.get("base"), str):
        raise ConfigError(f"{path}: key `base` is missing: name the profile every point starts from, e.g. base: ../demo.yaml")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"{path}: key `name` must be letters, digits, _ . or - (it names folders), got {name!r}")
    base = (path.parent / Path(raw["base"]).expanduser()).resolve()
    points = _points(raw, name, path)
    output_root = None
    for p in points:
        try:
            params = load_params(base, p.args())
        except ConfigError as err:
            raise ConfigError(f"{path}: point {p.name}: {err}") from None
        p.run_dir = Path(params.run.output_root) / p.name
        output_root = output_root or Path(params.run.output_root)
    return Sweep(path, name, base, points, output_root / f"sweep-{name}")


# ---------------------------------------------------------------- one point, on a worker

def _benchmark_lock():
    from distributed import Lock

    return Lock(f"ghostlab-benchmark-{socket.gethostname()}")


@contextlib.contextmanager
def _step_guard(name: str, stop: Any):
    """Around each notebook the runner executes: stop when the sweep was interrupted, and hold
    this machine's benchmark lock around 03_benchmark so timings never share the CPU."""
    if stop.is_set():
        raise KeyboardInterrupt
    lock = _benchmark_lock() if name == "03_benchmark" else None
    if lock is not None:
        lock.acquire()
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
    if stop.is_set():
        raise KeyboardInterrupt


def _watch(stop: Any, done: threading.Event) -> None:
    """Kill the running notebook's kernel as soon as the sweep is interrupted."""
    from . import runner

    while not done.is_set():
        try:
            if stop.wait(timeout=1):
                if runner._running_kernel:
                    runner.stop_kernel(runner._running_kernel, wait=0)
                return
        except Exception:  # the scheduler went away: nothing left to watch for
            return


def run_point(name: str, base: str, args: list[str], resume: bool, stop_name: str, topic: str,
              log_path: str) -> dict:
    """The task: one ordinary run, its runner output in ``log_path``; returns a PointResult as a dict.
    Never raises for the run's own failures: they are the result."""
    import multiprocessing

    from distributed import Event, get_client, get_worker

    host = socket.gethostname()
    client = get_client()
    stop = Event(stop_name, client=client)
    t0 = time.perf_counter()
    result = PointResult(name, "failed", host=host)
    if stop.is_set():
        result.status, result.error = "interrupted", "the sweep was interrupted before this run started"
        return result.__dict__
    with contextlib.suppress(Exception):
        get_worker().log_event(topic, {"name": name, "host": host})
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(stop, done), daemon=True, name="ghostlab-sweep-stop")
    watcher.start()
    try:
        if multiprocessing.current_process().daemon:
            raise RunError(DAEMON_FIX)
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log, contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            from .config import load_params
            from .runner import run_notebooks

            params = load_params(base, args)
            where, results = run_notebooks(params, resume=resume, around_step=lambda nb: _step_guard(nb, stop))
        result.run_dir = str(where)
        result.notebooks = {r.name: r.status for r in results}
        result.status = ("interrupted" if any(r.status == "interrupted" for r in results) or ".interrupted-" in where.name
                         else "ok" if results and all(r.status == "ok" for r in results) else "failed")
        result.error = next((f"{r.name}: {r.error}" for r in results if r.status != "ok" and r.error), None)
        result.reused = bool(results) and all((r.note or "").startswith("reused") for r in results)
    except GhostlabError as err:
        result.error = str(err)
    except KeyboardInterrupt:
        result.status, result.error = "interrupted", "interrupted"
    except Exception as err:  # one point's crash must not lose the others' results
        result.error = f"{type(err).__name__}: {err}".splitlines()[0]
    finally:
        done.set()
    result.seconds = time.perf_counter() - t0
    return result.__dict__


# ---------------------------------------------------------------- the cluster

@contextlib.contextmanager
def _sigint_ignored():
    """Processes started in here ignore Ctrl-C (the disposition survives exec): the terminal's
    SIGINT reaches the whole process group, and the sweep, not each worker, handles it."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int = 1):
    """A ``distributed.Client``: to the cluster at ``scheduler``, or to a new LocalCluster of
    ``workers`` non-daemonic, single-threaded worker processes (closed on exit)."""
    import dask
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with dask.config.set({"distributed.worker.daemon": False}):
            if scheduler:
                try:
                    client = Client(scheduler, timeout="10s")
                except (OSError, TimeoutError, ValueError) as err:
                    raise RunError(f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}); start "
                                   f"one with `dask scheduler` and a worker with `dask worker {scheduler} "
                                   f"--nthreads 1`") from None
                try:
                    client.wait_for_workers(1, timeout=WORKER_WAIT_S)
                except TimeoutError:
                    client.close()
                    raise RunError(f"no Dask worker joined {scheduler} within {WORKER_WAIT_S}s; start one with "
                                   f"`DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker {scheduler} --nthreads 1`") from None
                cluster = None
            else:
                with _sigint_ignored():
                    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
                client = Client(cluster)
            try:
                yield client
            finally:
                with contextlib.suppress(Exception):
                    client.close()
                if cluster is not None:
                    with contextlib.suppress(Exception):
                        cluster.close()
    finally:
        quiet.setLevel(level)


# ---------------------------------------------------------------- the sweep

def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def _end_line(r: PointResult) -> str:
    if r.reused:
        return f"{r.name}: unchanged since its last complete run, reused (--resume) → {r.run_dir}"
    if r.status == "ok":
        return f"{r.name}: ok in {r.seconds:.0f}s → {r.run_dir}"
    return f"{r.name}: {r.status} after {r.seconds:.0f}s — {r.error or 'see ' + str(r.run_dir)}"


def run_sweep(sweep: Sweep, scheduler: str | None = None, workers: int = 1, resume: bool = False,
              ) -> tuple[list[PointResult], Path | None]:
    """Every point of the sweep on the cluster, then the compare page; returns the results in
    sweep order and the page (None when interrupted)."""
    from distributed import Event, as_completed, wait
    from tqdm import tqdm

    token = uuid.uuid4().hex[:10]
    topic, stop_name = f"ghostlab-sweep-{token}", f"ghostlab-sweep-{token}-stop"
    results: dict[str, PointResult] = {}
    where = f"the Dask cluster at {scheduler}" if scheduler else f"a local Dask cluster of {workers} worker(s)"
    _say(f"sweep {sweep.name}: {len(sweep.points)} run(s) on {where}; logs in {sweep.folder / 'logs'}")
    with cluster_client(scheduler, workers) as client, tqdm(total=len(sweep.points), desc=f"sweep {sweep.name}",
                                                             unit="run", file=sys.stderr) as bar:
        stop = Event(stop_name, client=client)
        client.subscribe_topic(topic, lambda event: _say(f"{event[1]['name']}: started on {event[1]['host']}"))
        futures = {client.submit(run_point, p.name, str(sweep.base), p.args(), resume, stop_name, topic,
                                 str(sweep.folder / "logs" / f"{p.name}.log"), key=f"ghostlab-{token}-{i}",
                                 pure=False, retries=0): p for i, p in enumerate(sweep.points)}
        try:
            for fut in as_completed(futures):
                res = _collect(fut, futures[fut])
                results[res.name] = res
                _say(_end_line(res))
                bar.update(1)
        except KeyboardInterrupt:
            _say(f"interrupted: stopping the running notebooks (up to {STOP_WAIT_S}s); completed runs stay as they are")
            with contextlib.suppress(BaseException):
                stop.set()
                wait(list(futures), timeout=STOP_WAIT_S)
            with contextlib.suppress(BaseException):
                client.cancel(list(futures), force=True)
            return [results.get(p.name) or PointResult(p.name, "interrupted") for p in sweep.points], None
    ordered = [results[p.name] for p in sweep.points]
    return ordered, sweep_compare(sweep, ordered)


def _collect(fut: Any, point: Point) -> PointResult:
    """A finished task's PointResult; a task that raised (worker lost, ghostlab missing there) is a failed point."""
    try:
        return PointResult(**fut.result())
    except Exception as err:
        msg = f"{type(err).__name__}: {err}".splitlines()[0]
        return PointResult(point.name, "failed", error=f"the Dask task failed: {msg}")


def sweep_compare(sweep: Sweep, results: list[PointResult]) -> Path:
    """The compare page over every point, first complete one as the baseline; failed points
    show with their error whether or not they got as far as a run folder."""
    from .compare import RunInfo, compare_runs, load_run, write_compare

    runs = []
    for r in results:
        info = None
        if r.run_dir and (Path(r.run_dir) / "manifest.json").exists():
            info = load_run(r.run_dir)
            info.name = r.name
            if r.status != "ok":
                info.status, info.error = r.status, r.error or info.error
        runs.append(info or RunInfo(r.name, status=r.status, error=r.error))
    runs.sort(key=lambda info: info.status != "ok")  # stable: the first complete point is the baseline
    return write_compare(compare_runs(runs), sweep.folder)
