"""How many digits of a number are worth keeping.

Two facts decide it, measured on the machines the suite runs on: a parallel sum can differ in
its last bits from one run or CPU to the next, and an ETS fit converges to a slightly
different optimum on another CPU (the 5th significant digit of a forecast moved). Numbers
people read, and the figure data stored in notebooks, keep only the digits that hold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
