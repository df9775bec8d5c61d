"""The run folder, as the notebooks see it.

A notebook's first code cell is ``run = ghostlab.start("02_calibrate", params_file, run_dir)``.
That loads the frozen params, prepares the demo assets when the profile uses them,
shows a header (and a banner when the weights are random), and gives the notebook:

- ``run.params``: the typed params;
- ``run.artifact(name)``: a path under ``artifacts/``; ``run.require(name)`` the same,
  with a clear error when an upstream notebook has not written it;
- ``run.publish(...)`` / ``run.publish_table(...)`` / ``run.publish_figure(...)``: the key
  results the index page shows for this notebook (``artifacts/summary/<notebook>.json``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Params, load_params
from .errors import RunError
from .jsonio import jsonable, read_json, write_json

SUMMARY_DIR = "summary"
FIGURE_DIR = "figures"


@dataclass
class NotebookRun:
    """What a notebook gets from ``ghostlab.start``."""

    notebook: str
    params: Params
    run_dir: Path
    _summary: dict = field(default_factory=dict)

    @property
    def artifacts(self) -> Path:
        return self.run_dir / "artifacts"

    def artifact(self, name: str) -> Path:
        return self.artifacts / name

    def require(self, name: str, made_by: str = "an earlier notebook") -> Path:
        path = self.artifact(name)
        if not path.exists():
            raise RunError(
                f"{path} is missing: run {made_by} first (ghostlab run {self.params.source} writes it)"
            )
        return path

    def onnx_models(self) -> dict[str, Path]:
        """The run's ONNX models by name: ``fp32`` then ``int8_<variant>`` in params order (those that exist)."""
        models = {}
        if self.artifact("model.onnx").exists():
            models["fp32"] = self.artifact("model.onnx")
        for v in self.params.calibrate.variants:
            path = self.artifact(f"int8_{v.name}.onnx")
            if path.exists():
                models[f"int8_{v.name}"] = path
        return models

    # ---- what the index shows
    def _summary_path(self) -> Path:
        return self.artifacts / SUMMARY_DIR / f"{self.notebook}.json"

    def _save_summary(self) -> None:
        write_json(self._summary_path(), self._summary)

    def publish(self, **values: Any) -> None:
        """Key results (name -> number or short text) for the index page."""
        self._summary.setdefault("values", {}).update(jsonable(values))
        self._save_summary()

    def publish_table(self, title: str, rows: list[dict]) -> None:
        """A small table (list of row dicts) for the index page."""
        tables = self._summary.setdefault("tables", {})
        tables[title] = jsonable(rows)
        self._save_summary()

    def publish_figure(self, name: str, fig: Any) -> Path:
        """Save a matplotlib figure as PNG for the index page; returns its path."""
        path = self.artifacts / FIGURE_DIR / f"{self.notebook}_{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        figs = self._summary.setdefault("figures", {})
        figs[name] = str(path.relative_to(self.run_dir))
        self._save_summary()
        return path


def header_html(params: Params, notebook: str) -> str:
    """The banner every report starts with: profile, model, weights, data."""
    e = html.escape
    weights = params.model.weights
    rows = [
        ("profile", params.profile),
        ("model", params.model.name),
        ("weights", weights),
        ("data", f"{params.data.dataset}: {params.data.root or '(demo)'}"),
    ]
    cells = "".join(f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    out = f"<table>{cells}</table>"
    if weights == "random":
        out = (
            "<div style='background:#fde2e1;border:2px solid #c0392b;padding:8px;margin:6px 0'>"
            "<b>Random weights.</b> This model was not trained: every accuracy number in this "
            "report is meaningless. Set <code>model.weights</code> to <code>pretrained</code>, "
            "<code>demo</code> or a checkpoint path.</div>" + out
        )
    return out


def start(notebook: str, params_file: str | Path, run_dir: str | Path, show: bool = True) -> NotebookRun:
    """Open the run folder for one notebook (see the module docstring)."""
    from . import demo

    # ghostlab run hands over resolved params (a no-op here); a notebook opened in JupyterLab on a
    # profile resolves the demo itself.
    params = demo.prepare(load_params(params_file))
    run_dir = Path(run_dir).expanduser().resolve()
    (run_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    run = NotebookRun(notebook=notebook, params=params, run_dir=run_dir)
    run._summary_path().unlink(missing_ok=True)  # a rerun replaces what it published
    if show:
        _show_figures_inline()
        try:
            from IPython.display import HTML, display

            display(HTML(header_html(params, notebook)))
        except ImportError:  # pragma: no cover - plain python
            pass
    return run


def _show_figures_inline() -> None:
    """Let a ``Figure`` returned by a cell render as PNG even if pyplot was never imported
    (the inline backend registers its formatter only then). The backend is left alone."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - outside Jupyter
        return
    if get_ipython() is not None:
        set_matplotlib_formats("png")
