"""The notebooks as a JupyterLab user runs them: top to bottom with nbclient (no papermill,
no runner), cwd notebooks/, in order into one run folder — on the tiny profile."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.slow


def test_notebooks_run_top_to_bottom_interactively(tmp_path):
    run_dir = tmp_path / "lab"
    for path in NOTEBOOKS:
        nb = nbformat.read(str(path), as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert cell.source.startswith("params_file = ")
        # what a user does in JupyterLab: edit the parameters cell, then Run All
        cell.source = f"params_file = {str(ROOT / 'params' / 'tiny.yaml')!r}\nrun_dir = {str(run_dir)!r}"
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{path.name} showed no figure"
    assert (run_dir / "artifacts" / "model.onnx").exists()
    assert (run_dir / "artifacts" / "evaluation.json").exists()
