"""The objectives, the metric tree and the insights as they land on a page: what the scorecard
decided, drawn and escaped."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from kpinb import compute, load_plan, scorecard
from kpinb._numbers import format_value
from kpinb.outputs import insights
from kpinb.scorecard import TreeNode
from kpinb.views.charts import BASIC_TRACES
from kpinb.views.decisions import insights_html, objectives_html, tree_figure
from kpinb.views.kit import STATUS_STYLE

HOSTILE = "<script>alert(1)</script>"
PLAN = f"""
name: Shop
department: sales
objectives:
  - {{id: grow, statement: "Grow revenue {HOSTILE}"}}
sources:
  orders: {{path: orders.csv, time: order_date}}
metrics:
  - {{id: revenue, name: "Revenue {HOSTILE}", source: orders, expr: sum(revenue), unit: currency}}
  - {{id: orders, name: Orders, source: orders, expr: count(*)}}
kpis:
  - {{metric: revenue, objective: grow, owner: Ana, target: {{value: 1000, by: 2030-12-31}}, supporting: [orders]}}
  - {{metric: orders, objective: grow, owner: Bo, target: {{value: 2, by: 2030-12-31}}}}
"""


def _card(tmp_path: Path) -> scorecard.Scorecard:
    days = pd.date_range("2025-01-01", "2025-06-30", freq="D")
    pd.DataFrame({"order_date": days, "revenue": 10.0}).to_csv(tmp_path / "orders.csv", index=False)
    (tmp_path / "plan.yml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.yml")
    return scorecard.evaluate(plan, compute(plan, end="2025-06-30"))


def test_objectives_show_the_roll_up_escaped_with_a_bounded_bar(tmp_path: Path) -> None:
    card = _card(tmp_path)
    html = objectives_html(card)
    (rollup,) = card.objectives()
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert rollup.status in html.replace("_", " ").lower() or "track" in html.lower()
    assert 'aria-valuenow="' in html
    assert ("no progress to show" if math.isnan(rollup.progress) else "of the way") in html


def test_the_tree_draws_every_node_in_its_status_colour_and_carries_metric_ids(tmp_path: Path) -> None:
    card = _card(tmp_path)
    nodes = card.tree()
    fig = tree_figure(card)
    edges, boxes = fig.data
    assert (edges.type, boxes.type) == ("scatter", "bar")
    assert list(boxes.ids) == [n.id for n in nodes]  # a box per node
    assert list(boxes.customdata) == [n.metric or "" for n in nodes]  # a click focuses the metric
    assert "revenue" in boxes.customdata and "orders" in boxes.customdata
    assert all(HOSTILE not in t for t in (*boxes.text, *boxes.hovertext))
    assert any("&lt;script&gt;" in t for t in boxes.text)
    for n, text, hover in zip(nodes, boxes.text, boxes.hovertext, strict=True):
        label, color, _ = STATUS_STYLE[n.status]
        value = "" if math.isnan(n.value) else format_value(n.value, n.unit)
        assert value in text and value in hover and label in hover
        if n.kind in ("objective", "kpi"):
            assert label in text and color in text
    # each child one level right of its parent, below it, and joined to it by a line
    row, base = dict(zip(boxes.ids, boxes.y, strict=True)), dict(zip(boxes.ids, boxes.base, strict=True))
    lines = _segments(edges)
    for n in nodes[1:]:
        assert base[n.id] == base[n.parent] + 1 and row[n.id] > row[n.parent]
        assert [(base[n.parent] + 0.5, row[n.parent] + 0.375), (base[n.parent] + 0.5, row[n.id]),
                (base[n.id], row[n.id])] in lines  # fmt: skip
    assert len(lines) == len(nodes) - 1 and sorted(boxes.y) == list(range(len(nodes)))


def _segments(trace: Any) -> list[list[tuple[float, float]]]:
    """The polylines of a line trace (None-separated)."""
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(trace.x, trace.y, strict=True):
        if x is None:
            out.append([])
        else:
            out[-1].append((x, y))
    return [s for s in out if s]


class _Card:
    def __init__(self, *nodes: TreeNode) -> None:
        self.nodes = nodes

    def tree(self) -> tuple[TreeNode, ...]:
        return self.nodes


def test_the_tree_colours_each_status_and_lays_out_depth_first_on_basic_traces() -> None:
    nan = math.nan
    card = _Card(
        TreeNode("plan", "", "plan", None, "Shop", "not_judged", nan, "count"),
        TreeNode("objective:a", "plan", "objective", None, "Grow", "off_track", nan, "percent"),
        TreeNode("objective:b", "plan", "objective", None, "Keep", "no_data", nan, "percent"),
        TreeNode("kpi:rev", "objective:a", "kpi", "rev", "Revenue", "at_risk", 1234567.891, "USD", True),
        TreeNode("kpi:rev/orders", "kpi:rev", "supporting", "orders", "Orders", "not_judged", 4042.0, "count"),
        TreeNode("kpi:nps", "plan", "kpi", "nps", "NPS", "on_track", 41.23456789, "score"),  # under no objective
    )
    fig = tree_figure(card)  # type: ignore[arg-type]
    edges, boxes = fig.data
    assert {t.type for t in fig.data} <= BASIC_TRACES  # the report embeds the small plotly.js
    assert edges.mode == "lines" and edges.hoverinfo == "skip" and len(_segments(edges)) == 5  # lines, no clicks
    # depth first: a node, then its branch; the KPI under the plan after the objectives' branches
    assert list(boxes.y) == [0, 1, 4, 2, 3, 5] and list(boxes.base) == [0, 1, 1, 2, 3, 1]
    fills, borders = list(boxes.marker.color), list(boxes.marker.line.color)
    for status, i in (("off_track", 1), ("no_data", 2), ("at_risk", 3), ("on_track", 5)):
        _, color, background = STATUS_STYLE[status]
        assert (fills[i], borders[i]) == (background, color)
    assert borders[0] == borders[4] == "#9aa0a6" and len(set(borders[1:4] + borders[5:])) == 4
    assert "unusual" in boxes.text[3] and "unusual" in boxes.hovertext[3] and "unusual" not in boxes.text[4]
    assert format_value(1234567.891, "USD") in boxes.text[3]
    # short, stable digits only (no float noise, no default template in the stored figure)
    js = fig.to_json()
    assert not re.search(r"\d\.\d{6,}", js) and "colorscale" not in js
    assert fig.layout.height == 56 + 8 + 28 * 6 and fig.layout.xaxis.fixedrange and fig.layout.dragmode is False


def test_insights_list_each_sentence_with_its_number_escaped(tmp_path: Path) -> None:
    card = _card(tmp_path)
    items = insights.for_department(card)
    html = insights_html(items)
    assert items and all(i.shown in html or "&" in i.shown for i in items)
    assert HOSTILE not in html
    assert insights_html([]) == ""
