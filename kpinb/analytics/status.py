"""Baselines, targets and the RAG status of each KPI in a plan.

The status of a KPI is judged on one period, the **latest complete period** (see
:func:`kpinb.compare.latest_complete_period`): by default the last period with data in the
frame, stepping back one period if that one is still running today. Pass ``as_of=`` a date to
judge the period that had ended by then (``as_of="2025-06-30"`` at month grain judges June
2025), and ``include_partial=True`` to judge a running period anyway.

Rules, in this order unless ``rule=`` says otherwise:

1. ``thresholds`` — when the KPI has ``thresholds: {warning, critical}``: for higher-is-better,
   a value at or below ``critical`` is off track, at or below ``warning`` at risk; mirrored
   (at or above) for lower-is-better.
2. ``percent_of_target`` — when the KPI has a target: attainment is ``value / target_now``
   (higher is better) or ``target_now / value`` (lower is better); 100 % or more is on track,
   ``at_risk`` (default 90 %) or more at risk, less off track.
3. ``pace`` — only when asked (``rule="pace"``): the forecast's probability of reaching the
   target by its deadline; 70 % or more on track, 40 % or more at risk.

A missing value in the judged period, or nothing to judge against, is ``no_data``.

>>> plan = kpinb.load_plan("plans/sales.yml")  # doctest: +SKIP
>>> evaluate(plan, kpinb.compute(plan, grain="month"))  # doctest: +SKIP
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from kpinb._numbers import FORECAST_DIGITS, as_float, display_unit, format_value, round_significant
from kpinb.analytics.compare import changes, latest_complete_period, period_end, period_label
from kpinb.analytics.kpis import direction_of, metric_of, select, series_of
from kpinb.definitions.model import KPI, Calendar, Direction, Plan, Thresholds
from kpinb.engine.calendar import calendar_of
from kpinb.errors import DataError, PlanError

if TYPE_CHECKING:
    pass

__all__ = [
    "STATUS_COLUMNS",
    "Rule",
    "Status",
    "baseline_value",
    "evaluate",
    "progress",
    "target_at",
    "threshold_level",
]


class Status(enum.StrEnum):
    """A KPI's RAG status."""

    on_track = "on_track"
    at_risk = "at_risk"
    off_track = "off_track"
    no_data = "no_data"


class Rule(enum.StrEnum):
    """Which rule decided a status: ``target`` (the value meets the target in force),
    ``thresholds`` (it falls short and the thresholds grade how far), ``percent_of_target`` (it
    falls short and its share of the target grades it), ``pace``, or ``no_data``."""

    target = "target"
    thresholds = "thresholds"
    percent_of_target = "percent_of_target"
    pace = "pace"
    no_data = "no_data"


STATUS_COLUMNS = (
    "metric", "name", "owner", "period_start", "value", "previous", "change_pct", "baseline",
    "target", "target_now", "deadline", "progress", "gap", "status", "rule", "reason", "unit",
    "direction",
)  # fmt: skip
"""Columns of :func:`evaluate`'s frame, in order."""


def _better(direction: Direction) -> str:
    return "higher is better" if direction is Direction.higher_is_better else "lower is better"


# --- baselines and targets -----------------------------------------------------------------------


def baseline_value(kpi: KPI, series: pd.Series | None = None) -> float | None:
    """The KPI's baseline: the given ``baseline.value``, or the mean over a historical window.

    Parameters
    ----------
    kpi : the KPI.
    series : the KPI's values indexed by ``period_start`` at the KPI's grain; needed for a window.

    Returns
    -------
    ``baseline.value``; or, for ``baseline: {from, to}``, the mean of the period values of
    the periods that start within ``[from, to]`` (missing values skipped) — for a count or
    currency flow that is the average value per period; or None when the KPI has no baseline.

    Raises DataError when the window has no value in ``series``.

    Examples
    --------
    >>> kpi = KPI(metric="orders_count", baseline={"from": "2024-01-01", "to": "2024-03-31"})
    >>> baseline_value(kpi, pd.Series([10.0, 20.0, 60.0, 99.0],
    ...                pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"])))
    30.0
    """
    b = kpi.baseline
    if b is None:
        return None
    if b.value is not None:
        return float(b.value)
    assert b.from_ is not None and b.to is not None
    if series is None:
        raise DataError(f"KPI {kpi.metric!r}: the baseline is a window; pass the KPI's values as `series`.")
    index = pd.DatetimeIndex(series.index)
    inside = series[(index >= pd.Timestamp(b.from_)) & (index <= pd.Timestamp(b.to))].dropna()
    if inside.empty:
        raise DataError(
            f"KPI {kpi.metric!r}: baseline window {b.from_}..{b.to} has no value in the data. "
            f"Compute from {b.from_} or earlier (kpinb.compute(..., start={str(b.from_)!r})), or set "
            "`baseline: {value: ...}` in the plan."
        )
    return float(inside.mean())


def target_at(kpi: KPI, when: Any, baseline: float | None = None, start: Any = None) -> float | None:
    """The target in force on date ``when`` (evaluate passes the judged period's last day).

    - ``path: flat`` — the target value, all along.
    - ``path: linear`` — a straight line from the baseline value at ``start`` to the target at
      ``target.by``; ``start`` is the baseline window's end (``baseline.to``) when the baseline
      is a window, else the ``start`` given (evaluate passes the first period with data).
      Before ``start`` the baseline, after ``by`` the target.
    - a table of ``{by, value}`` points — a step path: the value of the first point (or of the
      final ``target``) whose ``by`` is on or after ``when``; each row says what must be true by
      its date, so a period is held to the milestone it counts toward. After the last point the
      last value stays in force.

    With a goal history (``target:`` a list of versions with ``from:``) the version in force on
    ``when`` (:meth:`KPI.target_on`) draws the path, so a past period is held to the target of its
    time; each version runs from the same baseline and start.

    Returns None when the KPI has no target.

    Examples
    --------
    >>> kpi = KPI(metric="orders_count", baseline={"value": 100},
    ...           target={"value": 200, "by": "2025-12-31", "path": "linear"})
    >>> target_at(kpi, "2025-07-02", baseline=100, start="2025-01-01")
    150.0
    """
    t = kpi.target_on(when)
    if t is None:
        return None
    assert t.by is not None
    when_ts = pd.Timestamp(when).normalize()
    if isinstance(t.path, str) and t.path == "flat":
        return float(t.value)
    if isinstance(t.path, str):  # linear
        if baseline is None or math.isnan(as_float(baseline)):
            raise PlanError(
                f"KPI {kpi.metric!r}: `target.path: linear` starts from the baseline, and there is "
                "none. Add `baseline:` (a value or a from/to window) or use `path: flat`."
            )
        if kpi.baseline is not None and kpi.baseline.to is not None:
            start_ts = pd.Timestamp(kpi.baseline.to)
        elif start is not None:
            start_ts = pd.Timestamp(start).normalize()
        else:
            raise PlanError(
                f"KPI {kpi.metric!r}: a linear target path from a baseline value needs its start date. "
                "Pass start= (the first period of data) or give the baseline as a from/to window."
            )
        by_ts = pd.Timestamp(t.by)
        if by_ts <= start_ts or when_ts >= by_ts:
            return float(t.value)
        if when_ts <= start_ts:
            return float(baseline)
        frac = (when_ts - start_ts).days / (by_ts - start_ts).days
        return float(baseline) + frac * (float(t.value) - float(baseline))
    points = sorted([(p.by, p.value) for p in t.path] + [(t.by, t.value)], key=lambda p: p[0])
    for by, value in points:
        if pd.Timestamp(by) >= when_ts:
            return float(value)
    return float(points[-1][1])


def progress(value: float, baseline: float | None, target: float | None, direction: Direction) -> float:
    """Fraction of the way from baseline to target: 0 at the baseline, 1 at the target.

    ``(value - baseline) / (target - baseline)``, which reads the same for either direction.
    Not clipped: below 0 means worse than the baseline, above 1 beyond the target. When the
    target is no improvement on the baseline for the KPI's direction (equal, or a limit on the
    worse side, such as "keep churn under 2%" from a baseline of 1.8%) there is no way to go:
    progress is 1.0 if the value is as good as the target, else 0.0. NaN when a number is
    missing.

    >>> progress(8.0, 10.0, 5.0, Direction.lower_is_better)
    0.4
    """
    v, b, t = as_float(value), as_float(baseline), as_float(target)
    if math.isnan(v) or math.isnan(b) or math.isnan(t):
        return math.nan
    higher = direction is Direction.higher_is_better
    if (t <= b) if higher else (t >= b):
        reached = v >= t if higher else v <= t
        return 1.0 if reached else 0.0
    return (v - b) / (t - b)


# --- the rules -----------------------------------------------------------------------------------


def checked_thresholds(kpi: KPI, direction: Direction) -> Thresholds | None:
    """The KPI's thresholds, or None; in the wrong order for ``direction`` a PlanError
    (:func:`kpinb.definitions.analysis.inverted_thresholds`, which the plan check also runs)."""
    from kpinb.definitions.analysis import inverted_thresholds

    th = kpi.thresholds
    if th is None or (th.warning is None and th.critical is None):
        return None
    problem = inverted_thresholds(kpi, direction)
    if problem:
        raise PlanError(problem)
    return th


def threshold_level(
    value: float, thresholds: Thresholds | None, direction: Direction
) -> Literal["critical", "warning"] | None:
    """The threshold level a value has reached: ``critical``, ``warning`` or None.

    For higher-is-better a level is reached at or below it; for lower-is-better at or above.

    >>> threshold_level(44.0, Thresholds(warning=45, critical=40), Direction.higher_is_better)
    'warning'
    """
    v = as_float(value)
    if thresholds is None or math.isnan(v):
        return None
    higher = direction is Direction.higher_is_better

    def reached(level: float | None) -> bool:
        return level is not None and (v <= level if higher else v >= level)

    if reached(thresholds.critical):
        return "critical"
    if reached(thresholds.warning):
        return "warning"
    return None


def _by_thresholds(v: float, th: Thresholds, direction: Direction, unit: str) -> tuple[Status, str]:
    level = threshold_level(v, th, direction)
    higher = direction is Direction.higher_is_better
    worse, better = ("at or below", "above") if higher else ("at or above", "below")
    if level is not None:
        limit = th.critical if level == "critical" else th.warning
        status = Status.off_track if level == "critical" else Status.at_risk
        return (
            status,
            f"{format_value(v, unit)} is {worse} the {level} level {format_value(limit, unit)} ({_better(direction)}).",
        )
    name, limit = ("warning", th.warning) if th.warning is not None else ("critical", th.critical)
    return (
        Status.on_track,
        f"{format_value(v, unit)} is {better} the {name} level {format_value(limit, unit)} ({_better(direction)}).",
    )


def _by_target(
    v: float, tnow: float, direction: Direction, at_risk: float, label: str, unit: str
) -> tuple[Status, str]:
    higher = direction is Direction.higher_is_better
    if higher and tnow > 0 and v >= 0:
        attainment = v / tnow
    elif not higher and tnow >= 0 and v > 0:
        attainment = tnow / v
    elif not higher and tnow >= 0 and v == 0:
        attainment = math.inf
    else:  # a zero or negative target has no meaningful ratio: only met or missed
        met = v >= tnow if higher else v <= tnow
        side = ("meets" if met else "is below") if higher else ("meets" if met else "is above")
        status = Status.on_track if met else Status.off_track
        return (
            status,
            f"{format_value(v, unit)} {side} the target {format_value(tnow, unit)} for {label} ({_better(direction)}).",
        )
    how = "" if higher else ", measured as target / value"
    shown = "100%+" if math.isinf(attainment) else f"{attainment:.0%}"
    if attainment >= 1:
        return Status.on_track, (
            f"{format_value(v, unit)} reaches {shown} of the target {format_value(tnow, unit)} for {label} "
            f"({_better(direction)}{how})."
        )
    if attainment >= at_risk:
        return Status.at_risk, (
            f"{format_value(v, unit)} reaches {shown} of the target {format_value(tnow, unit)} for "
            f"{label}, short of 100% but at "
            f"least {at_risk:.0%} ({_better(direction)}{how})."
        )
    return Status.off_track, (
        f"{format_value(v, unit)} reaches only {shown} of the target {format_value(tnow, unit)} for "
        f"{label}, under {at_risk:.0%} "
        f"({_better(direction)}{how})."
    )


def _by_pace(
    kpi: KPI,
    history: pd.Series,
    grain: str,
    direction: Direction,
    levels: tuple[float, float],
    level: float,
    unit: str,
    cal: Calendar | None = None,
) -> tuple[Status, str] | None:
    """Status from the probability of reaching the target by its deadline; None if not applicable."""
    from kpinb.analytics.forecast import forecast, probability_to_reach

    t = kpi.target_on(history.dropna().index.max()) if not history.dropna().empty else kpi.target
    if t is None or t.by is None or history.dropna().empty:
        return None
    if pd.Timestamp(t.by) <= period_end(history.dropna().index.max(), grain):
        return None  # the deadline has come: judge the value itself
    fc = forecast(history, grain, until=t.by, level=level, calendar=cal)
    p = probability_to_reach(fc, t.value, direction)
    if fc.method not in ("ets", "linear") or math.isnan(p):
        return None
    on, risk = levels
    status = Status.on_track if p >= on else Status.at_risk if p >= risk else Status.off_track
    mean, lower, upper = round_significant([fc.value_at_deadline, fc.lower, fc.upper], FORECAST_DIGITS)
    return status, (
        f"At the current pace {format_value(mean, unit)} is expected by {t.by} ({level:.0%} range "
        f"{format_value(lower, unit)} to {format_value(upper, unit)}): a {p:.0%} chance of reaching the target "
        f"{format_value(t.value, unit)} "
        f"(on track from {on:.0%}, at risk from {risk:.0%}; {_better(direction)})."
    )


# --- evaluate ------------------------------------------------------------------------------------


def evaluate(
    plan: Plan,
    df: pd.DataFrame,
    as_of: Any = None,
    *,
    rule: Literal["auto", "thresholds", "percent_of_target", "pace"] = "auto",
    at_risk: float = 0.9,
    pace_levels: tuple[float, float] = (0.7, 0.4),
    level: float = 0.8,
    include_partial: bool = False,
    kpis: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Judge each KPI of ``plan`` on its latest complete period.

    Parameters
    ----------
    plan : the plan (KPIs with baseline, target, thresholds, owner).
    df : the engine's frame for the plan, at the KPIs' grain, without ``by`` dimensions.
    as_of : judge the latest period that had ended on this date; default: the last period with
        data (not a period still running today). See :func:`kpinb.compare.latest_complete_period`.
    rule : ``auto`` (or ``thresholds``): the target in force decides on or off track and the
        thresholds, else the share of the target reached, grade a shortfall (see :func:`_judge`);
        ``percent_of_target`` grades by the share even when there are thresholds; ``pace``
        judges the chance of reaching the final target, but a KPI short of the target in force
        is never on track. The ``rule`` column says which rule decided.
    at_risk : attainment from which a KPI below its target is at risk rather than off track.
    pace_levels : probabilities (on track, at risk) for the pace rule.
    level : prediction interval level of the pace forecast.
    include_partial : judge a period that has not ended yet.
    kpis : judge only these KPIs (metric ids); default every KPI of the plan in the frame.

    Returns
    -------
    One row per KPI, columns :data:`STATUS_COLUMNS`: ``metric, name, owner, period_start``
    (judged period), ``value, previous, change_pct`` (percent vs the previous period),
    ``baseline, target`` (final), ``target_now`` (in force at the period's end, see
    :func:`target_at`), ``deadline, progress`` (see :func:`progress`), ``gap`` (value minus
    target_now, positive = better than target, whatever the direction), ``status``
    (on_track / at_risk / off_track / no_data), ``rule`` (target / thresholds /
    percent_of_target / pace / no_data), ``reason`` (one sentence), ``unit``, ``direction``.

    Examples
    --------
    >>> evaluate(plan, compute(plan, grain="month"), as_of="2025-06-30")  # doctest: +SKIP
    """
    if not 0 < at_risk <= 1:
        raise PlanError(f"at_risk={at_risk} must be a fraction in (0, 1], e.g. 0.9 for 90% of the target.")
    if rule not in ("auto", "thresholds", "percent_of_target", "pace"):
        raise PlanError(f"rule={rule!r} is not one of auto, thresholds, percent_of_target, pace.")
    grain, chosen = select(plan, df, kpis)
    ch = changes(df)
    rows = []
    for kpi in chosen:
        judged = latest_complete_period(df, as_of, include_partial=include_partial, metric=kpi.metric)
        metric = metric_of(kpi, plan)
        direction = direction_of(kpi, plan)
        unit = display_unit(metric, None, plan.currency)  # amounts in the sentences carry the plan's currency
        series = series_of(ch, kpi.metric)
        at = ch[(ch["metric"] == kpi.metric) & (ch["period_start"] == judged)]
        value, previous, change_pct = (
            (as_float(at["value"].iloc[0]), as_float(at["previous"].iloc[0]), as_float(at["change_pct"].iloc[0]))
            if len(at) else (math.nan, math.nan, math.nan)
        )  # fmt: skip
        base = baseline_value(kpi, series)
        first = series.first_valid_index()
        version = kpi.target_on(period_end(judged, grain)) if judged is not None else kpi.target  # goal history
        target = float(version.value) if version is not None else None
        tnow = (
            target_at(kpi, period_end(judged, grain), base, start=first)
            if version is not None and judged is not None else None
        )  # fmt: skip
        gap = math.nan
        if tnow is not None and not math.isnan(value):
            gap = value - tnow if direction is Direction.higher_is_better else tnow - value
        th = checked_thresholds(kpi, direction)
        history = series[series.index <= judged] if judged is not None else series.iloc[0:0]
        if judged is None or math.isnan(value):
            status, used, reason = (
                Status.no_data, Rule.no_data, _no_value(judged, history, grain, unit, calendar_of(df))
            )  # fmt: skip
        else:
            status, used, reason = _judge(
                kpi,
                value,
                th,
                tnow,
                direction=direction,
                rule=rule,
                at_risk=at_risk,
                label=period_label(judged, grain, calendar=calendar_of(df)),
                unit=unit,
                pace=functools.partial(
                    _by_pace, kpi, history, grain, direction, pace_levels, level, unit, calendar_of(df)
                ),
            )
        rows.append({
            "metric": kpi.metric,
            "name": kpi.name or metric.name,
            "owner": kpi.owner,
            "period_start": judged,
            "value": value,
            "previous": previous,
            "change_pct": change_pct,
            "baseline": as_float(base),
            "target": as_float(target),
            "target_now": as_float(tnow),
            "deadline": pd.Timestamp(version.by) if version is not None and version.by else None,
            "progress": progress(value, base, target, direction),
            "gap": gap,
            "status": status.value,
            "rule": used.value,
            "reason": reason,
            "unit": metric.unit.value,
            "direction": direction.value,
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
    out["period_start"] = pd.to_datetime(out["period_start"])
    out["deadline"] = pd.to_datetime(out["deadline"])
    out.attrs.update(grain=grain, as_of=None if as_of is None else str(as_of))
    return out


def _no_value(
    judged: pd.Timestamp | None, history: pd.Series, grain: str, unit: str, cal: Calendar | None = None
) -> str:
    """Why there is no status: the sentence for a missing value."""
    if judged is None:
        return "No value in any period. Check that the KPI's data source has rows."
    label = period_label(judged, grain, calendar=cal)
    earlier = history.dropna()
    if earlier.empty:
        return f"No value for {label}. Check that the KPI's data source has rows for it."
    return (
        f"No value for {label}; the last one, {format_value(earlier.iloc[-1], unit)}, is for "
        f"{period_label(earlier.index[-1], grain, calendar=cal)}. Check that the data is up to date."
    )


def _judge(
    kpi: KPI,
    value: float,
    th: Thresholds | None,
    tnow: float | None,
    *,
    direction: Direction,
    rule: str,
    at_risk: float,
    label: str,
    unit: str,
    pace: Callable[[], tuple[Status, str] | None],
) -> tuple[Status, Rule, str]:
    """The one status rule: the target in force decides on or off track; thresholds (else the
    share of the target reached) grade how far off. A value short of the target in force is never
    on track, whatever the thresholds or the pace say; without a target the thresholds judge."""
    short = tnow is not None and (value < tnow if direction is Direction.higher_is_better else value > tnow)
    if rule == "pace" and (by_pace := pace()) is not None:
        status, reason = by_pace
        if short and status is Status.on_track:
            status = Status.at_risk
            reason += f" It is short of the target in force now, {format_value(tnow, unit)}, so not on track yet."
        return status, Rule.pace, reason
    if tnow is not None and not short:
        return (
            Status.on_track,
            Rule.target,
            (
                f"{format_value(value, unit)} meets the target {format_value(tnow, unit)} in force "
                f"for {label} ({_better(direction)})."
            ),
        )
    if th is not None and rule != "percent_of_target":
        status, reason = _by_thresholds(value, th, direction, unit)
        if tnow is None:
            return status, Rule.thresholds, reason
        graded = Status.at_risk if status is Status.on_track else status  # short, yet clear of the warning level
        return (
            graded,
            Rule.thresholds,
            (
                f"{format_value(value, unit)} is short of the target {format_value(tnow, unit)} in "
                f"force for {label}; {reason}"
            ),
        )
    if tnow is not None:
        status, reason = _by_target(value, tnow, direction, at_risk, label, unit)
        return status, Rule.percent_of_target, reason
    nothing = (
        f"Nothing to judge {format_value(value, unit)} against: add `target:` or `thresholds:` to KPI {kpi.metric!r}."
    )
    return Status.no_data, Rule.no_data, nothing
