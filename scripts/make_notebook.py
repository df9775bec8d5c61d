"""Write a notebook from a list of (kind, source) cells, without outputs.

Usage from a build script: ``write_notebook(path, cells)`` where kind is "md", "code" or
"params" (the code cell tagged ``parameters``). Keeps the committed notebooks clean and
their structure (title, parameters, start cell) the same across the kit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


PARAMETERS = """
params_file = "../params/demo.yaml"
run_dir = "../outputs/lab"
"""


def start_cells(name: str, modules: str) -> list[tuple[str, str]]:
    """The parameters cell (defaults: the demo profile into outputs/lab) and the cell that opens
    the run folder, the same in every notebook."""
    return [("params", PARAMETERS),
            ("code", f"import ghostlab\nfrom ghostlab import {modules}\n\n"
                     f"run = ghostlab.start({name!r}, params_file, run_dir)".replace("'", '"'))]


def write_notebook(path: str | Path, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):  # stable ids: diffs stay small
        cell["id"] = f"{Path(path).stem[:2]}-{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("import write_notebook from this module in a notebook build script")
