"""From numbers to decisions on a page: the objectives rolled up from their KPIs, the metric tree
(plan -> objectives -> KPIs -> supporting metrics) as one figure, and the written insights. They
draw what the scorecard and :mod:`kpinb.outputs.insights` decided; nothing is judged here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kpinb._numbers import format_value
from kpinb.views.kit import FONT, NEUTRAL, STATUS_STYLE, esc, pill

if TYPE_CHECKING:
    from kpinb.outputs.insights import Insight
    from kpinb.scorecard.evaluation import Scorecard

__all__ = ["insights_html", "objectives_html", "tree_figure"]


def _style(status: str) -> tuple[str, str, str]:
    return STATUS_STYLE.get(status, (status.replace("_", " ").capitalize(), NEUTRAL, "#f1f3f4"))


def objectives_html(card: Scorecard) -> str:
    """Each objective of the plan with its roll-up: a progress bar (0-100 %), its status and why,
    and the KPIs it rolls up. Empty when the plan states no objective."""
    rows = []
    for o in card.objectives():
        label, color, background = _style(o.status)
        share = 0.0 if math.isnan(o.progress) else min(max(o.progress, 0.0), 1.0)
        shown = "no progress to show" if math.isnan(o.progress) else f"{format_value(share, 'percent')} of the way"
        names = ", ".join(esc(card.get(m).name) for m in o.kpis)
        rows.append(
            f'<div class="kpinb-objective" style="margin:6px 0 10px">'
            f'<div style="display:flex;gap:8px;align-items:baseline;flex-wrap:wrap">'
            f"<strong>{esc(o.statement)}</strong> {pill(label, color, background)}"
            f'<span style="opacity:.75">{esc(shown)}</span></div>'
            f'<div role="progressbar" aria-valuenow="{round(share * 100)}" aria-valuemin="0" aria-valuemax="100" '
            f'style="height:6px;border-radius:3px;background:rgba(127,127,127,.25);margin:4px 0;max-width:480px">'
            f'<div style="width:{share * 100:.1f}%;height:6px;border-radius:3px;background:{color}"></div></div>'
            f'<div style="font-size:12px;opacity:.8">{esc(o.reason)} KPIs: {names or "none"}.</div></div>'
        )
    return f'<div class="kpinb-objectives" style="{FONT};line-height:1.35">{"".join(rows)}</div>' if rows else ""


def insights_html(items: Sequence[Insight], title: str = "What the numbers say") -> str:
    """The insights as a short list, each sentence with the number behind it."""
    if not items:
        return ""
    lis = "".join(
        f'<li style="margin:3px 0">{esc(i.text)} <span style="opacity:.7;white-space:nowrap">'
        f"({esc(i.shown)})</span></li>"
        for i in items
    )
    return (
        f'<div class="kpinb-insights" style="{FONT};line-height:1.35"><strong>{esc(title)}</strong>'
        f'<ul style="margin:4px 0 8px;padding-left:20px">{lis}</ul></div>'
    )


def tree_figure(card: Scorecard, height: int = 420) -> Any:
    """The metric tree as one plotly icicle: each box in its status colour, the value and status on
    hover; ``customdata`` holds each node's metric id (the dashboard focuses it on click)."""
    import plotly.graph_objects as go

    from kpinb.views.charts import _figure

    nodes = card.tree()
    labels, colors, hover, metric = [], [], [], []
    for n in nodes:
        label, color, _ = _style(n.status)
        value = "" if math.isnan(n.value) else format_value(n.value, n.unit)
        flag = " · unusual" if n.unusual else ""
        labels.append(esc(n.name if len(n.name) <= 40 else n.name[:39] + "…"))  # plotly reads tags in text
        colors.append(color if n.kind in ("objective", "kpi") else "#9aa0a6")
        hover.append(f"{esc(n.name)}<br>{esc(label)}{(' · ' + esc(value)) if value else ''}{flag}")
        metric.append(n.metric or "")
    # the charts' common layout and small template, not plotly's default one stored in every figure
    fig = _figure("Objectives, KPIs and what drives them", height, margin={"l": 4, "r": 4, "t": 56, "b": 4})
    fig.add_trace(
        go.Icicle(
            ids=[n.id for n in nodes], parents=[n.parent for n in nodes], labels=labels,
            marker={"colors": colors}, hovertext=hover, hoverinfo="text", customdata=metric,
            tiling={"orientation": "h"}, textfont={"color": "#fff"}, root={"color": "#5f6368"},
        )
    )  # fmt: skip
    return fig
