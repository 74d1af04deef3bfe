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

__all__ = [
    "Anomaly", "KpiEvaluation", "ObjectiveRollup", "Pace", "Scorecard", "TreeNode", "drivers", "evaluate",
    "target_path",
]  # fmt: skip

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


SEVERITY = {"off_track": 3, "at_risk": 2, "no_data": 1, "on_track": 0}
"""How bad each status is, for an objective's worst-of roll-up (not_judged does not count)."""


@dataclass(frozen=True)
class ObjectiveRollup:
    """One objective rolled up from its KPIs' evaluations (DESIGN "Objective roll-up").

    ``progress`` is the weighted mean (``weight:`` on each KPI, default 1) of its KPIs'
    progress along their target paths, each capped to 0..1 so one KPI far beyond its target
    cannot hide another behind (NaN when no KPI has a progress); ``status`` the worst status
    among its judged KPIs (on_track only when all are), no_data without any, not_judged when
    none of them is judged (a filtered view); ``reason`` one sentence; ``kpis`` the metric ids.
    """

    id: str
    statement: str
    progress: float
    status: str
    reason: str
    kpis: tuple[str, ...]


@dataclass(frozen=True)
class Anomaly:
    """An unusual value of a KPI or of a metric supporting it, in the KPI's judged period
    (:func:`kpinb.analytics.anomaly.flag`): ``metric`` and its ``name``, ``kpi`` the KPI it
    supports (itself for the KPI's own value) and ``kpi_name``, ``value``, ``expected``, ``score``
    (robust z), ``unit`` (for the formatter) and ``direction``."""

    metric: str
    name: str
    kpi: str
    kpi_name: str
    period_start: pd.Timestamp
    value: float
    expected: float
    score: float
    unit: str
    direction: str
    grain: str
    calendar: Calendar | None = field(default=None, repr=False, compare=False)

    @property
    def period_label(self) -> str:
        """The period as people read it."""
        return period_label(self.period_start, self.grain, calendar=self.calendar)


@dataclass(frozen=True)
class TreeNode:
    """One node of the metric tree (plan -> objectives -> KPIs -> supporting metrics), as a
    tree figure reads it: ``id`` and ``parent`` ("" for the root), ``kind`` (plan,
    objective, kpi, supporting), ``metric`` (None above the KPIs), ``name``, ``status`` (the
    objective's roll-up, the KPI's status; not_judged for a supporting metric), ``value`` in
    ``unit`` (the judged period's; NaN above the KPIs) and ``unusual`` (an anomaly there)."""

    id: str
    parent: str
    kind: str
    metric: str | None
    name: str
    status: str
    value: float
    unit: str
    unusual: bool = False


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

    def objectives(self) -> tuple[ObjectiveRollup, ...]:
        """Each objective of the plan rolled up from the evaluations of its KPIs, in plan order
        (read from the one evaluation of each KPI, never judged again)."""
        from kpinb._numbers import format_value

        out = []
        for o in self.plan.objectives:
            evals = [e for e in self.evaluations if self._objective_of(e.metric) == o.id]
            weights = {k.metric: k.weight for k in self.plan.kpis}
            scored = [(weights.get(e.metric, 1.0), min(max(e.progress, 0.0), 1.0)) for e in evals
                      if not math.isnan(as_float(e.progress))]  # fmt: skip
            total = sum(w for w, _ in scored)
            prog = sum(w * p for w, p in scored) / total if total else math.nan
            judged = [e for e in evals if e.status in SEVERITY]
            shown = "" if math.isnan(prog) else f"; progress {format_value(prog, 'percent')}"
            n = len(judged)
            if not evals:
                status, reason = "no_data", "No KPI measures this objective yet: link one with `objective:`."
            elif not judged:
                status, reason = NOT_JUDGED, "None of its KPIs is judged in this view."
            elif all(e.status == "on_track" for e in judged):
                status, reason = "on_track", f"{'All ' if n > 1 else ''}{n} KPI{'s' * (n > 1)} on track{shown}."
            else:
                status = max((e.status for e in judged), key=SEVERITY.__getitem__)
                worst = ", ".join(e.name for e in judged if e.status == status)
                on = sum(e.status == "on_track" for e in judged)
                words = {"off_track": "off track", "at_risk": "at risk", "no_data": "without data"}[status]
                reason = f"{on} of {n} KPI{'s' * (n > 1)} on track; {worst} {words}{shown}."
            out.append(ObjectiveRollup(o.id, o.statement, prog, status, reason, tuple(e.metric for e in evals)))
        return tuple(out)

    def anomalies(self) -> tuple[Anomaly, ...]:
        """Unusual values in each whole KPI's judged period: the KPI's own, then its supporting
        metrics' (in plan order), by :func:`kpinb.analytics.anomaly.flag` on complete periods."""
        from kpinb._numbers import display_unit
        from kpinb.analytics.anomaly import flag
        from kpinb.definitions.plan import registry

        reg = registry(self.plan)
        out = []
        for e in self.evaluations:
            if e.filters or e.period_start is None:
                continue
            kpi = self._kpi(e.metric)
            for mid in dict.fromkeys([e.metric, *(kpi.supporting if kpi is not None else ())]):
                m = reg.get(mid)
                series = series_of(self.frame, mid) if m is not None else None
                if series is None or series.empty:
                    continue
                f = flag(series[series.index <= e.period_start], self.grain)
                if f is None or not f.unusual or f.period_start != e.period_start:
                    continue
                direction = e.direction if mid == e.metric else m.direction.value
                out.append(Anomaly(
                    mid, m.name if mid != e.metric else e.name, e.metric, e.name, f.period_start, f.value,
                    f.expected, f.score, display_unit(m, None), direction, self.grain, self.plan.calendar,
                ))  # fmt: skip
        return tuple(out)

    def tree(self) -> tuple[TreeNode, ...]:
        """The metric tree, parents before children in plan order: the plan, its objectives
        (with their roll-up status), their KPIs (a KPI linked to no objective hangs from the
        plan), and each KPI's supporting metrics with their value in the KPI's judged period."""
        import pandas as pd

        from kpinb.definitions.plan import registry

        reg = registry(self.plan)
        unusual = {(a.kpi, a.metric) for a in self.anomalies()}
        nodes = [TreeNode("plan", "", "plan", None, self.plan.name, "not_judged", math.nan, "count")]
        rollups = {o.id: o for o in self.objectives()}
        for o in self.plan.objectives:
            r = rollups[o.id]
            nodes.append(TreeNode(f"objective:{o.id}", "plan", "objective", None, o.statement, r.status, math.nan,
                                  "percent"))  # fmt: skip
        for e in self.evaluations:
            objective = self._objective_of(e.metric)
            parent = f"objective:{objective}" if objective in rollups else "plan"
            kid = f"kpi:{e.metric}"
            nodes.append(TreeNode(kid, parent, "kpi", e.metric, e.name, e.status, as_float(e.value),
                                  self.display_unit(e.metric), (e.metric, e.metric) in unusual))  # fmt: skip
            kpi = self._kpi(e.metric)
            for mid in kpi.supporting if kpi is not None else ():
                series = series_of(self.frame, mid)
                at = series.get(pd.Timestamp(e.period_start)) if e.period_start is not None else None
                m = reg.get(mid)
                nodes.append(TreeNode(
                    f"{kid}/{mid}", kid, "supporting", mid, m.name if m is not None else mid, NOT_JUDGED,
                    as_float(at), self.display_unit(mid), (e.metric, mid) in unusual,
                ))  # fmt: skip
        return tuple(nodes)

    def display_unit(self, metric: str) -> str:
        """The unit a person reads ``metric``'s numbers in: its unit (money in the plan's currency),
        or for a duration the time unit its formula measures (``days``, ``h``...), for
        :func:`kpinb._numbers.format_value`."""
        from kpinb._numbers import display_unit
        from kpinb.definitions.plan import registry

        return display_unit(registry(self.plan).get(metric), None, self.plan.currency)

    def _kpi(self, metric: str) -> KPI | None:
        try:
            return self.plan.kpi(metric)
        except KeyError:
            return None

    def _objective_of(self, metric: str) -> str | None:
        try:
            return self.plan.kpi(metric).objective
        except KeyError:
            return None

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
    from kpinb.analytics.compare import grain_of

    plan, regrained = _at_grain(plan, grain_of(frame), kpis)
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
                **{c: _plain(row[c]) for c in STATUS_COLUMNS if c != "period_start"},
                period_start=_day(row["period_start"]),
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


def _day(x: Any) -> pd.Timestamp | None:
    """A judged period's start, or None when no period could be judged (never NaN)."""
    import pandas as pd

    return None if x is None or bool(pd.isna(x)) else pd.Timestamp(x)


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
