"""Build the scorecard: each KPI's status, target path, pace and slice judgement, once."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kpinb._numbers import as_float
from kpinb.analytics.compare import partial_label, period_end, period_label
from kpinb.analytics.forecast import PACE_COLUMNS
from kpinb.analytics.kpis import direction_of, select, series_of
from kpinb.analytics.status import STATUS_COLUMNS, baseline_value, target_at
from kpinb.definitions.model import KPI, Calendar, Grain, Plan
from kpinb.errors import KpinbError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KpiEvaluation", "Pace", "Scorecard", "drivers", "evaluate", "target_path"]

NOT_JUDGED = "not_judged"


@dataclass(frozen=True)
class Pace:
    """The forecast to a KPI's deadline (3 significant digits) and the chance of reaching it."""

    deadline: pd.Timestamp | None
    periods_left: int
    forecast: float
    lower: float
    upper: float
    probability: float
    required_per_period: float
    method: str


@dataclass(frozen=True)
class KpiEvaluation:
    """One KPI judged on one period (for the whole KPI, or for the slice in ``filters``).

    ``status`` is on_track / at_risk / off_track / no_data, or not_judged for a slice that has
    no target of its own; ``rule`` and ``reason`` say why. ``target_path`` is the target in
    force at the end of each period of the frame (and of the deadline's period): the line a
    trend draws, the same one the status is judged against.
    """

    metric: str
    name: str
    owner: str | None
    grain: str
    period_start: pd.Timestamp | None
    value: float
    previous: float
    change_pct: float
    baseline: float
    target: float
    target_now: float
    deadline: Any
    progress: float
    gap: float
    status: str
    rule: str
    reason: str
    unit: str
    direction: str
    filters: tuple[tuple[str, str], ...] = ()
    pace: Pace | None = None
    target_path: pd.Series | None = field(default=None, repr=False, compare=False)
    partial: str | None = None  # the judged period's label when it is partial or immature (include_partial)
    calendar: Calendar | None = field(default=None, repr=False, compare=False)  # fiscal names of periods

    @property
    def judged(self) -> bool:
        """False for a slice without a target of its own (and for a KPI without data)."""
        return self.status not in (NOT_JUDGED, "no_data")

    @property
    def period_label(self) -> str:
        """The judged period as people read it (``2025-06``, ``2025-Q2``, ``2025-12 (partial: Dec 1–9)``),
        or ``no data``."""
        if self.period_start is None:
            return "no data"
        return self.partial or period_label(self.period_start, self.grain, calendar=self.calendar)

    def row(self) -> dict[str, Any]:
        """The status columns (:data:`kpinb.analytics.status.STATUS_COLUMNS`) as a dict."""
        return {c: getattr(self, c) for c in STATUS_COLUMNS}


@dataclass(frozen=True)
class Scorecard:
    """Every KPI of a plan at one grain, judged once; the views read it, never re-judge."""

    plan: Plan
    grain: str
    as_of: pd.Timestamp | None
    frame: pd.DataFrame = field(repr=False, compare=False)
    evaluations: tuple[KpiEvaluation, ...]
    filters: tuple[tuple[str, str], ...] = ()

    def get(self, metric: str) -> KpiEvaluation:
        """The evaluation of the KPI measuring ``metric``."""
        for e in self.evaluations:
            if e.metric == metric:
                return e
        raise KeyError(metric)

    def __iter__(self) -> Iterable[KpiEvaluation]:  # type: ignore[override]
        return iter(self.evaluations)

    def status_frame(self) -> pd.DataFrame:
        """One row per KPI, :data:`~kpinb.analytics.status.STATUS_COLUMNS` (what cards and tables read)."""
        import pandas as pd

        out = pd.DataFrame([e.row() for e in self.evaluations], columns=list(STATUS_COLUMNS))
        out["period_start"] = pd.to_datetime(out["period_start"])
        return out

    def pace_frame(self) -> pd.DataFrame:
        """One row per KPI with a pace, :data:`~kpinb.analytics.forecast.PACE_COLUMNS`."""
        import pandas as pd

        rows = [
            (e.metric, e.period_start, e.value, p.deadline, p.periods_left, p.forecast, p.lower, p.upper, e.target,
             p.probability, p.required_per_period, p.method)
            for e in self.evaluations
            if (p := e.pace) is not None
        ]  # fmt: skip
        out = pd.DataFrame(rows, columns=list(PACE_COLUMNS))
        out["period_start"] = pd.to_datetime(out["period_start"])
        out["deadline"] = pd.to_datetime(out["deadline"])
        out["periods_left"] = out["periods_left"].astype("int64")
        out.attrs.update(grain=self.grain)
        return out


def target_path(
    kpi: KPI, series: pd.Series, grain: str, until: Any = None, calendar: Calendar | None = None
) -> pd.Series:
    """The target in force at the end of each period of ``series`` (and of the period of
    ``until``, e.g. the deadline): the line a trend draws and the status is judged against.
    Empty when the KPI has no target or its path cannot be drawn (a linear path without data
    for its baseline)."""
    import pandas as pd

    from kpinb.engine.calendar import period_start

    if kpi.target is None or kpi.target.by is None:
        return pd.Series(dtype="float64")
    when = list(series.index)
    if until is not None and (not when or period_start(until, grain, calendar) > max(when)):
        when.append(period_start(until, grain, calendar))
    try:
        base = baseline_value(kpi, series)
    except KpinbError:  # a baseline window without data: flat and step paths need none
        base = None
    first = series.dropna().index.min() if series.notna().any() else None
    try:
        values = [target_at(kpi, period_end(w, grain), baseline=base, start=first) for w in when]
    except KpinbError:
        return pd.Series(dtype="float64")
    return pd.Series(values, index=pd.DatetimeIndex(when), dtype="float64")


def evaluate(
    plan: Plan,
    frame: pd.DataFrame,
    as_of: Any = None,
    *,
    kpis: Sequence[str] | None = None,
    filters: Mapping[str, str] | None = None,
    unfiltered: Mapping[str, Sequence[str]] | None = None,
    pace: bool | Sequence[str] = True,
    include_partial: bool = False,
    level: float = 0.8,
) -> Scorecard:
    """Judge the plan's KPIs on ``frame`` (the engine's tidy frame at their grain, no ``by``).

    Parameters
    ----------
    plan, frame, as_of, kpis, include_partial : as :func:`kpinb.analytics.status.evaluate`.
    filters : the slice the frame shows (``{"region": "Europe"}``); a KPI seen through a filter
        is not judged against the targets of the whole KPI.
    unfiltered : per metric, the filter dimensions its data lacks (so the filter did not apply).
    pace : forecast every KPI with a target to its deadline (True), none (False) or these ids.
    level : the forecast interval's coverage.

    A KPI whose definition cannot be judged (a baseline window without data, inverted
    thresholds) gets status no_data with the problem as its reason; the others are judged.
    """
    import pandas as pd

    from kpinb.analytics import forecast, status
    from kpinb.analytics.compare import layout

    plan, regrained = _at_grain(plan, layout(frame)[0], kpis)
    grain, chosen = select(plan, frame, kpis)  # the frame itself must fit: a problem there raises
    ids = [k.metric for k in chosen]
    shown = {d: str(v) for d, v in (filters or {}).items()}

    def applied_to(mid: str) -> tuple[tuple[str, str], ...]:
        return tuple((d, v) for d, v in shown.items() if d not in (unfiltered or {}).get(mid, ()))

    own = {k.metric: k.for_slice(*applied_to(k.metric)[0]) for k in chosen if len(applied_to(k.metric)) == 1}
    sliced = {mid: k for mid, k in own.items() if k is not None}  # a slice with a goal of its own
    plan = plan.model_copy(update={"kpis": tuple(sliced.get(k.metric, k) for k in plan.kpis)}) if sliced else plan
    try:
        st = status.evaluate(plan, frame, as_of, kpis=ids, include_partial=include_partial, level=level)
    except KpinbError:
        st = pd.concat([_one(plan, frame, as_of, mid, include_partial, level) for mid in ids], ignore_index=True)
    paced = ids if pace is True else [] if pace is False else [m for m in ids if m in set(pace)]
    paces: dict[str, Pace] = {}
    for mid in paced:
        try:
            p = forecast.pace(plan, frame, as_of, level=level, include_partial=include_partial, kpis=[mid]).iloc[0]
        except KpinbError:
            continue
        if p["method"] != "no_target":
            paces[mid] = Pace(
                p["deadline"], int(p["periods_left"]), as_float(p["forecast_at_deadline"]), as_float(p["lower"]),
                as_float(p["upper"]), as_float(p["probability"]), as_float(p["required_per_period"]), str(p["method"]),
            )  # fmt: skip
    evaluations = []
    for row in st.to_dict("records"):
        mid = row["metric"]
        kpi = plan.kpi(mid)
        applied = applied_to(mid)
        series = series_of(frame, mid)
        if mid in regrained and row["status"] != "no_data":
            row.update(
                status=NOT_JUDGED, rule="grain", progress=math.nan, gap=math.nan, target_now=math.nan,
                reason=f"Its target is per {regrained[mid]}; a {grain}'s total is not judged against it.",
            )  # fmt: skip
        where = ", ".join(f"{d} = {v}" for d, v in applied)
        if mid in sliced:
            row.update(reason=f"{where}, against its own goal: {row['reason']}")
        elif applied and row["status"] != "no_data":
            row.update(
                status=NOT_JUDGED, rule="slice", progress=math.nan, gap=math.nan, target_now=math.nan,
                reason=(
                    f"Showing {where} only; the targets are for the whole KPI, so this slice is not judged "
                    f"(give it a goal of its own under the KPI's `slices:`)."
                ),
            )  # fmt: skip
        judged_whole = not applied or mid in sliced
        evaluations.append(
            KpiEvaluation(
                **{c: _plain(row[c]) for c in STATUS_COLUMNS},
                grain=grain,
                filters=applied,
                pace=paces.get(mid) if judged_whole and mid not in regrained else None,
                target_path=(
                    target_path(kpi, series, grain, _by(kpi), plan.calendar)
                    if judged_whole and mid not in regrained
                    else pd.Series(dtype="float64")
                ),
                partial=partial_label(frame, mid, _plain(row["period_start"])),
                calendar=plan.calendar,
            )
        )
    when = pd.Timestamp(as_of).normalize() if as_of not in (None, "") else None
    return Scorecard(plan, grain, when, frame, tuple(evaluations), tuple(shown.items()))


def drivers(
    total: pd.DataFrame, by: pd.DataFrame | None, metric: str, period_a: Any, period_b: Any, plan: Plan | None = None
) -> pd.DataFrame | None:
    """What moved ``metric`` from ``period_a`` to ``period_b``: each member's contribution when
    ``by`` (a breakdown) is given and the members add up, else the numerator and denominator
    effects of a ratio; None when its change cannot be split (an average, a distinct count)."""
    from kpinb.analytics import drivers as drivers_

    if by is not None:
        # e.g. MRR, the mrr summed over a month's snapshots per snapshot day: a ratio in form, but every
        # member shares the denominator, so members add up (checked on the data) and each one's change
        # explains it, not rates and mix (whose shares would split one shared denominator four ways)
        add_up = _members_add_up(total, by, metric, (period_a, period_b), plan)
        try:
            return drivers_.dimension_contributions(
                by, metric, period_a, period_b, plan=plan, members_add_up=add_up
            )
        except KpinbError:
            pass
    rows = total[total["metric"] == metric]
    if rows["numerator"].notna().any() and rows["denominator"].notna().any():
        try:
            return drivers_.ratio_effects(total, metric, period_a, period_b)
        except KpinbError:
            return None
    return None


def _members_add_up(
    total: pd.DataFrame, by: pd.DataFrame, metric: str, periods: Sequence[Any], plan: Plan | None
) -> bool:
    """True when ``metric`` is not a ratio whose parts add up (:func:`~kpinb.definitions.analysis.additivity`)
    yet its members' values add up to the whole in each of ``periods``: a sum per shared unit
    (MRR per snapshot day), to be explained member by member rather than as rates and mix."""
    import pandas as pd

    from kpinb.definitions.analysis import additivity
    from kpinb.definitions.plan import registry

    if "numerator" not in by.columns or plan is None:
        return False
    reg = registry(plan)
    if metric not in reg or additivity(reg[metric], reg) == "ratio":
        return False
    for when in periods:
        t = pd.Timestamp(when)
        whole = total.loc[(total["metric"] == metric) & (total["period_start"] == t), "value"]
        parts = by.loc[(by["metric"] == metric) & (by["period_start"] == t), "value"]
        if whole.empty or pd.isna(whole.iloc[0]) or parts.notna().sum() == 0:
            return False
        if not math.isclose(float(parts.sum()), float(whole.iloc[0]), rel_tol=1e-6, abs_tol=1e-9):
            return False
    return True


def _one(plan: Plan, frame: pd.DataFrame, as_of: Any, mid: str, include_partial: bool, level: float) -> pd.DataFrame:
    """One KPI's status row; a KPI that cannot be judged (a baseline window without data,
    inverted thresholds) gets no_data with the problem as its reason, so it blanks no other."""
    import pandas as pd

    from kpinb.analytics import status
    from kpinb.definitions.plan import registry

    try:
        return status.evaluate(plan, frame, as_of, kpis=[mid], include_partial=include_partial, level=level)
    except KpinbError as e:
        from kpinb.errors import PlanError

        k, m = plan.kpi(mid), registry(plan).get(mid)
        # a mistake in the plan (thresholds in the wrong order...) is not missing data: rule
        # "needs_setup" lets every surface say the KPI needs fixing in the plan
        setup = isinstance(e, PlanError)
        row = {
            "metric": mid, "name": k.name or (m.name if m else mid), "owner": k.owner, "status": "no_data",
            "rule": "needs_setup" if setup else "no_data",
            "reason": (_setup_reason(k, m, plan) if setup and m else None) or str(e).splitlines()[0],
            "unit": m.unit.value if m else "count",
            "direction": direction_of(k, plan).value if m else "higher_is_better",
        }  # fmt: skip
        return pd.DataFrame([row], columns=list(STATUS_COLUMNS))


def _setup_reason(k: KPI, m: Any, plan: Plan) -> str | None:
    """The plan mistake behind a KPI that cannot be judged, in words (None: no short wording)."""
    from kpinb._numbers import format_value
    from kpinb.definitions.analysis import inverted_thresholds

    direction = direction_of(k, plan)
    if k.thresholds is None or inverted_thresholds(k, direction) is None:
        return None
    higher = direction.value == "higher_is_better"
    return (
        f"Needs setup: the warning level {format_value(k.thresholds.warning, m.unit)} is "
        f"{'below' if higher else 'above'} the critical level {format_value(k.thresholds.critical, m.unit)}, "
        f"but {'higher' if higher else 'lower'} is better — swap them in the plan."
    )


GRAINS = ("day", "week", "month", "quarter", "year")


def _at_grain(plan: Plan, grain: str, kpis: Sequence[str] | None) -> tuple[Plan, dict[str, str]]:
    """The plan with its finer-grained KPIs viewed at ``grain`` (a monthly plan seen by quarter),
    and which of them are totals (their per-month target says nothing of a quarter's total).

    Rates, averages and ratios keep their target at any grain (the engine recomputes them from
    their parts, never an average of averages); sums and distinct counts are shown, not judged.
    """
    from kpinb.definitions.analysis import additivity
    from kpinb.definitions.plan import registry

    wanted = set(kpis) if kpis is not None else None
    finer = [
        k for k in plan.kpis
        if (wanted is None or k.metric in wanted) and GRAINS.index(k.grain.value) < GRAINS.index(grain)
    ]  # fmt: skip
    if not finer:
        return plan, {}
    reg = registry(plan)
    totals = {
        k.metric: k.grain.value
        for k in finer
        if k.metric in reg and additivity(reg[k.metric], reg) in ("sum", "distinct")
    }
    kpis_at = tuple(k.model_copy(update={"grain": Grain(grain)}) if k in finer else k for k in plan.kpis)
    return plan.model_copy(update={"kpis": kpis_at}), totals


def _by(kpi: KPI) -> Any:
    return kpi.target.by if kpi.target is not None else None


def _plain(x: Any) -> Any:
    """NaN for missing numbers, None for missing text (pandas' NA and NaT are neither)."""
    import pandas as pd

    if x is None or x is pd.NaT:
        return None
    try:
        missing = bool(pd.isna(x))
    except (TypeError, ValueError):
        return x
    return math.nan if missing and not isinstance(x, str) else x
