"""Numbers and tables rounded for reading: the one formatting helper every screen uses.

Screens show 4 significant digits, p-values as ``0.007`` / ``< 0.001`` and shares as percentages;
exports (CSV/JSON downloads, the CLI's ``--json``) keep full precision, so these helpers are applied
only where a value is shown, never to what is written to a file.

Example:
    >>> fmt_number(1.5869765281677246), fmt_number(11.0489), fmt_number(17980), fmt_number(0.5)
    ('1.587', '11.05', '17,980', '0.5')
    >>> fmt_p(0.006999), fmt_p(0.0004), fmt_p(0.5222)
    ('0.007', '< 0.001', '0.522')
    >>> fmt_percent(0.15123)
    '15.1%'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any

import pandas as pd

#: Significant digits shown on screen.
DIGITS = 4
#: What a missing value reads as.
MISSING = "—"
#: Header of the one-cell table shown before a table has rows (see :func:`empty_frame`).
EMPTY_HEADER = "Nothing to show yet"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, Real) and not isinstance(x, Integral) and math.isnan(float(x)))


def round_sig(x: float, digits: int = DIGITS) -> float:
    """``x`` rounded to ``digits`` significant digits, still a number (``1.586977 -> 1.587``).

    Zero, NaN and infinities come back unchanged.
    """
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def fmt_number(x: Any, digits: int = DIGITS) -> str:
    """A number as text for reading: integers with thousands separators, other numbers with ``digits``
    significant digits and no trailing zeros (``1.5869765 -> "1.587"``, ``2.50 -> "2.5"``).

    Numbers of ``10**digits`` or more lose their fraction (``123456.7 -> "123,457"``); magnitudes below
    ``1e-4`` use scientific notation (``"1.230e-05"``); None and NaN read as ``"—"``; text passes unchanged.
    """
    if _missing(x):
        return MISSING
    if isinstance(x, bool) or not isinstance(x, Real):
        return str(x)
    if isinstance(x, Integral):
        return f"{int(x):,}"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    if abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_p(p: float | None) -> str:
    """A p-value for reading: three decimals (``0.006999 -> "0.007"``), ``"< 0.001"`` below 0.001,
    ``"—"`` when missing."""
    if _missing(p):
        return MISSING
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_percent(x: float | None, decimals: int = 1) -> str:
    """A ratio as a percentage (``0.15123 -> "15.1%"``); ``"—"`` when missing."""
    if _missing(x):
        return MISSING
    return f"{100 * float(x):.{decimals}f}%"


def empty_frame(sentence: str) -> pd.DataFrame:
    """A one-cell table that says what to do (shown instead of a table without rows)."""
    return pd.DataFrame({EMPTY_HEADER: [sentence]})


def display_frame(
    frame: pd.DataFrame | None,
    empty: str,
    *,
    digits: int = DIGITS,
    rename: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    percent: Iterable[str] = (),
    p_values: Iterable[str] = (),
) -> pd.DataFrame:
    """A table as shown on screen: floats rounded to ``digits`` significant digits (still numbers, so
    columns sort numerically), chosen columns as percentages or p-values, short headers.

    Args:
        frame: the full-precision table (not modified).
        empty: the sentence shown (see :func:`empty_frame`) when ``frame`` is None or has no rows.
        digits: significant digits of floats.
        rename: column -> shown header.
        drop: columns left out of the display.
        percent: ratio columns shown as ``"15.1%"``.
        p_values: p-value columns shown as ``"0.007"`` / ``"< 0.001"``.

    Returns:
        A new frame.
    """
    if frame is None or len(frame) == 0:
        return empty_frame(empty)
    out = frame.drop(columns=[c for c in drop if c in frame.columns]).copy()
    percent, p_values = set(percent), set(p_values)
    for col in out.columns:
        series = out[col]
        if col in percent:
            out[col] = series.map(fmt_percent)
        elif col in p_values:
            out[col] = series.map(fmt_p)
        elif pd.api.types.is_float_dtype(series.dtype):
            out[col] = series.map(lambda v: v if _missing(v) else round_sig(v, digits))
        elif series.dtype == object:
            out[col] = series.map(lambda v: round_sig(v, digits) if isinstance(v, float) and not _missing(v) else v)
    if rename:
        out = out.rename(columns=dict(rename))
    return out


__all__ = [
    "DIGITS",
    "EMPTY_HEADER",
    "MISSING",
    "display_frame",
    "empty_frame",
    "fmt_number",
    "fmt_p",
    "fmt_percent",
    "round_sig",
]
