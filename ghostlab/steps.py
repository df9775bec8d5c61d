"""The steps of a run, in one table: which notebook, what it needs, what the index lifts from it.

Each step is a notebook ``notebooks/<name>.ipynb`` whose cells call the entry function
``<module>.run(run)`` (``run`` is the ``NotebookRun`` from ``ghostlab.start``) and then show what
it returned. The runner, the index page and docs/ARCHITECTURE.md read this table; adding a
notebook is one row here plus the notebook.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@dataclass(frozen=True)
class Step:
    name: str
    """The notebook's file stem, ``NN_word``: its order, and its name in --only (``NN``, ``word`` or both)."""
    module: str
    """The ``ghostlab`` module whose ``run(run)`` does the step's work."""
    question: str
    """What the step answers, in the reader's words (index cards, docs)."""
    requires: tuple[str, ...] = ()
    """Steps whose artifacts this one reads: it is skipped when one of them did not complete."""
    needs_images: bool = False
    """Reads the evaluation/calibration images: the runner checks and caches them before any step starts."""
    headline_figures: tuple[tuple[str, str], ...] = ()
    """(figure key published by the notebook, caption): figures the index lifts into its verdict."""

    def entry(self) -> Callable:
        return getattr(importlib.import_module(f"ghostlab.{self.module}"), "run")


STEPS: tuple[Step, ...] = (
    Step("01_export", "export", "Is the ONNX file the same model?", needs_images=True),
    Step("02_calibrate", "calibrate", "Which int8 variant keeps accuracy, and why does one lose?",
         requires=("01_export",), needs_images=True),
    Step("03_benchmark", "bench", "How fast is each candidate on this CPU?",
         requires=("01_export", "02_calibrate")),
    Step("04_evaluate", "evaluate", "How accurate is each candidate, and which one to ship?",
         requires=("01_export", "02_calibrate"), needs_images=True,
         headline_figures=(("accuracy_vs_latency", "Accuracy vs latency"),)),
    Step("05_ghost_maps", "ghost_report", "What do GhostNet's cheap operations make?",
         headline_figures=(("redundancy_vs_depth", "Redundancy across depth: GhostNet vs a conventional CNN"),)),
)
BY_NAME = {s.name: s for s in STEPS}


def step(name: str) -> Step:
    """The step of notebook ``name``; a notebook outside the table (a custom ``run.notebook_dir``)
    gets a step with no requirements."""
    return BY_NAME.get(name) or Step(name, "", "")


def requires(name: str) -> tuple[str, ...]:
    return step(name).requires


def needs_images(names: list[str]) -> bool:
    return any(step(n).needs_images for n in names)
