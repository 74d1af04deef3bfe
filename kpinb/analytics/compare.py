"""Period-over-period and year-over-year change over the engine's tidy frame.

Works on the output of :func:`kpinb.compute` (columns ``metric, period_start,
<by...>, value, ...`` with ``attrs["grain"]`` and ``attrs["by"]``) at any grain. Rows are
matched by date, not by position, so a missing period or row never shifts a comparison onto
the wrong period.

Relative changes are **percent numbers** (``12.5`` means +12.5 %), divided by the absolute
previous value so that a move from -10 to -5 reads as an improvement of +50 %. A previous
value of zero or a missing one gives a missing change, never an infinity.

>>> df = compute(["monthly_sales_revenue"], sources={"orders": "orders.parquet"})  # doctest: +SKIP
>>> changes(df)[["period_start", "value", "previous", "change_pct", "yoy_pct"]]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from kpinb.definitions.model import Calendar, Grain
from kpinb.engine import RESULT_COLUMNS
from kpinb.engine.calendar import calendar_of, fiscal_label, period_start
from kpinb.errors import DataError

__all__ = [
    "CHANGE_COLUMNS",
    "YEAR_AGO",
    "changes",
    "grain_of",
    "latest_complete_period",
    "partial_label",
    "period_end",
    "period_label",
    "relative_change",
    "vs_baseline",
]

CHANGE_COLUMNS = ("previous", "change_abs", "change_pct", "last_year", "yoy_abs", "yoy_pct")
"""Columns :func:`changes` adds."""

STEP: dict[str, pd.DateOffset] = {
    "day": pd.DateOffset(days=1),
    "week": pd.DateOffset(weeks=1),
    "month": pd.DateOffset(months=1),
    "quarter": pd.DateOffset(months=3),
    "year": pd.DateOffset(years=1),
}
YEAR_AGO: dict[str, pd.DateOffset] = {
    "day": pd.DateOffset(days=364),
    "week": pd.DateOffset(weeks=52),
    "month": pd.DateOffset(years=1),
    "quarter": pd.DateOffset(years=1),
    "year": pd.DateOffset(years=1),
}
"""How far back "last year" is per grain. Days and weeks go back 364 days (52 weeks) so that a
Monday is compared with a Monday; the calendar date therefore drifts by a day or two a year."""

_BASE_COLUMNS = RESULT_COLUMNS
_ADDED_COLUMNS = (*CHANGE_COLUMNS, "baseline", "vs_baseline_abs", "vs_baseline_pct")


def grain_of(df: pd.DataFrame, grain: str | Grain | None = None) -> str:
    """The grain of a tidy frame (``grain`` when given, else ``df.attrs["grain"]``), checked; raises
    DataError naming the fix. What only needs the grain asks this, not :func:`layout`, whose check
    of one row per key scans the frame."""
    missing = [c for c in ("metric", "period_start", "value") if c not in df.columns]
    if missing:
        raise DataError(
            f"the frame has no column(s) {', '.join(missing)}. Pass the tidy frame that "
            "kpinb.compute() returns (metric, period_start, <by...>, value, ...)."
        )
    g = grain if grain is not None else df.attrs.get("grain")
    if g is None:
        raise DataError(
            "the frame does not say its grain (df.attrs['grain'] is missing, e.g. after a pandas "
            "operation that drops attrs). Pass grain='month' (or day, week, quarter, year)."
        )
    try:
        return Grain(g).value
    except ValueError:
        raise DataError(f"grain {g!r} is not one of day, week, month, quarter, year.") from None


def layout(df: pd.DataFrame, grain: str | Grain | None = None) -> tuple[str, list[str]]:
    """The frame's grain and dimension columns, checked; raises DataError naming the fix."""
    g = grain_of(df, grain)
    by = df.attrs.get("by")
    if by is None:
        by = [c for c in df.columns if c not in _BASE_COLUMNS and c not in _ADDED_COLUMNS]
    dims = [c for c in by if c in df.columns]
    keys = ["metric", *dims, "period_start"]
    dup = df.duplicated(keys)
    if dup.any():
        row = df.loc[dup, keys].iloc[0].to_dict()
        raise DataError(
            f"the frame has more than one row for {row}. Keep one row per metric, period and "
            f"dimension values (dimensions: {', '.join(dims) or 'none'}); group the frame first "
            "or set df.attrs['by'] to the dimension columns."
        )
    return g, dims


def relative_change(new: float | None, old: float | None) -> float:
    """Percent change from ``old`` to ``new``, divided by ``abs(old)``; NaN if old is 0 or missing.

    >>> relative_change(110, 100), relative_change(-5, -10), relative_change(3, 0)
    (10.0, 50.0, nan)
    """
    if new is None or old is None or _isnan(new) or _isnan(old) or old == 0:
        return math.nan
    return (float(new) - float(old)) / abs(float(old)) * 100.0


def _isnan(x: Any) -> bool:
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _pct(new: pd.Series, old: pd.Series) -> pd.Series:
    old = old.where(old != 0)
    return (new - old) / old.abs() * 100.0


def changes(df: pd.DataFrame, grain: str | Grain | None = None) -> pd.DataFrame:
    """Add period-over-period and year-over-year change to a tidy metric frame.

    Parameters
    ----------
    df : the engine's tidy frame (one row per metric, period and dimension values).
    grain : the frame's grain; defaults to ``df.attrs["grain"]``.

    Returns
    -------
    A copy of ``df`` (same rows and order) with these columns added:

    - ``previous``: the value of the immediately preceding period (same metric and dimensions);
    - ``change_abs``: ``value - previous``;
    - ``change_pct``: ``change_abs / abs(previous) * 100`` (percent; NaN if previous is 0 or NaN);
    - ``last_year``: the value one year earlier, matched on ``period_start - 1 year`` (for day and
      week grain 364 days, i.e. 52 weeks, keeping the weekday);
    - ``yoy_abs``, ``yoy_pct``: the same change against ``last_year``.

    A missing period (NaN value, or no row) gives NaN for its own changes and for the changes of
    the period after it.

    Examples
    --------
    >>> out = changes(compute(["orders_count"], sources={"orders": df}, grain="quarter"))  # doctest: +SKIP
    >>> out.loc[out.period_start == "2025-01-01", ["previous", "change_pct"]]  # doctest: +SKIP
    """
    g, dims = layout(df, grain)
    keys = ["metric", *dims, "period_start"]
    out = df.drop(columns=[c for c in CHANGE_COLUMNS if c in df.columns])
    out["period_start"] = pd.to_datetime(out["period_start"])
    base = out[[*keys, "value"]]
    prev = base.assign(period_start=base["period_start"] + STEP[g]).rename(columns={"value": "previous"})
    ago = base.assign(period_start=base["period_start"] + YEAR_AGO[g]).rename(columns={"value": "last_year"})
    attrs = dict(df.attrs)
    index = out.index
    out = out.merge(prev, on=keys, how="left", validate="many_to_one")
    out = out.merge(ago, on=keys, how="left", validate="many_to_one")
    out.index = index
    out["change_abs"] = out["value"] - out["previous"]
    out["change_pct"] = _pct(out["value"], out["previous"])
    out["yoy_abs"] = out["value"] - out["last_year"]
    out["yoy_pct"] = _pct(out["value"], out["last_year"])
    out = out[[*[c for c in out.columns if c not in CHANGE_COLUMNS], *CHANGE_COLUMNS]]
    out.attrs.update(attrs, grain=g, by=tuple(dims))
    return out


def vs_baseline(df: pd.DataFrame, baseline: float | Mapping[str, float | None] | None) -> pd.DataFrame:
    """Add the change of every value against a baseline.

    Parameters
    ----------
    df : the engine's tidy frame.
    baseline : one number for every row, or metric id -> baseline (a metric not in the mapping,
        or mapped to None, gets NaN), e.g. from :func:`kpinb.status.baseline_value`.

    Returns
    -------
    A copy of ``df`` with ``baseline``, ``vs_baseline_abs`` (``value - baseline``) and
    ``vs_baseline_pct`` (percent of ``abs(baseline)``; NaN when the baseline is 0 or missing).

    Examples
    --------
    >>> vs_baseline(df, {"monthly_sales_revenue": 120_000})  # doctest: +SKIP
    """
    out = df.copy()
    if isinstance(baseline, Mapping):
        mapped = out["metric"].map(lambda m: baseline.get(m))
        out["baseline"] = pd.to_numeric(mapped, errors="coerce").astype("float64")
    else:
        out["baseline"] = math.nan if baseline is None else float(baseline)
    out["vs_baseline_abs"] = out["value"] - out["baseline"]
    out["vs_baseline_pct"] = _pct(out["value"], out["baseline"])
    out.attrs.update(df.attrs)
    return out


def period_end(start: Any, grain: str | Grain) -> pd.Timestamp:
    """The last day of the period that starts on ``start``.

    >>> period_end("2025-04-01", "quarter")
    Timestamp('2025-06-30 00:00:00')
    """
    g = Grain(grain).value
    return pd.Timestamp(start) + STEP[g] - pd.Timedelta(days=1)


def period_label(
    start: Any,
    grain: str | Grain,
    *,
    first: Any = None,
    through: Any = None,
    calendar: Calendar | None = None,
    long: bool = False,
) -> str:
    """A short, unambiguous label: ``2025-06-02``, ``week of 2025-06-02``, ``2025-06``, ``2025-Q2``, ``2025``;
    in a fiscal ``calendar``: ``Q1 FY2026``, ``FY2026``.

    ``first`` / ``through``: the days the data covers; a period they cut short is labelled partial.
    ``long``: the label people read in reports and dashboards: ``2 Jun 2025``, ``Week of 2 Jun 2025``,
    ``Jun 2025``, ``Q2 2025``, ``2025`` (the short one is for sentences, tables and machine outputs).

    >>> period_label("2025-04-01", "quarter")
    '2025-Q2'
    >>> period_label("2025-04-01", "quarter", long=True), period_label("2025-04-07", "week", long=True)
    ('Q2 2025', 'Week of 7 Apr 2025')
    >>> period_label("2025-12-01", "month", through="2025-12-09")
    '2025-12 (partial: Dec 1–9)'
    >>> period_label("2025-10-01", "quarter", through="2025-12-09")
    '2025-Q4 (partial: to Dec 9)'
    >>> period_label("2025-10-01", "quarter", first="2025-11-01")
    '2025-Q4 (partial: from Nov 1)'
    """
    g = Grain(grain).value
    ts = pd.Timestamp(start)
    fiscal = fiscal_label(ts, g, calendar) if g in ("quarter", "year") else None
    if fiscal:  # "Q1 FY2026" reads the same in both forms
        label = str(fiscal)
    elif long:
        label = {
            "day": f"{ts.day} {ts:%b %Y}",
            "week": f"Week of {ts.day} {ts:%b %Y}",
            "month": f"{ts:%b %Y}",
            "quarter": f"Q{ts.quarter} {ts.year}",
        }.get(g, f"{ts.year}")
    elif g == "day":
        label = f"{ts:%Y-%m-%d}"
    elif g == "week":
        label = f"week of {ts:%Y-%m-%d}"
    elif g == "month":
        label = f"{ts:%Y-%m}"
    elif g == "quarter":
        label = f"{ts.year}-Q{ts.quarter}"
    else:
        label = f"{ts.year}"
    end = period_end(ts, g)
    lo = pd.Timestamp(first).normalize() if first is not None else ts
    hi = pd.Timestamp(through).normalize() if through is not None else end
    if g == "day" or (lo <= ts and hi >= end) or hi < lo:
        return label
    lo, hi = max(lo, ts), min(hi, end)

    def day(d: pd.Timestamp) -> str:
        return f"{d:%b} {d.day}"

    if (lo > ts and hi < end) or (g == "month" and hi < end):
        same_month = lo.month == hi.month and lo.year == hi.year
        span = f"{day(lo)}–{hi.day}" if same_month else f"{day(lo)}–{day(hi)}"
        return f"{label} (partial: {span})"
    return f"{label} (partial: to {day(hi)})" if hi < end else f"{label} (partial: from {day(lo)})"


def partial_label(df: pd.DataFrame, metric: str, start: Any) -> str | None:
    """How a period of ``metric`` in the engine's frame reads when it is not complete (``2025-12
    (partial: Dec 1–9)``, ``2025-10 (not yet settled: matures 60 days after it ends)``); None when
    it is complete or the frame does not say (no ``complete`` column)."""
    if start is None or "complete" not in df.columns:
        return None
    g = grain_of(df)
    rows = df[(df["metric"] == metric) & (pd.to_datetime(df["period_start"]) == pd.Timestamp(start))]
    if rows.empty or bool(rows["complete"].all()):
        return None
    span = (df.attrs.get("coverage") or {}).get(metric) or {}
    first, through = span.get("first"), span.get("through")
    cal = calendar_of(df)
    label = period_label(start, g, first=first, through=through, calendar=cal)
    if label != period_label(start, g, calendar=cal) or through is None:
        return label
    days = span.get("matures_after_days", 0)
    return f"{label} (not yet settled: matures {days} days after it ends)"


def latest_complete_period(
    df: pd.DataFrame,
    as_of: Any = None,
    *,
    include_partial: bool = False,
    today: dt.date | None = None,
    metric: str | None = None,
) -> pd.Timestamp | None:
    """The start of the period to judge: the latest period complete on ``as_of``.

    A period is complete on ``as_of`` when its last day is on or before ``as_of``. When the frame
    has the engine's ``complete`` column, a period is also complete only where it says so (every
    source covers the period and its values have settled): of ``metric``'s rows when given, else
    of every row with a value. A partial or immature period is then passed over for the latest
    complete one before it, unless ``include_partial``.

    - ``as_of=None`` (default): the last period with any value in the frame, unless that period
      is still running today (its last day is after ``today``), then the one before it.
    - ``as_of=date``: the latest period that ended on or before that date, whether or not the
      frame has values for it (a missing value then shows as no data, which is the point).
    - ``include_partial=True``: judge the period containing ``as_of`` (or the last period with
      data) even if it has not ended yet.

    Returns None when ``as_of`` is None and the frame has no value at all.

    Examples
    --------
    >>> latest_complete_period(df, as_of="2025-07-15")  # month grain  # doctest: +SKIP
    Timestamp('2025-06-01 00:00:00')
    """
    g = grain_of(df)
    flagged = "complete" in df.columns and not include_partial
    rows = df[df["metric"] == metric] if flagged and metric is not None else df
    if as_of is None:
        with_data = pd.to_datetime(rows.loc[rows["value"].notna(), "period_start"])
        if with_data.empty:
            return None
        last = with_data.max()
        if include_partial:
            return pd.Timestamp(last)
        today_ts = pd.Timestamp(today or dt.date.today())
        as_of_ts = min(period_end(last, g), today_ts)
    else:
        try:
            as_of_ts = pd.Timestamp(as_of).normalize()
        except (TypeError, ValueError):
            raise DataError(f"as_of={as_of!r} is not a date. Pass a date such as '2025-06-30'.") from None
    start = period_start(as_of_ts, g, calendar_of(df))
    if not include_partial and period_end(start, g) > as_of_ts:
        start = start - STEP[g]
    if flagged:
        return _complete_at_or_before(rows, pd.Timestamp(start))
    return pd.Timestamp(start)


def _complete_at_or_before(rows: pd.DataFrame, start: pd.Timestamp) -> pd.Timestamp | None:
    """``start``, or the latest period before it whose rows with a value the frame marks complete.

    A period asked for that has no value at all stays the answer: a missing value shows as no data
    (the data is late), not as an older period judged in its place."""
    import numpy as np

    when = pd.DatetimeIndex(pd.to_datetime(rows["period_start"])).as_unit("ns").to_numpy()
    valued = rows["value"].notna().to_numpy() & (when <= start.as_unit("ns").to_numpy())
    when = when[valued]
    if not (when == start.as_unit("ns").to_numpy()).any():
        return start
    flags = rows["complete"].to_numpy()[valued]
    complete = np.where(pd.isna(flags), True, flags).astype(bool)  # NA is no verdict (as all() skips it)
    done = np.setdiff1d(when[complete], when[~complete])  # periods every row of which is complete
    return pd.Timestamp(done.max()) if len(done) else None
