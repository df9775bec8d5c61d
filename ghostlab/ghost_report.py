"""Notebook 05's report from a ``ghosts.GhostMapsResult``: ``artifacts/ghost_maps.json``, the stated
finding (computed from the metrics), the values published for the index page, the two networks side
by side, and the data behind each figure and table.

Data only (dicts, arrays, text); ``ghostlab.plots`` draws them. ``run(run)`` is the step's entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ghosts import MIN_VIEW_SIDE, RESNET_FIRST_GROUP, GhostMapsResult, LayerMaps, compute, ghost_similarity
from .jsonio import write_json
from .redundancy import MIN_PIXELS, channel_similarity, nanmean, subsample


def run(run: Any) -> GhostMapsResult:
    """Notebook 05's step: ``ghosts.compute`` on the run's params (feature maps of both networks and
    their redundancy), then ``artifacts/ghost_maps.json`` (``summary``); returns the result."""
    result = compute(run.params)
    write_json(run.artifact("ghost_maps.json"), summary(result))
    return result


# ---------------------------------------------------------------- the finding and ghost_maps.json

def comparison_banner(result: GhostMapsResult) -> str | None:
    """The warning at the top of the report and of the index when the comparison network is untrained."""
    if result.comparison is not None and not result.comparison.trained:
        return (f"The comparison network ({result.comparison.name}) has random weights, as asked "
                f"(ghost_maps.resnet_weights: random): its redundancy is that of an untrained network, "
                f"not evidence about trained CNNs.")
    return None


def _pct(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{100 * v:.0f} %"


def _wide_mean(rows: list[dict], key: str) -> float:
    """Mean of ``key`` over the layers compared over at least ``MIN_PIXELS`` pixels."""
    return nanmean([m[key] for m in rows if m["similarity_pixels"] >= MIN_PIXELS])


def finding(result: GhostMapsResult) -> dict:
    """The report's stated finding, computed from the metrics: the numbers and one paragraph."""
    t = result.twin_threshold
    wide = {m["name"] for m in result.metrics if m["similarity_pixels"] >= MIN_PIXELS}
    sims = np.concatenate([v for k, v in result.ghost_sims.items() if k in wide] or [np.array([])])
    sims = sims[np.isfinite(sims)]
    out = {
        "twin_threshold": t,
        "min_pixels": MIN_PIXELS,
        "ghost_to_source_median": float(np.median(sims)) if sims.size else None,
        "ghost_to_source_above_threshold": float((sims > t).mean()) if sims.size else None,
        "ghostnet_twin_share": _wide_mean(result.metrics, "twin_share"),
    }
    text = []
    group = result.first_group()
    c = result.comparison
    if c is not None and group is not None:
        row = next(m for m in result.comparison_metrics if m["name"] == group.name)
        out.update(comparison_first_group_twin_share=row["twin_share"],
                   comparison_first_group_twin_share_sd=row["twin_share_sd"],
                   comparison_twin_share=_wide_mean(result.comparison_metrics, "twin_share"))
        who = (f"the trained {c.name}" + (f" ({c.accuracy:.1%} val top-1)" if c.accuracy is not None else "")
               if c.trained else f"the untrained (random-weight) {c.name}")
        text.append(f"In the first residual group ({RESNET_FIRST_GROUP}) of {who}, {_pct(row['twin_share'])} of "
                    f"channels have a near twin (cos > {t:g}; mean over {row['images']} images, sd "
                    f"{_pct(row['twin_share_sd'])}); over all its blocks {_pct(out['comparison_twin_share'])}, against "
                    f"{_pct(out['ghostnet_twin_share'])} over {result.model_name}'s Ghost modules (layers of at "
                    f"least {MIN_PIXELS} pixels).")
    else:
        text.append(f"No comparison network ({result.comparison_note}). Over {result.model_name}'s Ghost modules "
                    f"(of at least {MIN_PIXELS} pixels) {_pct(out['ghostnet_twin_share'])} of channels have a near "
                    f"twin (cos > {t:g}).")
    med = out["ghost_to_source_median"]
    if med is not None:
        verdict = ("cheap and close to copies" if med > t else "cheap, correlated, not copies" if med >= 0.5
                   else "cheap, loosely related to their source, far from copies" if med >= 0.2
                   else "cheap, and mostly unlike their source")
        text.append(f"GhostNet's ghost maps sit at median cos {med:.2f} to their intrinsic source "
                    f"({_pct(out['ghost_to_source_above_threshold'])} above {t:g}): {verdict}.")
    out["text"] = " ".join(text)
    return out


def summary(result: GhostMapsResult) -> dict:
    """The content of ``artifacts/ghost_maps.json``."""
    c = result.comparison
    return {
        "model": result.model_name, "weights": result.weights, "accuracy": result.accuracy,
        "accuracy_note": result.accuracy_note, "preprocess": result.preprocess, "input_size": result.input_size,
        "view": {"scale": result.view_scale, "input_size": result.input_size * result.view_scale,
                 "why": f"figures show maps at {result.view_scale}x the training input so the deepest shown module "
                        f"is at least {MIN_VIEW_SIDE}x{MIN_VIEW_SIDE}; metrics use the training input"},
        "images": result.image_labels, "metric_images": result.metric_labels,
        "similarity_size": result.similarity_size, "twin_threshold": result.twin_threshold,
        "definitions": {
            "similarity": "cosine of maps average-pooled to at most similarity_size per side; each metric is the "
                          "mean over metric_images, <metric>_sd their standard deviation",
            "mean_max_similarity": "mean over active channels of the highest cosine to another channel",
            "twin_share": "share of active channels whose highest cosine to another channel exceeds twin_threshold",
            "effective_rank": "Roy & Vetterli effective rank of the active maps, each scaled to unit norm",
            "effective_rank_raw": "plain Roy & Vetterli effective rank of the raw maps",
            "*_fraction": "effective rank over max_rank = min(channels, pixels compared)",
        },
        "detail_modules": result.detail,
        "modules": result.metrics,
        "comparison": None if c is None else {
            "model": c.name, "weights": c.weights, "checkpoint": c.checkpoint, "trained": c.trained,
            "random_weights": not c.trained, "accuracy": c.accuracy, "accuracy_note": c.accuracy_note,
            "params": c.params, "macs": c.macs or None, "first_group": RESNET_FIRST_GROUP,
            "blocks": result.comparison_metrics},
        "comparison_note": result.comparison_note,
        "finding": finding(result),
    }




def view_note(result: GhostMapsResult) -> str | None:
    """What the input figure says when the maps are shown at a larger input than the metrics use."""
    if result.view_scale == 1:
        return None
    return (f"Shown at {result.view_scale}x the {result.input_size}px training size "
            f"({result.input_size * result.view_scale}px), so the deepest module shown is at least "
            f"{MIN_VIEW_SIDE}x{MIN_VIEW_SIDE}; the metrics use {result.input_size}px.")


def network_rows(result: GhostMapsResult) -> list[dict]:
    """The two networks side by side: weights, size, cost at the training input, accuracy."""
    g_params = sum(p.numel() for p in result.model.parameters()) if result.model is not None else None
    weights = "demo (trained here)" if _ghostnet_weights(result) == "demo" else result.weights
    rows = [{"network": result.model_name, "role": "GhostNet (Ghost modules measured)", "weights": weights,
             "params (M)": None if g_params is None else g_params / 1e6, "MACs (M)": None,
             "val top-1 %": None if result.accuracy is None else 100 * result.accuracy,
             "accuracy": result.accuracy_note}]
    c = result.comparison
    if c is not None:
        rows.append({"network": c.name, "role": "conventional ResNet (residual blocks measured)",
                     "weights": c.weights if c.checkpoint is None or c.weights != "demo" else "demo (trained here)",
                     "params (M)": c.params / 1e6, "MACs (M)": c.macs / 1e6 if c.macs else None,
                     "val top-1 %": None if c.accuracy is None else 100 * c.accuracy, "accuracy": c.accuracy_note})
    if result.model is not None:
        from .models import count_macs

        rows[0]["MACs (M)"] = count_macs(result.model, result.input_size) / 1e6
    return rows


def headline(result: GhostMapsResult) -> dict:
    """What notebook 05 publishes for the index card: the finding as its ``conclusion`` (the card's answer),
    the numbers behind it and, for an untrained comparison network, the warning."""
    f = finding(result)
    c = result.comparison
    out = {"conclusion": f["text"], "ghost_to_source_similarity_median": f["ghost_to_source_median"],
           "ghostnet_twin_share": f["ghostnet_twin_share"],
           "comparison": "none" if c is None else f"{c.name} ({c.weights if c.weights != 'demo' else 'demo, trained'})"}
    if c is not None:
        out["comparison_first_group_twin_share"] = f.get("comparison_first_group_twin_share")
        out["comparison_val_top1"] = c.accuracy
    banner = comparison_banner(result)
    if banner:
        out["warning"] = banner
    return out

# ---------------------------------------------------------------- what the figures show

def _energy_order(maps: np.ndarray) -> np.ndarray:
    """Channel indices of (C, H, W) maps, strongest (largest norm) first."""
    return np.argsort(-np.linalg.norm(maps.reshape(maps.shape[0], -1), axis=1), kind="stable")


def source_pairs(layer: LayerMaps, image: int, count: int, size: int) -> list[dict]:
    """Up to ``count`` (intrinsic map, a ghost map made from it) pairs of one image, strongest
    intrinsic channels first, with their cosine similarity."""
    sims = ghost_similarity(layer, size)[image]
    pairs = []
    for i in _energy_order(layer.intrinsic[image]):
        ghosts = layer.ghosts_of(int(i))
        if ghosts:
            j = ghosts[0]
            pairs.append({"intrinsic": int(i), "ghost": j, "similarity": float(sims[j]),
                          "intrinsic_map": layer.intrinsic[image, i], "ghost_map": layer.ghost[image, j]})
        if len(pairs) >= count:
            break
    return pairs


def source_pair_panels(result: GhostMapsResult, image: int = 0) -> list[dict]:
    """One panel per detail module: its name and its intrinsic/ghost pairs."""
    return [{"name": name, "pairs": source_pairs(result.layer(name), image, result.max_channels,
                                                  result.similarity_size)}
            for name in result.detail]


def ghost_similarity_by_module(result: GhostMapsResult) -> dict:
    """Every kept ghost map's similarity to its source, per module, over the metric images."""
    names = [m["name"] for m in result.metrics if m["name"] in result.ghost_sims]
    values = [result.ghost_sims[n][np.isfinite(result.ghost_sims[n])] for n in names]
    stages = [m["stage"] for m in result.metrics if m["name"] in result.ghost_sims]
    return {"names": names, "values": values, "stages": stages,
            "model": f"{result.model_name}, {len(result.metric_labels)} images"}


def heatmap_panels(result: GhostMapsResult, image: int = 0) -> list[dict]:
    """Channel-similarity matrix of each detail module's output; ``split`` = intrinsic channels
    (the output is [intrinsic | ghost], so ghost pairs sit on a band ``split`` off the diagonal)."""
    panels = []
    for name in result.detail:
        layer = result.layer(name)
        sim = channel_similarity(subsample(layer.output[image], result.similarity_size))
        panels.append({"name": name, "matrix": sim, "split": int(layer.intrinsic.shape[1])})
    return panels


def similar_pairs(maps: np.ndarray, count: int, size: int) -> list[tuple[int, int, float]]:
    """The ``count`` most similar channel pairs (a, b, cosine) of one image's (C, H, W) maps,
    each channel used at most once, most similar first."""
    sim = channel_similarity(subsample(maps, size))
    iu = np.triu_indices(sim.shape[0], k=1)
    values = sim[iu]
    order = np.argsort(np.where(np.isnan(values), -np.inf, values))[::-1]
    used: set[int] = set()
    pairs = []
    for k in order:
        if np.isnan(values[k]) or len(pairs) >= count:
            break
        a, b = int(iu[0][k]), int(iu[1][k])
        if a in used or b in used:
            continue
        used.update((a, b))
        pairs.append((a, b, float(values[k])))
    return pairs


def _gallery(title: str, maps: np.ndarray, count: int, size: int) -> dict:
    pairs = [{"a": a, "b": b, "similarity": s, "map_a": maps[a], "map_b": maps[b]}
             for a, b, s in similar_pairs(maps, count, size)]
    return {"title": title, "pairs": pairs, "banner": None}


def _ghostnet_weights(result: GhostMapsResult) -> str:
    """GhostNet's weights in the user's words: ``demo`` for the demo checkpoint, else as given."""
    return "demo" if result.accuracy_note.startswith("val top-1 on the demo") else result.weights


def _label(name: str, weights: str, trained: bool) -> str:
    return f"{name} ({weights})" if trained else f"{name} (random weights)"


def gallery_panels(result: GhostMapsResult, image: int = 0) -> list[dict]:
    """The most similar channel pairs ("ghost pairs") of one image: in GhostNet's first detail module's
    output and, when compared, in the comparison network's first residual group (the paper's Fig. 1)."""
    name = result.detail[0]
    layer = result.layer(name)
    size = f"{layer.output.shape[-2]}x{layer.output.shape[-1]}"
    panels = [_gallery(f"{_label(result.model_name, _ghostnet_weights(result), result.weights != 'random')} · {name} output "
                       f"({size})", layer.output[image], result.max_channels, result.similarity_size)]
    group = result.first_group()
    if group is not None:
        c = result.comparison
        size = f"{group.output.shape[-2]}x{group.output.shape[-1]}"
        panels.append(_gallery(f"{_label(c.name, c.weights, c.trained)} · first residual group "
                               f"({RESNET_FIRST_GROUP}, {size}) output", group.output[image], result.max_channels,
                               result.similarity_size))
    return panels


def depth_series(result: GhostMapsResult) -> dict[str, list[dict]]:
    """Per-layer metrics by network, for the redundancy-vs-depth figure."""
    series = {f"{_label(result.model_name, _ghostnet_weights(result), result.weights != 'random')} · Ghost modules":
              result.metrics}
    if result.comparison_metrics:
        c = result.comparison
        series[f"{_label(c.name, c.weights, c.trained)} · residual blocks"] = result.comparison_metrics
    return series


def module_rows(result: GhostMapsResult) -> list[dict]:
    """The per-layer table of the report: GhostNet's Ghost modules, then the comparison network's blocks."""
    rows = []
    c = result.comparison
    labelled = [(result.model_name, m) for m in result.metrics] + [(c.name, m) for m in result.comparison_metrics]
    for network, m in labelled:
        row = {"network": network, "layer": m["name"], "depth": m["depth"], "channels": m["channels"],
               "size": f"{m['height']}x{m['width']}"}
        if "ghost_similarity" in m:
            row["ghost↔source median"] = m["ghost_similarity"]["median"]
        row.update({"mean max cos": m["mean_max_similarity"], "twin share": m["twin_share"],
                    "twin sd": m["twin_share_sd"], "rank / max": m["effective_rank_fraction"],
                    "raw rank / max": m["effective_rank_raw_fraction"], "inactive": m["inactive_channels"]})
        rows.append(row)
    return rows
