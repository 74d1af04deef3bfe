"""Pace to the deadlines and the trend figures of a report's KPIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpinb.views.report._page import _day, _fmt, _html, _num, table_html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.views.report._load import Report


def pace(r: Report, level: float = 0.8) -> pd.DataFrame:
    """The judged KPIs' pace to their deadlines (forecast, range, probability) from the scorecard."""
    if r.scorecard is not None and level == 0.8:
        return r.scorecard.pace_frame()
    from kpinb import scorecard

    return scorecard.evaluate(r.plan, r.frame, as_of=r.period_end, kpis=r.kpi_ids, level=level).pace_frame()


def pace_table(r: Report, pace_df: pd.DataFrame, folded: bool = False) -> Any:
    """The pace frame formatted for reading: forecast at the deadline, its range, the probability;
    ``folded``: inside a closed ``<details>`` (the numbers behind the trend charts)."""
    from kpinb.views.report._page import folded as fold

    rows = []
    for p in pace_df.to_dict("records"):
        m = str(p["metric"])
        prob = _num(p["probability"])
        rows.append([
            r.metric_name(m), _fmt(r, m, p["value"]), _fmt(r, m, p["target"]), _day(p["deadline"]) or "–",
            str(int(p["periods_left"])) if _num(p["periods_left"]) is not None else "–",
            _fmt(r, m, p["forecast_at_deadline"]),
            f"{_fmt(r, m, p['lower'])} – {_fmt(r, m, p['upper'])}",
            "–" if prob is None else f"{prob:.0%}", _fmt(r, m, p["required_per_period"]), str(p["method"]),
        ])  # fmt: skip
    headers = ["KPI", "latest", "target", "deadline", "periods left", "forecast at deadline", "80% range",
               "chance to reach", "change needed per period", "method"]  # fmt: skip
    body = table_html(headers, rows)
    return _html(fold("The pace in numbers: forecast, range and chance to reach each target", body) if folded else body)


def trend_figures(r: Report, pace_df: pd.DataFrame | None = None) -> list[Any]:
    """One figure per KPI: its history and target path; with ``pace_df`` (:func:`pace`) also
    the way to the deadline: the forecast's path and range period by period (seasonal when the
    fit is, like the dashboard's), from the same history the pace was forecast from; a straight
    cone to the deadline's range when the forecast has no path. The KPI's alert zones are shaded
    where the scorecard judges it (not for a total re-grained from a finer grain)."""
    import pandas as pd

    from kpinb.analytics.forecast import forecast
    from kpinb.analytics.kpis import series_of
    from kpinb.engine.calendar import calendar_of, period_start
    from kpinb.views.charts import trend

    figs = []
    for k in r.kpis:
        cone: Any = None
        target: Any = None
        p = pace_df[pace_df["metric"] == k.metric] if pace_df is not None else None
        if p is not None and len(p) and _num(p["forecast_at_deadline"].iloc[0]) is not None:
            x = p.iloc[0]
            end = period_start(x["deadline"], r.grain)
            if x["period_start"] is not None and end > pd.Timestamp(x["period_start"]):
                series = series_of(r.frame, k.metric)
                history = series[series.index <= pd.Timestamp(x["period_start"])]
                path = forecast(history, r.grain, until=x["deadline"], level=0.8, calendar=calendar_of(r.frame))
                if path.method in ("ets", "linear") and len(path.points):
                    cone = path
            if cone is None and x["period_start"] is not None and end > pd.Timestamp(x["period_start"]):
                cone = pd.DataFrame({
                    "period_start": [pd.Timestamp(x["period_start"]), end],
                    "mean": [x["value"], x["forecast_at_deadline"]],
                    "lower": [x["value"], x["lower"]],
                    "upper": [x["value"], x["upper"]],
                })  # fmt: skip
        zones = None
        if r.scorecard is not None:
            judged = r.scorecard.get(k.metric)
            target = judged.target_path
            th = k.thresholds
            if judged.status != "not_judged" and th is not None and (th.warning is not None or th.critical is not None):
                zones = {"warning": th.warning, "critical": th.critical, "direction": judged.direction}
        name = r.chart_name(k.metric)
        figs.append(
            trend(r.frame, k.metric, target=target, forecast=cone, name=name, unit=r.unit(k.metric), thresholds=zones)
        )
    return figs
