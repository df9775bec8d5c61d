"""Figures and tables for the notebooks: data in, ``Figure`` (or HTML table) out, no computation.

Figures are built with ``matplotlib.figure.Figure`` (not pyplot) so a notebook shows each
exactly once, in a kernel and in papermill alike. Sections below are one per notebook.
"""

from __future__ import annotations

import html
from typing import Any, Iterable

from matplotlib.figure import Figure  # noqa: F401  (used by the sections below)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        if value in (float("inf"), float("-inf")):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def table(rows: Iterable[dict], digits: int = 3, caption: str | None = None):
    """An HTML table (IPython display object) from row dicts; every cell HTML-escaped."""
    from IPython.display import HTML

    rows = list(rows)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c), digits))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HTML(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


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
    return fig


# ---- 04_evaluate ----

def _png_in_notebooks() -> None:
    """Make IPython show a bare ``Figure`` as PNG.

    The inline backend registers its PNG formatter only when pyplot is imported, which this
    module never does, so without this a kernel (and papermill) shows "<Figure size ...>".
    Idempotent; a no-op outside IPython.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # pragma: no cover - plain python
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        select_figure_formats(shell, {"png"})


def text_table(rows: Iterable[dict], digits: int = 3) -> str:
    """A plain-text table (for the terminal) from row dicts; columns sized to fit."""
    rows = list(rows)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(c) for c in cols]] + [[_cell(r.get(c), digits) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def top1_drop_intervals(rows: list[dict], title: str = "int8 top-1 drop vs fp32, 95% bootstrap interval") -> Figure:
    """One line per int8 model: the top-1 drop (percentage points) and its interval; 0 = no change.

    ``rows``: dicts with ``model``, ``top1_drop``, ``ci_low``, ``ci_high``, ``significant``.
    """
    _png_in_notebooks()
    fig = Figure(figsize=(6.5, 0.45 * max(len(rows), 1) + 1.3))
    ax = fig.subplots()
    for y, r in enumerate(rows):
        color = "#c0392b" if r.get("significant") else "#4c72b0"
        lo, hi, d = r["ci_low"], r["ci_high"], r["top1_drop"]
        ax.plot([lo, hi], [y, y], color=color, lw=2.5, solid_capstyle="butt")
        ax.plot([d], [y], "o", color=color)
        ax.text(hi, y, f"  {d:+.2f} pp", va="center", fontsize=8)
    ax.axvline(0, color="#888", lw=1, ls="--")
    lows = [r["ci_low"] for r in rows if r["ci_low"] == r["ci_low"]]
    highs = [r["ci_high"] for r in rows if r["ci_high"] == r["ci_high"]]
    ax.set_xlim(min(lows + [-1.0]) - 0.5, max(highs + [1.0]) + 1.0)  # at least ±1 pp: zero-width intervals stay readable
    ax.set_yticks(range(len(rows)), [r["model"] for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 drop (percentage points; > 0: int8 is worse)")
    ax.set_title(title + ("\nred: McNemar p < 0.05" if any(r.get("significant") for r in rows) else ""),
                 fontsize=10)
    fig.tight_layout()
    return fig


def accuracy_vs_latency(points: list[dict], title: str = "top-1 vs latency") -> Figure:
    """Top-1 against latency per model, the Pareto front joined; a note when there is nothing to plot.

    ``points``: dicts with ``model``, ``latency_ms``, ``top1``, ``pareto`` (bool) and optionally
    ``setting`` (which benchmark row the latency comes from, shown in the axis label).
    """
    _png_in_notebooks()
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    if not points:
        ax.axis("off")
        ax.text(0.5, 0.5, "no benchmark.json in this run:\nrun 03_benchmark to see accuracy against latency",
                ha="center", va="center", fontsize=11, transform=ax.transAxes)
        return fig
    front = sorted((p for p in points if p.get("pareto")), key=lambda p: p["latency_ms"])
    if len(front) > 1:
        ax.step([p["latency_ms"] for p in front], [p["top1"] for p in front], where="post",
                color="#999", lw=1, zorder=1, label="Pareto front")
    for i, p in enumerate(points):
        fp32 = p["model"] == "fp32"
        ax.scatter([p["latency_ms"]], [p["top1"]], s=60, zorder=2,
                   color="#4c72b0" if fp32 else ("#dd8452" if p.get("pareto") else "#bbbbbb"),
                   edgecolor="k" if p.get("pareto") else "none")
        ax.annotate(p["model"], (p["latency_ms"], p["top1"]), textcoords="offset points",
                    xytext=(6, 4 - 11 * (i % 3)), fontsize=8)  # staggered: close points keep legible labels
    setting = points[0].get("setting")
    ax.set_xlabel("latency, p50 (ms)" + (f" — {setting}" if setting else ""))
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title + " (up and left is better)", fontsize=10)
    ax.margins(0.15)
    if len(front) > 1:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


# ---- 03_benchmark ----

def _bench_settings(rows: list[dict]) -> list[tuple[int, int]]:
    """(threads, sessions) settings present in benchmark rows, single sessions first."""
    return sorted({(r["threads"], r["sessions"]) for r in rows}, key=lambda s: (s[1] > 1, s[0], s[1]))


def _bench_setting_label(threads: int, sessions: int) -> str:
    if sessions > 1:
        return f"{sessions} sessions × {threads} thread"
    return f"1 session, {threads} thread{'s' if threads > 1 else ''}"


def _bench_colors(models: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(models)}


def bench_throughput(rows: list[dict]) -> Figure:
    """Throughput (img/s) against batch size, one line per model, one panel per threads/sessions setting."""
    _png_in_notebooks()
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
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def bench_latency(rows: list[dict], batch: int = 1) -> Figure:
    """Distribution of per-inference latency at ``batch`` (box: quartiles, whiskers: 5–95 %), per setting."""
    _png_in_notebooks()
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    rows = [r for r in rows if r["batch"] == batch]
    settings = _bench_settings(rows)
    fig = Figure(figsize=(4.2 * max(len(settings), 1), 3.6))
    axes = fig.subplots(1, max(len(settings), 1), squeeze=False)[0]
    for ax, (threads, sessions) in zip(axes, settings):
        cell = [r for r in rows if r["threads"] == threads and r["sessions"] == sessions]
        ax.boxplot([r["latencies_ms"] for r in cell], whis=(5, 95), showfliers=True,
                   flierprops={"markersize": 2, "alpha": 0.5})
        ax.set_xticks(range(1, len(cell) + 1), [r["model"] for r in cell], rotation=30, ha="right", fontsize=8)
        ax.set_title(_bench_setting_label(threads, sessions), fontsize=9)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2, 5)))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel(f"latency per inference at batch {batch} (ms, log)")
    if not rows:
        axes[0].text(0.5, 0.5, f"batch {batch} was not measured", ha="center", va="center",
                     transform=axes[0].transAxes)
    fig.tight_layout()
    return fig


def bench_speedup(rows: list[dict]) -> Figure:
    """Each int8 variant's throughput over fp32 per grid cell (paired median; bars: inter-quartile range)."""
    _png_in_notebooks()
    int8 = [r for r in rows if r["precision"] == "int8" and r["ratio_vs_fp32"] is not None]
    variants = list(dict.fromkeys(r["model"] for r in int8))
    cells = list(dict.fromkeys((r["batch"], r["threads"], r["sessions"]) for r in int8))
    colors = _bench_colors(variants)
    fig = Figure(figsize=(max(6.0, 0.9 * len(cells) * max(len(variants), 1) ** 0.5 + 2), 3.8))
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
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no int8 model in this run", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
