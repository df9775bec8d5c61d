"""Figures and tables for the notebooks: data in, ``Figure`` (or HTML table) out, no computation.

Figures are built with ``matplotlib.figure.Figure`` (not pyplot) so a notebook shows each
exactly once, in a kernel and in papermill alike (``ghostlab.start`` registers IPython's PNG
formatter for bare Figures). Sections below are one per notebook.
"""

from __future__ import annotations

import html
from typing import Any

from matplotlib.figure import Figure  # noqa: F401  (used by the sections below)

from . import fmt
from .fmt import candidate_color, candidate_colors
from .tables import conclusion, html_table, notes, table, text_table  # noqa: F401  (the notebooks call plots.table)
from .ghostnet import ROLE_COLORS
from .redundancy import MIN_PIXELS  # 05: layers compared over fewer pixels are drawn faded


def describe(fig: Figure, alt: str) -> Figure:
    """Give ``fig`` the alt text the HTML report shows for it (what the figure shows, in a sentence)."""
    fig.set_label(alt)
    return fig


def alt_text(fig: Figure) -> str:
    """The figure's alt text: what ``describe`` gave it, else one built from its titles and axis labels."""
    if fig.get_label():
        return fig.get_label()
    parts = []
    sup = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    if sup:
        parts.append(sup)
    for ax in fig.axes:
        bits = [t for t in (ax.get_title(), ax.get_title("left")) if t]
        if ax.get_xlabel() and ax.get_ylabel():
            bits.append(f"{ax.get_ylabel()} against {ax.get_xlabel()}")
        if bits:
            parts.append(": ".join(bits))
    return ("Figure: " + "; ".join(dict.fromkeys(p.replace("\n", " ") for p in parts)))[:600] if parts else "Figure"


# ---- 01_export ----

def op_histogram(ops: dict[str, int], title: str = "ONNX graph: nodes by op type") -> Figure:
    """Horizontal bar chart of node counts per op type."""
    names = list(ops)[::-1]
    fig = Figure(figsize=(6, 0.28 * len(names) + 1))
    ax = fig.subplots()
    ax.barh(names, [ops[n] for n in names], color="#4c72b0")
    for y, n in enumerate(names):
        ax.text(ops[n], y, f" {ops[n]}", va="center", fontsize=8)
    ax.set_xlabel("nodes")
    ax.set_title(title)
    ax.margins(x=0.12)
    fig.tight_layout()
    top = sorted(ops, key=ops.get, reverse=True)[:4]
    return describe(fig, f"Bar chart of the ONNX graph's {sum(ops.values())} nodes by op type; most common: "
                    + ", ".join(f"{n} ({ops[n]})" for n in top) + ".")


# ---- 04_evaluate ----

def top1_drop_intervals(rows: list[dict], title: str = "int8 top-1 drop vs fp32, 95% bootstrap interval") -> Figure:
    """One line per int8 model, in its candidate colour: the top-1 drop (percentage points) and its
    interval; 0 = no change. A filled dot: McNemar p < 0.05 (the flips are more than noise).

    ``rows``: dicts with ``model``, ``top1_drop``, ``ci_low``, ``ci_high``, ``significant``.
    """
    fig = Figure(figsize=(6.5, 0.45 * max(len(rows), 1) + 1.3))
    ax = fig.subplots()
    for y, r in enumerate(rows):
        color = candidate_color(r["model"])
        lo, hi, d = r["ci_low"], r["ci_high"], r["top1_drop"]
        ax.plot([lo, hi], [y, y], color=color, lw=2.5, solid_capstyle="butt")
        ax.plot([d], [y], "o", color=color, mfc=color if r.get("significant") else "white", ms=7)
        ax.text(hi, y, f"  {fmt.drop_ci(d, lo, hi)}", va="center", fontsize=8)
    ax.axvline(0, color="#888", lw=1, ls="--")
    lows = [r["ci_low"] for r in rows if r["ci_low"] == r["ci_low"]]
    highs = [r["ci_high"] for r in rows if r["ci_high"] == r["ci_high"]]
    # at least ±1 pp: zero-width intervals stay readable; room on the right for the labels
    ax.set_xlim(min(lows + [-1.0]) - 0.5, max(highs + [1.0]) + 0.4 * (max(highs + [1.0]) - min(lows + [-1.0])) + 1.0)
    ax.set_yticks(range(len(rows)), [r["model"] for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 drop (pp; > 0: int8 is worse)")
    ax.set_title(title + ("\nfilled dot: McNemar p < 0.05" if any(r.get("significant") for r in rows) else ""),
                 fontsize=10)
    fig.tight_layout()
    return describe(fig, "Top-1 drop of each int8 model against fp32 with its 95 % bootstrap interval: "
                    + "; ".join(f"{r['model']} {fmt.drop_ci(r['top1_drop'], r['ci_low'], r['ci_high'])}"
                                for r in rows) + ".")


def accuracy_vs_latency(points: list[dict], title: str = "top-1 vs latency", paired: dict | None = None) -> Figure:
    """Top-1 against latency per candidate (its palette colour, named in the legend beside the axes,
    so no label covers another), the Pareto front joined; a note when there is nothing to plot.

    ``points``: dicts with ``model``, ``latency_ms``, ``top1``, ``pareto`` (bool) and optionally
    ``setting`` (which benchmark row the latency comes from, shown in the axis label). ``paired``
    (evaluation.json's ``paired``: ``top1_drop_ci95`` per int8 model) adds error bars: each model's
    top-1 shifted by the 95 % paired-bootstrap interval of its difference from fp32.
    """
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    if not points:
        ax.axis("off")
        ax.text(0.5, 0.5, "no benchmark.json in this run:\nrun 03_benchmark to see accuracy against latency",
                ha="center", va="center", fontsize=11, transform=ax.transAxes)
        return describe(fig, "No accuracy-against-latency figure: this run has no benchmark.")
    front = sorted((p for p in points if p.get("pareto")), key=lambda p: p["latency_ms"])
    if len(front) > 1:
        ax.step([p["latency_ms"] for p in front], [p["top1"] for p in front], where="post",
                color="#999", lw=1, zorder=1, label="Pareto front")
    fp32 = next((p for p in points if p["model"] == "fp32"), None)
    with_bars = False
    for p in points:
        ci = ((paired or {}).get(p["model"]) or {}).get("top1_drop_ci95")
        yerr = None
        if fp32 and ci and None not in ci and all(c == c for c in ci):
            # top-1 = fp32 - drop: the drop's interval [lo, hi] becomes [fp32 - hi, fp32 - lo]
            yerr = [[max(p["top1"] - (fp32["top1"] - ci[1]), 0)], [max(fp32["top1"] - ci[0] - p["top1"], 0)]]
            with_bars = True
        ax.errorbar([p["latency_ms"]], [p["top1"]], yerr=yerr, fmt="o", ms=8, zorder=2, capsize=3,
                    color=candidate_color(p["model"]), mec="k" if p.get("pareto") else "none",
                    label=f"{p['model']}: {fmt.accuracy(p['top1'])}, {fmt.ms(p['latency_ms'])}")
    setting = points[0].get("setting")
    ax.set_xlabel("latency, p50 (ms)" + (f" — {setting}" if setting else ""), fontsize=9)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title + " (up and left is better; outlined: Pareto front)", fontsize=10)
    ax.margins(0.15)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="bars: 95 % paired bootstrap\ninterval vs fp32" if with_bars else None, title_fontsize=7)
    fig.tight_layout()
    best = min(points, key=lambda p: p["latency_ms"])
    return describe(fig, "Scatter of top-1 accuracy against p50 latency"
                    + (f" ({setting})" if setting else "") + ": "
                    + "; ".join(f"{p['model']} {fmt.accuracy(p['top1'])} at {fmt.ms(p['latency_ms'])}" for p in points)
                    + f". Fastest: {best['model']}.")


# ---- 05_ghost_maps ----

_GHOST_CMAP = "viridis"


def _unit_range(m: Any) -> Any:
    """A map scaled to [0, 1] for display (each map on its own scale: shapes, not magnitudes)."""
    import numpy as np

    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def _mosaic(rows: list[list[Any]], gap: int = 1) -> Any:
    """Equal-size 2-D maps laid out in a grid, separated by NaN (drawn blank)."""
    import numpy as np

    h, w = rows[0][0].shape
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for r, row in enumerate(rows):
        for c, m in enumerate(row):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = _unit_range(m)
    return out


def _draw_mosaic(ax: Any, rows: list[list[Any]], row_labels: list[str], col_labels: list[str]) -> None:
    import matplotlib

    h, w = rows[0][0].shape
    gap = max(1, round(max(h, w) / 16))
    cmap = matplotlib.colormaps[_GHOST_CMAP].with_extremes(bad="white")
    ax.imshow(_mosaic(rows, gap), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(len(rows))], row_labels, fontsize=8)
    ax.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(len(col_labels))], col_labels, fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)


def _cos(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"


def _banner(fig: Figure, text: str | None, y: float = 0.995) -> None:
    if text:
        fig.text(0.5, y, text, ha="center", va="top", fontsize=9, color="#7b1d15", wrap=True,
                 bbox={"boxstyle": "round", "facecolor": "#fde2e1", "edgecolor": "#c0392b"})


def ghost_inputs(pictures: Any, labels: list[str], preprocess: str, note: str | None = None) -> Figure:
    """The images as the model sees them (after resize and crop); ``note`` under the caption."""
    n = len(pictures)
    fig = Figure(figsize=(min(max(2.4 * n, 5.5), 12), 2.9 + (0.4 if note else 0)))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, pic, label in zip(axes, pictures, labels):
        ax.imshow(pic)
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    fig.tight_layout(rect=(0, 0.2 if note else 0.1, 1, 1))
    caption = f"{pictures.shape[1]}x{pictures.shape[2]} px after {preprocess}" + (f"\n{note}" if note else "")
    fig.text(0.5, 0.02, caption, ha="center", fontsize=7, wrap=True)
    return fig


def intrinsic_vs_ghost(panels: list[dict]) -> Figure:
    """Per module: the strongest intrinsic maps (top row) above the ghost map made from each
    (bottom row), with the pair's cosine similarity. ``panels``: dicts with ``name`` and ``pairs``
    (``intrinsic``, ``ghost``, ``similarity``, ``intrinsic_map``, ``ghost_map``)."""
    panels = [p for p in panels if p["pairs"]]
    cols = max(len(p["pairs"]) for p in panels)
    fig = Figure(figsize=(min(1.3 * cols + 1.2, 13), 2.1 * len(panels) + 0.3))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        pairs = panel["pairs"]
        _draw_mosaic(ax, [[p["intrinsic_map"] for p in pairs], [p["ghost_map"] for p in pairs]],
                     ["intrinsic", "ghost"],
                     [f"{p['intrinsic']}→{p['ghost']}\ncos {_cos(p['similarity'])}" for p in pairs])
        ax.xaxis.tick_top()
        h, w = pairs[0]["intrinsic_map"].shape
        ax.set_title(f"{panel['name']}  ({h}x{w})", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def ghost_similarity_distribution(data: dict) -> Figure:
    """Box per Ghost module of every ghost map's cosine similarity to its source intrinsic map.
    ``data``: ``names``, ``values`` (arrays), ``stages``, ``model``."""
    import matplotlib

    names, values, stages = data["names"], data["values"], data["stages"]
    fig = Figure(figsize=(max(7, 0.3 * len(names) + 2), 4))
    ax = fig.subplots()
    keep = [i for i, v in enumerate(values) if len(v)]
    colors = matplotlib.colormaps["tab10"]
    box = ax.boxplot([values[i] for i in keep], positions=keep, widths=0.6, patch_artist=True,
                     showfliers=True, flierprops={"markersize": 2})
    for patch, i in zip(box["boxes"], keep):
        patch.set_facecolor(colors(stages[i] % 10))
        patch.set_alpha(0.75)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_xticks(range(len(names)), [n.replace("blocks.", "").replace("ghost", "g") for n in names],
                  rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("cosine(ghost map, its intrinsic map)")
    ax.set_xlabel("Ghost module (stage.block.g1 = expansion, g2 = projection; colour = stage)")
    ax.set_title(f"{data['model']}: how much each ghost map looks like the map it is made from", fontsize=10)
    fig.tight_layout()
    return fig


def channel_similarity_heatmaps(panels: list[dict]) -> Figure:
    """Channel x channel cosine similarity of each module's output; the dashed lines split
    intrinsic (first) from ghost channels. ``panels``: ``name``, ``matrix``, ``split``."""
    import matplotlib

    n = len(panels)
    fig = Figure(figsize=(3.6 * n + 0.8, 3.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#dddddd")
    image = None
    for ax, panel in zip(axes, panels):
        image = ax.imshow(panel["matrix"], cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        s = panel["split"] - 0.5
        ax.axvline(s, color="k", ls="--", lw=0.7)
        ax.axhline(s, color="k", ls="--", lw=0.7)
        ax.set_title(f"{panel['name']} ({panel['matrix'].shape[0]} ch)", fontsize=9)
        ax.set_xlabel("channel", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="cosine similarity")
    return fig


def ghost_pair_gallery(panels: list[dict]) -> Figure:
    """The most similar channel pairs of a layer's output, one pair per column (as in the
    GhostNet paper's first figure). ``panels``: ``title``, ``pairs`` (``a``, ``b``, ``similarity``,
    ``map_a``, ``map_b``), ``banner`` (text shown in red, e.g. for random weights, or None)."""
    panels = [p for p in panels if p["pairs"]]
    cols = max(len(p["pairs"]) for p in panels)
    banners = sum(1 for p in panels if p.get("banner"))
    fig = Figure(figsize=(min(1.3 * cols + 1.2, 13), 2.3 * len(panels) + 0.5 * banners + 0.2))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        pairs = panel["pairs"]
        _draw_mosaic(ax, [[p["map_a"] for p in pairs], [p["map_b"] for p in pairs]], ["", ""],
                     [f"{p['a']} & {p['b']}\ncos {_cos(p['similarity'])}" for p in pairs])
        ax.xaxis.tick_top()
        title = panel["title"] + (f"\n⚠ {panel['banner']}" if panel.get("banner") else "")
        ax.set_title(title, fontsize=9, loc="left", color="#c0392b" if panel.get("banner") else "black")
    fig.tight_layout()
    return fig


def redundancy_vs_depth(series: dict[str, list[dict]], banner: str | None = None,
                        twin_threshold: float | None = None) -> Figure:
    """Per layer, against relative depth, one line per network with a band of +-1 sd over the images:
    mean max cosine to another channel, share of channels with a near twin, and the effective rank in
    both definitions over its ceiling min(channels, pixels compared). ``series``: label -> per-layer
    metric dicts (``ghost_report`` / ``ghost_maps.json`` rows: ``<metric>`` and ``<metric>_sd``)."""
    import numpy as np

    panels = (("mean_max_similarity", "mean max cosine to another channel",
               "redundancy: how close each map's nearest twin is (higher = more redundant)"),
              ("twin_share", "share of channels with a near twin",
               f"near twins: channels with cos > {twin_threshold:g} to another" if twin_threshold
               else "near twins"),
              ("effective_rank_fraction", "effective rank / min(channels, pixels)",
               "diversity, shape rank (unit-norm maps; lower = more redundant)"),
              ("effective_rank_raw_fraction", "effective rank / min(channels, pixels)",
               "diversity, plain Roy & Vetterli rank (raw maps)"))
    fig = Figure(figsize=(11, 7.6 + (0.5 if banner else 0)))
    axes = fig.subplots(2, 2).ravel()
    styles = [("#4c72b0", "o"), ("#dd8452", "s"), ("#55a868", "^")]
    for (label, rows), (color, marker) in zip(series.items(), styles):
        depth = np.asarray([r["depth"] for r in rows])
        for ax, (key, _, _) in zip(axes, panels):
            mean = np.asarray([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
            sd = np.asarray([np.nan if r.get(f"{key}_sd") is None else r[f"{key}_sd"] for r in rows], dtype=float)
            ax.fill_between(depth, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
            ax.plot(depth, mean, color=color, lw=1.2, label=label)
            for d, v, r in zip(depth, mean, rows):
                projection = r["name"].endswith("ghost2")  # linear 1x1 projection: hollow marker
                ax.plot([d], [v], marker=marker, ms=5, color=color, mfc="white" if projection else color,
                        alpha=0.35 if r["similarity_pixels"] < MIN_PIXELS else 1.0)
    axes[0].plot([], [], "o", color="#888", mfc="white", label="hollow: projection Ghost module (ghost2, linear)")
    axes[0].plot([], [], "o", color="#888", alpha=0.35, label=f"faded: compared over < {MIN_PIXELS} pixels")
    axes[0].fill_between([], [], [], color="#888", alpha=0.15, label="band: ±1 sd over the images")
    for ax, (_, ylabel, title) in zip(axes, panels):
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("relative depth (0 = first layer, 1 = last)", fontsize=8)
        ax.set_xlim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    for ax in axes[1:]:
        ax.set_ylim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 0.94 if banner else 1))
    _banner(fig, banner)
    return fig


def ghost_explorer_view(picture: Any, intrinsic_map: Any, ghost_maps: list[Any], title: str,
                        captions: list[str]) -> Figure:
    """The explorer's view: the input, one intrinsic map and the ghost map(s) made from it."""
    n = 2 + len(ghost_maps)
    fig = Figure(figsize=(2.4 * n, 2.7))
    axes = fig.subplots(1, n)
    axes[0].imshow(picture)
    for ax, m in zip(axes[1:], [intrinsic_map, *ghost_maps]):
        ax.imshow(_unit_range(m), cmap=_GHOST_CMAP, vmin=0, vmax=1, interpolation="nearest")
    for ax, caption in zip(axes, ["input", *captions]):
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def banner(text: str):
    """A red warning box (IPython HTML) for the report, text escaped."""
    from IPython.display import HTML

    return HTML("<div style='background:#fde2e1;border:2px solid #c0392b;padding:8px;margin:6px 0'>"
                f"<b>Note.</b> {html.escape(text)}</div>")


# ---- 03_benchmark ----

def _bench_settings(rows: list[dict]) -> list[tuple[int, int]]:
    """(threads, sessions) settings present in benchmark rows, single sessions first."""
    return sorted({(r["threads"], r["sessions"]) for r in rows}, key=lambda s: (s[1] > 1, s[0], s[1]))


def _bench_setting_label(threads: int, sessions: int) -> str:
    if sessions > 1:
        return f"{sessions} sessions × {threads} thread"
    return f"1 session, {threads} thread{'s' if threads > 1 else ''}"


def _bench_colors(models: list[str]) -> dict[str, Any]:
    return candidate_colors(models)


def bench_throughput(rows: list[dict]) -> Figure:
    """Throughput (img/s) against batch size, one line per model, one panel per threads/sessions setting."""
    settings = _bench_settings(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = _bench_colors(models)
    fig = Figure(figsize=(4.2 * max(len(settings), 1), 3.6))
    axes = fig.subplots(1, max(len(settings), 1), squeeze=False)[0]
    for ax, (threads, sessions) in zip(axes, settings):
        for m in models:
            pts = sorted((r["batch"], r["img_s"]) for r in rows
                         if r["model"] == m and r["threads"] == threads and r["sessions"] == sessions)
            if pts:
                ax.plot(*zip(*pts), marker="o", color=colors[m], label=m, ls="--" if m == "torch" else "-")
        ax.set_xscale("log", base=2)
        batches = sorted({r["batch"] for r in rows})
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_title(_bench_setting_label(threads, sessions), fontsize=9)
        ax.set_xlabel("batch size")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("images / s (median round)")
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)  # beside, not over, the data
    fig.tight_layout()
    top = max(rows, key=lambda r: r["img_s"], default=None)
    return describe(fig, "Line chart of images per second against batch size, one line per candidate, one panel per "
                    "setting (" + "; ".join(_bench_setting_label(t, k) for t, k in settings) + ")"
                    + (f". Highest: {top['model']}, {fmt.img_s(top['img_s'])} at batch {top['batch']}, "
                       f"{_bench_setting_label(top['threads'], top['sessions'])}." if top else "."))


def bench_latency(rows: list[dict], batch: int = 1) -> Figure:
    """Distribution of per-inference latency at ``batch`` (box: quartiles, whiskers: 5–95 %), per setting."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    rows = [r for r in rows if r["batch"] == batch]
    settings = _bench_settings(rows)
    fig = Figure(figsize=(4.2 * max(len(settings), 1), 3.6))
    axes = fig.subplots(1, max(len(settings), 1), squeeze=False)[0]
    for ax, (threads, sessions) in zip(axes, settings):
        cell = [r for r in rows if r["threads"] == threads and r["sessions"] == sessions]
        box = ax.boxplot([r["latencies_ms"] for r in cell], whis=(5, 95), showfliers=True, patch_artist=True,
                         flierprops={"markersize": 2, "alpha": 0.5}, medianprops={"color": "k"})
        for patch, r in zip(box["boxes"], cell):
            patch.set_facecolor(candidate_color(r["model"]))
            patch.set_alpha(0.8)
        ax.set_xticks(range(1, len(cell) + 1), [r["model"] for r in cell], rotation=30, ha="right", fontsize=8)
        ax.set_title(_bench_setting_label(threads, sessions), fontsize=9)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2, 5)))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel(f"latency per inference at batch {batch} (ms, log)")
    best = min(rows, key=lambda r: r.get("p50_ms") or float("inf"), default=None)
    describe(fig, f"Box plots of per-inference latency at batch {batch}, one box per candidate, one panel per setting"
             + (f"; lowest median: {best['model']}, {fmt.ms(best['p50_ms'])} "
                f"({_bench_setting_label(best['threads'], best['sessions'])})." if best and best.get("p50_ms") else "."))
    if not rows:
        axes[0].text(0.5, 0.5, f"batch {batch} was not measured", ha="center", va="center",
                     transform=axes[0].transAxes)
    fig.tight_layout()
    return fig


def bench_speedup(rows: list[dict]) -> Figure:
    """Each int8 variant's throughput over fp32 per grid cell (paired median; bars: inter-quartile range)."""
    int8 = [r for r in rows if r["precision"] == "int8" and r["ratio_vs_fp32"] is not None]
    variants = list(dict.fromkeys(r["model"] for r in int8))
    cells = list(dict.fromkeys((r["batch"], r["threads"], r["sessions"]) for r in int8))
    colors = _bench_colors(variants)
    fig = Figure(figsize=(min(12.0, max(6.0, 2 + 0.3 * len(cells) * max(len(variants), 1))), 3.8))
    ax = fig.subplots()
    width = 0.8 / max(len(variants), 1)
    for i, v in enumerate(variants):
        by_cell = {(r["batch"], r["threads"], r["sessions"]): r for r in int8 if r["model"] == v}
        xs = [j + (i - (len(variants) - 1) / 2) * width for j, c in enumerate(cells) if c in by_cell]
        rs = [by_cell[c] for c in cells if c in by_cell]
        mid = [r["ratio_vs_fp32"] for r in rs]
        err = [[m - r["ratio_vs_fp32_iqr"][0] for m, r in zip(mid, rs)],
               [r["ratio_vs_fp32_iqr"][1] - m for m, r in zip(mid, rs)]]
        ax.bar(xs, mid, width, color=colors[v], label=v, yerr=err, capsize=2, error_kw={"lw": 0.8})
    ax.axhline(1.0, color="#444", lw=1, ls="--")
    ax.set_xticks(range(len(cells)), [f"b{b}\n{s}×{t}t" if s > 1 else f"b{b}\n{t}t" for b, t, s in cells],
                  fontsize=8)
    ax.set_ylabel("throughput / fp32 (same rounds)")
    ax.set_title("int8 speed-up over fp32 (above the dashed line: faster)", fontsize=9)
    if variants:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.text(0.5, 0.5, "no int8 model in this run", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    best = max(int8, key=lambda r: r["ratio_vs_fp32"], default=None)
    return describe(fig, "Bar chart of each int8 candidate's throughput over fp32 in every grid cell (above 1: faster)"
                    + (f"; best: {best['model']}, {fmt.ratio(best['ratio_vs_fp32'])} at batch {best['batch']}, "
                       f"{_bench_setting_label(best['threads'], best['sessions'])}." if best else ": no int8 model."))


def bench_parts(profile: dict | None, models: list[str | None] | None = None) -> Figure:
    """Time per image by GhostNet part for the given models (default: all profiled), one bar each."""
    data = (profile or {}).get("models", {})
    names = [m for m in (models or list(data)) if m in data]
    parts = sorted({p for n in names for p in data[n]}, key=lambda p: max(data[n].get(p, 0.0) for n in names))
    colors = _bench_colors(list(data))
    fig = Figure(figsize=(7.5, 0.42 * max(len(parts), 2) + 1.2))
    ax = fig.subplots()
    height = 0.8 / max(len(names), 1)
    for i, n in enumerate(names):
        ys = [j + (i - (len(names) - 1) / 2) * height for j in range(len(parts))]
        ax.barh(ys, [data[n].get(p, 0.0) for p in parts], height, color=colors[n], label=n)
    ax.set_yticks(range(len(parts)), parts, fontsize=8)
    ax.set_xlabel(f"ms per image (batch {profile.get('batch')}, {profile.get('threads')} thread, ORT profiler)"
                  if profile else "ms per image")
    ax.grid(alpha=0.3, axis="x")
    if names:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.text(0.5, 0.5, "no profile in this run (benchmark.profile)", ha="center", va="center",
                transform=ax.transAxes)
    fig.tight_layout()
    return describe(fig, "Horizontal bars of time per image by GhostNet part for " + (", ".join(names) or "no model")
                    + "; per part and candidate: " + "; ".join(
                        f"{p}: " + ", ".join(f"{n} {fmt.ms(data[n].get(p, 0.0))}" for n in names) for p in parts[::-1][:4])
                    + ("; …" if len(parts) > 4 else "") + ".")


# ---- 02_calibrate ----


def sqnr_by_depth(tensors: dict[str, list[dict]], title: str = "Per-tensor SQNR along the network") -> Figure:
    """One panel per variant. Dots: each quantized tensor's local SQNR (the noise its own quantization
    adds), by depth in the graph, coloured by GhostNet role (squares: weights; int32 biases are left
    out, their SQNR is far above the rest). Black line: activation SQNR against the fp32 model (error
    accumulated so far). Grey bands: nodes kept in fp32 (rows with ``kept_fp32``)."""
    import math

    names = list(tensors)
    fig = Figure(figsize=(11, 2.6 * max(len(names), 1) + 0.6))
    axes = fig.subplots(max(len(names), 1), 1, sharex=True, squeeze=False)[:, 0]
    seen_roles: dict[str, Any] = {}
    for ax, name in zip(axes, names):
        rows = tensors[name]
        for r in rows:
            if r.get("kept_fp32"):
                ax.axvspan(r["depth"] - 0.5, r["depth"] + 0.5, color="#dddddd", zorder=0, lw=0)
        for role in dict.fromkeys(r["role"] for r in rows):
            for kind, marker in (("activation", "o"), ("weight", "s")):
                pts = [r for r in rows if r["role"] == role and r["kind"] == kind and r["quantized"]
                       and math.isfinite(r["local_sqnr_db"])]
                if pts:
                    h = ax.scatter([r["depth"] for r in pts], [r["local_sqnr_db"] for r in pts], s=14 if kind == "activation" else 9,
                                   marker=marker, color=ROLE_COLORS.get(role, "#7f7f7f"), alpha=0.8,
                                   edgecolors="none", zorder=2)
                    if kind == "activation":
                        seen_roles.setdefault(role, h)
        line = sorted((r["depth"], r["sqnr_db"]) for r in rows if r["kind"] == "activation" and r["quantized"]
                      and math.isfinite(r["sqnr_db"]))
        if line:
            ax.plot([d for d, _ in line], [v for _, v in line], color="black", lw=1, zorder=3, label="vs fp32")
        ax.set_ylabel("SQNR (dB)")
        # the panel's takeaway in its title: where it is weakest, and what reaches the logits
        weakest = min((r for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])),
                      key=lambda r: r["local_sqnr_db"], default=None)
        ax.set_title(f"int8_{name}" + (f" — weakest tensor {fmt.db(weakest['local_sqnr_db'])} ({weakest['role']})"
                                       if weakest else "")
                     + (f"; {fmt.db(line[-1][1])} left at the last activation" if line else ""),
                     loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("depth (node index in the graph, input → logits)")
    handles = list(seen_roles.values())
    labels = list(seen_roles)
    if any(ax.get_lines() for ax in axes):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="black", lw=1))
        labels.append("activation vs fp32")
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
    fig.suptitle(title, y=1.04 if handles else 1.0)
    fig.tight_layout()
    worst = {}
    for name in names:
        pts = [r for r in tensors[name] if r["quantized"] and math.isfinite(r.get("local_sqnr_db") or math.nan)]
        if pts:
            worst[name] = min(pts, key=lambda r: r["local_sqnr_db"])
    return describe(fig, "Scatter of each quantized tensor's SQNR (dB) against its depth in the graph, coloured by "
                    "GhostNet part, one panel per variant, with the activation SQNR against fp32 as a line; lowest: "
                    + "; ".join(f"{n} {fmt.db(r['local_sqnr_db'])} ({r['role']})" for n, r in worst.items()) + ".")
