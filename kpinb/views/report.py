"""What the report notebooks (``templates/*.ipynb``) call: load a plan for a report, show
escaped headings and tables, render plotly figures for stored notebooks or offline HTML,
and publish a machine-readable summary that ``kpinb run`` collects into its manifest.

Templates stay narrative plus calls to this module and the public API; anything that is
logic lives here, where it is typed and tested.

>>> from kpinb import report
>>> report.setup()                                                   # doctest: +SKIP
>>> r = report.load("templates/plans/sales.yml", period_end="2025-06-30")  # doctest: +SKIP
>>> report.publish(r)                                                # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb.errors import PlanError
from kpinb.views.kit import esc

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import KPI, Metric, Plan
    from kpinb.outputs.alerts import Alert
    from kpinb.scorecard import Scorecard

__all__ = [
    "RENDERER_ENV",
    "REPORT_RENDERER",
    "SUMMARY_MIMETYPE",
    "Report",
    "heading",
    "load",
    "note",
    "publish",
    "setup",
    "with_data_dir",
]

RENDERER_ENV = "KPINB_PLOTLY_RENDERER"
"""Environment variable naming the plotly renderer :func:`setup` selects (``kpinb run`` sets
it to :data:`REPORT_RENDERER` for the kernels whose notebooks become HTML reports)."""

REPORT_RENDERER = "kpinb_report"
"""A plotly renderer that outputs a ``text/html`` div and script *without* plotly.js; the
HTML export embeds plotly.js once per report (see :mod:`kpinb.runs.export`)."""

STORED_RENDERER = "plotly_mimetype"
"""The renderer for interactive and stored notebooks: compact JSON that JupyterLab draws."""

SUMMARY_MIMETYPE = "application/vnd.kpinb.summary.v1+json"
"""Mimetype of the output :func:`publish` displays; ``kpinb run`` reads it from the executed
notebook (HTML export ignores it)."""

TRACES_ATTRIBUTE = "data-kpinb-traces"
"""Attribute of the wrapper div :data:`REPORT_RENDERER` writes: the figure's trace types, so
the exporter can embed a plotly.js bundle that has them."""


# --- set-up -------------------------------------------------------------------------------------


def setup(renderer: str | None = None) -> None:
    """Select the plotly renderer and pandas display options for a report notebook.

    The renderer is ``renderer``, else ``$KPINB_PLOTLY_RENDERER``, else ``plotly_mimetype``
    (small stored notebooks that JupyterLab renders); ``plotly.io.renderers.default`` tells
    which was chosen.
    """
    import pandas as pd
    import plotly.io as pio

    chosen = renderer or os.environ.get(RENDERER_ENV) or STORED_RENDERER
    if REPORT_RENDERER not in pio.renderers:
        pio.renderers[REPORT_RENDERER] = _report_renderer()
    pio.renderers.default = chosen
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 120)


def _report_renderer() -> Any:
    from plotly.io._base_renderers import MimetypeRenderer

    class ReportRenderer(MimetypeRenderer):
        """plotly figures as HTML without plotly.js (the export embeds it once per report)."""

        def to_mimebundle(self, fig_dict: dict) -> dict[str, str]:
            import plotly.io as pio

            traces = sorted({str(t.get("type", "scatter")) for t in fig_dict.get("data", [])})
            body = pio.to_html(
                fig_dict, include_plotlyjs=False, full_html=False, include_mathjax=False,
                default_width="100%", default_height=420, validate=False,
                config={"displaylogo": False, "responsive": True},
            )  # fmt: skip
            marker = esc(" ".join(traces))
            return {"text/html": f'<div class="kpinb-plotly" {TRACES_ATTRIBUTE}="{marker}">{body}</div>'}

    return ReportRenderer()


# --- plans and data -----------------------------------------------------------------------------


def with_data_dir(plan: Plan, data_dir: str | Path | None) -> Plan:
    """A copy of ``plan`` whose file sources are looked up in ``data_dir`` by file name.

    Lets the shipped example plans (and any plan) run against data generated elsewhere,
    e.g. ``kpinb sample-data --out /tmp/sample`` then ``data_dir="/tmp/sample"``. Database
    sources are unchanged; ``benchmarks:`` moves too when ``data_dir`` has that file.
    """
    if data_dir is None or str(data_dir) == "":
        return plan
    folder = Path(data_dir).expanduser().resolve()
    sources = {
        name: src.model_copy(update={"path": str(folder / Path(src.path).name)}) if src.path else src
        for name, src in plan.sources.items()
    }
    update: dict[str, Any] = {"sources": sources}
    if plan.benchmarks and (folder / Path(plan.benchmarks).name).is_file():
        update["benchmarks"] = str(folder / Path(plan.benchmarks).name)
    return plan.model_copy(update=update)


def load_for_report(plan: str | Path | Plan, data_dir: str | Path | None = None) -> Plan:
    """Load a plan file (checked) and point it at ``data_dir`` (see :func:`with_data_dir`)."""
    from kpinb.definitions.plan import load_plan

    return with_data_dir(load_plan(plan), data_dir)


@dataclass(frozen=True)
class Report:
    """Everything a report notebook shows for one plan, grain and period.

    ``frame`` is the engine's tidy frame (KPIs and supporting metrics, totals) up to
    ``period_end``; ``scorecard`` judges its KPIs once (:func:`kpinb.scorecard.evaluate`) and
    ``status`` is that scorecard's status frame; ``kpis`` are the plan's KPIs at ``grain`` and
    ``skipped`` the others (reported, not judged).
    """

    plan: Plan
    department: str
    grain: str
    period_end: pd.Timestamp | None
    frame: pd.DataFrame
    status: pd.DataFrame
    kpis: tuple[KPI, ...]
    skipped: tuple[KPI, ...] = ()
    registry: Mapping[str, Metric] = field(default_factory=dict)
    scorecard: Scorecard | None = field(default=None, repr=False)

    @property
    def title(self) -> str:
        """The plan's name (user text: escape before putting it in HTML)."""
        return self.plan.name

    @property
    def as_of(self) -> str | None:
        """``period_end`` as ``YYYY-MM-DD``, or None for the latest complete period."""
        return None if self.period_end is None else f"{self.period_end:%Y-%m-%d}"

    @property
    def judged(self) -> pd.Timestamp | None:
        """The start of the period the KPIs were judged on (None when nothing had data)."""
        import pandas as pd

        have = self.status["period_start"].dropna() if "period_start" in self.status else []
        return pd.Timestamp(have.iloc[0]) if len(have) else None

    @property
    def judged_label(self) -> str:
        """The judged period as a label (``2025-06``, ``2025-Q2``), or ``no data``."""
        from kpinb.analytics.compare import period_label

        return "no data" if self.judged is None else period_label(self.judged, self.grain)

    @property
    def kpi_ids(self) -> list[str]:
        """The metric ids of the judged KPIs, in plan order."""
        return [k.metric for k in self.kpis]

    def unit(self, metric_id: str) -> str:
        """The display unit of a metric (durations in their time unit) for :func:`kpinb.cards.format_value`."""
        from kpinb.views.kit import duration_unit

        m = self.registry.get(metric_id)
        if m is None:
            return "count"
        if m.unit.value == "duration":
            return duration_unit(m) or "duration"
        return m.unit.value

    def metric_name(self, metric_id: str) -> str:
        """The display name of a KPI or metric (the KPI's own ``name:`` first)."""
        for k in self.plan.kpis:
            if k.metric == metric_id and k.name:
                return k.name
        m = self.registry.get(metric_id)
        return m.name if m is not None else metric_id


STEADY_DIGITS = 12
"""Significant digits the report keeps of computed values (see :func:`_steady`)."""


def _steady(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its float columns rounded to :data:`STEADY_DIGITS` significant digits.

    DuckDB sums floats in parallel, so a grouped sum can differ in its last bit from one run
    to the next (measured: 1 ulp on the sample data by region). Reports, their figures and the
    forecasts fitted on them must not: stored notebook outputs are compared exactly.
    """
    import numpy as np
    import pandas as pd

    from kpinb._numbers import round_significant

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            v = round_significant(out[col].to_numpy(dtype=float, na_value=np.nan), STEADY_DIGITS)
            out[col] = pd.array(v, dtype=out[col].dtype)
    return out


def load(
    plan: str | Path | Plan,
    *,
    department: str | None = None,
    period_end: Any = None,
    grain: str = "month",
    data_dir: str | Path | None = None,
) -> Report:
    """Load ``plan``, compute its KPIs and supporting metrics at ``grain`` up to ``period_end``
    and judge each KPI's status (see :func:`kpinb.status.evaluate`).

    Parameters
    ----------
    plan : a plan file or :class:`~kpinb.model.Plan`.
    department : checked against the plan's ``department:`` (a mismatch is an error, so a
        batch never labels one department's numbers with another's name).
    period_end : judge the latest period that ended on this date; None: the latest complete
        period in the data.
    grain : the KPIs to judge are those set at this grain.
    data_dir : look the plan's data files up in this folder (see :func:`with_data_dir`).
    """
    import pandas as pd

    from kpinb import scorecard
    from kpinb.definitions.model import Grain
    from kpinb.definitions.plan import registry
    from kpinb.engine.query import compute

    p = load_for_report(plan, data_dir)
    if department and department != p.department:
        raise PlanError(
            f"{p.file or 'plan'}: department is {p.department!r}, but the report was asked for "
            f"{department!r}. Pass the plan of that department, or department={p.department!r}."
        )
    g = Grain(grain).value
    from kpinb.scorecard.evaluation import GRAINS

    # a KPI set per month can be viewed by quarter (re-grained); a quarterly one not by month
    kpis = tuple(k for k in p.kpis if GRAINS.index(k.grain.value) <= GRAINS.index(g))
    skipped = tuple(k for k in p.kpis if k not in kpis)
    if not kpis:
        raise PlanError(
            f"{p.file or 'plan'}: no KPI is set at grain {g!r} or finer (they are at "
            f"{', '.join(sorted({k.grain.value for k in p.kpis})) or 'none'}). Pass grain= one of those."
        )
    end = pd.Timestamp(period_end).normalize() if period_end not in (None, "") else None
    ids = list(dict.fromkeys(m for k in kpis for m in (k.metric, *k.supporting)))
    frame = _steady(compute(p, metrics=ids, grain=g, end=end))
    card = scorecard.evaluate(p, frame, as_of=end, kpis=[k.metric for k in kpis])
    return Report(
        plan=p, department=p.department, grain=g, period_end=end, frame=frame, status=card.status_frame(),
        kpis=kpis, skipped=skipped, registry=registry(p), scorecard=card,
    )  # fmt: skip


# --- display helpers ----------------------------------------------------------------------------


def heading(text: str, level: int = 2, sub: str | None = None) -> Any:
    """An escaped HTML heading (user text such as plan and KPI names never becomes markup)."""
    from IPython.display import HTML

    level = min(max(int(level), 1), 6)
    out = f"<h{level}>{esc(text)}</h{level}>"
    if sub:
        out += f'<p class="kpinb-sub">{esc(sub)}</p>'
    return HTML(out)


def note(text: str, kind: str = "info") -> Any:
    """A short escaped note box (``info``, ``warning`` or ``error``)."""
    from IPython.display import HTML

    colours = {"info": "#e8f0fe", "warning": "#fff4e5", "error": "#fdecea"}
    bg = colours.get(kind, colours["info"])
    return HTML(f'<div style="background:{bg};padding:.5em .8em;border-radius:4px">{esc(text)}</div>')


# --- dashboard pieces ---------------------------------------------------------------------------


def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    """A plain HTML table; every cell is text and is escaped (numbers: format them first)."""
    from kpinb.views.kit import table

    cap = f'<div style="color:#5f6368">{esc(caption)}</div>' if caption else ""
    return cap + table(headers, [[esc(c) for c in row] for row in rows], "kpinb-table")


def _html(body: str) -> Any:
    from IPython.display import HTML

    return HTML(body)


def _fmt(r: Report, metric: str, value: Any) -> str:
    from kpinb.views.kit import format_value

    return format_value(value, r.unit(metric))


def _pct(x: Any) -> str:
    v = _num(x)
    return "–" if v is None else f"{v:+.1f}%"


def cards(r: Report) -> Any:
    """The KPI cards (value, change, progress to target, status, sparkline) as displayable HTML."""
    from kpinb.views.cards import kpi_cards

    return _html(kpi_cards(r.status, r.frame, r.registry))


def status_table(r: Report) -> Any:
    """The KPI statuses with the rule and the reason, as displayable HTML."""
    from kpinb.views.display import status_html

    return _html(status_html(r.status, r.registry))


def pace(r: Report, level: float = 0.8) -> pd.DataFrame:
    """The judged KPIs' pace to their deadlines (forecast, range, probability) from the scorecard."""
    if r.scorecard is not None and level == 0.8:
        return r.scorecard.pace_frame()
    from kpinb import scorecard

    return scorecard.evaluate(r.plan, r.frame, as_of=r.period_end, kpis=r.kpi_ids, level=level).pace_frame()


def pace_table(r: Report, pace_df: pd.DataFrame) -> Any:
    """The pace frame formatted for reading: forecast at the deadline, its range, the probability."""
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
    return _html(table_html(headers, rows))


def trend_figures(r: Report, pace_df: pd.DataFrame | None = None) -> list[Any]:
    """One figure per KPI: its history and target path; with ``pace_df`` (:func:`pace`) also
    the way to the deadline: a cone from the latest value to the forecast's range there."""
    import pandas as pd

    from kpinb.engine.calendar import period_start
    from kpinb.views.charts import trend

    figs = []
    for k in r.kpis:
        cone = None
        target: Any = None
        p = pace_df[pace_df["metric"] == k.metric] if pace_df is not None else None
        if p is not None and len(p) and _num(p["forecast_at_deadline"].iloc[0]) is not None:
            x = p.iloc[0]
            end = period_start(x["deadline"], r.grain)
            if x["period_start"] is not None and end > pd.Timestamp(x["period_start"]):
                cone = pd.DataFrame({
                    "period_start": [pd.Timestamp(x["period_start"]), end],
                    "mean": [x["value"], x["forecast_at_deadline"]],
                    "lower": [x["value"], x["lower"]],
                    "upper": [x["value"], x["upper"]],
                })  # fmt: skip
        if r.scorecard is not None:
            target = r.scorecard.get(k.metric).target_path
        figs.append(
            trend(r.frame, k.metric, target=target, forecast=cone, name=r.metric_name(k.metric), unit=r.unit(k.metric))
        )
    return figs


def alerts(r: Report) -> list[Alert]:
    """The judged KPIs' alerts, read from the report's scorecard (:func:`kpinb.alerts.from_scorecard`)."""
    from kpinb.outputs.alerts import evaluate, from_scorecard

    if r.scorecard is not None:
        return from_scorecard(r.scorecard)
    return evaluate(r.plan, r.frame, as_of=r.period_end, kpis=r.kpi_ids)


def alerts_table(found: Sequence[Alert]) -> Any:
    """The alerts as displayable HTML, critical first."""
    from kpinb.views.display import alerts_html

    return _html(alerts_html(list(found)))


def supporting(r: Report) -> pd.DataFrame:
    """The supporting metrics of each KPI in the judged period: value, change, year-over-year.

    Columns: ``kpi, metric, name, indicator, period_start, value, previous, change_pct, last_year, yoy_pct``.
    """
    import pandas as pd

    from kpinb.analytics.compare import changes

    ch = changes(r.frame)
    judged = r.judged
    rows = []
    for k in r.kpis:
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
    """The supporting metrics formatted, grouped under the KPI they explain."""
    rows = [
        [r.metric_name(str(s["kpi"])), s["name"], s["indicator"], _fmt(r, s["metric"], s["value"]),
         _fmt(r, s["metric"], s["previous"]), _pct(s["change_pct"]), _fmt(r, s["metric"], s["last_year"]),
         _pct(s["yoy_pct"])]
        for s in sup.to_dict("records")
    ]  # fmt: skip
    headers = ["supports KPI", "metric", "indicator", "value", "previous period", "change", "last year", "vs last year"]
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
    common dimension; KPIs with none are left out. One query per dimension and source.
    """
    from kpinb.engine.query import compute

    groups: dict[str, list[str]] = {}
    for k in r.kpis:
        dims = dimensions(r, k.metric)
        if not dims:
            continue
        groups.setdefault(dimension if dimension in dims else dims[0], []).append(k.metric)
    return {d: _steady(compute(r.plan, metrics=ids, grain=r.grain, by=[d], end=r.period_end))
            for d, ids in groups.items()}  # fmt: skip


def breakdown_table(r: Report, frames: Mapping[str, pd.DataFrame]) -> Any:
    """Each KPI per member of its dimension in the judged period, with the change vs the previous period."""
    from kpinb.analytics.compare import changes

    judged = r.judged
    rows = []
    for dim, frame in frames.items():
        ch = changes(frame)
        here = ch[ch["period_start"] == judged]
        for mid in dict.fromkeys(here["metric"]):
            part = here[here["metric"] == mid].sort_values("value", ascending=False, na_position="last")
            for rec in part.to_dict("records"):
                rows.append([r.metric_name(mid), dim, rec[dim], _fmt(r, mid, rec["value"]), _pct(rec["change_pct"])])
    headers = ["KPI", "dimension", "member", "value", "change vs previous period"]
    return _html(table_html(headers, rows) if rows else "<p>No KPI can be broken down by a dimension.</p>")


def breakdown_figures(r: Report, frames: Mapping[str, pd.DataFrame]) -> list[Any]:
    """One bar chart per KPI: its value per member of the dimension in the judged period."""
    from kpinb.views.charts import breakdown

    return [
        breakdown(frame, mid, dim, period=r.judged, name=r.metric_name(mid), unit=r.unit(mid))
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

    judged = r.judged
    if judged is None:
        return []
    previous = period_start(judged - pd.Timedelta(days=1), r.grain)
    figs: list[Any] = []
    whole: set[str] = set()
    for dim, frame in frames.items():
        for mid in dict.fromkeys(frame["metric"]):
            contrib = scorecard.drivers(r.frame, frame, mid, previous, judged, plan=r.plan)
            by_member = contrib is not None and dim in contrib.columns
            if contrib is None or (not by_member and mid in whole):
                continue
            whole.update(() if by_member else (mid,))  # a ratio's own split: once, not per dimension
            k = next((k for k in r.plan.kpis if k.metric == mid), None)
            direction = direction_of(k, r.plan).value if k is not None else None
            span = f"{period_label(previous, r.grain)} → {period_label(judged, r.grain)}"
            title = f"What moved {r.metric_name(mid)}{f' by {dim}' if by_member else ''}: {span}"
            figs.append(drivers_chart(contrib, direction=direction, unit=r.unit(mid), title=title))
    return figs


def show(figures: Sequence[Any]) -> None:
    """Display each figure (with the renderer :func:`setup` chose)."""
    from IPython.display import display

    for f in figures:
        display(f)


# --- benchmark pieces ---------------------------------------------------------------------------


def benchmark_file(r: Report) -> Path | None:
    """The plan's ``benchmarks:`` table (resolved), or None when it has none or the file is missing."""
    if not r.plan.benchmarks:
        return None
    path = r.plan.resolve(r.plan.benchmarks)
    return path if path.is_file() else None


def external(r: Report) -> pd.DataFrame:
    """The KPIs and supporting metrics against the plan's benchmark table (:func:`kpinb.benchmark.external`);
    an empty frame when the plan has no table."""
    import pandas as pd

    from kpinb.analytics.benchmark import external as external_

    path = benchmark_file(r)
    if path is None:
        return pd.DataFrame(columns=["metric", "value", "p25", "p50", "p75", "percentile", "illustrative"])
    return external_(r.frame, path, directions=r.plan, period=r.judged)


def _members_add_up(r: Report, metric: str, part: pd.DataFrame) -> bool:
    """True when the members' values add up to the whole in the judged period, as observed in
    the data (amounts, counts, and MRR averaged over snapshot days, which
    :func:`kpinb.definitions.analysis.additivity` cannot promise from the formula alone)."""
    import pandas as pd

    whole = r.frame[(r.frame["metric"] == metric) & (r.frame["period_start"] == r.judged)]["value"]
    members = part[part["period_start"] == r.judged]["value"]
    if whole.empty or pd.isna(whole.iloc[0]) or members.notna().sum() == 0:
        return False
    total, value = float(members.sum()), float(whole.iloc[0])
    return abs(total - value) <= 1e-6 * max(abs(value), 1.0)


def peers(r: Report, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Each KPI's members of its dimension against each other (:func:`kpinb.benchmark.peers`);
    the reference is the whole's value for ratios and averages, the median member for sums.
    One frame with a ``dimension`` and a ``member`` column."""
    import pandas as pd

    from kpinb.analytics.benchmark import peers as peers_

    parts = []
    for dim, frame in frames.items():
        for mid, part in frame.groupby("metric", sort=False):
            # a member of a sum is not comparable with the whole: compare it with the median member
            whole = None if _members_add_up(r, str(mid), part) else r.frame
            p = peers_(part, dim, period=r.judged, overall=whole, directions=r.plan)
            parts.append(p.rename(columns={dim: "member"}).assign(dimension=dim))
    if not parts:
        return pd.DataFrame(columns=["metric", "dimension", "member", "value", "rank", "gap_to_overall"])
    return pd.concat(parts, ignore_index=True)


def history(r: Report) -> pd.DataFrame:
    """The KPIs against their own history (:func:`kpinb.benchmark.history`)."""
    from kpinb.analytics.benchmark import history as history_

    return history_(r.frame[r.frame["metric"].isin(r.kpi_ids)], period=r.judged, directions=r.plan)


def benchmark_summary(r: Report, ext: pd.DataFrame, peer: pd.DataFrame, hist: pd.DataFrame) -> Any:
    """The three comparisons side by side, one row per KPI, every gap read as "positive = better"."""
    rows = []
    for k in r.kpis:
        m = k.metric
        e = ext[ext["metric"] == m]
        if len(e):
            x = e.iloc[0]
            tag = " (illustrative)" if bool(x.get("illustrative", False)) else ""
            ext_text = f"better than {x['better_than_pct']:.0f}% · median {_fmt(r, m, x['p50'])}{tag}"
        else:
            ext_text = "no benchmark row"
        p = peer[(peer["metric"] == m) & peer["value"].notna()]
        if len(p):
            best = p.sort_values("rank").iloc[0]
            worst = p.sort_values("rank").iloc[-1]
            peer_text = (
                f"best {best['member']} {_fmt(r, m, best['value'])}, weakest {worst['member']} "
                f"{_fmt(r, m, worst['value'])} ({p.iloc[0]['dimension']})"
            )
        else:
            peer_text = "no breakdown"
        h = hist[hist["metric"] == m]
        if len(h):
            y = h.iloc[0]
            hist_text = f"vs last year {_pct(y['gap_to_last_year_pct'])} · best before {_fmt(r, m, y['best_value'])}"
        else:
            hist_text = "no history"
        value = r.status.loc[r.status["metric"] == m, "value"]
        rows.append([r.metric_name(m), _fmt(r, m, value.iloc[0] if len(value) else None), ext_text, peer_text,
                     hist_text])  # fmt: skip
    headers = ["KPI", "value", "external benchmark", "peers (best / weakest member)", "own history"]
    return _html(table_html(headers, rows))


def external_table(r: Report, ext: pd.DataFrame) -> Any:
    """The external comparison formatted: quartiles, position, gaps (positive = better), source."""
    rows = [
        [r.metric_name(x["metric"]), _fmt(r, x["metric"], x["value"]), _fmt(r, x["metric"], x["p25"]),
         _fmt(r, x["metric"], x["p50"]), _fmt(r, x["metric"], x["p75"]), f"{x['better_than_pct']:.0f}%",
         _fmt(r, x["metric"], x["gap_to_median"]), str(x["source"]) + (" ⚠" if x["illustrative"] else "")]
        for x in ext.to_dict("records")
    ]  # fmt: skip
    headers = ["metric", "value", "p25", "median", "p75", "better than", "gap to median", "source"]
    return _html(table_html(headers, rows) if rows else "<p>The plan names no benchmark table.</p>")


def peers_table(r: Report, peer: pd.DataFrame) -> Any:
    """The peer comparison formatted: rank and gap to the whole per member."""
    rows = [
        [r.metric_name(x["metric"]), x["dimension"], x["member"], _fmt(r, x["metric"], x["value"]),
         "–" if _num(x["rank"]) is None else str(int(x["rank"])), _fmt(r, x["metric"], x["overall"]),
         "whole" if x["overall_kind"] == "given" else "median member", _fmt(r, x["metric"], x["gap_to_overall"])]
        for x in peer.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "dimension", "member", "value", "rank", "reference", "reference is", "gap to reference"]
    return _html(table_html(headers, rows) if rows else "<p>No KPI can be broken down by a dimension.</p>")


def history_table(r: Report, hist: pd.DataFrame) -> Any:
    """The comparison with the KPI's own past formatted."""
    rows = [
        [r.metric_name(x["metric"]), _day(x["period_start"]), _fmt(r, x["metric"], x["value"]),
         _fmt(r, x["metric"], x["last_year_value"]), _pct(x["gap_to_last_year_pct"]), _day(x["best_period"]) or "–",
         _fmt(r, x["metric"], x["best_value"]), _fmt(r, x["metric"], x["gap_to_best"])]
        for x in hist.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "period", "value", "last year", "vs last year", "best period before", "best value",
               "gap to best"]  # fmt: skip
    return _html(table_html(headers, rows))


def external_figure(ext: pd.DataFrame) -> list[Any]:
    """Where each metric stands in the external benchmark's range (none without a table)."""
    from kpinb.views.charts import benchmark_position

    return [benchmark_position(ext, title="Against the external benchmark")] if len(ext) else []


def peer_figures(r: Report, peer: pd.DataFrame) -> list[Any]:
    """One chart per KPI: the members of its dimension against each other."""
    from kpinb.views.charts import benchmark_position

    figs = []
    for (m, dim), part in peer.groupby(["metric", "dimension"], sort=False):
        frame = part.drop(columns=["dimension"]).rename(columns={"member": dim})
        title = f"{r.metric_name(str(m))}: {dim} against each other"
        figs.append(benchmark_position(frame, title=title, unit=r.unit(str(m))))
    return figs


def history_figures(r: Report, hist: pd.DataFrame) -> list[Any]:
    """One chart per KPI: the latest value next to last year's and the best before it."""
    from kpinb.views.charts import benchmark_position

    return [
        benchmark_position(hist[hist["metric"] == m], title=f"{r.metric_name(str(m))}: against its past",
                           unit=r.unit(str(m)))
        for m in dict.fromkeys(hist["metric"])
    ]  # fmt: skip


# --- review pieces ------------------------------------------------------------------------------


def misses_table(r: Report, miss: pd.DataFrame) -> Any:
    """:func:`kpinb.review.misses` formatted."""
    rows = [
        [x["name"], f"{x['periods_missed']} of {x['periods_judged']}", _fmt(r, x["metric"], x["latest_gap"]),
         _fmt(r, x["metric"], x["gap_trend"]), _fmt(r, x["metric"], x["best_value"]), _fmt(r, x["metric"], x["target"]),
         x["verdict"], x["suggestion"]]
        for x in miss.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "missed", "latest gap", "gap change per period", "best 3-period average", "target", "verdict",
               "suggestion"]  # fmt: skip
    return _html(table_html(headers, rows))


def staleness_table(stale: pd.DataFrame) -> Any:
    """:func:`kpinb.review.staleness` formatted."""
    rows = [
        [x["name"], x["last_value_period"] or "never", str(x["periods_without_data"]), "yes" if x["flat"] else "no",
         _day(x["deadline"]) or "–", "stale" if x["stale"] else "fresh", x["reason"] or "–"]
        for x in stale.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "last value", "periods without data", "flat", "deadline", "verdict", "why"]
    return _html(table_html(headers, rows))


def vanity_table(van: pd.DataFrame) -> Any:
    """:func:`kpinb.review.vanity` formatted."""
    rows = [[x["name"], x["indicator"], "vanity metric" if x["vanity"] else "no"] for x in van.to_dict("records")]
    return _html(table_html(["KPI", "indicator", "vanity"], rows))


def balance_table(bal: pd.DataFrame, verdict: str) -> Any:
    """:func:`kpinb.review.balance` formatted, with its verdict."""
    rows = [[x["indicator"], str(x["kpis"]), x["names"] or "–"] for x in bal.to_dict("records")]
    return _html(f"<p><b>{esc(verdict)}</b></p>" + table_html(["indicator", "KPIs", "which"], rows))


def suggestions_table(sug: pd.DataFrame) -> Any:
    """:func:`kpinb.review.suggestions` formatted."""
    rows = [[x["kpi"], x["topic"], x["suggestion"]] for x in sug.to_dict("records")]
    return _html(table_html(["KPI", "topic", "suggestion"], rows) if rows else "<p>No change to suggest.</p>")


# --- proposal pieces ----------------------------------------------------------------------------


def candidates_table(p: Any) -> Any:
    """The catalog candidates of a :class:`kpinb.proposal.Proposal`, chosen ones marked."""
    rows = [
        ["✔" if x["chosen"] else "", x["objective"], x["name"], x["indicator"], x["role"].replace("_", " "),
         "yes" if x["has_data"] else "no", x["note"]]
        for x in p.candidates.to_dict("records")
    ]  # fmt: skip
    headers = ["chosen", "objective", "metric", "indicator", "role", "data connected", "note"]
    return _html(table_html(headers, rows))


def targets_table(p: Any) -> Any:
    """The proposed KPIs with baseline, target, deadline and thresholds."""
    from kpinb.views.kit import format_value

    rows = [
        [x["name"], x["indicator"], x["direction"].replace("_", " "), format_value(x["baseline"], x["unit"]),
         format_value(x["target"], x["unit"]), _day(x["deadline"]), format_value(x["warning"], x["unit"]),
         format_value(x["critical"], x["unit"])]
        for x in p.targets.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "indicator", "direction", "baseline", "target", "by", "warning at", "critical at"]
    return _html(table_html(headers, rows))


def issues_table(issues: Sequence[Any]) -> Any:
    """SMART review issues (:class:`kpinb.lint.Issue`) as a table."""
    rows = [[i.level, i.rule.replace("_", " "), i.kpi or "plan", i.message, i.fix] for i in issues]
    return _html(table_html(["level", "check", "KPI", "finding", "fix"], rows) if rows else "<p>No issue.</p>")


def code_block(text: str, caption: str | None = None) -> Any:
    """Text (YAML, a path) shown verbatim and escaped."""
    cap = f"<p>{esc(caption)}</p>" if caption else ""
    return _html(f'{cap}<pre style="background:#f8f9fa;padding:8px;font-size:12px">{esc(text)}</pre>')


# --- the machine-readable summary ---------------------------------------------------------------


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _sig(x: Any) -> float | None:
    """Nine significant digits: parallel aggregation may change the last bits of a sum between runs."""
    f = _num(x)
    return None if f is None else float(f"{f:.9g}")


def _day(x: Any) -> str | None:
    import pandas as pd

    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return None
    return f"{pd.Timestamp(x):%Y-%m-%d}"


def summary(r: Report, alerts: Sequence[Alert] | None = None) -> dict[str, Any]:
    """The report's KPI statuses (and alerts) as JSON-ready data."""
    kpis = [
        {
            "metric": row["metric"],
            "name": str(row["name"]),
            "status": str(row["status"]),
            "value": _sig(row["value"]),
            "target": _sig(row["target"]),
            "period_start": _day(row["period_start"]),
            "rule": str(row["rule"]),
            "reason": str(row["reason"]),
        }
        for _, row in r.status.iterrows()
    ]
    out: dict[str, Any] = {
        "plan": r.plan.name, "department": r.department, "grain": r.grain, "period_end": r.as_of,
        "kpis": kpis,
    }  # fmt: skip
    if alerts is not None:
        out["alerts"] = [{**a.to_dict(), "value": _sig(a.value), "threshold": _sig(a.threshold)} for a in alerts]
    return out


def publish(r: Report, alerts: Sequence[Alert] | None = None) -> None:
    """Display the summary as a :data:`SUMMARY_MIMETYPE` output that ``kpinb run`` collects.

    Nothing visible: JupyterLab shows nothing for the mimetype and the HTML export drops it.
    """
    from IPython.display import display

    display({SUMMARY_MIMETYPE: summary(r, alerts)}, raw=True)
