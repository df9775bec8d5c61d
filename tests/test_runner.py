"""The runner on small synthetic notebooks: status from papermill, rendered errors, skips, index,
run folders that never destroy earlier results, --only, --resume, interrupts."""

import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from helpers import seed_dataset

from ghostlab import runner
from ghostlab.cli import exit_code
from ghostlab.config import load_params

HEADER = "import ghostlab\nrun = ghostlab.start('{name}', params_file, run_dir)\n"


def notebook(path, *codes):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('params_file = "x"\nrun_dir = "y"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), params]
    nb.cells += [nbformat.v4.new_code_cell(HEADER.format(name=path.stem))]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in codes]
    nbformat.write(nb, str(path))


def profile(tmp, nbdir, name="p"):
    seed_dataset(tmp / "data")
    path = tmp / f"{name}.yaml"
    path.write_text(f"data: {{root: {tmp / 'data'}, resize: 36, crop: 32, cache_dir: {tmp / 'cache'}}}\n"
                    f"model: {{name: ghostnet_050, weights: random, input_size: 32}}\n"
                    f"calibrate: {{num_images: 2}}\n"
                    f"run: {{output_root: {tmp / 'out'}, notebook_dir: {nbdir}}}\n")
    return path


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runner")
    nbdir = tmp / "notebooks"
    nbdir.mkdir()
    notebook(nbdir / "01_export.ipynb",
             "SECRET_CODE_MARKER = 1\nrun.publish(answer=42)",
             "from matplotlib.figure import Figure\nfig = Figure()\nfig.subplots().plot([1, 2, 3])\n"
             "run.publish_figure('line', fig)\nfig")
    notebook(nbdir / "02_calibrate.ipynb", "raise ValueError('boom from calibrate')")
    notebook(nbdir / "03_benchmark.ipynb", "print('should never run')")
    notebook(nbdir / "05_ghost_maps.ipynb", "run.publish(label='<script>alert(1)</script>')")
    run_dir, results = runner.run_notebooks(load_params(profile(tmp, nbdir)))
    return run_dir, {r.name: r for r in results}


@pytest.mark.slow
def test_statuses_come_from_papermill(synthetic_run):
    run_dir, results = synthetic_run
    assert run_dir.name.startswith("p.failed-")
    assert not (run_dir.parent / "p").exists()  # an incomplete run never takes the profile's place
    assert [results[n].status for n in results] == ["ok", "failed", "skipped", "ok"]
    assert results["02_calibrate"].error == "ValueError: boom from calibrate"
    assert "02_calibrate" in results["03_benchmark"].error
    assert exit_code(results.values()) == 1


@pytest.mark.slow
def test_failed_notebook_still_has_its_report(synthetic_run):
    run_dir, _ = synthetic_run
    page = (run_dir / "02_calibrate.html").read_text()
    assert "boom from calibrate" in page
    assert not (run_dir / "03_benchmark.ipynb").exists()


@pytest.mark.slow
def test_html_hides_code_and_embeds_figures(synthetic_run):
    run_dir, _ = synthetic_run
    page = (run_dir / "01_export.html").read_text()
    assert "SECRET_CODE_MARKER" not in page
    assert "data:image/png;base64," in page
    assert "Random weights" in page  # the banner every report carries for untrained models
    assert "cdnjs" not in page and "<script src=" not in page  # readable offline: nothing fetched


@pytest.mark.slow
def test_index_and_manifest(synthetic_run):
    run_dir, _ = synthetic_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["run_dir"] == str(run_dir)
    assert manifest["notebooks"]["02_calibrate"]["status"] == "failed"
    assert manifest["notebooks"]["01_export"]["artifacts"] == ["artifacts/figures/01_export_line.png"]
    assert set(manifest["cpu"]["flags"]) >= {"avx2", "avx512f", "avx512_vnni", "amx_int8"}
    assert manifest["packages"]["torch"].startswith("2.14.1")
    assert manifest["params"]["model"]["weights"] == "random"
    index = (run_dir / "index.html").read_text()
    assert "boom from calibrate" in index and "This run is failed" in index and "skipped" in index
    assert "<script>alert(1)</script>" not in index and "&lt;script&gt;" in index
    assert "data:image/png;base64," in index
    assert "href='01_export.html'" in index
    assert "http://" not in index and "https://" not in index


@pytest.fixture()
def two_step(tmp_path):
    """01 writes a stamp file; 02 reads it. A counter file counts executions of each."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    count = "import pathlib\nc = pathlib.Path(run.params.data.root).parent / 'count_{n}'\n" \
            "c.write_text(str(int(c.read_text()) + 1 if c.exists() else 1))\n"
    notebook(nbdir / "01_export.ipynb", count.format(n="01") + "run.artifact('stamp.txt').write_text('v1')")
    notebook(nbdir / "02_calibrate.ipynb", count.format(n="02") + "assert run.require('stamp.txt').read_text()\n"
             "import os\nassert not os.environ.get('FAIL_02')")
    return tmp_path, nbdir, lambda n: int((tmp_path / f"count_{n}").read_text())


@pytest.mark.slow
def test_complete_run_replaces_the_last_and_failed_run_leaves_it(two_step, monkeypatch):
    tmp, nbdir, count = two_step
    params = load_params(profile(tmp, nbdir))
    first, results = runner.run_notebooks(params)
    assert first == tmp / "out" / "p" and exit_code(results) == 0
    index_before = (first / "index.html").read_text()
    monkeypatch.setenv("FAIL_02", "1")
    failed, results = runner.run_notebooks(params)
    assert failed.name.startswith("p.failed-") and exit_code(results) == 1
    assert (first / "index.html").read_text() == index_before  # untouched
    assert json.loads((failed / "manifest.json").read_text())["status"] == "failed"
    # --resume reuses 01 (same params and code) and reruns only 02
    monkeypatch.delenv("FAIL_02")
    resumed, results = runner.run_notebooks(params, resume=True)
    assert resumed == first and exit_code(results) == 0
    assert count("01") == 2 and count("02") == 3
    assert "reused from p.failed-" in results[0].note
    assert (resumed / "artifacts" / "stamp.txt").read_text() == "v1"
    assert not list((tmp / "out").glob(".p.replaced-*")) and not list((tmp / "out").glob("p.run-*"))


@pytest.mark.slow
def test_only_keeps_the_other_notebooks_results(two_step):
    tmp, nbdir, count = two_step
    params = load_params(profile(tmp, nbdir))
    runner.run_notebooks(params)
    run_dir, results = runner.run_notebooks(params, only=["02"])
    assert [r.status for r in results] == ["ok", "ok"]
    assert "kept from the last complete run" in results[0].note
    assert (run_dir / "01_export.html").exists() and (run_dir / "artifacts" / "stamp.txt").exists()
    assert count("01") == 1 and count("02") == 2


@pytest.mark.slow
def test_interrupt_stops_the_kernel_and_keeps_the_last_results(two_step):
    tmp, nbdir, _ = two_step
    params_file = profile(tmp, nbdir)
    assert subprocess.run([sys.executable, "-m", "ghostlab", "run", str(params_file)],
                          capture_output=True, timeout=120).returncode == 0
    index_before = (tmp / "out" / "p" / "index.html").read_text()
    notebook(nbdir / "02_calibrate.ipynb", "import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-m", "ghostlab", "run", str(params_file)],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait until 02's kernel is busy
        if "02_calibrate ..." in line:
            break
    time.sleep(4)
    mine = f"{runner.KERNEL_TOKEN_VAR}={proc.pid}-".encode()

    def kernels():
        found = []
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and any(v.startswith(mine) for v in open(f"/proc/{p}/environ", "rb").read().split(b"\0")):
                    found.append(p)
            except OSError:
                pass
        return found

    assert kernels(), "the test should see the running kernel"
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "Traceback" not in rest
    assert not kernels()
    assert (tmp / "out" / "p" / "index.html").read_text() == index_before
    (stopped,) = (tmp / "out").glob("p.interrupted-*")
    manifest = json.loads((stopped / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["notebooks"]["02_calibrate"]["status"] == "interrupted"


def test_select_notebooks_by_number_name_or_stem(tmp_path):
    paths = [tmp_path / n for n in ("01_export.ipynb", "02_calibrate.ipynb", "04_evaluate.ipynb")]
    assert runner.select_notebooks(paths, ["export", "04"]) == [paths[0], paths[2]]
    assert runner.select_notebooks(paths, ["02_calibrate"]) == [paths[1]]
    from ghostlab.errors import RunError

    with pytest.raises(RunError, match="no such notebook; choose from 01_export"):
        runner.select_notebooks(paths, ["bench"])


def test_unwritable_output_folder_is_one_line(tmp_path):
    from ghostlab.errors import RunError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    notebook(tmp_path / "01_export.ipynb", "pass")
    params = load_params(profile(tmp_path, tmp_path))
    with pytest.raises(RunError, match="cannot write the run folder"):
        runner.run_notebooks(params, out=blocker / "run")


def test_exit_codes():
    ok, bad, stop = (runner.NotebookResult("a", s) for s in ("ok", "failed", "interrupted"))
    assert exit_code([ok]) == 0 and exit_code([ok, bad]) == 1 and exit_code([ok, stop]) == 130


@pytest.mark.slow
def test_params_reach_notebooks_as_data_not_code(tmp_path):
    """Quotes, newlines and code in a param or a path stay a string: papermill injects only two
    paths, and every other param is read from the frozen YAML by safe_load."""
    pwned = tmp_path / "pwned"
    evil = "x\"; __import__('pathlib').Path(" + repr(str(pwned)) + ").touch(); \"\n'''"
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"image": evil, "pwned": str(pwned)}))
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    notebook(nbdir / "05_ghost_maps.ipynb",
             "import json, pathlib\n"
             f"exp = json.loads(pathlib.Path({str(expected)!r}).read_text())\n"
             "assert isinstance(run_dir, str) and pathlib.Path(run_dir).name.startswith(\"we'ird\")\n"
             "assert run.params.ghost_maps.image.endswith(exp['image'])  # a path, resolved\n"
             "assert not pathlib.Path(exp['pwned']).exists()")
    params = load_params(profile(tmp_path, nbdir))
    params = params.replace(ghost_maps=params.ghost_maps.__class__(**{**params.ghost_maps.__dict__, "image": evil}))
    run_dir, results = runner.run_notebooks(params, out=tmp_path / "we'ird \"run\"\nname")
    assert [r.status for r in results] == ["ok"], results[0].error
    assert not pwned.exists()


def _interrupted_cell(loop):
    """What Ctrl-C leaves behind in nbclient: the cell's task, cut short by KeyboardInterrupt, is
    finished by nbclient's cleanup (which runs the loop again) with DeadKernelError that nobody
    retrieves; only garbage (the exception's frames) still refers to it."""
    import asyncio

    from nbclient.exceptions import DeadKernelError

    async def cell():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # as nbclient: cancelled only when the kernel is dead
            raise DeadKernelError("Kernel died") from None

    garbage = {"task": loop.create_task(cell())}
    garbage["cycle"] = garbage
    loop.call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
    try:
        loop.run_until_complete(garbage["task"])
    except KeyboardInterrupt:
        garbage["task"].cancel()
        loop.run_until_complete(asyncio.sleep(0.05))
        raise


def test_interrupt_leaves_no_task_error_for_asyncio_to_print_later(caplog):
    # The race behind "Task exception was never retrieved ... DeadKernelError: Kernel died" on
    # stderr after Ctrl-C: the task was collected after logging came back on.
    import gc

    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    with runner._interruptible():
        try:
            _interrupted_cell(loop)
        except KeyboardInterrupt:
            pass
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.slow
def test_interrupt_between_notebooks_still_exits_130(two_step):
    # Ctrl-C after 01 finished and before 02's kernel started used to end the run with exit code 0
    from contextlib import contextmanager

    tmp, nbdir, _ = two_step

    @contextmanager
    def ctrl_c_before(name):
        if name == "02_calibrate":
            raise KeyboardInterrupt
        yield

    run_dir, results = runner.run_notebooks(load_params(profile(tmp, nbdir)), around_step=ctrl_c_before)
    assert exit_code(results) == 130 and run_dir.name.startswith("p.interrupted-")
    assert [(r.name, r.status) for r in results] == [("01_export", "ok"), ("02_calibrate", "interrupted")]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["notebooks"]["02_calibrate"]["status"] == "interrupted"
