"""Objective roll-up: progress is the weighted mean of its KPIs' progress, status the worst
of theirs unless all are on track; read from the one evaluation, on data written here."""

import math

import pandas as pd
import pytest

import kpinb
from kpinb import scorecard
from kpinb.errors import PlanError

PLAN = """\
name: Shop
department: sales
objectives:
  - {id: grow, statement: Grow revenue}
  - {id: serve, statement: Serve <every> customer}
  - {id: later, statement: Not measured yet}
sources:
  orders: {path: orders.csv, time: day}
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(amount), unit: currency}
  - {id: orders, name: Orders, source: orders, expr: count(*)}
  - {id: big, name: Big orders, source: orders, expr: count_if(amount > 5)}
kpis:
  - metric: revenue
    objective: grow
    weight: 3
    baseline: {value: 210}
    target: {value: 410, by: 2025-12-31, path: flat}
  - metric: orders
    objective: grow
    baseline: {value: 21}
    target: {value: 26, by: 2025-12-31, path: flat}
  - metric: big
    objective: serve
    weight: 2
    target: {value: 30, by: 2025-12-31}
"""


@pytest.fixture
def card(tmp_path):
    days = pd.date_range("2025-01-01", "2025-08-31", freq="D")
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "amount": 10.0}).to_csv(tmp_path / "orders.csv", index=False)
    (tmp_path / "plan.yml").write_text(PLAN)
    plan = kpinb.load_plan(tmp_path / "plan.yml")
    return scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)


def test_progress_is_the_weighted_mean_of_capped_kpi_progress_and_status_the_worst(card):
    grow, serve, later = card.objectives()
    assert (grow.id, grow.statement, grow.kpis) == ("grow", "Grow revenue", ("revenue", "orders"))
    # August: revenue 310 from 210 toward 410 is halfway; orders 31 from 21 toward 26 is past it (capped at 1)
    assert card.get("revenue").progress == pytest.approx(0.5) and card.get("orders").progress == pytest.approx(2.0)
    assert grow.progress == pytest.approx((3 * 0.5 + 1 * 1.0) / 4)
    assert (card.get("revenue").status, card.get("orders").status) == ("off_track", "on_track")
    assert grow.status == "off_track"
    assert grow.reason == "1 of 2 KPIs on track; Revenue off track; progress 62.5%."
    assert serve.status == "on_track" and math.isnan(serve.progress)  # no baseline: no progress to weigh
    assert serve.reason == "1 KPI on track."
    assert (later.status, later.kpis) == ("no_data", ())


def test_a_filtered_view_judges_no_objective_and_the_rollup_is_immutable(card, tmp_path):
    plan = card.plan
    sliced = scorecard.evaluate(plan, card.frame, pace=False, filters={"region": "Europe"})
    assert [o.status for o in sliced.objectives()] == ["not_judged", "not_judged", "no_data"]
    with pytest.raises(AttributeError):
        card.objectives()[0].status = "on_track"  # type: ignore[misc]


def test_weight_must_be_positive(tmp_path):
    (tmp_path / "plan.yml").write_text(PLAN.replace("weight: 3", "weight: 0"))
    with pytest.raises(PlanError, match=r"plan.yml.*weight"):
        kpinb.load_plan(tmp_path / "plan.yml")


def test_a_kpi_without_data_makes_its_objective_no_better_than_without_data(tmp_path):
    days = pd.date_range("2025-01-01", "2025-08-31", freq="D")
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "amount": 10.0}).to_csv(tmp_path / "orders.csv", index=False)
    text = PLAN.replace("expr: count_if(amount > 5)}", "expr: avg(amount), where: amount > 99}")  # no row: no value
    (tmp_path / "plan.yml").write_text(text)
    plan = kpinb.load_plan(tmp_path / "plan.yml")
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    serve = card.objectives()[1]
    assert card.get("big").status == "no_data"
    assert (serve.status, serve.reason) == ("no_data", "0 of 1 KPI on track; Big orders without data.")


def test_the_metric_tree_hangs_kpis_from_objectives_and_supporting_metrics_from_kpis(tmp_path):
    from insight_support import write_shop

    plan = kpinb.load_plan(write_shop(tmp_path))
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    nodes = card.tree()
    assert [(n.id, n.parent, n.kind, n.status) for n in nodes] == [
        ("plan", "", "plan", "not_judged"),
        ("objective:grow", "plan", "objective", "off_track"),
        ("kpi:revenue", "objective:grow", "kpi", "off_track"),
        ("kpi:revenue/units", "kpi:revenue", "supporting", "not_judged"),
        ("kpi:visits", "objective:grow", "kpi", "on_track"),
    ]
    units = nodes[3]
    assert (units.name, units.value, units.unit, units.unusual) == ("Units sold", 80.0, "count", True)
    assert (nodes[2].value, nodes[2].unit, nodes[2].unusual) == (790.0, "currency", True)
    assert not nodes[4].unusual
