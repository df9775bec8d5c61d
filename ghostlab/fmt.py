"""One format per quantity, for tables, figures, the index page and the sentences that conclude each page.

Every number a report shows goes through here, so the same quantity reads the same everywhere:

=============  =============================  ==========================================
quantity       function                       example
=============  =============================  ==========================================
accuracy       ``accuracy(93.62)``            ``93.6 %`` (1 decimal; percent in, percent out)
drop           ``drop(-0.4)``                 ``−0.40 pp`` (2 decimals, always signed)
interval       ``interval(-1.2, 0.4)``        ``[−1.20, +0.40]`` (pp, signed)
drop + CI      ``drop_ci(-0.4, -1.2, 0.4)``   ``−0.40 pp [−1.20, +0.40]``
size           ``size_mb(1_829_100)``         ``1.83 MB`` (bytes in; MB = 10^6 bytes)
ratio          ``ratio(1.14)``                ``1.14×`` — always *throughput* over the reference: > 1 is faster
p-value        ``p_value(0.0312)``            ``0.031`` (2 significant digits)
count          ``count(41.0)``                ``41`` (integers, thousands separated)
dB             ``db(44.5137)``                ``44.5 dB`` (1 decimal)
latency        ``ms(0.7123)``                 ``0.712 ms`` (3 significant digits)
throughput     ``img_s(397.54)``              ``398 img/s`` (3 significant digits, at least integer)
=============  =============================  ==========================================

``unit=False`` drops the unit where a column header carries it. ``cell(value, column)`` picks the
format from a table's column header (``column_kind``), which is how ``tables.html_table`` and the
index page format every table without each row builder repeating the rules. ``label(key)`` turns a
published summary key (``fp32_top1``) into words (``fp32 top-1 %``).

``candidate_color(name)`` is the one palette: the same candidate has the same colour in every
figure of every run (fp32, torch, the int8 variants, OpenVINO candidates ``ov_*``).
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

MINUS = "\u2212"  # typographic minus: "−0.40", never a hyphen
MISSING = "–"


def _ok(x: Any) -> bool:
    return x is not None and not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _signed(x: float, decimals: int) -> str:
    text = f"{abs(x):.{decimals}f}"
    if float(text) == 0:
        return text  # no "−0.00" or "+0.00": zero has no sign
    return ("+" if x > 0 else MINUS) + text


def _plain(text: str) -> str:
    return text.replace("-", MINUS) if text.startswith("-") else text


def _sig(x: float, digits: int) -> str:
    """``digits`` significant digits, never in exponent notation at or above 1."""
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return _plain(f"{x:,.0f}")
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    text = f"{x:.{decimals}f}"
    # rounding may carry into a new digit (9.996 -> "10.00"): one decimal fewer
    if len(text.lstrip("-").replace(".", "").lstrip("0")) > digits and decimals > 0:
        text = f"{x:.{decimals - 1}f}"
    return _plain(text)


def _unit(text: str, unit: str, on: bool) -> str:
    return f"{text} {unit}" if on and unit else text


# ---------------------------------------------------------------- one function per quantity

def accuracy(pct: Any, unit: bool = True) -> str:
    """Top-1/top-5/agreement, given in percent: 1 decimal."""
    return _unit(_plain(f"{pct:.1f}"), "%", unit) if _ok(pct) else MISSING


def drop(pp: Any, unit: bool = True) -> str:
    """A difference of accuracies in percentage points: 2 decimals, signed."""
    return _unit(_signed(pp, 2), "pp", unit) if _ok(pp) else MISSING


def interval(lo: Any, hi: Any, unit: bool = False) -> str:
    """A 95 % interval in percentage points, both ends signed: ``[−1.20, +0.40]``."""
    if not (_ok(lo) and _ok(hi)):
        return MISSING
    return _unit(f"[{_signed(lo, 2)}, {_signed(hi, 2)}]", "pp", unit)


def drop_ci(pp: Any, lo: Any, hi: Any) -> str:
    """``−0.40 pp [−1.20, +0.40]``; the interval is left out when it is missing."""
    ci = interval(lo, hi)
    return drop(pp) + (f" {ci}" if ci != MISSING else "")


def size_mb(num_bytes: Any, unit: bool = True) -> str:
    """A file size from bytes, in MB (10^6 bytes): 2 decimals below 100 MB."""
    if not _ok(num_bytes):
        return MISSING
    mb = num_bytes / 1e6
    return _unit(f"{mb:.2f}" if mb < 100 else f"{mb:,.0f}", "MB", unit)


def ratio(x: Any, unit: bool = True) -> str:
    """A speed ratio, throughput over the reference's (> 1: faster): ``1.14×``."""
    return (f"{x:.2f}" + ("×" if unit else "")) if _ok(x) else MISSING


def faster(x: Any, than: str) -> str:
    """A speed ratio in words, the number as ``ratio`` shows it: ``1.14× faster than fp32``,
    ``slower than fp32 (0.76×)``, ``as fast as fp32 (1.00×)``."""
    if not _ok(x):
        return MISSING
    if ratio(x) == ratio(1.0):
        return f"as fast as {than} ({ratio(x)})"
    return f"{ratio(x)} faster than {than}" if x > 1 else f"slower than {than} ({ratio(x)})"


def p_value(p: Any) -> str:
    """2 significant digits; exponent notation below 0.001."""
    if not _ok(p):
        return MISSING
    if p == 0:
        return "0"
    if p < 1e-3:
        mantissa, exp = f"{p:.1e}".split("e")
        return f"{mantissa}e{MINUS}{int(exp[1:]):02d}" if exp.startswith("-") else f"{mantissa}e{exp}"
    return _sig(p, 2)


def count(n: Any) -> str:
    """An integer count, thousands separated (``41.0`` -> ``41``)."""
    return _plain(f"{round(n):,}") if _ok(n) else MISSING


def db(x: Any, unit: bool = True) -> str:
    """A signal-to-noise ratio in dB: 1 decimal."""
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else MINUS + "∞"
    return _unit(_plain(f"{x:.1f}"), "dB", unit) if _ok(x) else MISSING


def ms(x: Any, unit: bool = True) -> str:
    """A latency in milliseconds: 3 significant digits."""
    return _unit(_sig(x, 3), "ms", unit) if _ok(x) else MISSING


def img_s(x: Any, unit: bool = True) -> str:
    """A throughput in images per second: 3 significant digits, at least the integer part."""
    return _unit(_sig(x, 3), "img/s", unit) if _ok(x) else MISSING


def seconds(x: Any) -> str:
    """A duration: ``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if not _ok(x):
        return MISSING
    s = round(x)
    if x < 10:
        return f"{x:.1f} s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def number(x: Any, digits: int = 3) -> str:
    """Anything else: whole numbers as counts, others with ``digits`` significant digits."""
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else MINUS + "∞"
    if not _ok(x):
        return MISSING
    if x == 0:
        return "0"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1:
        return count(x)
    if abs(x) < 1e-3:
        return p_value(x) if x > 0 else MINUS + p_value(-x)
    text = _sig(x, digits)
    return text.rstrip("0").rstrip(".") if "." in text else text  # 0.0500 -> 0.05


def millions(x: Any, what: str) -> str:
    """``4.3M MACs`` / ``1.31M params``: 3 significant digits."""
    return f"{_sig(x / 1e6, 3)}M {what}" if _ok(x) else MISSING


# ---------------------------------------------------------------- tables: the format from the column

# (pattern on the lower-cased column header or summary key, kind); first match wins.
_KINDS = (
    (r"^(parity_|best_)?top1_agreement$", "fraction"),  # raw keys hold a fraction: shown in percent
    (r"mcnemar|p-value|\bp$|_p$", "p"),
    (r"\bci\b|interval|ci95", "interval"),
    (r"drop|\bpp\b|\bpts\b", "drop"),
    (r"sqnr|\bdb\b", "db"),
    (r"\bmb\b|size_mb|onnx_mb", "size"),
    (r"×|\bratio|_vs_|\bx fp32|speed-?up|faster", "ratio"),
    (r"img/s|images/s|images_per_s|img_s", "img_s"),
    (r"\bms\b|_ms$|latency", "ms"),
    (r"top-?[15]|top[15]\b|_top[15]$|accuracy|agreement|%", "accuracy"),
    (r"^kl|\bkl\b|_kl", "kl"),
    (r"images|count|nodes|channels|tensors|\bn$|classes|params|macs|samples|flips|batch|threads|sessions", "count"),
)


def column_kind(column: str) -> str | None:
    """Which quantity a column (or summary key) holds, from its name; None when it says nothing."""
    name = str(column).lower()
    for pattern, kind in _KINDS:
        if re.search(pattern, name):
            return kind
    return None


_BY_KIND = {
    "fraction": lambda v: accuracy(100 * v, unit=False),
    "accuracy": lambda v: accuracy(v, unit=False),
    "drop": lambda v: drop(v, unit=False),
    "db": lambda v: db(v, unit=False),
    "size": lambda v: f"{v:.2f}" if _ok(v) else MISSING,  # already MB in a column headed "MB"
    "ratio": lambda v: ratio(v),
    "img_s": lambda v: img_s(v, unit=False),
    "ms": lambda v: ms(v, unit=False),
    "p": p_value,
    "kl": lambda v: number(v, 3),
    "count": lambda v: count(v) if _ok(v) and float(v).is_integer() else number(v, 3),
}

# text that is a formatted number (1.14×, [−1.20, +0.40], 3 min 05 s, 64 px), not words that start with one
_NUMERIC_TEXT = re.compile(r"(?=.*[\d∞])([\s\d.,+\-−×%∞\[\]()]|e[−+\-]|ms|MB|dB|pp|min|img/s|px|s\b|h\b)+")


def cell(value: Any, column: str = "", digits: int = 3) -> tuple[str, bool]:
    """A table cell: (text, right-aligned?). Numbers take their column's format; lists of two
    numbers in an interval column become ``[lo, hi]``; text stays as is (right-aligned when it is a
    number already formatted, e.g. ``1.14×`` or ``[−1.20, +0.40]``)."""
    if value is None:
        return MISSING, False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    kind = column_kind(column)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_ok(v) or v is None for v in value):
        return (interval(*value) if kind in ("interval", "drop") else f"[{number(value[0], digits)}, "
                f"{number(value[1], digits)}]"), True
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return MISSING, True
        if kind in _BY_KIND:
            return _BY_KIND[kind](value), True
        if isinstance(value, float) and not value.is_integer() and abs(value) < 1e6:
            return number(value, max(digits, 2)), True
        return number(value, digits), True
    text = str(value)
    return text, bool(_NUMERIC_TEXT.fullmatch(text.strip()))


def value(value: Any, key: str) -> str:
    """A published summary value with its unit, formatted by what its key says it is."""
    kind = column_kind(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return cell(value, key)[0]
    return {"fraction": lambda v: accuracy(100 * v), "accuracy": accuracy, "drop": drop, "db": db, "ratio": ratio, "img_s": img_s, "ms": ms,
            "p": p_value, "size": lambda v: f"{v:.2f} MB"}.get(kind, lambda v: cell(v, key)[0])(value)


# ---------------------------------------------------------------- words for keys

LABELS = {
    "params": "parameters",
    "macs": "MACs per image",
    "onnx_mb": "ONNX file (MB)",
    "parity_max_abs_diff": "torch vs ORT: largest logit difference",
    "parity_top1_agreement": "torch vs ORT: top-1 agreement (%)",
    "top1_agreement": "top-1 agreement with fp32 (%)",
    "mean_kl": "mean KL",
    "size_mb": "size (MB)",
    "median_sqnr_db": "median SQNR (dB)",
    "worst_sqnr_db": "worst SQNR (dB)",
    "output_sqnr_db": "output SQNR (dB)",
    "fp32_nodes": "nodes kept in fp32",
    "max_abs_diff": "largest logit difference",
    "cosine_min": "lowest cosine",
    "local_sqnr_db": "local SQNR (dB)",
    "sqnr_db": "SQNR vs fp32 (dB)",
    "calibration_images": "calibration images",
    "holdout_images": "hold-out images",
    "best_variant": "int8 variant closest to fp32",
    "best_top1_agreement": "its top-1 agreement with fp32 (%)",
    "conclusion": "answer",
    "images": "images evaluated",
    "eval_images_per_s": "evaluation speed (img/s)",
    "projected_50k_images": "time for 50,000 images",
    "ghost_modules": "Ghost modules",
    "ghost_to_source_similarity_mean": "ghost map vs its source: mean cosine",
    "ghostnet_mean_max_similarity": "GhostNet: mean nearest-twin cosine",
    "ghostnet_effective_rank_fraction": "GhostNet: effective rank / max",
    "resnet50_weights": "ResNet-50 weights",
    "resnet50_mean_max_similarity": "ResNet-50: mean nearest-twin cosine",
    "resnet50_effective_rank_fraction": "ResNet-50: effective rank / max",
    "setting": "setting",
}

_KEY_PATTERNS = (
    (r"^(.+)_top1$", r"\1 top-1 (%)"),
    (r"^(.+)_top5$", r"\1 top-5 (%)"),
    (r"^(.+)_mcnemar_p$", r"\1 McNemar p"),
    (r"^(.+)_top1_drop$", r"\1 top-1 drop (pp)"),
    (r"^(int8_)?(.+)_fp32_nodes$", r"int8_\2: nodes kept in fp32"),
    (r"^(int8_)?(.+)_reached_target$", r"int8_\2: reached the agreement target"),
)


def label(key: str) -> str:
    """A summary key in words: ``fp32_top1`` -> ``fp32 top-1 (%)``; unknown keys lose their underscores
    except inside candidate names (``int8_minmax``)."""
    if key in LABELS:
        return LABELS[key]
    for pattern, repl in _KEY_PATTERNS:
        m = re.match(pattern, key)
        if m:
            subject = m.group(1) or ""
            if subject and not is_candidate(subject):  # comparison_val_top1 -> comparison val top-1 (%)
                key = key.replace(subject, subject.replace("_", " "), 1)
            return re.sub(pattern, repl, key)
    if " " in key or is_candidate(key):
        return key
    return key.replace("_", " ")


# ---------------------------------------------------------------- one colour per candidate

CANDIDATE_COLORS = {
    "fp32": "#4c72b0",            # blue: the reference
    "torch": "#7f7f7f",           # grey: the baseline you would otherwise deploy
    "int8_minmax": "#dd8452",     # orange
    "int8_percentile": "#55a868",  # green
    "int8_entropy": "#c44e52",    # red
    "int8_auto": "#8172b3",       # purple
    "ov_fp32": "#17becf",         # OpenVINO: cyan / olive / brown family
    "ov_f32": "#17becf",
    "ov_bf16": "#bcbd22",
    "ov_int8": "#8c564b",
    "ov_nncf": "#0b4f6c",         # NNCF int8 IR: dark teal; pink without depthwise
    "ov_nncf_nodw": "#e377c2",
}
_INT8_SPARE = ("#da8bc3", "#937860", "#ccb974", "#64b5cd", "#9467bd")
_OV_SPARE = ("#0f8a96", "#8c564b", "#a0a11a", "#5e3a33", "#6fd3de")
_OTHER_SPARE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def is_candidate(name: str) -> bool:
    return name in CANDIDATE_COLORS or name.startswith(("int8_", "ov_", "ghostnet", "resnet"))


def candidate_color(name: str) -> str:
    """The candidate's colour in every figure: fixed for the known ones; OpenVINO running an ORT int8
    variant (``ov_int8_<v>``) gets that variant's hue, darker; otherwise picked by a stable hash of the
    name from its family's spare colours (int8_*, ov_*, anything else)."""
    if name in CANDIDATE_COLORS:
        return CANDIDATE_COLORS[name]
    if name.startswith("ov_int8_") and f"int8_{name[8:]}" in CANDIDATE_COLORS:
        return _darker(CANDIDATE_COLORS[f"int8_{name[8:]}"])  # OpenVINO running ORT's int8_<v>: its hue, darker
    spare = _OV_SPARE if name.startswith("ov_") else _INT8_SPARE if name.startswith("int8_") else _OTHER_SPARE
    return spare[zlib.crc32(name.encode()) % len(spare)]


def _darker(color: str, keep: float = 0.6) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c * keep):02x}" for c in (r, g, b))


def candidate_colors(names: list[str]) -> dict[str, str]:
    return {n: candidate_color(n) for n in names}
