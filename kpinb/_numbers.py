"""How many digits of a number are worth keeping.

Two facts decide it, measured on the machines the suite runs on: a parallel sum can differ in
its last bits from one run or CPU to the next, and an ETS fit converges to a slightly
different optimum on another CPU (the 5th significant digit of a forecast moved). Numbers
people read, and the figure data stored in notebooks, keep only the digits that hold.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from kpinb.definitions.model import Metric

FORECAST_DIGITS = 3
"""Significant digits of a forecast and its interval (their spread dwarfs the 4th digit)."""

DISPLAY_DIGITS = 5
"""Significant digits of a value below 1,000 in figure data; from 1,000 up, whole numbers."""


def round_significant(values: Any, digits: int) -> np.ndarray:
    """``values`` as floats rounded to ``digits`` significant digits (NaN, inf and 0 kept).

    >>> round_significant([1996734.05, 0.0123456, -326.5448], 3).tolist()
    [2000000.0, 0.0123, -327.0]
    """
    v = np.array(values, dtype="float64", copy=True, ndmin=1)
    finite = np.isfinite(v) & (v != 0)
    if finite.any():
        mag = np.floor(np.log10(np.abs(v[finite])))
        scale = 10.0 ** (digits - 1 - mag)
        v[finite] = np.round(v[finite] * scale) / scale
    return v


def steady(values: Any) -> np.ndarray:
    """Figure data at display precision: whole numbers from 1,000 up (the formatter shows no
    decimals there), :data:`DISPLAY_DIGITS` significant digits below.

    >>> steady([1375415.2900001, 340.28087333, 0.125783411]).tolist()
    [1375415.0, 340.28, 0.12578]
    """
    v = round_significant(values, DISPLAY_DIGITS)
    raw = np.array(values, dtype="float64", ndmin=1)
    big = np.isfinite(raw) & (np.abs(raw) >= 1000)
    v[big] = np.round(raw[big])
    return v


def as_float(x: Any) -> float:
    """A float; NaN for None, NA, NaT or text."""
    if x is None:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def plain_number(x: Any) -> str:
    """A number for a sentence: 42.1, 0.0273, 12,346 (``n/a`` when missing)."""
    v = as_float(x)
    if math.isnan(v):
        return "n/a"
    if abs(v) >= 10_000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


# --- the one number formatter (the presentation kit re-exports it) -----------------------------

DASH = "–"
_DURATION_WORDS = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "days",
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
}


_ISO_CODE = re.compile(r"[A-Z]{3}")


def unit_key(unit: Any) -> str:
    """A unit's name for comparing (``percent``, ``currency``, ``s``); a currency's ISO code stays
    upper case (``EUR``), the display unit of amounts in a plan that names its currency."""
    raw = str(getattr(unit, "value", unit) or "count").strip()
    return raw if _ISO_CODE.fullmatch(raw) else raw.lower()


def _compact(v: float, decimals: int = 2) -> str | None:
    """1.23B / 4.56M for large numbers; None when no suffix applies."""
    a = abs(v)
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if a >= size:
            return f"{v / size:.{decimals}f}{suffix}"
    return None


CURRENCY_SYMBOLS: dict[str, str] = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪",
    "NGN": "₦", "PHP": "₱", "UAH": "₴", "VND": "₫", "TRY": "₺", "RUB": "₽",
}  # fmt: skip
"""ISO 4217 codes written as a symbol before the amount; every other code is written before it
with a space (``CHF 1,250``, ``SEK 2.22M``), which no reader can take for another currency."""

def is_currency(unit: Any) -> bool:
    """True for the ``currency`` unit and for a currency's ISO code (``EUR``), the display unit of a
    money metric in a plan that names its ``currency:`` (see :func:`display_unit`)."""
    raw = str(getattr(unit, "value", unit) or "")
    return raw.strip().lower() == "currency" or _ISO_CODE.fullmatch(raw.strip()) is not None


def currency_prefix(unit: Any) -> str:
    """What goes before an amount in ``unit``: ``€``, ``CHF `` or nothing (no currency named)."""
    raw = str(getattr(unit, "value", unit) or "").strip()
    if not _ISO_CODE.fullmatch(raw):
        return ""
    return CURRENCY_SYMBOLS.get(raw, f"{raw} ")


def format_value(value: Any, unit: Any = "count", *, compact: bool = True) -> str:
    """A value for display in its unit.

    Parameters
    ----------
    value : the number (NaN, None or text give ``"–"``).
    unit : ``percent`` (stored as a fraction 0..1), ``currency``, a currency's ISO code
        (``EUR``: an amount in that currency), ``count``, ``ratio``, ``score``, ``duration``, or a
        time unit for durations (``s``/``seconds``, ``min``/``minutes``, ``h``/``hours``,
        ``days``), which is kept after the number.
    compact : millions and more as ``2.22M`` (cards, axes, tables: where space is short);
        False writes every digit with thousands separators (``2,221,673``).

    Amounts: a currency with a common symbol gets it before the number (``€2.22M``, ``$320.31``,
    ``-£1,200``); other codes are written before it with a space (``CHF 2.22M``); plain
    ``currency`` (the plan names none) shows no symbol. Whole amounts from 1,000 up, cents below.

    Examples
    --------
    >>> format_value(0.1234, "percent"), format_value(1234567, "currency"), format_value(12345.4, "currency")
    ('12.3%', '1.23M', '12,345')
    >>> format_value(2221673, "EUR"), format_value(2221673, "EUR", compact=False), format_value(-320.314, "CHF")
    ('€2.22M', '€2,221,673', '-CHF 320.31')
    >>> format_value(210.04, "seconds"), format_value(float("nan"), "count")
    ('210 s', '–')
    """
    v = as_float(value)
    if not math.isfinite(v):
        return DASH
    if is_currency(unit):
        big = _compact(abs(v)) if compact else None
        text = big or (f"{abs(v):,.0f}" if abs(v) >= 1000 else f"{abs(v):,.2f}")
        return f"{'-' if v < 0 else ''}{currency_prefix(unit)}{text}"
    u = unit_key(unit)
    if u == "percent":
        return f"{v * 100:.1f}%"
    if u == "ratio":
        return f"{v:,.2f}"
    if u == "score":
        return f"{v:,.1f}"
    if u == "duration" or u in _DURATION_WORDS:
        text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"
        label = _DURATION_WORDS.get(u)
        return f"{text} {label}" if label else text
    big = _compact(v) if compact else None
    if big:
        return big
    if float(v).is_integer() or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"  # 0.09 stays 0.09, not 0.1


def duration_unit(metric: Metric) -> str | None:
    """The time unit of a duration metric, read from its formula's columns or its description.

    Returns ``"s"``, ``"min"``, ``"h"`` or ``"days"`` for a ``duration`` metric whose formula
    reads e.g. ``duration_seconds`` or ``days_to_fill``; None when unknown or not a duration.
    """
    if unit_key(metric.unit) != "duration":
        return None
    words = re.findall(r"[a-z]+", f"{metric.expr} {metric.description}".lower())
    for w in words:
        if w in ("seconds", "minutes", "hours", "days"):
            return _DURATION_WORDS[w]
    return None


def display_unit(metric: Metric | None, unit: Any, currency: str | None = None) -> str:
    """The unit :func:`format_value` shows a metric's values in: a duration's time unit, the plan's
    ``currency`` code (``EUR``) for a money metric, else the metric's (or ``unit``'s) own unit."""
    if metric is not None and unit_key(metric.unit) == "duration":
        return duration_unit(metric) or "duration"
    key = unit_key(unit if unit is not None else (metric.unit if metric is not None else "count"))
    if key == "currency" and currency:
        return str(currency)
    return key


# --- small pieces -----------------------------------------------------------------------------


def format_change(new: Any, old: Any, unit: Any = "count") -> str:
    """A change with its sign, as people read it: ``+1.2 pp`` for a percent metric (stored as
    fractions: the difference of the rates), else the relative change ``-26.7%``; ``–`` when
    either number is missing or the old one is 0.

    >>> format_change(0.055, 0.07, "percent"), format_change(110.0, 150.0, "currency")
    ('-1.5 pp', '-26.7%')
    """
    n, o = as_float(new), as_float(old)
    if not (math.isfinite(n) and math.isfinite(o)):
        return DASH
    if unit_key(unit) == "percent":
        return f"{(n - o) * 100:+.1f} pp"
    if o == 0:
        return DASH
    return f"{(n - o) / abs(o) * 100:+.1f}%"


def format_delta(diff: Any, unit: Any = "count", *, sign: bool = True) -> str:
    """A difference in the metric's own unit: ``+1.3 pp`` for a percent metric (a difference of
    rates is in percentage points), else the formatted number with its sign (``+126.75``).

    >>> format_delta(-0.013, "percent"), format_delta(126.75, "currency"), format_delta(-5, sign=False)
    ('-1.3 pp', '+126.75', '5')
    """
    d = as_float(diff)
    if not math.isfinite(d):
        return DASH
    if not sign:
        d = abs(d)
    if unit_key(unit) == "percent":
        return f"{d * 100:{'+' if sign else ''}.1f} pp"
    text = format_value(d, unit)
    return f"+{text}" if sign and d > 0 else text
