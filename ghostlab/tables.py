"""Tables and text boxes for the notebooks and the index: data in, HTML (or plain text) out.

Every cell goes through ``fmt.cell``, so a quantity reads the same in every table of every page;
``plots`` re-exports these for the notebooks (``plots.table``, ``plots.notes``, ``plots.conclusion``).
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable

from . import fmt


def _cell(value: Any, digits: int, column: str = "") -> str:
    return fmt.cell(value, column, digits)[0]


_LONG_TOKEN = re.compile(r"\S{28,}")
_ROW_LABELS = ("result", "what", "fact", "item", "setting", "metric")


def _breakable(text: str, longer_than: int = 28) -> str:
    """Escaped text where long tokens (paths, node names, candidate names in headers) may wrap after
    / . _ : so a table fits its box."""
    def soft(m: re.Match) -> str:
        return re.sub(r"[/._:,=]", lambda c: c.group(0) + "\x00", m.group(0))

    pattern = _LONG_TOKEN if longer_than == 28 else re.compile(rf"\S{{{longer_than},}}")
    return html.escape(pattern.sub(soft, text)).replace("\x00", "<wbr>")


def html_table(rows: Iterable[dict], digits: int = 3, caption: str | None = None) -> str:
    """An HTML table from row dicts; every cell formatted by ``fmt.cell`` (the quantity its column
    names; in a ``value`` column beside a ``result``/``what`` label, the quantity that label names)
    and HTML-escaped; numbers right-aligned (class ``num``), text left-aligned. Column headers that
    are summary keys (``snake_case``) are put in words by ``fmt.label``; columns empty in every row
    are left out."""
    rows = list(rows)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    # a column with nothing in any row says nothing (e.g. the paper's figures for a model it does not report)
    cols = [c for c in cols if any(r.get(c) is not None for r in rows)] or cols

    def context(r: dict, col: str) -> str:
        if col == "value":
            label = next((r[k] for k in _ROW_LABELS if isinstance(r.get(k), str)), None)
            if label:
                return label
        return col

    cells = [[fmt.cell(r.get(c), context(r, str(c)), digits) for c in cols] for r in rows]
    numeric = [all(num for (text, num) in (row[i] for row in cells) if text != fmt.MISSING) and
               any(row[i][1] for row in cells) for i in range(len(cols))]
    head = "".join(f"<th{' class=num' if n else ''}>{_breakable(fmt.label(str(c)), 6)}</th>"
                   for c, n in zip(cols, numeric))
    body = "".join("<tr>" + "".join(("<td class='num'>" if num else "<td>") + _breakable(text) + "</td>"
                                    for text, num in row) + "</tr>" for row in cells)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table class='gl-table'>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table(rows: Iterable[dict], digits: int = 3, caption: str | None = None):
    """``html_table`` as an IPython display object, for notebooks."""
    from IPython.display import HTML

    return HTML(html_table(rows, digits, caption))


def text_table(rows: Iterable[dict], digits: int = 3) -> str:
    """A plain-text table (for the terminal) from row dicts; columns sized to fit."""
    rows = list(rows)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[str(c) for c in cols]] + [[_cell(r.get(c), digits, str(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(messages: list[str], title: str = "Warnings"):
    """A yellow box listing ``messages`` (HTML-escaped), or a short 'none' line."""
    from IPython.display import HTML

    if not messages:
        return HTML(f"<p><b>{html.escape(title)}:</b> none.</p>")
    items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
    return HTML("<div style='background:#fff4ce;border:1px solid #d9a400;padding:6px 10px;margin:6px 0'>"
                f"<b>{html.escape(title)}</b><ul style='margin:4px 0'>{items}</ul></div>")


def conclusion(text: str):
    """The page's answer, in a box (IPython HTML; text escaped): what the reader takes away."""
    from IPython.display import HTML

    return HTML(f"<div class='gl-conclusion' role='note'><b>Answer.</b> {html.escape(text)}</div>")
