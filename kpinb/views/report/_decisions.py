"""A report's decisions: the objectives rolled up from the KPIs, the metric tree, the written
insights, the goal history and the team's notes (drawn by :mod:`kpinb.views.decisions`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kpinb.views.report._page import _html, table_html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.views.report._load import Report


def objectives(r: Report) -> Any:
    """Each objective's progress, status and reason, from its KPIs' evaluations."""
    from kpinb.views.decisions import objectives_html

    body = objectives_html(r.scorecard)
    return _html(body or "<p>The plan states no objectives: link each KPI to one with <code>objective:</code>.</p>")


def insights(r: Report, breakdowns: Mapping[str, pd.DataFrame] | None = None, limit: int = 5) -> Any:
    """The few sentences that matter most across the KPIs, each with the number behind it."""
    from kpinb.outputs.insights import for_department
    from kpinb.views.decisions import insights_html

    return _html(insights_html(for_department(r.scorecard, breakdowns, limit=limit)) or "<p>Nothing unusual.</p>")


def metric_tree(r: Report) -> Any:
    """The plan's objectives, KPIs and supporting metrics as one figure in status colours."""
    from kpinb.views.decisions import tree_figure

    return tree_figure(r.scorecard)


def target_changes_table(r: Report) -> Any:
    """When and how each KPI's target changed (the plan's goal history)."""
    from kpinb.analytics.review import target_changes

    df = target_changes(r.plan, [k.metric for k in r.kpis])
    if df.empty:
        return _html("<p>No target changed: no KPI has a goal history (<code>target:</code> as a list).</p>")
    rows = [[x.name, f"{x.effective:%Y-%m-%d}" if hasattr(x.effective, "strftime") else x.effective, x.change]
            for x in df.itertuples()]  # fmt: skip
    return _html(table_html(["KPI", "from", "change"], rows))  # cells escaped there


def notes_table(r: Report, limit: int = 20) -> Any:
    """The team's notes on the plan's KPIs (``<plan>.notes.csv``), newest first."""
    from kpinb.definitions.notes import read_notes

    names = {k.metric: (k.name or r.registry[k.metric].name) for k in r.kpis if k.metric in r.registry}
    notes = sorted(read_notes(r.plan), key=lambda n: n.period, reverse=True)[:limit]
    if not notes:
        return _html("<p>No notes yet: add them in the dashboard, or to the plan's <code>.notes.csv</code>.</p>")
    rows = [[names.get(n.kpi, n.kpi), f"{n.period:%Y-%m-%d}", n.author, n.text] for n in notes]
    return _html(table_html(["KPI", "period", "author", "note"], rows))  # cells escaped there
