"""The KPI dashboard: cards on top, supporting charts below, filters that update both in place.

>>> Dashboard("templates/plans/web.yml")          # in a notebook  # doctest: +SKIP
>>> Dashboard(plan).to_html("reports/web.html")   # a static, offline copy  # doctest: +SKIP

Data comes from a :class:`~kpinb.widgets._cube.Cube`: additive metrics are computed once per
grain by every dimension and filtered in pandas; the others are recomputed by the engine per
set of filtered dimensions and cached (see that module).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from kpinb._io import write_atomic
from kpinb.definitions.model import Grain, Plan
from kpinb.engine.cube import Cube, filter_label
from kpinb.errors import KpinbError
from kpinb.scorecard.evaluation import Anomaly, Scorecard, TreeNode
from kpinb.views import charts
from kpinb.views.cards import kpi_cards
from kpinb.views.decisions import insights_html, objectives_html, tree_figure
from kpinb.views.kit import display_unit, esc, human_name, name_at_grain
from kpinb.widgets._clicks import ClickBridge
from kpinb.widgets.notes import NoteForm

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["Dashboard"]

GRAINS = ("week", "month", "quarter", "year")
FIGURES = ("trend", "breakdown", "benchmark", "drivers")
MIMETYPE = "application/vnd.plotly.v1+json"
INSIGHTS = 5
"""How many of the department's insights the dashboard lists under the objectives."""



def _classed(widget: Any, *classes: str) -> Any:
    for c in classes:
        widget.add_class(c)
    return widget


_THEMELESS = {
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"color": "#7b8794"},
}
"""Layout over a figure in JupyterLab: no white block in the dark theme, and a grey that reads on
both (the static copy and the reports keep the white template)."""
_THEMELESS_GRID = {"gridcolor": "rgba(128,128,128,0.22)", "linecolor": "rgba(128,128,128,0.3)",
                   "zerolinecolor": "rgba(128,128,128,0.35)"}  # fmt: skip

STYLE = """<style>
.kpinb-dashboard .widget-html-content { line-height: 1.4; }
.kpinb-dashboard .kpinb-card { cursor: pointer; }
.kpinb-dashboard .kpinb-filters .widget-label { color: var(--jp-ui-font-color1, #3c4043); }
</style>"""
"""Tighter lines than JupyterLab's widget default (28 px per line) and clickable cards."""


def _bundle(fig: go.Figure, name: str, width: int) -> dict[str, Any]:
    """A display_data output holding ``fig`` as plotly's mimetype at ``width`` pixels (JSON-clean)."""
    spec = json.loads(fig.to_json())  # plotly's encoder: numpy, dates and NaN (as null) made JSON
    layout = spec.get("layout", {})
    font = {**layout.get("font", {}), **_THEMELESS["font"]}
    names = {k for k in layout if k.startswith(("xaxis", "yaxis"))} | {"xaxis", "yaxis"}
    axes = {k: {**layout.get(k, {}), **_THEMELESS_GRID} for k in names}
    layout.pop("template", None)  # its white backgrounds and dark text are what the overrides replace
    spec["layout"] = {**layout, **_THEMELESS, **axes, "font": font, "width": width}
    spec["config"] = {"responsive": False, "displaylogo": False}
    data = {MIMETYPE: spec, "text/plain": f"<kpinb {name} chart: {fig.layout.title.text or name}>"}
    return {"output_type": "display_data", "data": data, "metadata": {}}


class Dashboard(widgets.VBox):
    """KPI cards on top and supporting charts below, with filters, for one plan.

    Parameters
    ----------
    plan : a :class:`~kpinb.model.Plan` or the path of a plan file.
    grain : the grain (``week``, ``month``, ``quarter``, ``year``) of the charts, and of each card
        when it is as coarse as the KPI's own (a monthly KPI by quarter: a rate judged on the
        quarter, a total shown but not judged); a finer one leaves the card at the KPI's grain.
    focus : the metric the charts show first (default the first KPI).
    figure_width : pixel width of each chart in the notebook (they wrap to the cell's width);
        the static :meth:`to_html` copy sizes them to the page instead.

    Attributes
    ----------
    cube : the cached aggregates (``cube.calls`` lists the engine queries made for what was
        shown). After the first load it computes, in a background thread, what a filter on one
        dimension needs (``cube.background_calls``; ``cube.wait()`` waits for it), so the first
        filter on a dimension needs no query of its own.
    status : the cards' KPI statuses (the frame of :func:`kpinb.status.evaluate`, adjusted for filters).
    figures : the current plain plotly figures by name (trend, breakdown, benchmark, drivers).
    views : the ``Output`` widget showing each figure, by name. It holds one output, the figure
        as plotly's mimetype (``application/vnd.plotly.v1+json``) drawn by JupyterLab's plotly
        extension, so only the figure's JSON reaches the browser; a filter change replaces that
        output in place.
    last_update_seconds : how long the last filter change took, from the value change to cards
        and figures updated.
    scorecard : the scorecard behind the cards (every KPI, current filters and grain).
    objectives, insights : HTML widgets: the objectives rolled up from the scorecard and the
        department's top insights (both follow filters and grain, as the scorecard does).
    tree : the metric tree figure (an outline of boxes in status colours), shown in ``views["tree"]``.
    note_form : the :class:`~kpinb.widgets.notes.NoteForm` for the plan's notes file (None when
        the plan was not loaded from a file); the focused KPI's notes are markers on its trend.

    Filters: a month range, the grain (of the charts, and of the cards when it is coarser than a
    KPI's own: the scorecard re-grains it), one dropdown per dimension that at least one KPI's data
    has (``All`` + members), and the metric and dimension the charts focus on. Clicks: a card
    focuses the charts on its KPI, and so does a KPI or supporting-metric node of the metric tree;
    a bar of the breakdown filters the dashboard to that member. A filter on a
    dimension a metric's source lacks leaves that metric unfiltered (the note under the cards
    says so). A filtered total (revenue of one region) is not judged against the whole KPI's
    target: its card shows ``Not judged``; rates and averages keep their status.
    """

    def __init__(
        self,
        plan: Plan | str | Path,
        grain: str = "month",
        *,
        focus: str | None = None,
        figure_width: int = 480,
    ) -> None:
        from kpinb.definitions.plan import load_plan

        super().__init__()
        self.add_class("kpinb-dashboard")
        self.plan = load_plan(plan)
        if not self.plan.kpis:
            raise KpinbError(f"plan {self.plan.name!r} has no KPIs to show. Add some under `kpis:`.")
        self.cube = Cube(self.plan)
        self.registry = self.cube.registry
        self.status: pd.DataFrame | None = None
        self.figures: dict[str, go.Figure] = {}
        self.last_update_seconds = math.nan
        self.figure_width = figure_width
        self.timings: list[float] = []
        self._benchmarks: pd.DataFrame | None = None
        self._muted = False
        self.scorecard: Scorecard | None = None
        self._decided: tuple[Any, ...] | None = None
        self.tree: go.Figure | None = None
        self.note_form = NoteForm(self.plan) if self.plan.file is not None else None

        totals = self.cube.frame("month", metrics=[k.metric for k in self.plan.kpis])
        months = sorted(totals.loc[totals["value"].notna(), "period_start"].unique())
        if not months:
            months = sorted(totals["period_start"].unique())
        options = [(f"{m:%b %Y}", m) for m in (_ts(x) for x in months)]  # "Jan 2023", as people write it
        self.range = _classed(
            widgets.SelectionRangeSlider(
                options=options,
                index=(0, len(options) - 1),
                description="Months",
                continuous_update=False,
                layout=widgets.Layout(width="420px"),
            ),
            "kpinb-filter-range",
        )
        if Grain(grain).value not in GRAINS:
            raise KpinbError(f"grain {grain!r}: the dashboard shows {', '.join(GRAINS)}.")
        self.grain = _classed(
            widgets.Dropdown(
                options=list(GRAINS),
                value=Grain(grain).value,
                description="Grain",
                layout=widgets.Layout(width="200px"),
            ),
            "kpinb-filter-grain",
        )
        members = self.cube.members()
        self.dimension_filters: dict[str, widgets.Dropdown] = {}
        for d in self.applicable_dimensions:
            self.dimension_filters[d] = _classed(
                widgets.Dropdown(
                    options=[("All", ""), *((m, m) for m in members.get(d, []))],
                    value="",
                    description=human_name(d),
                    style={"description_width": "initial"},  # the whole label, never "product c…"
                    layout=widgets.Layout(width="auto", min_width="200px", max_width="320px"),
                ),
                f"kpinb-filter-{d}",
            )
        focus_ids = list(dict.fromkeys([k.metric for k in self.plan.kpis] + self.cube.metrics))
        self.focus = _classed(
            widgets.Dropdown(
                options=[(self._name(m), m) for m in focus_ids],
                value=focus or focus_ids[0],
                description="Chart",
                layout=widgets.Layout(width="340px"),
            ),
            "kpinb-focus",
        )
        self.breakdown = _classed(
            widgets.Dropdown(options=[], description="By", layout=widgets.Layout(width="240px")), "kpinb-breakdown"
        )
        self._set_breakdown_options()

        self.clicks = ClickBridge()
        self.clicks.on_msg(self._clicked)
        self._focus_style = widgets.HTML(self._focus_css())
        self.header = widgets.HTML(
            f'<div style="font-size:18px;font-weight:700">{esc(self.plan.name)}</div>'
            f'<div style="color:#5f6368">department: {esc(self.plan.department)}</div>'
        )
        self.cards = _classed(widgets.HTML(), "kpinb-cards-widget")
        self.notes = _classed(widgets.HTML(), "kpinb-dashboard-notes")
        self.objectives = _classed(widgets.HTML(), "kpinb-dashboard-objectives")
        self.insights = _classed(widgets.HTML(), "kpinb-dashboard-insights")
        started = time.perf_counter()
        notes = self._compute()
        # each Output starts with its figure: the page receives it with the widget's state
        self.views: dict[str, widgets.Output] = {}
        for name in FIGURES:
            self.views[name] = _classed(
                widgets.Output(layout=widgets.Layout(width=f"{figure_width}px", min_height="60px")),
                f"kpinb-fig-{name}",
            )
            self._draw(name, self.figures[name])
        self.views["tree"] = _classed(
            widgets.Output(layout=widgets.Layout(width=f"{2 * figure_width}px", min_height="60px")), "kpinb-fig-tree"
        )
        self._draw_tree()
        filters = widgets.HBox(
            [self.range, self.grain, *self.dimension_filters.values()], layout=widgets.Layout(flex_flow="row wrap")
        )
        # fixed-width charts that wrap: plotly cannot measure a grid cell before it is laid out
        grid = widgets.Box(
            [self.views[n] for n in FIGURES],
            layout=widgets.Layout(flex_flow="row wrap", width="100%"),
        )
        self.children = [
            widgets.HTML(STYLE),
            self._focus_style,
            self.clicks,
            self.header,
            _classed(filters, "kpinb-filters"),
            self.objectives,
            self.insights,
            self.cards,
            self.notes,
            widgets.HTML('<div style="font-weight:600;margin-top:8px">Supporting metrics</div>'),
            widgets.HBox([self.focus, self.breakdown]),
            grid,
            self.views["tree"],
        ]
        if self.note_form is not None:
            self.note_form.add_class("kpinb-note-form")
            self.note_form.kpi.layout.width = "420px"  # the whole KPI name, never "Monthly recurring revenue ("
            self.note_form.kpi.value = self.focus.value if self.focus.value in self.note_form.names else None
            self.note_form.on_add(lambda _note: self.refresh())
            self.children = [
                *self.children,
                widgets.HTML('<div style="font-weight:600;margin-top:8px">Notes</div>'),
                self.note_form,
            ]
        for w in (self.range, self.grain, *self.dimension_filters.values(), self.breakdown):
            w.observe(self._changed, names="value")
        self.focus.observe(self._focus_changed, names="value")
        self.notes.value = notes
        self.last_update_seconds = time.perf_counter() - started
        self._precompute()

    def _precompute(self) -> None:
        """Start the cube's background precompute of one-dimension filters at the grains shown
        (the KPIs' grains for the cards, the charts' grain) and, when the focus metric does not add
        up, of the breakdown chart under such a filter: the first filter on a dimension is then a
        lookup."""
        grains = list(dict.fromkeys([*(k.grain.value for k in self.plan.kpis), self.grain.value]))
        focus = self.focus.value
        exact_focus = self.cube.kinds.get(focus) == "exact"
        groups: list[tuple[str, tuple[str, ...]]] = []
        for d, w in self.dimension_filters.items():
            if len(w.options) < 2:
                continue
            groups.extend((g, (d,)) for g in grains)
            dims = self.cube.dims_of.get(focus, ())
            if exact_focus and d in dims:  # the breakdown chart once ``d`` is filtered (see _set_breakdown_options)
                current = self.breakdown.value
                b = current if current in dims and current != d else next((x for x in dims if x != d), None)
                if b is not None:
                    groups.append((self.grain.value, (d, b)))
        self.cube.precompute(groups)

    # --- state ----------------------------------------------------------------------------------

    def _name(self, mid: str, grain: str | None = None) -> str:
        """The metric's name; at ``grain``, a total's period word follows it ("Quarterly sales
        revenue" by quarter), while an average such as MRR keeps its own ("Monthly recurring ...")."""
        from kpinb.definitions.analysis import additivity

        k = next((k for k in self.plan.kpis if k.metric == mid), None)
        m = self.registry.get(mid)
        name = k.name if k is not None and k.name else (m.name if m is not None else mid)
        if grain is None or m is None:
            return name
        return name_at_grain(name, grain, additivity(m, self.registry) in ("sum", "distinct"))

    @property
    def applicable_dimensions(self) -> list[str]:
        """The dimensions at least one KPI's data has (plan order): the filters worth offering.
        A dimension no KPI has would filter nothing on the cards and only add notes."""
        kpi_dims = {d for k in self.plan.kpis for d in self.cube.dims_of.get(k.metric, ())}
        return [d for d in self.cube.dimensions if d in kpi_dims]

    def card_grain(self, kpi: Any) -> str:
        """The grain a KPI's card is judged at: the grain control's when it is as coarse as the
        KPI's own (a monthly KPI viewed by quarter: the scorecard re-grains it), else the KPI's."""
        own, chosen = kpi.grain.value, self.grain.value
        order = ("day", *GRAINS)
        return chosen if order.index(chosen) >= order.index(own) else own

    @property
    def filters(self) -> dict[str, str]:
        """The active dimension filters: dimension -> member."""
        return {d: w.value for d, w in self.dimension_filters.items() if w.value}

    @property
    def months(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first day of the first month and the last day of the last month selected."""
        import pandas as pd

        first, last = self.range.value
        return _ts(first), _ts(last) + pd.offsets.MonthEnd(0)

    def _set_breakdown_options(self) -> None:
        dims = list(self.cube.dims_of.get(self.focus.value, ()))
        current = self.breakdown.value
        self._muted = True
        try:
            self.breakdown.options = dims
            unfiltered = [d for d in dims if d not in self.filters]
            keep = current in dims and (current in unfiltered or not unfiltered)
            self.breakdown.value = current if keep else (unfiltered or dims or [None])[0]
        finally:
            self._muted = False

    def _changed(self, change: Any = None) -> None:
        if self._muted:
            return
        owner = getattr(change, "owner", None) if not isinstance(change, dict) else change.get("owner")
        if owner in self.dimension_filters.values() and self.breakdown.value in self.filters:
            self._set_breakdown_options()  # breaking down by a filtered dimension would show one bar
        if owner in (self.grain, self.breakdown):
            self._precompute()  # what a first filter needs now (those done or started are skipped)
        self.refresh()

    def _clicked(self, _widget: Any, content: Mapping[str, Any], _buffers: Any = None) -> None:
        """A click in the page: a card or a node of the metric tree focuses the charts on its
        metric (a KPI or a supporting metric); a bar of the breakdown
        filters the dashboard to that member (DESIGN.md, "Clicks")."""
        if not isinstance(content, Mapping):
            return
        if content.get("kind") in ("card", "node"):
            metric = str(content.get("metric") or "")
            if metric in [v for _, v in self.focus.options] and metric != self.focus.value:
                self.focus.value = metric
        elif content.get("kind") == "bar":
            dim, member = self.breakdown.value, str(content.get("member") or "")
            box = self.dimension_filters.get(dim) if dim else None
            if box is not None and member in [v for _, v in box.options]:
                box.value = member

    def _focus_css(self) -> str:
        """The focused KPI's card outlined, so the page says which card the charts are about."""
        mid = str(self.focus.value or "")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", mid):
            return ""
        return (
            f'<style>.kpinb-dashboard .kpinb-card[data-metric="{mid}"] '
            "{ box-shadow: 0 0 0 2px #1a73e8; }</style>"
        )

    def _focus_changed(self, _: Any = None) -> None:
        self._focus_style.value = self._focus_css()
        if self.note_form is not None and self.focus.value in self.note_form.names:
            self.note_form.kpi.value = self.focus.value  # a note is most often about the KPI in view
        self._set_breakdown_options()
        self._precompute()
        self.refresh()

    # --- refresh --------------------------------------------------------------------------------

    def refresh(self) -> float:
        """Recompute cards and figures for the current filters; returns the seconds it took."""
        started = time.perf_counter()
        notes = self._compute()
        for name, fig in self.figures.items():
            self._draw(name, fig)
        self._draw_tree()
        self.notes.value = notes
        self.last_update_seconds = time.perf_counter() - started
        self.timings.append(self.last_update_seconds)
        return self.last_update_seconds

    def _compute(self) -> str:
        """Statuses, the cards' HTML and the figures for the current filters; returns the notes' HTML."""
        filters = self.filters
        start, end = self.months
        notes: list[str] = []
        self.status, cards_html = self._cards(filters, end, notes)
        self.cards.value = cards_html
        view = (tuple(sorted(filters.items())), self.grain.value, end)
        if view != self._decided:  # a focus change or a new note leaves the scorecard as it was
            self._decisions()
            self._decided = view
        self.figures = self._figures(filters, start, end, notes)
        return "".join(f'<div style="color:#5f6368;font-size:12px">{esc(n)}</div>' for n in notes)

    def _draw(self, name: str, fig: go.Figure) -> None:
        """Show ``fig`` in its Output widget, replacing the chart there in one state update.

        Setting ``outputs`` (rather than ``clear_output`` + ``display``) needs no IPython display
        call, so nothing is printed outside a notebook, and the browser swaps old for new at once.
        """
        self.views[name].outputs = (_bundle(fig, name, self.figure_width),)

    def _draw_tree(self) -> None:
        """Show the metric tree, only when it changed (a focus change leaves it as it is)."""
        if self.tree is None:
            self.views["tree"].outputs = ()
            return
        bundle = _bundle(self.tree, "tree", 2 * self.figure_width)
        if self.views["tree"].outputs != (bundle,):
            self.views["tree"].outputs = (bundle,)

    def _decisions(self) -> None:
        """The objectives' roll-up, the department's insights and the metric tree, from the
        scorecard behind the cards (so they follow the filters and the grain)."""
        from kpinb.outputs.insights import for_department

        card = self.scorecard
        if card is None:
            self.objectives.value = self.insights.value = ""
            self.tree = None
            return
        rollup = objectives_html(card)
        heading = '<div style="font-weight:600;margin-top:8px">Objectives</div>'
        self.objectives.value = heading + rollup if rollup else ""
        parts = card.parts if isinstance(card, _Cards) else (card,)  # each KPI's trends at its own grain
        found = sorted((i for p in parts for i in for_department(p, limit=INSIGHTS)), key=lambda i: -i.score)
        self.insights.value = insights_html(found[:INSIGHTS])
        self.tree = tree_figure(card)

    def _cards(self, filters: Mapping[str, str], end: pd.Timestamp, notes: list[str]) -> tuple[pd.DataFrame, str]:
        import pandas as pd

        from kpinb import scorecard
        from kpinb.analytics.status import STATUS_COLUMNS

        label = filter_label({human_name(d): v for d, v in filters.items()})
        grains: dict[str, list[str]] = {}
        for k in self.plan.kpis:
            grains.setdefault(self.card_grain(k), []).append(k.metric)
        statuses, blocks, cards = [], [], []
        known = set(self.cube.metrics)
        for g, ids in grains.items():
            supporting = [s for k in self.plan.kpis if k.metric in ids for s in k.supporting if s in known]
            frame = self.cube.frame(g, filters, metrics=list(dict.fromkeys([*ids, *supporting])))
            unfiltered = frame.attrs.get("unfiltered", {})
            frame = frame[frame["period_start"] <= end].reset_index(drop=True)
            frame.attrs.update(grain=g, by=())
            for mid in ids:
                if unfiltered.get(mid):
                    notes.append(
                        f"{self._name(mid)} is not filtered by "
                        f"{', '.join(human_name(d, capital=False) for d in unfiltered[mid])}: "
                        "its data has no such column."
                    )
            card = scorecard.evaluate(self.plan, frame, kpis=ids, filters=filters, unfiltered=unfiltered, pace=False)
            cards.append(card)
            status = card.status_frame()
            statuses.append(status)
            block = kpi_cards(status, frame[frame["metric"].isin(ids)], self.registry, currency=self.plan.currency)
            if len(grains) > 1:
                block = f'<div style="font-weight:600;margin:6px 0 2px">per {esc(g)}</div>{block}'
            blocks.append(block)
        if label:
            notes.insert(0, f"Filtered: {label}.")
        self.scorecard = _one_card(cards)
        out = pd.concat(statuses, ignore_index=True) if statuses else pd.DataFrame(columns=list(STATUS_COLUMNS))
        return out, "".join(blocks)

    def _figures(
        self, filters: Mapping[str, str], start: pd.Timestamp, end: pd.Timestamp, notes: list[str]
    ) -> dict[str, go.Figure]:
        from kpinb.engine.calendar import period_start

        g = self.grain.value
        mid = self.focus.value
        dim = self.breakdown.value
        m = self.registry[mid]
        name, unit = self._name(mid, g), display_unit(m, None, self.plan.currency)
        first = period_start(start, g)

        def cut(df: pd.DataFrame) -> pd.DataFrame:
            out = df[(df["period_start"] >= first) & (df["period_start"] <= end)].reset_index(drop=True)
            out.attrs.update(df.attrs)
            return out

        total = cut(self.cube.frame(g, filters, metrics=[mid]))
        total.attrs.update(by=())
        target, forecast, thresholds = self._target_and_forecast(mid, total, g, filters)
        figs = {
            "trend": charts.trend(
                total, mid, target=target, forecast=forecast, name=name, unit=unit, thresholds=thresholds,
                notes=self._notes_on(mid, notes),
            )
        }  # fmt: skip
        if dim:
            by = cut(self.cube.frame(g, filters, by=[dim], metrics=[mid]))
            by.attrs.update(by=(dim,))
            figs["breakdown"] = charts.breakdown(by, mid, dim, name=name, unit=unit)
        else:
            by = None
            figs["breakdown"] = charts.empty_figure(
                f"{name} by dimension", "Its data has no dimension to break down by"
            )
        figs["benchmark"] = self._benchmark_figure(mid, total, by, dim, unit)
        figs["drivers"] = self._drivers_figure(mid, total, by, unit)
        return figs

    def _notes_on(self, mid: str, messages: list[str]) -> list[tuple[dt.date, str]]:
        """The plan's notes on ``mid`` as ``(day, text)`` for its trend; a notes file with
        mistakes adds its error to ``messages`` (the note under the cards) and shows none."""
        from kpinb.definitions.notes import read_notes

        if self.note_form is None:
            return []
        try:
            notes = read_notes(self.plan, self.note_form.path)
        except KpinbError as e:
            messages.append(str(e))
            return []
        return [(n.period, f"{n.author}: {n.text}" if n.author else n.text) for n in notes if n.kpi == mid]

    def _target_and_forecast(
        self, mid: str, total: pd.DataFrame, grain: str, filters: Mapping[str, str]
    ) -> tuple[Any, Any, Any]:
        """The target path, forecast and thresholds the trend draws: only where the scorecard
        judges the KPI at the chart's grain (its own, or a coarser one for a rate or an average);
        a slice or a re-grained total is not judged against the whole KPI's target, so neither."""
        import pandas as pd

        from kpinb import scorecard
        from kpinb.analytics.kpis import direction_of, series_of
        from kpinb.scorecard.evaluation import NOT_JUDGED

        kpi = next((k for k in self.plan.kpis if k.metric == mid), None)
        if kpi is None or kpi.target is None or self.card_grain(kpi) != grain:
            return None, None, None
        if set(filters) & set(self.cube.dims_of[mid]):
            return None, None, None  # a slice is not judged against the whole KPI's target (the scorecard's rule)
        try:
            judged = scorecard.evaluate(self.plan, total, kpis=[mid], pace=False).get(mid)
        except (KpinbError, KeyError):
            return None, None, None
        if judged.status == NOT_JUDGED:
            return None, None, None
        th = kpi.thresholds
        thresholds = None
        if th is not None and (th.warning is not None or th.critical is not None):
            direction = direction_of(kpi, self.plan).value
            thresholds = {"warning": th.warning, "critical": th.critical, "direction": direction}
        settled = total[total["complete"].fillna(False).astype(bool)] if "complete" in total.columns else total
        values = series_of(settled, mid)  # forecast from final values, not a month still settling
        fc = None
        history = values.dropna()
        if len(history) and kpi.target.by is not None and pd.Timestamp(kpi.target.by) > history.index.max():
            from kpinb.analytics.forecast import forecast

            try:
                fc = forecast(history, grain, until=kpi.target.by)
            except (KpinbError, ValueError, ArithmeticError):
                fc = None
        return judged.target_path, fc, thresholds

    def _benchmark_figure(
        self, mid: str, total: pd.DataFrame, by: pd.DataFrame | None, dim: str | None, unit: str
    ) -> go.Figure:
        from kpinb.analytics import benchmark

        if self.plan.benchmarks and not self.filters:
            try:
                if self._benchmarks is None:
                    self._benchmarks = benchmark.load_benchmarks(self.plan.resolve(self.plan.benchmarks))
                ext = benchmark.external(total, self._benchmarks, directions=self.plan)
                if len(ext):
                    return charts.benchmark_position(ext, title=f"{self._name(mid)} against the benchmark", unit=unit)
            except KpinbError:
                pass
        # without an external table: the KPI against its own past (its members against each other
        # would only repeat the breakdown chart beside it)
        try:
            hist = benchmark.history(total, directions=self.plan)
            hist = hist[hist["metric"] == mid] if "metric" in hist.columns else hist
            if len(hist) and hist[["last_year_value", "best_value"]].notna().any().any():
                title = f"{self._name(mid, self.grain.value)}: against its past"
                return charts.benchmark_position(hist, title=title, unit=unit)
        except (KpinbError, KeyError):
            pass
        return charts.empty_figure(f"{self._name(mid)}: benchmark", "No benchmark or history for this selection")

    def _drivers_figure(self, mid: str, total: pd.DataFrame, by: pd.DataFrame | None, unit: str) -> go.Figure:
        from kpinb import scorecard
        from kpinb.analytics.kpis import direction_of

        have = sorted(total.loc[total["value"].notna(), "period_start"].unique())
        title = f"What moved {self._name(mid)}"
        if len(have) < 2:
            return charts.empty_figure(title, "Needs two periods with data")
        pa, pb = have[-2], have[-1]
        kpi = next((k for k in self.plan.kpis if k.metric == mid), None)
        direction = (direction_of(kpi, self.plan) if kpi is not None else self.registry[mid].direction).value
        frame = scorecard.drivers(total, by, mid, pa, pb, plan=self.plan)
        if frame is None:
            return charts.empty_figure(
                title, "Its change cannot be split: an average or distinct count does not add up"
            )
        frame.attrs.setdefault("grain", self.grain.value)  # periods in the title as people read them
        return charts.drivers(frame, direction=direction, unit=unit, name=self._name(mid, self.grain.value))

    # --- static export --------------------------------------------------------------------------

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write the dashboard as it is now to one self-contained HTML file (atomically).

        plotly.js is inlined once (the basic bundle shipped in ``kpinb/static`` when the charts
        only use its trace types, else the installed plotly package's), never loaded from a CDN,
        so the file opens offline; objectives, insights, cards and notes are plain HTML with every
        text escaped; the charts and the metric tree follow them as in the notebook.
        """
        start, end = self.months
        heading = title or self.plan.name
        label = filter_label({human_name(d): v for d, v in self.filters.items()}) or "none"
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(heading)}</title>",
            "<style>body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:16px;color:#202124}"
            # the charts' titles and labels are laid out for their width in the notebook
            f".kpinb-figs{{display:grid;grid-template-columns:repeat(auto-fill,minmax({self.figure_width}px,1fr));"
            "gap:8px}"
            ".kpinb-figs>div{min-width:0}</style>",
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
            f"<script>{charts.plotly_js([*self.figures.values(), *([self.tree] if self.tree else [])])}</script>",
            "</head><body>",
            f"<h1 style='font-size:20px;margin:0'>{esc(heading)}</h1>",
            f"<div style='color:#5f6368'>department {esc(self.plan.department)} · {start:%b %Y} to "
            f"{end:%b %Y} · per {esc(self.grain.value)} · filters: {esc(label)} · generated "
            f"{dt.datetime.now():%Y-%m-%d %H:%M}</div>",
            self.objectives.value,
            self.insights.value,
            self.cards.value,
            self.notes.value,
            f"<h2 style='font-size:15px'>Supporting metrics: {esc(self._name(self.focus.value))}</h2>",
            '<div class="kpinb-figs">',
        ]
        for name in FIGURES:
            parts.append(f'<div class="kpinb-fig-{name}">{charts.figure_html(self.figures[name])}</div>')
        parts.append("</div>")
        if self.tree is not None:
            parts.append(f'<div class="kpinb-fig-tree">{charts.figure_html(self.tree)}</div>')
        parts.append("</body></html>")
        return write_atomic(path, "\n".join(parts))


@dataclasses.dataclass(frozen=True)
class _Cards(Scorecard):
    """The scorecards of the cards' grains as one, for what reads every KPI: the objectives'
    roll-up (from the evaluations), the anomalies and the tree (each KPI's branch from the
    scorecard of its grain, so a supporting metric's value is at that grain)."""

    parts: tuple[Scorecard, ...] = ()

    def anomalies(self) -> tuple[Anomaly, ...]:
        return tuple(a for p in self.parts for a in p.anomalies())

    def tree(self) -> tuple[TreeNode, ...]:
        head = [n for n in super().tree() if n.kind in ("plan", "objective")]
        order = {k.metric: i for i, k in enumerate(self.plan.kpis)}
        branches = [n for p in self.parts for n in p.tree() if n.kind in ("kpi", "supporting")]
        branches.sort(key=lambda n: order.get(n.id.split("/")[0].removeprefix("kpi:"), len(order)))  # plan order
        return (*head, *branches)


def _one_card(cards: list[Scorecard]) -> Scorecard | None:
    """The cards' scorecards as one: the only one, or a :class:`_Cards` of several grains."""
    import pandas as pd

    if len(cards) < 2:
        return cards[0] if cards else None
    frame = pd.concat([c.frame for c in cards], ignore_index=True)
    frame = frame.drop_duplicates(subset=["metric", "period_start"], keep="first").reset_index(drop=True)
    frame.attrs.update(cards[0].frame.attrs)
    order = {k.metric: i for i, k in enumerate(cards[0].plan.kpis)}
    every = (e for c in cards for e in c.evaluations)
    evaluations = tuple(sorted(every, key=lambda e: order.get(e.metric, len(order))))
    return _Cards(**{**{f.name: getattr(cards[0], f.name) for f in dataclasses.fields(Scorecard)},
                     "evaluations": evaluations, "frame": frame, "parts": tuple(cards)})  # fmt: skip


def _ts(x: Any) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(x)
