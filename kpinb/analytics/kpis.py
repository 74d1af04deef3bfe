"""The plan's KPIs on a computed frame: which ones to judge, each one's series and direction.

Shared by status, forecast and alerts, so the three read a KPI the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from kpinb.analytics.compare import layout
from kpinb.definitions.model import KPI, Direction, Plan
from kpinb.errors import DataError, PlanError

if TYPE_CHECKING:
    from kpinb.definitions.model import Metric

__all__ = ["direction_of", "metric_of", "select", "series_of"]


def direction_of(kpi: KPI, plan: Plan | None = None) -> Direction:
    """The KPI's direction: its own ``direction:`` or else its metric's."""
    if kpi.direction is not None:
        return kpi.direction
    return metric_of(kpi, plan).direction


def metric_of(kpi: KPI, plan: Plan | None) -> Metric:
    """The metric a KPI measures (the plan's own metrics, else the catalog's)."""
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    if kpi.metric not in reg:
        raise PlanError(f"KPI {kpi.metric!r}: unknown metric. Use a catalog id or define it under `metrics:`.")
    return reg[kpi.metric]


def select(plan: Plan, df: pd.DataFrame, kpis: Sequence[str] | None) -> tuple[str, list[KPI]]:
    """The frame's grain and the plan's KPIs to judge on it (checked: totals, same grain)."""
    g, dims = layout(df)
    if dims:
        raise DataError(
            f"the frame is broken down by {', '.join(dims)}; KPI targets and thresholds are for "
            "the whole KPI. Compute it without `by=` (e.g. kpinb.compute(plan, grain=...))."
        )
    present = set(df["metric"].unique())
    if kpis is None:
        chosen = [k for k in plan.kpis if k.metric in present]
        if not chosen:
            raise DataError(
                f"none of the plan's KPIs ({', '.join(k.metric for k in plan.kpis) or 'none'}) is in "
                "the frame. Compute the plan first: kpinb.compute(plan, grain=...)."
            )
    else:
        by_id = {k.metric: k for k in plan.kpis}
        unknown = [m for m in kpis if m not in by_id]
        if unknown:
            raise PlanError(
                f"{', '.join(map(repr, unknown))} is not a KPI of plan {plan.name!r}. "
                f"Its KPIs: {', '.join(by_id) or 'none'}."
            )
        absent = [m for m in kpis if m not in present]
        if absent:
            raise DataError(
                f"KPI(s) {', '.join(map(repr, absent))} are not in the frame. "
                "Compute them: kpinb.compute(plan, metrics=[...], grain=...)."
            )
        chosen = [by_id[m] for m in kpis]
    wrong = [k for k in chosen if k.grain.value != g]
    if wrong:
        listed = ", ".join(f"{k.metric!r} ({k.grain.value})" for k in wrong)
        raise DataError(
            f"KPI(s) {listed} are set at a different grain than the frame ({g}); their targets and "
            f"thresholds are per {wrong[0].grain.value}. Compute them at their own grain, e.g. "
            f"kpinb.compute(plan, metrics=[{wrong[0].metric!r}], grain={wrong[0].grain.value!r}), or "
            "pass kpis=[...] with the KPIs of this grain."
        )
    return g, chosen


def series_of(df: pd.DataFrame, metric: str) -> pd.Series:
    """One metric's values from a frame without dimensions, indexed by period_start, sorted."""
    rows = df[df["metric"] == metric]
    s = pd.Series(rows["value"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(rows["period_start"]))
    return s.sort_index()
