"""Written insights: a few deterministic sentences per KPI and per department, read from the
scorecard (never judged again), each backed by one number shown next to it.

No language model: the same scorecard (and breakdowns) always gives the same sentences in the
same order. The kinds cover what Tableau Pulse writes, most telling first (each sentence has a
score; ties keep this order):

- ``unusual_change`` — the KPI's latest value is unusual (:meth:`Scorecard.anomalies`);
- ``anomaly`` — a supporting metric's latest value is unusual (an early warning);
- ``target`` — how far it is from the target in force (scored by its status);
- ``pace`` — the chance of reaching the target by the deadline (before the deadline's period);
- ``trend_change`` — the trend turned (the last 3 periods against the 3 before);
- ``top_detractor`` — the breakdown member that held it back most;
- ``concentration`` — one member holds at least half of the total;
- ``top_driver`` — the member that moved it most, when it moved the right way;
- ``outlier`` — a member far from the others (robust z of the members);
- ``change`` — the change against the previous period and the same period last year;
- ``current_trend`` — a run of rises or falls, else the slope of the last 6 periods;
- ``bottom_contributor`` — the member contributing least.

Breakdown kinds need ``breakdowns``: per dimension, the engine's frame computed with
``by=[dimension]`` (``kpinb.compute(plan, by=["region"])``); record-level outliers are found
among the members of a breakdown (the finest level the scorecard sees).

>>> for i in for_department(card, {"region": kpinb.compute(plan, by=["region"])}):  # doctest: +SKIP
...     print(i.text)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kpinb._numbers import as_float, format_change, format_delta, format_value

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.scorecard import KpiEvaluation, Scorecard

__all__ = ["KINDS", "Insight", "for_department", "for_kpi", "ranked"]

KINDS = (
    "unusual_change", "anomaly", "target", "pace", "trend_change", "top_detractor", "concentration", "top_driver",
    "outlier", "change", "current_trend", "bottom_contributor",
)  # fmt: skip
"""Every kind, in the order that breaks a tie of scores."""

TREND_PERIODS = 6
FLAT = 0.01  # a slope under 1% of the level per period is no trend
CONCENTRATION = 0.5
OUTLIER_Z = 3.5
_MIN_MEMBERS = 5


@dataclass(frozen=True)
class Insight:
    """One sentence about one KPI: ``kind`` (one of :data:`KINDS`), ``metric`` and ``name`` of
    the KPI, ``text`` (plain text: escape it where it lands in HTML), the number backing it as
    ``value`` (full precision) and ``shown`` (as people read it), and ``score`` (higher first)."""

    kind: str
    metric: str
    name: str
    text: str
    value: float
    shown: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN)."""
        out = asdict(self)
        out["value"] = None if not math.isfinite(self.value) else float(self.value)
        out["score"] = round(self.score, 6)
        return out


def for_kpi(
    card: Scorecard, metric: str, breakdowns: Mapping[str, pd.DataFrame] | None = None, limit: int = 3
) -> list[Insight]:
    """The ``limit`` most telling insights about one KPI, best first."""
    return ranked(_about(card, card.get(metric), breakdowns or {}, card.anomalies()), limit)


def for_department(
    card: Scorecard, breakdowns: Mapping[str, pd.DataFrame] | None = None, limit: int = 5
) -> list[Insight]:
    """The ``limit`` most telling insights across the plan's KPIs, best first (at most two per
    KPI, so one KPI does not fill the list)."""
    anomalies = card.anomalies()
    every = [i for e in card.evaluations for i in _about(card, e, breakdowns or {}, anomalies)]
    out: list[Insight] = []
    per: dict[str, int] = {}
    for i in ranked(every, len(every)):
        if per.get(i.metric, 0) < 2:
            out.append(i)
            per[i.metric] = per.get(i.metric, 0) + 1
    return out[:limit]


# --- ranking -------------------------------------------------------------------------------------


def ranked(insights: list[Insight], limit: int) -> list[Insight]:
    """The ``limit`` best of ``insights``: highest score first, ties in :data:`KINDS` order."""
    order = {k: n for n, k in enumerate(KINDS)}
    # scores rounded: a last-bit difference between CPUs never reorders the list
    return sorted(insights, key=lambda i: (-round(i.score, 6), order[i.kind]))[:limit]


# --- one KPI -------------------------------------------------------------------------------------


def _about(card: Scorecard, e: KpiEvaluation, breakdowns: Mapping[str, pd.DataFrame], anomalies: Any) -> list[Insight]:
    if e.period_start is None or math.isnan(as_float(e.value)) or e.filters:
        return []
    e = dataclasses.replace(e, unit=card.display_unit(e.metric))  # a duration in its time unit
    out: list[Insight] = []
    out += _unusual(e, anomalies)
    out += _target(e)
    out += _pace(e)
    out += _changes(card, e)
    out += _trends(card, e)
    for dim in sorted(breakdowns):
        out += _members(card, e, dim, breakdowns[dim])
    # a difference that shows as zero ("0.0 pp behind") says nothing a reader can use
    return [i for i in out if i.kind not in _DIFFERENCES or any(c in "123456789" for c in i.shown)]


_DIFFERENCES = frozenset({"target", "change", "current_trend", "trend_change", "top_driver", "top_detractor"})


def _new(kind: str, e: KpiEvaluation, text: str, value: float, shown: str, score: float) -> Insight:
    return Insight(kind, e.metric, e.name, text, float(value), shown, float(score))


def _unusual(e: KpiEvaluation, anomalies: Any) -> list[Insight]:
    out = []
    for a in anomalies:
        if a.kpi != e.metric:
            continue
        strength = min(abs(a.score), 10.0) / 10.0 if math.isfinite(a.score) else 1.0
        shown = format_value(a.value, a.unit)
        expected = format_value(a.expected, a.unit)
        if a.metric == e.metric:
            text = f"{e.name} moved unusually in {a.period_label}: {shown} where about {expected} was expected."
            out.append(_new("unusual_change", e, text, a.value, shown, 3.0 + strength))
        else:
            text = (
                f"Early warning: {a.name}, which supports {e.name}, is unusual in {a.period_label}: "
                f"{shown} where about {expected} was expected."
            )
            out.append(_new("anomaly", e, text, a.value, shown, 3.0 + strength - 0.01))
    return out


def _target(e: KpiEvaluation) -> list[Insight]:
    if e.status not in ("on_track", "at_risk", "off_track") or math.isnan(as_float(e.gap)):
        return []
    gap = as_float(e.gap)
    shown = format_delta(gap, e.unit, sign=False)
    where = "ahead of" if gap >= 0 else "behind"
    text = (
        f"{e.name} is {shown} {where} the target in force for {e.period_label} "
        f"({format_value(e.value, e.unit)} against {format_value(e.target_now, e.unit)})."
    )
    score = {"off_track": 2.5, "at_risk": 1.9, "on_track": 1.0}[e.status]
    return [_new("target", e, text, gap, shown, score)]


def _pace(e: KpiEvaluation) -> list[Insight]:
    p = e.pace
    if p is None or not math.isfinite(p.probability) or p.deadline is None or p.periods_left <= 0:
        return []  # no pace once the deadline's period is the one judged
    shown = f"{p.probability:.0%}"
    text = (
        f"At the current pace {e.name} reaches about {format_value(p.forecast, e.unit)} by "
        f"{p.deadline:%Y-%m-%d}; the chance of meeting the target {format_value(e.target, e.unit)} is {shown}."
    )
    score = 1.4 + (0.5 - p.probability) if p.probability < 0.5 else 0.7
    return [_new("pace", e, text, p.probability, shown, score)]


def _series(card: Scorecard, e: KpiEvaluation) -> pd.Series:
    from kpinb.analytics.kpis import series_of

    s = series_of(card.frame, e.metric)
    return s[s.index <= e.period_start].dropna()


def _changes(card: Scorecard, e: KpiEvaluation) -> list[Insight]:
    out = []
    previous = as_float(e.previous)
    if math.isfinite(previous) and previous != as_float(e.value):
        shown = format_change(e.value, previous, e.unit)
        moved = "rose" if e.value > previous else "fell"
        text = (
            f"{e.name} {moved} {shown.lstrip('+-')} against the previous period, from "
            f"{format_value(previous, e.unit)} to {format_value(e.value, e.unit)} in {e.period_label}."
        )
        size = abs(e.value - previous) / abs(previous) if previous else 1.0
        out.append(_new("change", e, text, e.value - previous, shown, 1.0 + min(size, 1.0)))
    from kpinb.analytics.compare import YEAR_AGO

    s = _series(card, e)
    ago = e.period_start - YEAR_AGO[card.grain]
    if ago in s.index and s[ago] != e.value:
        last = float(s[ago])
        shown = format_change(e.value, last, e.unit)
        text = (
            f"{e.name} is {'up' if e.value > last else 'down'} {shown.lstrip('+-')} on the same period last "
            f"year ({format_value(last, e.unit)} then, {format_value(e.value, e.unit)} now)."
        )
        size = abs(e.value - last) / abs(last) if last else 1.0
        out.append(_new("change", e, text, e.value - last, shown, 0.9 + min(size, 1.0)))
    return out


def _slope(values: Any) -> float:
    import numpy as np

    y = np.asarray(values, dtype="float64")
    x = np.arange(len(y), dtype="float64")
    return float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())


def _trends(card: Scorecard, e: KpiEvaluation) -> list[Insight]:
    s = _series(card, e)
    if len(s) < 4 or s.index[-1] != e.period_start:
        return []
    grain = card.grain
    level = float(s.abs().tail(TREND_PERIODS).mean()) or 1.0
    good = e.direction == "higher_is_better"
    out = []
    recent = s.tail(TREND_PERIODS)
    slope = _slope(recent.to_numpy())
    run, diffs = 0, recent.diff().dropna().to_numpy()[::-1]
    for d in diffs:
        if d == 0 or (run and (d > 0) != (diffs[0] > 0)):
            break
        run += 1
    if run >= 3:  # a run of rises or falls: the mean step over the run
        slope = float(recent.iloc[-1] - recent.iloc[-1 - run]) / run
    if abs(slope) >= FLAT * level:
        way = "risen" if slope > 0 else "fallen"
        shown = format_delta(slope, e.unit)
        if run >= 3:
            text = f"{e.name} has {way} {run} {grain}s in a row: {shown} per {grain} on average."
        else:
            text = f"{e.name} has {way} over the last {len(recent)} {grain}s: {shown} per {grain} on average."
        better = (slope > 0) == good
        out.append(_new("current_trend", e, text, slope, shown, 1.0 + 0.1 * run + (0 if better else 0.3)))
    if len(s) >= 6:
        now, before = _slope(s.iloc[-3:].to_numpy()), _slope(s.iloc[-6:-3].to_numpy())
        if min(abs(now), abs(before)) >= FLAT * level and (now > 0) != (before > 0):
            shown = format_delta(now, e.unit)
            turn = ("turned up after falling" if now > 0 else "turned down after rising")
            text = f"{e.name} {turn}: {shown} per {grain} over the last 3 {grain}s."
            out.append(_new("trend_change", e, text, now, shown, 2.2 if (now > 0) != good else 1.7))
    return out


# --- a breakdown ---------------------------------------------------------------------------------


def _members(card: Scorecard, e: KpiEvaluation, dim: str, frame: pd.DataFrame) -> list[Insight]:
    """Drivers, detractors, bottom contributors, concentration and outliers among ``dim``'s members."""
    import pandas as pd

    from kpinb.analytics.compare import STEP
    from kpinb.scorecard import drivers

    if dim not in frame.columns:
        return []
    rows = frame[(frame["metric"] == e.metric) & (pd.to_datetime(frame["period_start"]) == e.period_start)]
    rows = rows[rows["value"].notna()]
    if len(rows) < 2:
        return []
    out: list[Insight] = []
    good = e.direction == "higher_is_better"
    label = "{} (" + dim + ")"
    before = e.period_start - STEP[card.grain]
    effects = drivers(card.frame, frame, e.metric, before, e.period_start, card.plan)
    if effects is not None and dim in effects.columns and effects["effect"].notna().any():
        per = effects.groupby("driver", sort=False)["effect"].sum()
        change = float(per.sum())
        if change != 0:
            by_effect = per.sort_values(ascending=change < 0, kind="stable")
            top, eff = str(by_effect.index[0]), float(by_effect.iloc[0])
            if (eff > 0) == (change > 0) and (change > 0) == good:  # a bad change: its detractor says it
                shown = format_delta(eff, e.unit)
                text = (
                    f"{label.format(top)} moved {e.name} most in {e.period_label}: {shown} of the total change "
                    f"{format_delta(change, e.unit)}."
                )
                out.append(_new("top_driver", e, text, eff, shown, 1.5 + min(abs(eff / change), 1.0)))
        bad = per[per < 0] if good else per[per > 0]
        if len(bad):
            worst = bad.abs().sort_values(ascending=False, kind="stable")
            member, eff = str(worst.index[0]), float(per[worst.index[0]])
            shown = format_delta(eff, e.unit)
            text = f"{label.format(member)} held {e.name} back most in {e.period_label}: {shown}."
            scale = float(per.abs().sum()) or 1.0
            out.append(_new("top_detractor", e, text, eff, shown, 2.0 + min(abs(eff) / scale, 1.0)))
    if rows["numerator"].notna().any():
        return out  # a rate: members' values do not add up to shares of a total
    values = rows.set_index(rows[dim].astype(str))["value"].astype("float64").sort_index()  # ties: by name
    total = float(values.sum())
    if total > 0 and (values >= 0).all():
        share = (values / total).sort_values(ascending=False, kind="stable")
        if share.iloc[0] >= CONCENTRATION:
            shown = format_value(share.iloc[0], "percent")
            text = (
                f"{label.format(share.index[0])} holds {shown} of {e.name} in {e.period_label}: "
                "a concentration risk."
            )
            out.append(_new("concentration", e, text, share.iloc[0], shown, 1.5 + float(share.iloc[0]) - CONCENTRATION))
        last = share.index[-1]
        shown = format_value(share.iloc[-1], "percent")
        text = f"{label.format(last)} contributes least to {e.name} in {e.period_label}: {shown} of the total."
        out.append(_new("bottom_contributor", e, text, share.iloc[-1], shown, 0.5))
    if len(values) >= _MIN_MEMBERS:
        median = float(values.median())
        mad = 1.4826 * float((values - median).abs().median())
        if mad > 0:
            z = ((values - median) / mad).sort_values(key=abs, ascending=False, kind="stable")
            if abs(z.iloc[0]) > OUTLIER_Z:
                member = z.index[0]
                shown = format_value(values[member], e.unit)
                side = "above" if z.iloc[0] > 0 else "below"
                text = (
                    f"{label.format(member)} is far {side} the other {dim} members in {e.period_label}: "
                    f"{shown} against a median of {format_value(median, e.unit)}."
                )
                out.append(_new("outlier", e, text, values[member], shown, 1.5))
    return out
