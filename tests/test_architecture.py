"""The house plan (docs/ARCHITECTURE.md) holds: one steps table, sessions only from runtimes,
no import cycles, notebooks as their own single source."""

import ast
from pathlib import Path

import nbformat
import pytest

from ghostlab import steps

PACKAGE = Path(__file__).resolve().parent.parent / "ghostlab"
ROOT = PACKAGE.parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(path: Path) -> set[str]:
    """ghostlab modules ``path`` imports anywhere (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1:  # from .x import y / from . import x, y
                names = [base] if base else [a.name for a in node.names]
            elif base.startswith("ghostlab"):
                names = [base.removeprefix("ghostlab").lstrip(".")] or [a.name for a in node.names]
            else:
                continue
            found.update(n.split(".")[0] for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("ghostlab."))
    return {n for n in found if (PACKAGE / f"{n}.py").exists()} - {path.stem}


def test_no_import_cycles():
    graph = {p.stem: _imports(p) for p in MODULES}
    state: dict[str, int] = {}

    def visit(mod: str, trail: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                cycle = trail[trail.index(dep):] + [dep] if dep in trail else [mod, dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, trail + [dep])
        state[mod] = 2

    for mod in graph:
        if mod not in state:
            visit(mod, [mod])


def test_the_cycle_check_sees_function_level_imports(tmp_path):
    mod = tmp_path / "demo.py"
    mod.write_text("def f():\n    from .runfolder import start\n    from . import data, jsonio\n")
    assert _imports(mod) == {"runfolder", "data", "jsonio"}


@pytest.mark.parametrize("construct", ["InferenceSession(", "compile_model(", "set_num_threads("])
def test_only_runtimes_builds_sessions(construct):
    """ORT sessions, OpenVINO compiled models and torch's inference threads come from runtimes
    (training in demo.py and ghosts' capture may set torch threads through runtimes.torch_threads)."""
    offenders = [p.name for p in MODULES if p.name != "runtimes.py" and construct in p.read_text()]
    assert not offenders, f"{construct} outside runtimes.py: {offenders}"


def test_steps_table_matches_the_notebooks():
    on_disk = sorted(p.stem for p in steps.NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert on_disk == [s.name for s in steps.STEPS]
    for s in steps.STEPS:
        assert callable(s.entry()), f"ghostlab.{s.module} has no run(run)"
        nb = nbformat.read(str(steps.NOTEBOOK_DIR / f"{s.name}.ipynb"), as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert f"{s.module}.run(run)" in code, f"{s.name} does not call {s.module}.run(run)"
        assert set(s.requires) <= {t.name for t in steps.STEPS if t.name < s.name}


def test_notebooks_are_the_only_source():
    """What a person edits in JupyterLab is what ghostlab run executes: no generator scripts
    that could overwrite notebooks, and the runner reads notebooks/ itself."""
    from ghostlab import runner

    assert not list((ROOT / "scripts").glob("build_*.py"))
    assert runner.NOTEBOOK_DIR == steps.NOTEBOOK_DIR == ROOT / "notebooks"


def _code_lines(path: Path) -> int:
    """Lines besides the module docstring (bench.py's documents benchmark.json field by field)."""
    tree = ast.parse(path.read_text())
    doc = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
    skipped = doc.end_lineno if doc is not None and isinstance(doc.value, ast.Constant) else 0
    return len(path.read_text().splitlines()) - skipped


def test_modules_stay_readable():
    long = {p.name: n for p in MODULES if (n := _code_lines(p)) > 650}
    assert not long, f"modules over ~600 lines of code, split them by job: {long}"
