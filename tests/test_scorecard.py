"""The scorecard judges each KPI once; the report and the dashboard read the same judgement.

Exact values on the hand-made plans of tests/test_status.py, and the two surfaces that used to
decide on their own (the report's trend and the dashboard's) compared on the sample data.
"""

import math
import pathlib
import re

import numpy as np
import pandas as pd
import pytest
from test_status import PLAN, data, plan

from kpinb import scorecard
from kpinb.analytics import forecast, status
from kpinb.analytics.compare import period_end
from kpinb.analytics.status import STATUS_COLUMNS, target_at

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_kpi_is_judged_as_the_status_rules_say():
    p, df = plan(), data()
    card = scorecard.evaluate(p, df, as_of="2025-06-30")
    want = status.evaluate(p, df, as_of="2025-06-30")
    got = card.status_frame()
    assert list(got.columns) == list(STATUS_COLUMNS)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert card.get("revenue").period_label == "2025-06" and card.get("revenue").judged
    with pytest.raises(KeyError):
        card.get("nope")
    pace = card.pace_frame()
    want_pace = forecast.pace(p, df, as_of="2025-06-30")
    want_pace = want_pace[want_pace["method"] != "no_target"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pace, want_pace, check_dtype=False)


def test_the_target_path_is_the_target_in_force_at_each_period_end_and_at_the_deadline():
    p, df = plan(), data()
    card = scorecard.evaluate(p, df, as_of="2025-06-30")
    path = card.get("revenue").target_path
    kpi = p.kpi("revenue")
    first = pd.Timestamp("2024-01-01")
    assert path.index[-1] == pd.Timestamp("2025-12-01")  # drawn up to the deadline's period
    want = [target_at(kpi, period_end(w, "month"), baseline=100.0, start=first) for w in path.index]
    np.testing.assert_allclose(path.to_numpy(), want)
    # the status judged June against the same line
    assert card.get("revenue").target_now == pytest.approx(path[pd.Timestamp("2025-06-01")])
    assert card.get("visits").target_path.empty  # no target, no line


def test_a_slice_is_not_judged_against_the_whole_kpis_target_unless_its_data_lacks_the_dimension():
    p, df = plan(), data()
    card = scorecard.evaluate(
        p, df, as_of="2025-06-30", filters={"region": "Europe"}, unfiltered={"visits": ["region"]}
    )
    for mid in ("revenue", "refund_rate", "signups"):  # sums and rates alike
        e = card.get(mid)
        assert (e.status, e.rule, e.judged) == ("not_judged", "slice", False)
        assert "Showing region = Europe only" in e.reason
        assert math.isnan(e.progress) and e.pace is None and e.target_path.empty
        assert e.filters == (("region", "Europe"),)
    assert card.get("visits").filters == ()  # its data has no region: the filter did not apply
    assert card.get("visits").status == status.evaluate(p, df, as_of="2025-06-30", kpis=["visits"])["status"][0]


def test_one_kpi_that_cannot_be_judged_does_not_blank_the_others():
    text = PLAN.replace("baseline: {from: 2024-01-01, to: 2024-03-31}", "baseline: {from: 2019-01-01, to: 2019-03-31}")
    p, df = plan(text), data()
    with pytest.raises(Exception, match="baseline"):
        status.evaluate(p, df, as_of="2025-06-30")
    card = scorecard.evaluate(p, df, as_of="2025-06-30", pace=False)
    returns = card.get("refund_rate")
    assert returns.status == "no_data" and "baseline" in returns.reason
    assert card.get("revenue").status in ("on_track", "at_risk", "off_track")


def test_drivers_split_by_member_else_numerator_and_denominator_else_nothing(sample_data):
    import kpinb

    p = kpinb.load_plan(ROOT / "templates" / "plans" / "sales.yml")
    ids = ["average_order_value", "monthly_sales_revenue"]
    total = kpinb.compute(p, metrics=ids, grain="month", end="2025-06-30")
    by = kpinb.compute(p, metrics=ids, grain="month", end="2025-06-30", by=["region"])
    members = scorecard.drivers(total, by, "monthly_sales_revenue", "2025-05-01", "2025-06-01", plan=p)
    assert "region" in members.columns
    assert members["effect"].sum() == pytest.approx(members.attrs["change"])
    ratio = scorecard.drivers(total, None, "average_order_value", "2025-05-01", "2025-06-01", plan=p)
    assert set(ratio["driver"]) == {"numerator", "denominator"}
    assert ratio["effect"].sum() == pytest.approx(ratio.attrs["change"])
    assert scorecard.drivers(total, None, "monthly_sales_revenue", "2025-05-01", "2025-06-01", plan=p) is None


def test_report_and_dashboard_draw_the_same_target_path(sample_data, tmp_path):
    """They used to differ: the report drew the target path, the dashboard a flat line."""
    import yaml

    from kpinb.views import report
    from kpinb.widgets import Dashboard

    data = yaml.safe_load((ROOT / "templates" / "plans" / "sales.yml").read_text(encoding="utf-8"))
    for src in data["sources"].values():
        src["path"] = str(sample_data / pathlib.Path(src["path"]).name)
    data.pop("benchmarks", None)
    mid = "monthly_recurring_revenue"
    kpi = next(k for k in data["kpis"] if k["metric"] == mid)
    kpi["target"]["path"] = "linear"
    plan_file = tmp_path / "sales.yml"
    plan_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    r = report.load(plan_file, period_end="2025-06-30")
    (fig,) = [f for f, k in zip(report.trend_figures(r), r.kpis, strict=True) if k.metric == mid]
    (in_report,) = [t for t in fig.data if t.name == "target"]
    dash = Dashboard(plan_file, grain="month")
    dash.focus.value = mid
    (in_dashboard,) = [t for t in dash.figures["trend"].data if t.name == "target"]
    want = r.scorecard.get(mid).target_path
    report_line = pd.Series(list(in_report.y), index=pd.to_datetime(list(in_report.x)))
    dash_line = pd.Series(list(in_dashboard.y), index=pd.to_datetime(list(in_dashboard.x)))
    common = report_line.index.intersection(dash_line.index)
    assert len(common) >= 12 and dash_line[common].nunique() > 1  # a path, not a flat line
    np.testing.assert_allclose(dash_line[common], report_line[common], rtol=1e-4)
    np.testing.assert_allclose(report_line.to_numpy(), want[report_line.index].to_numpy(), rtol=1e-4)


def test_a_monthly_plan_viewed_by_quarter_judges_rates_from_their_parts_and_not_totals():
    """Issue 13, case 8: `--grain quarter` on a monthly plan failed with "no KPI is set at grain
    'quarter'". Rates keep their target; a quarter's total is not judged against a monthly target."""
    from kpinb.views import report

    r = report.load(ROOT / "templates" / "plans" / "sales.yml", grain="quarter", period_end="2025-06-30")
    assert r.judged_label == "Q2 2025" and not r.skipped  # the label people read
    revenue, aov = r.scorecard.get("monthly_sales_revenue"), r.scorecard.get("average_order_value")
    assert (revenue.status, revenue.rule) == ("not_judged", "grain") and revenue.target_path.empty
    assert aov.status in ("on_track", "at_risk", "off_track") and aov.rule != "grain"
    q2 = r.frame[(r.frame["metric"] == "average_order_value") & (r.frame["period_start"] == "2025-04-01")].iloc[0]
    assert aov.value == pytest.approx(q2["numerator"] / q2["denominator"])  # from the quarter's parts
    monthly = report.load(ROOT / "templates" / "plans" / "sales.yml", grain="month", period_end="2025-06-30").frame
    months = monthly[(monthly["metric"] == "average_order_value") & (monthly["period_start"] >= "2025-04-01")]
    assert aov.value != pytest.approx(months["value"].mean(), rel=1e-6)  # never an average of averages


SLICED_PLAN = """
name: Sliced
department: sales
sources:
  orders: {path: orders.parquet, time: order_date, dimensions: [region]}
metrics:
  - {id: total, name: Total, source: orders, expr: sum(revenue), unit: currency}
kpis:
  - metric: total
    owner: Ana
    target: {value: 2000, by: 2030-12-31}
    slices:
      region:
        Europe: {target: {value: 1000, by: 2030-12-31}, thresholds: {warning: 900, critical: 500}}
"""


def _sliced(tmp_path: pathlib.Path) -> tuple:
    from kpinb import compute, load_plan

    months = pd.date_range("2025-01-01", periods=6, freq="MS")
    rows = [(m, "Europe", 800.0) for m in months] + [(m, "Asia", 1500.0) for m in months]
    pd.DataFrame(rows, columns=["order_date", "region", "revenue"]).to_parquet(tmp_path / "orders.parquet")
    (tmp_path / "plan.yml").write_text(SLICED_PLAN)
    plan = load_plan(tmp_path / "plan.yml")
    by = compute(plan, by=["region"], end="2025-06-30")
    return plan, compute(plan, end="2025-06-30"), by


def _member(by: pd.DataFrame, member: str) -> pd.DataFrame:
    frame = by[by["region"] == member].drop(columns="region").reset_index(drop=True)
    frame.attrs = {**by.attrs, "by": ()}
    return frame


def test_a_slice_with_a_goal_of_its_own_is_judged_against_it_and_the_others_are_not(tmp_path):
    """DESIGN's slice targets: `slices: {region: {Europe: {target, thresholds}}}` under the KPI."""
    plan, whole, by = _sliced(tmp_path)
    total = scorecard.evaluate(plan, whole).get("total")
    assert total.value == 2300 and total.status == "on_track"
    europe = scorecard.evaluate(plan, _member(by, "Europe"), filters={"region": "Europe"}).get("total")
    assert (europe.value, europe.target_now, europe.status) == (800, 1000, "at_risk")
    assert "region = Europe, against its own goal" in europe.reason and europe.rule == "thresholds"
    assert len(europe.target_path) and europe.target_path.iloc[-1] == 1000
    asia = scorecard.evaluate(plan, _member(by, "Asia"), filters={"region": "Asia"}).get("total")
    assert asia.status == "not_judged" and asia.rule == "slice" and "`slices:`" in asia.reason


def test_a_slice_goal_by_a_dimension_the_data_lacks_or_in_the_wrong_order_is_a_check_error(tmp_path):
    from kpinb.checks.lint import check

    _sliced(tmp_path)
    text = SLICED_PLAN.replace("region:\n        Europe", "channel:\n        Europe").replace(
        "{warning: 900, critical: 500}", "{warning: 500, critical: 900}"
    )
    (tmp_path / "plan.yml").write_text(text)
    issues, code = check(tmp_path / "plan.yml")
    assert code == 1 and any(i.rule == "slices" and "'channel'" in i.message for i in issues)
    inverted = SLICED_PLAN.replace("{warning: 900, critical: 500}", "{warning: 500, critical: 900}")
    (tmp_path / "plan.yml").write_text(inverted)
    issues, code = check(tmp_path / "plan.yml")
    assert code == 1 and any(i.rule == "slices" and "region = Europe" in i.message for i in issues)


def test_a_kpi_the_plan_misconfigures_needs_setup_on_its_card_not_no_data():
    """A plan built in code skips the load-time check; the scorecard still names the mistake,
    and the card says so in its own state instead of showing it as missing data."""
    import yaml

    from kpinb.definitions.model import Plan
    from kpinb.definitions.plan import registry
    from kpinb.views.cards import kpi_cards

    text = PLAN.replace("thresholds: {warning: 120, critical: 100}", "thresholds: {warning: 100, critical: 120}")
    p, df = Plan.model_validate(yaml.safe_load(text)), data()
    card = scorecard.evaluate(p, df, as_of="2025-06-30", pace=False)
    revenue = card.get("revenue")
    assert (revenue.status, revenue.rule) == ("no_data", "needs_setup")
    assert revenue.reason == (
        "Needs setup: the warning level 100.00 is below the critical level 120.00, but higher is better — "
        "swap them in the plan."
    )
    assert card.get("signups").status in ("on_track", "at_risk", "off_track")  # the others are judged
    cards = kpi_cards(card.status_frame(), df, registry(p))
    one = re.search(r'<div class="kpinb-card [^>]*data-metric="revenue".*?(?=<div class="kpinb-card |$)', cards, re.S)
    assert "● Needs setup" in one.group(0) and "No data" not in one.group(0) and "swap them in the plan" in cards
    assert cards.count("Needs setup") == 2  # the revenue card's badge and reason, no other card


def test_a_kpi_without_a_judged_period_has_none_and_the_decisions_still_read_it(tmp_path):
    """A KPI whose every period is still settling has no judged period: None, never NaN (the
    dashboard's anomalies, insights and tree compared dates with NaN and failed)."""
    from kpinb import compute, load_plan
    from kpinb.outputs import insights

    _sliced(tmp_path)
    settling = SLICED_PLAN.replace("unit: currency}", "unit: currency, matures_after: 3650 days}")
    # a baseline window without data cannot be judged: the scorecard falls back to judging KPI by KPI
    no_data = "    baseline: {from: 2020-01-01, to: 2020-12-31}\n    target: {value: 2000"
    settling = settling.replace("    target: {value: 2000", no_data)
    (tmp_path / "plan.yml").write_text(settling)
    plan = load_plan(tmp_path / "plan.yml")
    card = scorecard.evaluate(plan, compute(plan, end="2025-06-30"))
    total = card.get("total")
    assert total.period_start is None and total.status == "no_data"
    assert card.anomalies() == () or all(a.metric != "total" for a in card.anomalies())
    assert insights.for_department(card) == [] and card.tree()
