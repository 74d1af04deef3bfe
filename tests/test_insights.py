"""Written insights: text snapshots on a shop written here and computed by the real engine."""

import json
import re

import pandas as pd
import pytest
from insight_support import PLAN, rows, write_shop

import kpinb
from kpinb import scorecard
from kpinb.outputs import insights


@pytest.fixture
def shop(tmp_path):
    plan = kpinb.load_plan(write_shop(tmp_path))
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    return card, {"region": kpinb.compute(plan, grain="month", by=["region"])}


REVENUE = [
    ("unusual_change", "790.00", "Revenue moved unusually in 2025-08: 790.00 where about 405.00 was expected."),
    ("anomaly", "80", "Early warning: Units sold, which supports Revenue, is unusual in 2025-08: 80 where about 60 "
                      "was expected."),
    ("target", "210.00", "Revenue is 210.00 behind the target in force for 2025-08 (790.00 against 1,000)."),
    ("top_driver", "+410.00", "north (region) moved Revenue most in 2025-08: +410.00 of the total change +390.00."),
    ("top_detractor", "-20.00", "south (region) held Revenue back most in 2025-08: -20.00."),
    ("change", "+97.5%", "Revenue rose 97.5% against the previous period, from 400.00 to 790.00 in 2025-08."),
    ("change", "+129.0%", "Revenue is up 129.0% on the same period last year (345.00 then, 790.00 now)."),
    ("concentration", "75.9%", "north (region) holds 75.9% of Revenue in 2025-08: a concentration risk."),
    ("outlier", "600.00", "north (region) is far above the other region members in 2025-08: 600.00 against a "
                          "median of 50.00."),
    ("current_trend", "+82.00", "Revenue has risen 5 months in a row: +82.00 per month on average."),
    ("bottom_contributor", "1.3%", "islands (region) contributes least to Revenue in 2025-08: 1.3% of the total."),
]  # fmt: skip

VISITS = [
    ("top_detractor", "-10", "north (region) held Visits back most in 2025-08: -10."),
    ("trend_change", "-10", "Visits turned down after rising: -10 per month over the last 3 months."),
    ("concentration", "100.0%", "north (region) holds 100.0% of Visits in 2025-08: a concentration risk."),
    ("current_trend", "-8.33", "Visits has fallen 3 months in a row: -8.33 per month on average."),
    ("change", "-9.5%", "Visits fell 9.5% against the previous period, from 105 to 95 in 2025-08."),
    ("target", "5", "Visits is 5 ahead of the target in force for 2025-08 (95 against 90)."),
    ("change", "-8.7%", "Visits is down 8.7% on the same period last year (104 then, 95 now)."),
    ("bottom_contributor", "0.0%", "west (region) contributes least to Visits in 2025-08: 0.0% of the total."),
]


def texts(found):
    return [(i.kind, i.shown, i.text) for i in found]


def test_every_kind_of_insight_reads_as_written_ranked_by_importance(shop):
    card, by = shop
    assert texts(insights.for_kpi(card, "revenue", by, limit=20)) == REVENUE
    assert texts(insights.for_kpi(card, "visits", by, limit=20)) == VISITS
    assert texts(insights.for_kpi(card, "revenue", by)) == REVENUE[:3]  # the top few by default
    # the numbers behind the sentences, at full precision
    values = {i.kind: i.value for i in insights.for_kpi(card, "revenue", by, limit=20)}
    assert values["concentration"] == pytest.approx(600 / 790)
    assert values["target"] == pytest.approx(-210.0)


def test_the_department_gets_the_few_that_matter_most_at_most_two_per_kpi(shop):
    card, by = shop
    top = insights.for_department(card, by)
    assert [(i.metric, i.kind) for i in top] == [
        ("revenue", "unusual_change"), ("revenue", "anomaly"), ("visits", "top_detractor"), ("visits", "trend_change")
    ]  # fmt: skip
    payload = json.loads(json.dumps([i.to_dict() for i in top], allow_nan=False))
    assert payload[0]["shown"] == "790.00" and payload[0]["value"] == 790.0


def test_without_breakdowns_only_the_kpis_own_insights(shop):
    card, _ = shop
    kinds = {i.kind for i in insights.for_kpi(card, "revenue", limit=20)}
    assert kinds == {"unusual_change", "anomaly", "target", "change", "current_trend"}


def test_same_input_same_text_whatever_the_row_order(shop, tmp_path):
    card, by = shop
    (tmp_path / "other").mkdir()
    shuffled = rows().sample(frac=1.0, random_state=7)
    path = write_shop(tmp_path / "other")
    shuffled.to_csv(tmp_path / "other" / "orders.csv", index=False)
    plan = kpinb.load_plan(path)
    again = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    by_again = {"region": kpinb.compute(plan, grain="month", by=["region"])}
    assert texts(insights.for_department(again, by_again, limit=50)) == texts(
        insights.for_department(card, by, limit=50)
    )


def test_pace_gives_the_chance_of_meeting_the_target_in_whole_percent(tmp_path):
    plan = kpinb.load_plan(write_shop(tmp_path))
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"))
    pace = [i for i in insights.for_kpi(card, "revenue", limit=20) if i.kind == "pace"]
    assert len(pace) == 1 and re.fullmatch(r"\d{1,3}%", pace[0].shown)
    assert pace[0].text.startswith("At the current pace Revenue reaches about ")
    assert pace[0].text.endswith(f"by 2025-12-31; the chance of meeting the target 1,000 is {pace[0].shown}.")
    (tmp_path / "plan.yml").write_text(PLAN.replace("1000, by: 2025-12-31}", "1000, by: 2025-08-31}"))
    plan = kpinb.load_plan(tmp_path / "plan.yml")  # the deadline's own period is judged: no pace to speak of
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"))
    assert card.get("revenue").pace is not None
    assert "pace" not in {i.kind for i in insights.for_kpi(card, "revenue", limit=20)}


def test_a_filtered_view_writes_no_insight(shop):
    card, by = shop
    sliced = scorecard.evaluate(card.plan, card.frame, pace=False, filters={"region": "north"})
    assert insights.for_department(sliced, by) == []


def test_a_duration_is_written_in_its_time_unit(tmp_path):
    days = pd.date_range("2025-01-01", "2025-08-31", freq="D")
    wait = [2.0] * (len(days) - 31) + [5.0] * 31
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "delivery_days": wait}).to_csv(tmp_path / "o.csv", index=False)
    (tmp_path / "plan.yml").write_text(
        "name: Ops\ndepartment: operations\nsources:\n  o: {path: o.csv, time: day}\nmetrics:\n"
        "  - {id: wait, name: Delivery time, source: o, expr: avg(delivery_days), unit: duration,"
        " direction: lower_is_better}\n"
        "kpis:\n  - {metric: wait, target: {value: 3, by: 2025-12-31}}\n"
    )
    plan = kpinb.load_plan(tmp_path / "plan.yml")
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    assert card.display_unit("wait") == "days"
    target = next(i for i in insights.for_kpi(card, "wait", limit=20) if i.kind == "target")
    assert target.text == (
        "Delivery time is 2.0 days behind the target in force for 2025-08 (5.0 days against 3.0 days)."
    )
