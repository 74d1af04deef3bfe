"""Pace to target: forecast a KPI to its deadline, and the chance of reaching the target.

Methods, chosen by how much history there is (counted in periods from the first to the last
value; gaps inside are filled by linear interpolation for the ETS model):

- ``ets`` — with at least two full seasonal cycles, and the ``10 + 2 * (m // 2)`` points the
  heuristic initialisation needs (16 days, 104 weeks, 24 months, 14 quarters): exponential
  smoothing with additive errors, a damped additive trend and additive seasonality
  (statsmodels ``ETSModel``). Initial states come from the heuristic decomposition of the first
  cycles, so only the smoothing parameters are fitted; the model's exact prediction intervals
  are widened by ``sqrt(n / (n - k))`` for its ``k`` fitted parameters (the unbiased residual
  variance instead of the maximum-likelihood one, which is too small on a few years of data).
- ``linear`` — with 3 or more values (and always at year grain, or if ETS fails): a
  least-squares straight line through the observed values with the classic prediction
  interval from its residuals (Student t).
- ``insufficient_history`` — fewer than 3 values: no forecast (NaN).
- ``observed`` — the deadline's period is already in the history: its observed value.

Everything is deterministic: the same series gives the same forecast on one machine. An ETS
fit lands on a slightly different optimum on another CPU (the 5th significant digit moves), so
:func:`pace`, which people read, keeps 3 significant digits of a forecast and its interval and
whole percents of a probability; the interval's spread makes further digits meaningless anyway.

>>> fc = forecast(series, "month", until="2025-12-31", level=0.8)  # doctest: +SKIP
>>> probability_to_reach(fc, 150_000, Direction.higher_is_better)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

from kpinb._numbers import FORECAST_DIGITS, as_float, round_significant
from kpinb.analytics.compare import STEP, latest_complete_period, period_end
from kpinb.analytics.kpis import direction_of, select, series_of
from kpinb.definitions.model import Calendar, Direction, Grain, Plan
from kpinb.engine.calendar import calendar_of, period_start, periods
from kpinb.errors import DataError, PlanError

__all__ = ["PACE_COLUMNS", "SEASON", "Forecast", "forecast", "pace", "probability_to_reach"]

Method = Literal["ets", "linear", "observed", "insufficient_history", "no_target"]

SEASON = {"day": 7, "week": 52, "month": 12, "quarter": 4, "year": None}
"""Seasonal period ``m`` per grain (periods per cycle); year grain has no seasonality."""

PACE_COLUMNS = (
    "metric", "period_start", "value", "deadline", "periods_left", "forecast_at_deadline", "lower",
    "upper", "target", "probability", "required_per_period", "method",
)  # fmt: skip
"""Columns of :func:`pace`'s frame, in order."""

_POINT_COLUMNS = ["period_start", "mean", "lower", "upper"]


@dataclass(frozen=True, eq=False)
class Forecast:
    """A forecast to a deadline.

    Attributes
    ----------
    method : ``ets``, ``linear``, ``observed`` or ``insufficient_history`` (see the module).
    points : one row per future period up to the deadline's period:
        ``period_start, mean, lower, upper`` (empty for ``observed`` / ``insufficient_history``).
    value_at_deadline, lower, upper : the forecast for the deadline's period and its
        prediction interval at ``level``.
    level : the interval's coverage, e.g. 0.8.
    deadline : start of the deadline's period.
    last_observed : start of the last period with a value in the history.
    """

    method: Method
    points: pd.DataFrame = field(repr=False)
    value_at_deadline: float
    lower: float
    upper: float
    level: float = 0.8
    deadline: pd.Timestamp | None = None
    last_observed: pd.Timestamp | None = None


def _empty_points() -> pd.DataFrame:
    return pd.DataFrame(
        {"period_start": pd.DatetimeIndex([]), "mean": [], "lower": [], "upper": []}, columns=_POINT_COLUMNS
    )


def _history(series: pd.Series, grain: str, cal: Calendar | None = None) -> pd.Series:
    """The series as floats indexed by period start, sorted; checked."""
    if not isinstance(series, pd.Series):
        raise DataError("forecast() needs a pandas Series of values indexed by period_start.")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(series.index))
    except (TypeError, ValueError):
        raise DataError("the series' index must be the periods' start dates (period_start).") from None
    starts = pd.DatetimeIndex([period_start(t, grain, cal) for t in index]) if len(index) else index
    if (starts != index).any():
        bad = index[starts != index][0]
        raise DataError(
            f"{bad:%Y-%m-%d} is not the start of a {grain}. Index the series by period_start at grain "
            f"{grain!r} (as kpinb.compute returns it)."
        )
    if index.has_duplicates:
        raise DataError("the series has two values for one period. Keep one value per period_start.")
    values = pd.to_numeric(pd.Series(np.asarray(series), index=index), errors="coerce").astype("float64")
    return values.sort_index()


def forecast(
    series: pd.Series, grain: str | Grain, until: Any, level: float = 0.8, calendar: Calendar | None = None
) -> Forecast:
    """Forecast a KPI's values up to the period containing ``until``.

    Parameters
    ----------
    series : the KPI's values indexed by ``period_start`` (missing values allowed).
    grain : the series' grain.
    until : the deadline (a date); the forecast runs to the period that contains it.
    level : coverage of the prediction interval, between 0 and 1.
    calendar : the plan's calendar when its weeks or fiscal quarters/years are not the standard ones.

    Returns
    -------
    A :class:`Forecast`; its method depends on the history (see the module docstring).

    Examples
    --------
    >>> s = pd.Series([10.0, 12.0, 14.0, 16.0], index=pd.date_range("2025-01-01", periods=4, freq="MS"))
    >>> fc = forecast(s, "month", until="2025-06-30")
    >>> fc.method, round(fc.value_at_deadline, 6)
    ('linear', 20.0)
    """
    g = Grain(grain).value
    if not 0 < level < 1:
        raise PlanError(f"level={level} must be between 0 and 1, e.g. 0.8 for an 80% interval.")
    values = _history(series, g, calendar)
    deadline = period_start(until, g, calendar)
    observed = values.dropna()
    last = observed.index[-1] if len(observed) else None
    nothing = ("insufficient_history", _empty_points(), math.nan, math.nan, math.nan, level, deadline, last)
    if last is None:
        return Forecast(*nothing)
    if deadline <= last:
        v = as_float(values.get(deadline))
        return Forecast("observed", _empty_points(), v, v, v, level, deadline, last)
    future = periods(last + STEP[g], deadline, g, calendar)
    if len(observed) < 3:
        return Forecast(*nothing)
    regular = values.loc[observed.index[0] : last].reindex(periods(observed.index[0], last, g, calendar)).interpolate()
    season = SEASON[g]
    result = None
    if season is not None and len(regular) >= max(2 * season, 10 + 2 * (season // 2)):
        result = _ets(regular.to_numpy(), season, len(future), level)
    method: Method = "ets"
    if result is None:
        method = "linear"
        result = _linear(observed, regular.index, len(future), level)
    mean, lower, upper = result
    points = pd.DataFrame({"period_start": future, "mean": mean, "lower": lower, "upper": upper})
    points = points.reset_index(drop=True)
    return Forecast(method, points, float(mean[-1]), float(lower[-1]), float(upper[-1]), level, deadline, last)


def _ets(y: np.ndarray, season: int, horizon: int, level: float) -> tuple[np.ndarray, ...] | None:
    """Damped additive trend + additive seasonality ETS; None when it cannot be fitted. A history
    is fitted once per process (the pace table and the trend chart forecast the same one; a fit is
    most of a report's forecasting time): the arrays returned are shared and read-only."""
    return _ets_fit(np.ascontiguousarray(y, dtype="float64").tobytes(), season, horizon, level)


@functools.lru_cache(maxsize=256)
def _ets_fit(history: bytes, season: int, horizon: int, level: float) -> tuple[np.ndarray, ...] | None:
    y = np.frombuffer(history, dtype="float64")
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and frequency chatter from statsmodels
        try:
            model = ETSModel(
                pd.Series(y), error="add", trend="add", damped_trend=True, seasonal="add",
                seasonal_periods=season, initialization_method="heuristic",
            )  # fmt: skip
            fit = model.fit(disp=False)
            frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=1 - level)
            k = float(fit.df_model)
        except Exception:  # any fitting failure falls back to the transparent linear method
            return None
    if len(y) - k < 3:
        return None
    mean, lower, upper = (frame[c].to_numpy(dtype="float64") for c in ("mean", "pi_lower", "pi_upper"))
    widen = math.sqrt(len(y) / (len(y) - k))
    lower, upper = mean - (mean - lower) * widen, mean + (upper - mean) * widen
    if not (np.isfinite(mean).all() and np.isfinite(lower).all() and np.isfinite(upper).all()):
        return None
    for a in (mean, lower, upper):
        a.setflags(write=False)
    return mean, lower, upper


def _linear(
    observed: pd.Series, spine: pd.DatetimeIndex, horizon: int, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line through the observed values; prediction interval from the residuals."""
    from scipy import stats

    position = {p: i for i, p in enumerate(spine)}
    x = np.array([position[p] for p in observed.index], dtype="float64")
    y = observed.to_numpy(dtype="float64")
    n = len(x)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    s2 = float(resid @ resid) / (n - 2)
    sxx = float(((x - x.mean()) ** 2).sum())
    x0 = np.arange(len(spine), len(spine) + horizon, dtype="float64")
    mean = intercept + slope * x0
    se = np.sqrt(s2 * (1 + 1 / n + (x0 - x.mean()) ** 2 / sxx))
    q = float(stats.t.ppf((1 + level) / 2, n - 2))
    return mean, mean - q * se, mean + q * se


def probability_to_reach(fc: Forecast, target: float, direction: Direction | str) -> float:
    """Probability that the deadline's value is at least (or, lower is better, at most) ``target``.

    A normal distribution with the forecast's mean and a spread read from its interval
    (``sigma = (upper - lower) / (2 z)``, ``z`` the normal quantile of the level). With no
    spread (an observed value) it is 1.0 or 0.0; NaN without a forecast.

    >>> fc = Forecast("linear", _empty_points(), 100.0, 87.184, 112.816, level=0.8)
    >>> round(probability_to_reach(fc, 110.0, Direction.higher_is_better), 3)
    0.159
    """
    higher = Direction(direction) is Direction.higher_is_better
    mean, t = as_float(fc.value_at_deadline), as_float(target)
    if math.isnan(mean) or math.isnan(t):
        return math.nan
    width = as_float(fc.upper) - as_float(fc.lower)
    if math.isnan(width) or width <= 0:
        reached = mean >= t if higher else mean <= t
        return 1.0 if reached else 0.0
    z = NormalDist().inv_cdf((1 + fc.level) / 2)
    dist = NormalDist(mean, width / (2 * z))
    return 1 - dist.cdf(t) if higher else dist.cdf(t)


def pace(
    plan: Plan,
    df: pd.DataFrame,
    as_of: Any = None,
    *,
    level: float = 0.8,
    include_partial: bool = False,
    kpis: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Forecast each KPI with a target to its deadline, from the history up to the judged period.

    Parameters
    ----------
    plan : the plan.
    df : the engine's frame for the plan at the KPIs' grain, without ``by`` dimensions.
    as_of, include_partial, kpis : which period is the latest, as in :func:`kpinb.status.evaluate`.
    level : coverage of the prediction interval.

    Returns
    -------
    One row per KPI, columns :data:`PACE_COLUMNS`: ``metric``, ``period_start`` (the judged,
    latest complete period), ``value`` (its value), ``deadline`` (``target.by``),
    ``periods_left`` (periods after the judged one up to and including the deadline's),
    ``forecast_at_deadline, lower, upper`` (forecast and interval for the deadline's period),
    ``target`` (the final target value), ``probability`` (of reaching the target by the
    deadline, see :func:`probability_to_reach`), ``required_per_period`` (``(target - value) /
    periods_left``: the change per period still needed; NaN when no period is left) and
    ``method`` (see the module; ``no_target`` for a KPI without a target).

    Examples
    --------
    >>> pace(plan, compute(plan, grain="month"))[["metric", "probability"]]  # doctest: +SKIP
    """
    grain, chosen = select(plan, df, kpis)
    cal = calendar_of(df)
    rows = []
    for kpi in chosen:
        judged = latest_complete_period(df, as_of, include_partial=include_partial, metric=kpi.metric)
        series = series_of(df, kpi.metric)
        history = series[series.index <= judged] if judged is not None else series.iloc[0:0]
        value = as_float(history.get(judged)) if judged is not None else math.nan
        row: dict[str, Any] = {
            "metric": kpi.metric, "period_start": judged, "value": value, "deadline": None,
            "periods_left": 0, "forecast_at_deadline": math.nan, "lower": math.nan, "upper": math.nan,
            "target": math.nan, "probability": math.nan, "required_per_period": math.nan,
            "method": "no_target",
        }  # fmt: skip
        t = kpi.target_on(period_end(judged, grain)) if judged is not None else kpi.target  # goal history
        if t is not None and t.by is not None:
            deadline = period_start(t.by, grain, cal)
            left = 0
            if judged is not None and deadline > judged:
                left = len(periods(judged + STEP[grain], deadline, grain, cal))
            fc = forecast(history, grain, until=t.by, level=level, calendar=cal)
            at_deadline, lower, upper = round_significant([fc.value_at_deadline, fc.lower, fc.upper], FORECAST_DIGITS)
            row.update(
                deadline=pd.Timestamp(t.by), periods_left=left, forecast_at_deadline=at_deadline,
                lower=lower, upper=upper, target=float(t.value),
                probability=round(probability_to_reach(fc, t.value, direction_of(kpi, plan)), 2),
                required_per_period=(float(t.value) - value) / left if left else math.nan,
                method=fc.method,
            )  # fmt: skip
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(PACE_COLUMNS))
    out["period_start"] = pd.to_datetime(out["period_start"])
    out["deadline"] = pd.to_datetime(out["deadline"])
    out["periods_left"] = out["periods_left"].astype("int64")
    out.attrs.update(grain=grain, level=level)
    return out
