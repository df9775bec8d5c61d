"""The tiny profile end to end: every notebook, the index, the HTML reports, the manifest."""

import json
import re

import pytest

pytestmark = pytest.mark.slow


def test_every_notebook_completes(tiny_run):
    failed = {n: r.error for n, r in tiny_run.results.items() if r.status != "ok"}
    assert not failed
    assert set(tiny_run.results) >= {"01_export"}


def test_reports_are_html_without_code_with_embedded_figures(tiny_run):
    for name in tiny_run.results:
        page = (tiny_run.run_dir / f"{name}.html").read_text()
        assert "ghostlab.start(" not in page, f"{name}.html shows code"
        assert "class=\"jp-CodeMirrorEditor" not in page  # code cells render without their input
        assert "cdnjs" not in page
        assert re.search(r"<img [^>]*src=\"data:image/png;base64,", page), f"{name}.html has no figure"
    assert "Parity" in (tiny_run.run_dir / "01_export.html").read_text()


def test_index_links_every_report_and_shows_results(tiny_run):
    index = (tiny_run.run_dir / "index.html").read_text()
    for name in tiny_run.results:
        assert f"href='{name}.html'" in index
    assert "torch vs ORT: top-1 agreement" in index and "data:image/png;base64," in index  # keys in words
    assert "tiny" in index and "ghostnet_050" in index


def test_manifest_records_the_run(tiny_run):
    manifest = json.loads((tiny_run.run_dir / "manifest.json").read_text())
    assert manifest["profile"] == "tiny"
    assert manifest["git"]["commit"] is None or len(manifest["git"]["commit"]) == 40
    assert {"python", "packages", "cpu", "params", "started", "finished"} <= set(manifest)
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in manifest["notebooks"].values())


def test_export_artifacts(tiny_run):
    export = json.loads(tiny_run.artifact("export.json").read_text())
    assert tiny_run.artifact("model.onnx").stat().st_size > 100_000
    assert export["opset"] == 17 and export["params"] > 1e6 and export["macs"] > 1e6
    assert export["parity"]["top1_agreement"] == 1.0
    assert export["parity"]["max_abs_diff"] < 1e-4
    assert len(export["class_names"]) == export["num_classes"] == tiny_run.params.demo.num_classes
