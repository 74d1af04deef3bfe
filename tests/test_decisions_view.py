"""The objectives, the metric tree and the insights as they land on a page: what the scorecard
decided, drawn and escaped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kpinb import compute, load_plan, scorecard
from kpinb.outputs import insights
from kpinb.views.decisions import insights_html, objectives_html, tree_figure

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
    import math

    assert 'aria-valuenow="' in html
    assert ("no progress to show" if math.isnan(rollup.progress) else "of the way") in html


def test_the_tree_draws_every_node_in_its_status_colour_and_carries_metric_ids(tmp_path: Path) -> None:
    card = _card(tmp_path)
    fig = tree_figure(card)
    trace = fig.data[0]
    assert list(trace.ids) == [n.id for n in card.tree()]
    assert "revenue" in list(trace.customdata) and "orders" in list(trace.customdata)
    assert all(HOSTILE not in t for t in trace.labels) and all(HOSTILE not in t for t in trace.hovertext)


def test_insights_list_each_sentence_with_its_number_escaped(tmp_path: Path) -> None:
    card = _card(tmp_path)
    items = insights.for_department(card)
    html = insights_html(items)
    assert items and all(i.shown in html or "&" in i.shown for i in items)
    assert HOSTILE not in html
    assert insights_html([]) == ""
