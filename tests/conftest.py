"""Shared fixtures: the tiny profile run end to end once per session."""

from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "params" / "tiny.yaml"


@dataclass
class TinyRun:
    run_dir: Path
    results: dict
    params: object

    def artifact(self, name: str) -> Path:
        return self.run_dir / "artifacts" / name


@pytest.fixture(scope="session")
def tiny_params():
    from ghostlab.config import load_params

    return load_params(TINY)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_params):
    """Every notebook on params/tiny.yaml, into a temp run folder (the demo assets are cached
    in outputs/_demo_tiny between sessions)."""
    from ghostlab.runner import run_notebooks

    run_dir, results = run_notebooks(tiny_params, out=tmp_path_factory.mktemp("tiny") / "tiny")
    return TinyRun(run_dir, {r.name: r for r in results}, tiny_params)
