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
    from kpinb.scorecard.evaluation import Scorecard, TreeNode

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


TREE_ROW = 28
"""Height of one node's row in the metric tree, in pixels."""
_TREE_RIGHT = 24
"""Where the tree's boxes end, in indent steps (one step per level, ~40 px on a 960 px chart)."""


def _rows(nodes: Sequence[TreeNode]) -> tuple[list[int], list[int]]:
    """Each node's row (depth first: a node, then its children in their order) and depth."""
    known = {n.id for n in nodes}
    children: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        children.setdefault(n.parent if n.parent in known else "", []).append(i)
    row, depth = [0] * len(nodes), [0] * len(nodes)
    stack, at = [(i, 0) for i in reversed(children.get("", []))], 0
    while stack:
        i, d = stack.pop()
        row[i], depth[i], at = at, d, at + 1
        stack.extend((c, d + 1) for c in reversed(children.get(nodes[i].id, [])))
    return row, depth


def tree_figure(card: Scorecard, row_height: int = TREE_ROW) -> Any:
    """The metric tree as an indented outline drawn with plotly's basic traces (so a report embeds
    the small plotly.js bundle): one box per node (a horizontal bar in its status colours, with
    its name, value and status), lines from each parent to its children, the same words on hover.
    ``customdata`` holds each node's metric id ("" for the plan and objectives): the dashboard
    focuses that metric on click."""
    import plotly.graph_objects as go

    from kpinb.views.charts import _figure

    nodes = card.tree()
    row, depth = _rows(nodes)
    texts, hover, fills, lines = [], [], [], []
    for n in nodes:
        label, color, background = _style(n.status)
        value = "" if math.isnan(n.value) else esc(format_value(n.value, n.unit))
        flag = "unusual" if n.unusual else ""
        judged = n.kind in ("objective", "kpi")
        name = esc(n.name if len(n.name) <= 60 else n.name[:59] + "…")  # plotly reads tags in text
        status = f'<span style="color:{color}"><b>{esc(label)}</b></span>' if judged else ""
        words = (name, f"<b>{value}</b>" if value else "", status, f"<i>{flag}</i>" if flag else "")
        texts.append("\u00a0" + "  ·  ".join(w for w in words if w))  # a space off the box's edge
        hover.append(f"{esc(n.name)}<br>" + " · ".join(w for w in (esc(label), value, flag) if w))
        fills.append(background)
        lines.append(color if judged else "#9aa0a6")
    edges_x: list[float | None] = []
    edges_y: list[float | None] = []
    index = {n.id: i for i, n in enumerate(nodes)}
    for i, n in enumerate(nodes):
        p = index.get(n.parent)
        if p is not None:  # down from under the parent's box, then right to the child's
            edges_x += [depth[p] + 0.5, depth[p] + 0.5, depth[i], None]
            edges_y += [row[p] + 0.375, row[i], row[i], None]
    height = 56 + 8 + row_height * len(nodes)
    # the charts' common layout and small template, not plotly's default one stored in every figure
    fig = _figure(
        "Objectives, KPIs and what drives them", height, margin={"l": 4, "r": 4, "t": 56, "b": 8},
        showlegend=False, hovermode="closest", dragmode=False,
        xaxis={"visible": False, "fixedrange": True, "range": [-0.25, _TREE_RIGHT + 0.25]},
        yaxis={"visible": False, "fixedrange": True, "range": [len(nodes) - 0.5, -0.5]},
    )  # fmt: skip
    fig.add_trace(go.Scatter(x=edges_x, y=edges_y, mode="lines", line={"color": "#bdc1c6", "width": 1.5},
                             hoverinfo="skip"))  # fmt: skip
    fig.add_trace(
        go.Bar(
            ids=[n.id for n in nodes], orientation="h", y=row, base=depth, x=[_TREE_RIGHT - d for d in depth],
            width=0.75, marker={"color": fills, "line": {"color": lines, "width": 1.5}},
            text=texts, textposition="inside", insidetextanchor="start", textfont={"color": "#202124", "size": 12},
            constraintext="none", hovertext=hover, hoverinfo="text", customdata=[n.metric or "" for n in nodes],
        )
    )  # fmt: skip
    return fig
