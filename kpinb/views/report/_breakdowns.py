"""What explains a KPI: its supporting metrics, its breakdowns by a dimension and what moved it
(drivers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kpinb.views.report._load import _steady
from kpinb.views.report._page import _fmt, _html, _pct, table_html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.views.report._load import Report


def supporting(r: Report) -> pd.DataFrame:
    """The supporting metrics of each KPI in the period the KPI is judged on: value, change,
    year-over-year.

    Columns: ``kpi, metric, name, indicator, period_start, value, previous, change_pct, last_year, yoy_pct``.
    """
    import pandas as pd

    from kpinb.analytics.compare import changes

    ch = changes(r.frame)
    rows = []
    for k in r.kpis:
        judged = r.judged_on(k.metric)  # the period that explains the KPI's judged value
        for s in k.supporting:
            at = ch[(ch["metric"] == s) & (ch["period_start"] == judged)]
            m = r.registry.get(s)
            first = at.iloc[0] if len(at) else None
            rows.append({
                "kpi": k.metric, "metric": s, "name": r.metric_name(s),
                "indicator": m.indicator.value if m is not None else "",
                "period_start": judged,
                **{c: (first[c] if first is not None else float("nan"))
                   for c in ("value", "previous", "change_pct", "last_year", "yoy_pct")},
            })  # fmt: skip
    cols = ["kpi", "metric", "name", "indicator", "period_start", "value", "previous", "change_pct", "last_year",
            "yoy_pct"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def supporting_table(r: Report, sup: pd.DataFrame) -> Any:
    """The supporting metrics formatted, grouped under the KPI they explain, on its judged period."""
    import pandas as pd

    from kpinb.analytics.compare import period_label

    def when(x: Any) -> str:
        if x is None or pd.isna(x):
            return "–"
        return period_label(x, r.grain, long=True, calendar=r.plan.calendar)

    rows = [
        [r.metric_name(str(s["kpi"])), s["name"], s["indicator"], when(s["period_start"]),
         _fmt(r, s["metric"], s["value"]),
         _fmt(r, s["metric"], s["previous"]), _pct(s["change_pct"]), _fmt(r, s["metric"], s["last_year"]),
         _pct(s["yoy_pct"])]
        for s in sup.to_dict("records")
    ]  # fmt: skip
    headers = ["supports KPI", "metric", "indicator", "period", "value", "previous period", "change", "last year",
               "vs last year"]  # fmt: skip
    return _html(table_html(headers, rows) if rows else "<p>The plan lists no supporting metrics.</p>")


def dimensions(r: Report, metric: str) -> list[str]:
    """The dimensions every source of ``metric`` can be broken down by (plan order)."""
    from kpinb.definitions import catalog
    from kpinb.definitions.analysis import dependencies

    canon = catalog.sources()
    common: list[str] | None = None
    for mid in dependencies([metric], r.registry):
        src = r.registry[mid].source
        if src is None:
            continue
        spec = r.plan.sources.get(src)
        dims = list(spec.dimensions) if spec is not None and spec.dimensions is not None else (
            list(canon[src].dimensions) if src in canon else [])  # fmt: skip
        common = dims if common is None else [d for d in common if d in dims]
    return common or []


def breakdowns(r: Report, dimension: str | None = None) -> dict[str, pd.DataFrame]:
    """The KPIs broken down by a dimension: ``{dimension: engine frame}``.

    Each KPI goes under ``dimension`` when its sources have it, else under its sources' first
    common dimension; KPIs with none are left out. One query per dimension and source (in a
    batch, once for all of a department's templates: :mod:`kpinb.engine.cache`).
    """
    from kpinb.engine.cache import cached_compute

    groups: dict[str, list[str]] = {}
    for k in r.kpis:
        dims = dimensions(r, k.metric)
        if not dims:
            continue
        groups.setdefault(dimension if dimension in dims else dims[0], []).append(k.metric)
    return {d: _steady(cached_compute(r.plan, metrics=ids, grain=r.grain, by=[d], end=r.period_end))
            for d, ids in groups.items()}  # fmt: skip


def breakdown_table(r: Report, frames: Mapping[str, pd.DataFrame], folded: bool = False) -> Any:
    """Each KPI per member of its dimension in the judged period, with the change vs the previous
    period; ``folded``: inside a closed ``<details>`` (the numbers behind the breakdown charts)."""
    from kpinb.analytics.compare import changes
    from kpinb.views.kit import human_name
    from kpinb.views.report._page import folded as fold

    rows = []
    for dim, frame in frames.items():
        ch = changes(frame)
        for mid in dict.fromkeys(ch["metric"]):
            here = ch[(ch["metric"] == mid) & (ch["period_start"] == r.judged_on(str(mid)))]
            part = here.sort_values("value", ascending=False, na_position="last")
            for rec in part.to_dict("records"):
                rows.append(
                    [r.metric_name(mid), human_name(dim), rec[dim], _fmt(r, mid, rec["value"]), _pct(rec["change_pct"])]
                )
    headers = ["KPI", "dimension", "member", "value", "change vs previous period"]
    if not rows:
        return _html("<p>No KPI can be broken down by a dimension.</p>")
    body = table_html(headers, rows)
    return _html(fold("The breakdowns as a table, with each member's change", body) if folded else body)


def breakdown_figures(r: Report, frames: Mapping[str, pd.DataFrame]) -> list[Any]:
    """One bar chart per KPI: its value per member of the dimension in the judged period."""
    from kpinb.views.charts import breakdown

    return [
        breakdown(frame, mid, dim, period=r.judged_on(str(mid)), name=r.chart_name(mid), unit=r.unit(mid))
        for dim, frame in frames.items()
        for mid in dict.fromkeys(frame["metric"])
    ]


def driver_figures(r: Report, frames: Mapping[str, pd.DataFrame]) -> list[Any]:
    """What moved each KPI since the previous period (:func:`kpinb.scorecard.drivers`): each
    member's contribution (rate and mix effects for ratios), else a ratio's numerator and
    denominator effects."""
    import pandas as pd

    from kpinb import scorecard
    from kpinb.analytics.compare import period_label
    from kpinb.analytics.kpis import direction_of
    from kpinb.engine.calendar import period_start
    from kpinb.views.charts import drivers as drivers_chart
    from kpinb.views.kit import human_name

    figs: list[Any] = []
    whole: set[str] = set()
    for dim, frame in frames.items():
        for mid in dict.fromkeys(frame["metric"]):
            judged = r.judged_on(str(mid))
            if judged is None:
                continue
            previous = period_start(judged - pd.Timedelta(days=1), r.grain)
            contrib = scorecard.drivers(r.frame, frame, mid, previous, judged, plan=r.plan)
            by_member = contrib is not None and dim in contrib.columns
            if contrib is None or (not by_member and mid in whole):
                continue
            whole.update(() if by_member else (mid,))  # a ratio's own split: once, not per dimension
            k = next((k for k in r.plan.kpis if k.metric == mid), None)
            direction = direction_of(k, r.plan).value if k is not None else None
            cal = r.plan.calendar
            span = (
                f"{period_label(previous, r.grain, long=True, calendar=cal)} → "
                f"{period_label(judged, r.grain, long=True, calendar=cal)}"
            )
            by_text = f" by {human_name(dim, capital=False)}" if by_member else ""
            title = f"What moved {r.chart_name(mid)}{by_text}: {span}"
            figs.append(drivers_chart(contrib, direction=direction, unit=r.unit(mid), title=title))
    return figs
