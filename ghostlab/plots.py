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
