"""Is the latest value unusual? A robust seasonal residual test, deterministic and explainable.

The **expected** value of a period is the value one season earlier (a year at month, quarter and
week grain; a week at day grain) when the series has two full seasons before it, else the value
of the period before (a seasonal or plain naive forecast), plus the median of the past residuals
(so a steady growth is expected, not flagged). The period is **unusual** when its residual lies
more than ``threshold`` robust standard deviations from that median, the deviation being
``1.4826 × MAD`` of the past residuals (the median absolute deviation, which one earlier outlier
cannot inflate). When the past residuals do not vary at all, any departure of more than 1 % of
the expected value is unusual.

>>> s = pd.Series([100.0] * 11 + [160.0], pd.date_range("2025-01-01", periods=12, freq="MS"))
>>> flag(s, "month").unusual
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

__all__ = ["MIN_HISTORY", "SEASON", "THRESHOLD", "Flag", "flag"]

SEASON = {"day": 7, "week": 52, "month": 12, "quarter": 4, "year": 1}
"""Periods in one season per grain (a week of days, a year of the others)."""

THRESHOLD = 3.5
"""Robust z-score from which a residual is unusual (3.5 is Iglewicz and Hoaglin's cut-off)."""

MIN_HISTORY = 6
"""Past residuals needed before anything is called unusual."""

_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Flag:
    """The test of one period: ``value``, ``expected``, ``score`` (robust z; ±inf when the past
    never varied), ``unusual``, and ``basis`` (``seasonal`` or ``previous``)."""

    period_start: pd.Timestamp
    value: float
    expected: float
    score: float
    unusual: bool
    basis: str


def flag(series: pd.Series, grain: str, threshold: float = THRESHOLD) -> Flag | None:
    """Test the last period of ``series`` (values by period start, complete periods only).

    Returns None when there is too little history (fewer than :data:`MIN_HISTORY` past
    residuals) or the last value is missing.
    """
    s = series.sort_index().astype("float64")
    if s.empty or math.isnan(s.iloc[-1]):
        return None
    season = SEASON.get(grain, 1)
    lag = season if season > 1 and len(s) > 2 * season else 1
    residuals = (s - s.shift(lag)).dropna()
    if residuals.empty or residuals.index[-1] != s.index[-1]:
        return None  # the period before the last is missing: nothing to compare with
    past, last = residuals.iloc[:-1], float(residuals.iloc[-1])
    if len(past) < MIN_HISTORY:
        return None
    centre = float(past.median())
    spread = _MAD_TO_SD * float((past - centre).abs().median())
    reference = float(s.iloc[-1 - lag])
    expected = reference + centre
    deviation = last - centre
    if spread > 0:
        score = deviation / spread
        unusual = abs(score) > threshold
    else:
        score = 0.0 if deviation == 0 else math.copysign(math.inf, deviation)
        unusual = abs(deviation) > 0.01 * max(abs(expected), 1e-12)
    return Flag(
        pd.Timestamp(s.index[-1]), float(s.iloc[-1]), expected, score, unusual, "seasonal" if lag > 1 else "previous"
    )
