"""ipywidgets explorers for JupyterLab: an interactive extra beside the static figures.

The HTML reports never depend on these: every view here has a static figure in the same
notebook, the runner drops saved widget state before rendering, and each explorer's plain-text
form (what a report without a widget renderer shows) is one line saying what it is.
Views are PNG images rendered from ``ghostlab.plots`` figures, so no pyplot state and no
matplotlib widget backend are involved.
"""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as w
import numpy as np

from . import ghosts, plots


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


class GhostExplorer(w.VBox):
    """Module dropdown, image choice and channel slider over captured ghost maps.

    Shows the input image, the chosen intrinsic map and the ghost map(s) made from it,
    with their cosine similarity and the channel's nearest twin in the module's output.
    Nothing is recomputed but the view: the maps were captured once by ``ghosts.compute``.
    """

    def __init__(self, result: ghosts.GhostMapsResult):
        self.result = result
        start = result.detail[0] if result.detail else result.layers[0].name
        self.module = w.Dropdown(options=[layer.name for layer in result.layers], value=start,
                                 description="module")
        self.image = w.Dropdown(options=[(label, i) for i, label in enumerate(result.image_labels)], value=0,
                                description="image")
        self.channel = w.IntSlider(value=0, min=0, max=self._intrinsic_count() - 1,
                                   description="intrinsic ch", continuous_update=False)
        self.view = w.Image(format="png")
        self.caption = w.HTML()
        self.module.observe(self._on_module, names="value")
        self.image.observe(self._redraw, names="value")
        self.channel.observe(self._redraw, names="value")
        super().__init__([w.HBox([self.module, self.image]), self.channel, self.view, self.caption])
        self._redraw()

    def __repr__(self) -> str:  # what a report without a widget renderer prints
        return "Ghost-map explorer (interactive: open this notebook in JupyterLab with a live kernel)"

    def _layer(self) -> ghosts.LayerMaps:
        return self.result.layer(self.module.value)

    def _intrinsic_count(self) -> int:
        return int(self._layer().intrinsic.shape[1])

    def _on_module(self, _change: Any = None) -> None:
        with self.channel.hold_trait_notifications():
            self.channel.value = min(self.channel.value, self._intrinsic_count() - 1)
            self.channel.max = self._intrinsic_count() - 1
        self._redraw()

    def state(self) -> dict:
        """What the view shows now (for tests and for reading it without the picture)."""
        layer, img, c = self._layer(), self.image.value, self.channel.value
        size = self.result.similarity_size
        sims = ghosts.ghost_similarity(layer, size)[img]
        ghost_channels = layer.ghosts_of(c)
        out = ghosts.subsample(layer.output[img], size)
        nearest = ghosts.channel_similarity(out)[c]
        nearest[c] = np.nan
        twin = int(np.nanargmax(nearest)) if np.isfinite(nearest).any() else None
        return {"module": layer.name, "image": img, "intrinsic": c, "ghosts": ghost_channels,
                "similarity": [float(sims[j]) for j in ghost_channels],
                "nearest_twin": twin, "nearest_twin_similarity": None if twin is None else float(nearest[twin])}

    def _redraw(self, _change: Any = None) -> None:
        s = self.state()
        layer, img, c = self._layer(), s["image"], s["intrinsic"]
        fig = plots.ghost_explorer_view(
            self.result.pictures[img], layer.intrinsic[img, c], [layer.ghost[img, j] for j in s["ghosts"]],
            f"{layer.name} · {self.result.image_labels[img]}",
            [f"intrinsic {c}", *(f"ghost {j} (cos {sim:.2f})" for j, sim in zip(s["ghosts"], s["similarity"]))])
        self.view.value = _png(fig)
        twin = ("none (inactive channel)" if s["nearest_twin"] is None
                else f"channel {s['nearest_twin']} of the output (cos {s['nearest_twin_similarity']:.2f})")
        self.caption.value = (f"<small>{html.escape(layer.kind)}, {layer.channels} output channels, "
                              f"{layer.intrinsic.shape[1]} intrinsic. Nearest twin of intrinsic {c}: "
                              f"{html.escape(twin)}.</small>")


def ghost_explorer(result: ghosts.GhostMapsResult) -> GhostExplorer:
    return GhostExplorer(result)


def maybe_ghost_explorer(result: ghosts.GhostMapsResult, params: Any) -> Any:
    """The explorer when ``ghost_maps.interactive`` is true, else a one-line note saying how to get it."""
    if params.ghost_maps.interactive:
        return GhostExplorer(result)
    from IPython.display import Markdown

    return Markdown("*Interactive explorer off: set `ghost_maps.interactive: true` and open this notebook "
                    "in JupyterLab to browse every module, channel and image. The figures above are static "
                    "and always in the report.*")
