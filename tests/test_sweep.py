"""ghostlab sweep: the sweep file, the cluster's workers, a failing point, --resume, a real scheduler."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ghostlab.cli import main
from ghostlab.errors import ConfigError
from ghostlab.sweep import load_sweep, point_name

from conftest import TINY

VENV_BIN = Path(sys.executable).parent


def _write(path, doc):
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ---------------------------------------------------------------- the sweep file (fast)

def test_grid_points_are_named_from_their_overrides(tmp_path):
    sweep = load_sweep(_write(tmp_path / "s.yaml", {
        "base": str(TINY), "set": {"run.output_root": str(tmp_path)},
        "grid": {"model.name": ["ghostnet_050", "ghostnet_100"], "calibrate.num_images": [8, 16]}}))
    assert [p.name for p in sweep.points] == [
        "s+name=ghostnet_050+num_images=8", "s+name=ghostnet_050+num_images=16",
        "s+name=ghostnet_100+num_images=8", "s+name=ghostnet_100+num_images=16"]
    assert sweep.points[0].args()[:2] == ['run.output_root="%s"' % tmp_path, 'model.name="ghostnet_050"']
    assert sweep.points[3].run_dir == tmp_path / "s+name=ghostnet_100+num_images=16"
    assert sweep.folder == tmp_path / "sweep-s"
    assert point_name("s", {"model.name": "x", "run.name": "y"}) == "s+model.name=x+run.name=y"


@pytest.mark.parametrize("doc, message", [
    ({"grid": {"model.name": ["a"]}}, "key `base` is missing"),
    ({"base": "BASE", "grid": {"model.name": ["a"]}, "runs": [{}]}, "exactly one of `grid`"),
    ({"base": "BASE", "gird": {"model.name": ["a"]}}, "unknown key `gird`"),
    ({"base": "BASE", "grid": {"model.nam": ["a", "b"]}}, "unknown key model.nam — did you mean model.name?"),
    ({"base": "BASE", "grid": {"model": ["a"]}}, "must name a section and a key"),
    ({"base": "BASE", "runs": [{"run.name": "x"}]}, "run.name is set by the sweep"),
    ({"base": "BASE", "runs": [{"name": "x"}, {"name": "x"}]}, "both named x"),
    ({"base": "BASE", "runs": [{"name": "../x"}]}, "must be a folder name"),
    ({"base": "BASE", "runs": [{"calibrate.num_images": "many"}]}, "calibrate.num_images"),
    ({"base": "missing.yaml", "runs": [{}]}, "does not exist"),
])
def test_sweep_file_errors_are_one_line_naming_file_and_key(tmp_path, doc, message):
    if doc.get("base") == "BASE":
        doc["base"] = str(TINY)
    path = _write(tmp_path / "bad.yaml", doc)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_cli_sweep_file_error_exits_2(tmp_path, capsys):
    path = _write(tmp_path / "bad.yaml", {"base": str(TINY), "grid": {"model.nam": [1]}})
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ghostlab: error:") and "model.nam" in err and "\n" not in err


def test_cli_workers_with_a_scheduler_is_refused_not_ignored(tmp_path, capsys):
    path = _write(tmp_path / "s.yaml", {"base": str(TINY), "grid": {"calibrate.num_images": [8]}})
    assert main(["sweep", str(path), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--workers sizes the local cluster" in err and "\n" not in err


# ---------------------------------------------------------------- the cluster

def _pool_child_runs():
    """What the image cache build does on a worker: a process pool (forbidden in daemonic processes)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("fork")) as pool:
        return sum(pool.map(abs, [-1, -2, -3]))


def _hold_benchmark_lock(stop_name):
    from distributed import Event, get_client

    from ghostlab.sweep import _step_guard

    with _step_guard("03_benchmark", Event(stop_name, client=get_client())):
        start = time.monotonic()
        time.sleep(0.5)
        end = time.monotonic()
    return start, end


@pytest.mark.slow
def test_local_workers_start_processes_and_take_turns_to_benchmark():
    from distributed import Event

    from ghostlab.sweep import cluster_client, run_point

    with cluster_client(workers=2) as client:
        assert client.submit(_pool_child_runs, pure=False).result() == 6
        spans = sorted(client.gather([client.submit(_hold_benchmark_lock, "no-stop", pure=False, key=f"lock-{i}")
                                      for i in range(2)]))
        assert spans[0][1] <= spans[1][0], "two benchmarks ran at once on one machine"
        Event("stopped", client=client).set()  # Ctrl-C before a point started: it does not start
        out = client.submit(run_point, "p", str(TINY), [], False, "stopped", "topic", "/nonexistent/p.log",
                            pure=False).result()
        assert out["status"] == "interrupted" and out["run_dir"] is None


@pytest.mark.slow
def test_a_daemonic_worker_fails_its_point_with_the_fix():
    """A cluster started without DASK_DISTRIBUTED__WORKER__DAEMON=False: the point says what to do."""
    import logging

    from distributed import Client, LocalCluster

    from ghostlab.sweep import run_point

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        out = client.submit(run_point, "p", str(TINY), [], False, "no-stop", "topic", "/nonexistent/p.log",
                            pure=False).result()
    assert out["status"] == "failed" and "DASK_DISTRIBUTED__WORKER__DAEMON=False" in out["error"]


def _tiny_checkpoint():
    from ghostlab.config import load_params
    from ghostlab.demo import prepare

    return prepare(load_params(TINY)).model.weights


@pytest.mark.slow
def test_sweep_with_a_failing_point_then_resume(tmp_path, capsys):
    ckpt = tmp_path / "ckpt.safetensors"  # missing at first: point c fails before its first notebook
    path = _write(tmp_path / "t.yaml", {
        "base": str(TINY),
        "set": {"run.notebooks": ["01_export"], "run.output_root": str(tmp_path / "out"), "export.parity_images": 2},
        "runs": [{"name": "a"}, {"name": "b", "export.parity_images": 3}, {"name": "c", "model.weights": str(ckpt)}]})
    assert main(["sweep", str(path), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    out = tmp_path / "out"
    for name in ("a", "b"):
        assert json.loads((out / name / "manifest.json").read_text())["status"] == "ok"
        assert (out / name / "index.html").exists() and (out / name / "artifacts" / "model.onnx").exists()
        assert f"{name}: started on" in err and f"{name}: ok in" in err
    assert not (out / "c").exists() and "c: failed" in err and str(ckpt) in err
    doc = json.loads((out / "sweep-t" / "compare.json").read_text())
    assert doc["baseline"] == "a" and [d["key"] for d in doc["params_differ"]] == ["export.parity_images"]
    assert [f["run"] for f in doc["failed"]] == ["c"] and str(ckpt) in doc["failed"][0]["error"]
    page = (out / "sweep-t" / "compare.html").read_text()
    assert "c did not complete" in page and "a/index.html" in page
    assert (out / "sweep-t" / "logs" / "a.log").read_text().strip()

    os.symlink(_tiny_checkpoint(), ckpt)  # the user fixes the checkpoint and resumes
    assert main(["sweep", str(path), "--workers", "2", "--resume"]) == 0
    err = capsys.readouterr().err
    for name in ("a", "b"):
        notebooks = json.loads((out / name / "manifest.json").read_text())["notebooks"]
        assert notebooks["01_export"]["note"].startswith("reused from"), name
        assert f"{name}: unchanged since its last complete run, reused" in err
    c = json.loads((out / "c" / "manifest.json").read_text())
    assert c["status"] == "ok" and c["notebooks"]["01_export"]["note"] is None
    assert json.loads((out / "sweep-t" / "compare.json").read_text())["failed"] == []


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the dask process exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.mark.slow
def test_sweep_on_a_separately_started_scheduler_and_worker(tmp_path, capsys):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}  # as the README says
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]
    procs = [subprocess.Popen([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=logs[0], stderr=subprocess.STDOUT, env=env)]
    try:
        _wait_for_port(port, procs[0])
        procs.append(subprocess.Popen([str(VENV_BIN / "dask"), "worker", address, "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard"],
                                      stdout=logs[1], stderr=subprocess.STDOUT, env=env))
        path = _write(tmp_path / "remote.yaml", {
            "base": str(TINY), "set": {"run.output_root": str(tmp_path / "out"), "export.parity_images": 2},
            "grid": {"run.notebooks": [["01_export"]]}})
        assert main(["sweep", str(path), "--scheduler", address]) == 0
        (point,) = load_sweep(path).points
        assert json.loads((point.run_dir / "manifest.json").read_text())["status"] == "ok"
        assert (tmp_path / "out" / "sweep-remote" / "compare.html").exists()
        assert f"on the Dask cluster at {address}" in capsys.readouterr().err
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
