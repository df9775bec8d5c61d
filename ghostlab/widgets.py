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

from . import ghosts, plots, redundancy


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


class GhostExplorer(w.VBox):
    """Network, layer, image and channel choices over captured maps.

    GhostNet: a Ghost module's chosen intrinsic map and the ghost map(s) made from it, with their
    cosine similarity. The comparison network (when the run has one): a residual block's chosen
    channel. Both: the channel's nearest twin in the layer's output. Images: the report's shown
    images (captured once by ``ghosts.compute``) and the images the metrics average over
    (captured for both networks, at the same view size, the first time one is chosen).
    """

    def __init__(self, result: ghosts.GhostMapsResult):
        self.result = result
        self._switching = False
        self._views: dict[tuple, tuple] = {  # image key -> (picture, GhostNet maps, comparison maps, index)
            ("shown", i): (result.pictures[i], result.layers, result.comparison_layers, i)
            for i in range(len(result.image_labels))}
        networks = [(f"{result.model_name} (GhostNet)", "ghostnet")]
        if result.comparison is not None:
            networks.append((f"{result.comparison.name} (conventional)", "comparison"))
        self.network = w.Dropdown(options=networks, value="ghostnet", description="network")
        self.module = w.Dropdown(options=self._layer_names(), description="layer")
        self.module.value = result.detail[0] if result.detail else self.module.options[0]
        images = [(label, ("shown", i)) for i, label in enumerate(result.image_labels)]
        images += [(f"{label} (metric image)", ("metric", i)) for i, (label, _) in enumerate(result.metric_inputs)]
        self.image = w.Dropdown(options=images, value=("shown", 0), description="image")
        self.channel = w.IntSlider(value=0, min=0, max=self._channel_count() - 1, description="channel",
                                   continuous_update=False)
        self.view = w.Image(format="png")
        self.caption = w.HTML()
        self.network.observe(self._on_network, names="value")
        self.module.observe(self._on_module, names="value")
        self.image.observe(self._on_module, names="value")
        self.channel.observe(self._redraw, names="value")
        super().__init__([w.HBox([self.network, self.module]), w.HBox([self.image, self.channel]), self.view,
                          self.caption])
        self._redraw()

    def __repr__(self) -> str:  # what a report without a widget renderer prints
        return "Ghost-map explorer (interactive: open this notebook in JupyterLab with a live kernel)"

    def _ghostnet(self) -> bool:
        return self.network.value == "ghostnet"

    def _layer_names(self) -> list[str]:
        layers = self.result.layers if self._ghostnet() else self.result.comparison_layers
        return [layer.name for layer in layers]

    def _current(self) -> tuple[np.ndarray, ghosts.LayerMaps, int]:
        """(picture, chosen layer's maps, image index into them), capturing a metric image on first use."""
        key = self.image.value
        if key not in self._views:
            label_path = self.result.metric_inputs[key[1]]
            picture = ghosts.load_pictures([label_path], self.result.view_preprocess)[0]
            ghost_layers, other_layers = ghosts.capture_view(self.result, picture)
            self._views[key] = (picture, ghost_layers, other_layers, 0)
        picture, ghost_layers, other_layers, index = self._views[key]
        layers = ghost_layers if self._ghostnet() else other_layers
        return picture, next(la for la in layers if la.name == self.module.value), index

    def _channel_count(self) -> int:
        _, layer, _ = self._current()
        return int((layer.intrinsic if self._ghostnet() else layer.output).shape[1])

    def _on_network(self, _change: Any = None) -> None:
        names = self._layer_names()
        self._switching = True  # the layer list changes under the dropdown: one redraw at the end
        try:
            self.module.options = names
            self.module.value = self.result.detail[0] if self._ghostnet() and self.result.detail else names[0]
        finally:
            self._switching = False
        self._on_module()

    def _on_module(self, _change: Any = None) -> None:
        if self._switching:
            return
        with self.channel.hold_trait_notifications():
            self.channel.value = min(self.channel.value, self._channel_count() - 1)
            self.channel.max = self._channel_count() - 1
        self._redraw()

    def state(self) -> dict:
        """What the view shows now (for tests and for reading it without the picture)."""
        _, layer, img = self._current()
        c, size = self.channel.value, self.result.similarity_size
        ghost_channels = layer.ghosts_of(c) if self._ghostnet() else []
        sims = redundancy.subsample(layer.output[img], size)
        nearest = redundancy.channel_similarity(sims)[c]
        nearest[c] = np.nan
        twin = int(np.nanargmax(nearest)) if np.isfinite(nearest).any() else None
        out = {"network": self.network.value, "module": layer.name, "image": self.image.value, "channel": c,
               "ghosts": ghost_channels, "similarity": [], "nearest_twin": twin,
               "nearest_twin_similarity": None if twin is None else float(nearest[twin])}
        if self._ghostnet():
            ghost_sims = ghosts.ghost_similarity(layer, size)[img]
            out.update(intrinsic=c, similarity=[float(ghost_sims[j]) for j in ghost_channels])
        return out

    def _redraw(self, _change: Any = None) -> None:
        s = self.state()
        picture, layer, img = self._current()
        c = s["channel"]
        label = dict((v, k) for k, v in self.image.options)[self.image.value]
        if self._ghostnet():
            maps = [layer.intrinsic[img, c], *(layer.ghost[img, j] for j in s["ghosts"])]
            captions = [f"intrinsic {c}",
                        *(f"ghost {j} (cos {sim:.2f})" for j, sim in zip(s["ghosts"], s["similarity"]))]
            what = f"{layer.kind}, {layer.channels} output channels, {layer.intrinsic.shape[1]} intrinsic"
        else:
            twin = s["nearest_twin"]
            maps = [layer.output[img, c]] + ([] if twin is None else [layer.output[img, twin]])
            captions = [f"channel {c}"] + ([] if twin is None else
                                           [f"nearest twin {twin} (cos {s['nearest_twin_similarity']:.2f})"])
            what = f"residual block, {layer.channels} output channels"
        fig = plots.ghost_explorer_view(picture, maps[0], maps[1:], f"{layer.name} · {label}", captions)
        self.view.value = _png(fig)
        twin = ("none (inactive channel)" if s["nearest_twin"] is None
                else f"channel {s['nearest_twin']} of the output (cos {s['nearest_twin_similarity']:.2f})")
        self.caption.value = (f"<small>{html.escape(what)}; maps {layer.output.shape[-2]}x{layer.output.shape[-1]} "
                              f"at the view size. Nearest twin of channel {c}: {html.escape(twin)}.</small>")


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
