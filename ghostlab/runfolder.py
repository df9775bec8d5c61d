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
            record = self.artifact(f"calibration_{v.name}.json")  # an alias of another variant's file: skip
            if path.exists() and not (record.exists() and read_json(record).get("alias_of")):
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
        from .plots import alt_text

        self._summary.setdefault("figure_alt", {})[name] = alt_text(fig)
        self._save_summary()
        return path


def _under(path: str | None, folder: Path) -> bool:
    try:
        return bool(path) and Path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def demo_parts(params: dict, weights_given: str | None = None) -> tuple[bool, bool]:
    """(the data is the demo's procedural set, the model is the demo's trained checkpoint), from the
    params as a dict, before or after the demo is resolved into paths under ``demo.root``."""
    demo, data, model, run = (params.get(k) or {} for k in ("demo", "data", "model", "run"))
    root = Path(demo.get("root") or Path(run.get("output_root") or "outputs") / "_demo")
    demo_data = data.get("dataset") == "demo" or _under(data.get("root"), root)
    demo_model = "demo" in (model.get("weights"), weights_given) or _under(model.get("weights"), root)
    return demo_data, demo_model


def honesty_banner(params: dict, weights_given: str | None = None) -> str:
    """The banner a demo or random-weights run shows on every page ('' for a real run): what the
    numbers can and cannot say. Params as a dict, so the index (from the manifest) shows the same."""
    demo_data, demo_model = demo_parts(params, weights_given)
    weights = (params.get("model") or {}).get("weights")
    out = []
    if demo_data or demo_model:
        n = (params.get("demo") or {}).get("num_classes")
        what = []
        if demo_data:
            what.append(f"the images are a procedural {n}-class set of drawn shapes" if n else
                        "the images are a procedural set of drawn shapes")
        if demo_model:
            what.append("the model was trained by the demo" + (" on them" if demo_data else ""))
        out.append(
            "<div class='gl-banner gl-demo' role='note'><b>Demo run:</b> " + html.escape("; ".join(what))
            + ". The numbers illustrate what the kit measures and how; they say nothing about GhostNet on "
            "ImageNet. The speeds are real, on this CPU.</div>")
    if weights == "random" or weights_given == "random":
        out.append(
            "<div class='gl-banner gl-random' role='note'><b>Random weights:</b> this model was not trained, "
            "so accuracy is chance; speed is real. Set <code>model.weights</code> to <code>pretrained</code>, "
            "<code>demo</code> or a checkpoint path for accuracy that means something.</div>")
    ghost_maps = params.get("ghost_maps") or {}
    if ghost_maps.get("compare_resnet", True) and ghost_maps.get("resnet_weights") == "random":
        out.append(
            "<div class='gl-banner gl-random' role='note'><b>Untrained comparison:</b> 05_ghost_maps compares "
            "GhostNet with a random-weight ResNet-50, as asked (<code>ghost_maps.resnet_weights: random</code>); "
            "its redundancy says nothing about trained CNNs.</div>")
    return "".join(out)


def _notebook_names(params: Params) -> list[str]:
    from .steps import NOTEBOOK_DIR

    folder = Path(params.run.notebook_dir) if params.run.notebook_dir else NOTEBOOK_DIR
    return sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))


def _page_title(name: str) -> str:
    num, _, word = name.partition("_")
    return f"{num} {word.replace('_', ' ')}"


def header_html(params: Params, notebook: str, run_dir: str | Path | None = None) -> str:
    """The header every report page starts with: links to the index and the previous/next notebook,
    the run (name, profile, date, commit), the machine (CPU, runtime versions, from the run's
    ``manifest.json`` when there is one), the model and data; and the demo / random-weights banner."""
    e = html.escape
    manifest = {}
    if run_dir is not None:
        try:
            manifest = read_json(Path(run_dir) / "manifest.json")
        except (OSError, ValueError):
            manifest = {}
    names = _notebook_names(params)
    nav = ["<a class='gl-back' href='index.html'>↑ index</a>"]
    if notebook in names:
        i = names.index(notebook)
        if i > 0:
            nav.append(f"<a class='gl-prev' href='{e(names[i - 1])}.html'>← {e(_page_title(names[i - 1]))}</a>")
        if i + 1 < len(names):
            nav.append(f"<a class='gl-next' href='{e(names[i + 1])}.html'>{e(_page_title(names[i + 1]))} →</a>")
    p = {**params.to_dict(), "profile": params.profile}
    banner = honesty_banner(p, manifest.get("weights_given"))
    return (f"<header class='gl-header'><nav class='gl-nav'>{' '.join(nav)}</nav>"
            f"{facts_html(manifest, p)}{banner}</header>")


def run_facts(manifest: dict, params: dict) -> list[tuple[str, str]]:
    """What a reader needs to place a page: the run, date, commit, CPU, runtimes, model and data
    (from ``manifest.json`` and the params as a dict; missing facts are left out)."""
    model, data, run = params.get("model", {}), params.get("data", {}), params.get("run", {})
    git = manifest.get("git") or {}
    commit = (git.get("commit") or "")[:10]
    if commit and git.get("dirty"):
        commit += " (with local changes)"
    cpu = manifest.get("cpu") or {}
    packages = manifest.get("packages") or {}
    runtimes = ", ".join(f"{k} {v}" for k, v in packages.items()
                         if v and k in ("onnxruntime", "openvino", "torch", "timm"))
    weights = manifest.get("weights_given") or model.get("weights")
    dataset = data.get("dataset")
    facts = [
        ("run", f"{run.get('name') or params.get('profile') or manifest.get('profile', '')}"
                f" · profile {manifest.get('profile') or params.get('profile', '')}"),
        ("date", str(manifest.get("started") or "").replace("T", " ").replace("+00:00", " UTC")),
        ("commit", commit),
        ("CPU", f"{cpu.get('model', '?')} · {cpu.get('cores', '?')} cores" if cpu else ""),
        ("runtimes", f"{runtimes} · Python {manifest.get('python', '')}" if runtimes else ""),
        ("model", f"{model.get('name')} · weights {weights} · {model.get('input_size')} px input"),
        ("data", "the demo's procedural set" if demo_parts(params)[0] else f"{dataset}: {data.get('root')}"),
    ]
    return [(k, v) for k, v in facts if v]


def facts_html(manifest: dict, params: dict) -> str:
    e = html.escape
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in run_facts(manifest, params))
    return f"<dl class='gl-facts'>{items}</dl>"


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

            display(HTML(header_html(params, notebook, run_dir)))
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
    ip = get_ipython()
    if ip is not None:
        set_matplotlib_formats("png")
        from IPython.core.pylabtools import print_figure
        from matplotlib.figure import Figure

        from .plots import alt_text

        # the PNG carries its alt text (output metadata) for the HTML report: what the figure shows
        ip.display_formatter.formatters["image/png"].for_type(
            Figure, lambda fig: (print_figure(fig, "png", bbox_inches="tight"), {"alt": alt_text(fig)}))
