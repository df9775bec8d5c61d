"""The runner on small synthetic notebooks: status from papermill, rendered errors, skips, index."""

import json

import nbformat
import pytest

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
    params_file = tmp / "p.yaml"
    params_file.write_text(f"data: {{root: {tmp}}}\nmodel: {{weights: random}}\nrun: {{output_root: {tmp / 'out'}}}\n")
    params = load_params(params_file)
    run_dir, results = runner.run_notebooks(params, notebook_dir=nbdir)
    return run_dir, {r.name: r for r in results}


@pytest.mark.slow
def test_statuses_come_from_papermill(synthetic_run):
    run_dir, results = synthetic_run
    assert run_dir.name == "p"
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
    assert manifest["notebooks"]["02_calibrate"]["status"] == "failed"
    assert set(manifest["cpu"]["flags"]) >= {"avx2", "avx512f", "avx512_vnni", "amx_int8"}
    assert manifest["packages"]["torch"].startswith("2.14.1")
    assert manifest["params"]["model"]["weights"] == "random"
    index = (run_dir / "index.html").read_text()
    assert "boom from calibrate" in index and "failed" in index and "skipped" in index
    assert "<script>alert(1)</script>" not in index and "&lt;script&gt;" in index
    assert "data:image/png;base64," in index
    assert "href='01_export.html'" in index
    assert "http://" not in index and "https://" not in index


def test_select_notebooks_by_number_name_or_stem(tmp_path):
    paths = [tmp_path / n for n in ("01_export.ipynb", "02_calibrate.ipynb", "04_evaluate.ipynb")]
    assert runner.select_notebooks(paths, ["export", "04"]) == [paths[0], paths[2]]
    assert runner.select_notebooks(paths, ["02_calibrate"]) == [paths[1]]
    from ghostlab.errors import RunError

    with pytest.raises(RunError, match="no such notebook; choose from 01_export"):
        runner.select_notebooks(paths, ["bench"])


def test_exit_codes():
    ok, bad, stop = (runner.NotebookResult("a", s) for s in ("ok", "failed", "interrupted"))
    assert exit_code([ok]) == 0 and exit_code([ok, bad]) == 1 and exit_code([ok, stop]) == 130
