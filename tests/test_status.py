"""Baselines, target paths and RAG status: exact values on small hand-made plans and frames."""

import math

import numpy as np
import pandas as pd
import pytest

from kpinb.analytics.status import STATUS_COLUMNS, baseline_value, evaluate, progress, target_at
from kpinb.definitions.model import KPI, Direction
from kpinb.definitions.plan import parse_plan
from kpinb.engine.query import compute
from kpinb.errors import DataError, PlanError

PLAN = """\
name: Shop 2025
department: sales
sources:
  orders: {path: orders.parquet}
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(revenue), unit: currency}
  - id: refund_rate
    name: Refund rate
    source: orders
    expr: count_if(status = 'returned') / count(*)
    unit: percent
    direction: lower_is_better
  - {id: signups, name: Sign-ups, source: orders, expr: count_distinct(customer_id)}
  - {id: visits, name: Visits, source: orders, expr: count(*)}
kpis:
  - metric: revenue
    owner: Head of Sales
    baseline: {value: 100}
    target: {value: 200, by: 2025-12-31, path: linear}
    thresholds: {warning: 120, critical: 100}
  - metric: refund_rate
    name: Returns
    owner: Ops
    baseline: {from: 2024-01-01, to: 2024-03-31}
    target: {value: 0.05, by: 2025-12-31}
  - metric: signups
    baseline: {value: 0}
    target:
      value: 100
      by: 2025-12-31
      path: [{by: 2025-03-31, value: 50}, {by: 2025-06-30, value: 80}]
  - metric: visits
"""

MONTHS = pd.date_range("2024-01-01", "2025-06-01", freq="MS")  # 18 months


def plan(text: str = PLAN):
    return parse_plan(text)


def frame(series: dict[str, list[float]], grain: str = "month", start: str = "2024-01-01") -> pd.DataFrame:
    """The engine's tidy frame from metric -> values of consecutive periods."""
    parts = []
    for metric, values in series.items():
        starts = pd.date_range(start, periods=len(values), freq={"month": "MS", "quarter": "QS"}[grain])
        values = np.asarray(values, dtype=float)
        parts.append(pd.DataFrame({"metric": metric, "period_start": starts, "value": values}))
    df = pd.concat(parts, ignore_index=True).assign(numerator=np.nan, denominator=np.nan)
    df.attrs.update(grain=grain, by=())
    return df


def series(last: float, n: int = 18, fill: float = 150.0) -> list[float]:
    return [fill] * (n - 1) + [last]


REFUNDS = [0.08, 0.09, 0.10] + [0.07] * 14 + [0.055]  # baseline window Jan-Mar 2024: mean 0.09
SIGNUPS = [10.0] * 14 + [60.0, 70.0, 75.0, 76.0]  # ... 2025-03: 60, 2025-06: 76


def data(**override) -> pd.DataFrame:
    values = {"revenue": series(110.0), "refund_rate": REFUNDS, "signups": SIGNUPS, "visits": series(500.0)}
    return frame({**values, **override})


def by_metric(out: pd.DataFrame) -> dict[str, dict]:
    return out.set_index("metric").to_dict("index")


def test_evaluate_one_row_per_kpi_with_exact_values():
    out = evaluate(plan(), data())
    assert tuple(out.columns) == STATUS_COLUMNS
    assert out["metric"].tolist() == ["revenue", "refund_rate", "signups", "visits"]
    assert (out["period_start"] == pd.Timestamp("2025-06-01")).all()
    r = by_metric(out)

    rev = r["revenue"]  # short of the linear target in force: the thresholds grade how far
    assert (rev["name"], rev["owner"]) == ("Revenue", "Head of Sales")
    assert (rev["value"], rev["previous"]) == (110.0, 150.0)
    assert rev["change_pct"] == pytest.approx(-40 / 1.5)
    assert (rev["baseline"], rev["target"], rev["deadline"]) == (100.0, 200.0, pd.Timestamp("2025-12-31"))
    # 2024-01-01 -> 2025-12-31 is 730 days; the judged period ends 2025-06-30, 546 days in
    assert rev["target_now"] == pytest.approx(100 + 100 * 546 / 730)
    assert rev["gap"] == pytest.approx(110 - (100 + 100 * 546 / 730))
    assert rev["progress"] == pytest.approx(0.1)
    assert (rev["status"], rev["rule"]) == ("at_risk", "thresholds")
    assert rev["reason"] == (
        "110.00 is short of the target 174.79 in force for 2025-06; 110.00 is at or below the warning level 120.00 "
        "(higher is better)."
    )
    assert (rev["unit"], rev["direction"]) == ("currency", "higher_is_better")

    ref = r["refund_rate"]  # lower is better, baseline from a window: a linear path from its end
    assert ref["name"] == "Returns"
    assert ref["baseline"] == pytest.approx(0.09)
    # 2024-03-31 -> 2025-12-31 is 640 days; the judged period ends 2025-06-30, 456 days in
    assert ref["target_now"] == pytest.approx(0.09 - 0.04 * 456 / 640)
    assert ref["progress"] == pytest.approx((0.055 - 0.09) / (0.05 - 0.09))
    assert ref["gap"] == pytest.approx(0.09 - 0.04 * 456 / 640 - 0.055)  # positive is good: target - value
    assert (ref["status"], ref["rule"]) == ("on_track", "target")
    assert ref["reason"] == "5.5% meets the target 6.2% in force for 2025-06 (lower is better)."  # the one formatter

    sig = r["signups"]  # table path: the milestone of 2025-06-30; zero baseline
    assert (sig["target_now"], sig["target"]) == (80.0, 100.0)
    assert sig["progress"] == pytest.approx(0.76)
    assert (sig["status"], sig["rule"]) == ("at_risk", "percent_of_target")
    assert sig["reason"].startswith("76 reaches 95% of the target 80 for 2025-06")

    vis = r["visits"]
    assert (vis["status"], vis["rule"]) == ("no_data", "no_data")
    assert vis["reason"] == "Nothing to judge 500 against: add `target:` or `thresholds:` to KPI 'visits'."
    assert math.isnan(vis["target_now"]) and math.isnan(vis["progress"]) and pd.isna(vis["deadline"])


SHORT = "is short of the target 174.79 in force for 2025-06; "


@pytest.mark.parametrize(
    ("last", "status", "reason"),
    [
        (180.0, "on_track", "180.00 meets the target 174.79 in force for 2025-06 (higher is better)."),
        (130.0, "at_risk", f"130.00 {SHORT}130.00 is above the warning level 120.00 (higher is better)."),
        (120.0, "at_risk", f"120.00 {SHORT}120.00 is at or below the warning level 120.00 (higher is better)."),
        (100.0, "off_track", f"100.00 {SHORT}100.00 is at or below the critical level 100.00 (higher is better)."),
    ],
)
def test_thresholds_higher_is_better(last, status, reason):
    out = by_metric(evaluate(plan(), data(revenue=series(last))))["revenue"]
    assert (out["status"], out["reason"]) == (status, reason)


def test_thresholds_mirror_for_lower_is_better():
    target = "    target: {value: 0.05, by: 2025-12-31}\n"
    flat = "    target: {value: 0.05, by: 2025-12-31, path: flat}\n"
    text = PLAN.replace(target, flat + "    thresholds: {warning: 0.06, critical: 0.08}\n")
    short = "is short of the target 5.0% in force for 2025-06; "
    for last, status, rule, reason in [
        (0.05, "on_track", "target", "5.0% meets the target 5.0% in force for 2025-06 (lower is better)."),
        (0.055, "at_risk", "thresholds", f"5.5% {short}5.5% is below the warning level 6.0% (lower is better)."),
        (0.07, "at_risk", "thresholds", f"7.0% {short}7.0% is at or above the warning level 6.0% (lower is better)."),
        (0.08, "off_track", "thresholds", f"8.0% {short}8.0% is at or above the critical level 8.0% "
         "(lower is better)."),
    ]:
        out = by_metric(evaluate(plan(text), data(refund_rate=[*REFUNDS[:-1], last])))["refund_rate"]
        assert (out["status"], out["rule"], out["reason"]) == (status, rule, reason)


def test_a_value_short_of_the_target_is_never_on_track_whatever_the_thresholds():
    """Issue 13, case 5: AOV 320 against a target of 330 showed "On track" (above its warning level)."""
    text = """\
name: Shop
department: sales
sources:
  orders: {path: orders.parquet}
metrics:
  - {id: aov, name: Average order value, source: orders, expr: sum(revenue) / count(*), unit: currency}
kpis:
  - metric: aov
    target: {value: 330, by: 2025-12-31}
    thresholds: {warning: 315, critical: 300}
"""
    out = by_metric(evaluate(plan(text), frame({"aov": [325.0] * 17 + [320.0]})))["aov"]
    assert (out["status"], out["rule"]) == ("at_risk", "thresholds")
    assert out["reason"].startswith("320.00 is short of the target 330.00 in force for 2025-06;")
    paced = by_metric(evaluate(plan(text), frame({"aov": [300.0 + 2 * i for i in range(17)] + [320.0]}), rule="pace"))
    assert paced["aov"]["status"] != "on_track"  # the pace may promise 330 by December; June is still short


def test_percent_of_target_bands_and_parameter():
    target = "    target: {value: 0.05, by: 2025-12-31}\n"
    flat = PLAN.replace(target, target.replace("}", ", path: flat}"))

    def status(values, **kw):
        return by_metric(evaluate(plan(flat), data(refund_rate=REFUNDS[:-1] + values), **kw))["refund_rate"]

    assert status([0.05])["status"] == "on_track"
    assert status([0.04])["reason"] == "4.0% meets the target 5.0% in force for 2025-06 (lower is better)."
    assert status([0.055])["reason"].startswith("5.5% reaches 91% of the target 5.0% for 2025-06")
    assert status([0.06])["status"] == "off_track"  # 0.05 / 0.06 = 83%
    assert status([0.06], at_risk=0.8)["status"] == "at_risk"
    assert status([0.0])["status"] == "on_track"  # no refunds at all meets a "at most 5%" target
    with pytest.raises(PlanError, match="at_risk"):
        evaluate(plan(flat), data(), at_risk=90)


def test_missing_latest_value_is_no_data_naming_the_last_value():
    out = by_metric(evaluate(plan(), data(refund_rate=[*REFUNDS[:-2], 0.06, math.nan])))["refund_rate"]
    assert (out["status"], out["rule"]) == ("no_data", "no_data")
    assert out["reason"] == (
        "No value for 2025-06; the last one, 6.0%, is for 2025-05. Check that the data is up to date."
    )
    assert math.isnan(out["value"]) and math.isnan(out["gap"]) and math.isnan(out["progress"])


def test_as_of_judges_the_period_that_had_ended():
    out = by_metric(evaluate(plan(), data(), as_of="2025-03-31"))
    assert out["signups"]["period_start"] == pd.Timestamp("2025-03-01")
    assert (out["signups"]["value"], out["signups"]["target_now"]) == (60.0, 50.0)
    assert out["signups"]["status"] == "on_track"
    mid = by_metric(evaluate(plan(), data(), as_of="2025-04-29"))["signups"]  # April not over yet
    assert mid["period_start"] == pd.Timestamp("2025-03-01")
    partial = by_metric(evaluate(plan(), data(), as_of="2025-04-29", include_partial=True))["signups"]
    assert (partial["period_start"], partial["target_now"]) == (pd.Timestamp("2025-04-01"), 80.0)
    later = evaluate(plan(), data(), as_of="2025-08-31")  # data stops in June: no data for August
    assert set(later["status"]) == {"no_data"}
    assert later["reason"].iloc[0].startswith("No value for 2025-08; the last one, 110.00, is for 2025-06.")


def test_pace_rule_uses_the_forecast_probability():
    growing = [100.0 + 5 * i for i in range(18)]  # 185 in June 2025, a straight line to 215 in December
    out = by_metric(evaluate(plan(), data(revenue=growing), rule="pace"))
    rev = out["revenue"]
    assert (rev["status"], rev["rule"]) == ("on_track", "pace")
    assert rev["reason"].startswith("At the current pace 215.00 is expected by 2025-12-31")
    assert "a 100% chance of reaching the target 200.00" in rev["reason"]
    assert out["visits"]["rule"] == "no_data"  # nothing to forecast against: falls back
    flat = by_metric(evaluate(plan(), data(revenue=series(150.0, fill=150.0)), rule="pace"))["revenue"]
    assert (flat["status"], flat["rule"]) == ("off_track", "pace")
    forced = by_metric(evaluate(plan(), data(), rule="percent_of_target"))["revenue"]
    assert forced["rule"] == "percent_of_target"


def test_quarter_grain_kpi_through_the_real_engine():
    text = PLAN.split("kpis:")[0] + (
        "kpis:\n  - metric: revenue\n    grain: quarter\n    target: {value: 100, by: 2025-06-30}\n"
    )
    orders = pd.DataFrame({
        "order_date": pd.to_datetime(["2024-12-31 23:00", "2025-01-01 00:30", "2025-03-31 23:59",
                                      "2025-04-01 00:00", "2025-06-30 10:00"]),
        "revenue": [500.0, 40.0, 30.0, 45.0, 50.0],
        "status": "completed",
        "customer_id": "c1",
    })  # fmt: skip
    p = plan(text)
    df = compute(p, grain="quarter", sources={"orders": orders})
    out = evaluate(p, df).iloc[0]
    assert out["period_start"] == pd.Timestamp("2025-04-01")
    assert (out["value"], out["previous"], out["target_now"]) == (95.0, 70.0, 100.0)
    assert out["change_pct"] == pytest.approx(25 / 70 * 100)
    assert (out["status"], out["rule"]) == ("at_risk", "percent_of_target")
    assert evaluate(p, df, as_of="2025-03-31").iloc[0]["status"] == "off_track"  # 70 of 100


def test_baseline_value():
    idx = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"])
    s = pd.Series([10.0, math.nan, 60.0, 99.0], index=idx)
    window = KPI(metric="m", baseline={"from": "2024-01-01", "to": "2024-03-31"})
    assert baseline_value(window, s) == 35.0  # missing values skipped
    assert baseline_value(KPI(metric="m", baseline={"value": 0}), s) == 0.0
    assert baseline_value(KPI(metric="m")) is None
    with pytest.raises(DataError, match=r"window 2023-01-01\.\.2023-12-31 has no value.*start='2023-01-01'"):
        baseline_value(KPI(metric="m", baseline={"from": "2023-01-01", "to": "2023-12-31"}), s)


def test_target_at_paths():
    linear = KPI(metric="m", target={"value": 200, "by": "2025-12-31", "path": "linear"})
    assert target_at(linear, "2025-07-02", baseline=100, start="2025-01-01") == 150.0
    assert target_at(linear, "2024-06-30", baseline=100, start="2025-01-01") == 100.0
    assert target_at(linear, "2026-03-31", baseline=100, start="2025-01-01") == 200.0
    windowed = KPI(metric="m", baseline={"from": "2024-01-01", "to": "2024-12-31"}, target=linear.target)
    assert target_at(windowed, "2025-07-01", baseline=100) == pytest.approx(100 + 100 * 182 / 365)
    with pytest.raises(PlanError, match="needs its start date"):
        target_at(linear, "2025-07-02", baseline=100)
    with pytest.raises(PlanError, match=r"'m': `target.path: linear` starts from the baseline"):
        target_at(linear, "2025-07-02")
    points = [{"by": "2025-06-30", "value": 80}, {"by": "2025-03-31", "value": 50}]  # order does not matter
    table = KPI(metric="m", target={"value": 100, "by": "2025-12-31", "path": points})
    days = ("2025-01-31", "2025-03-31", "2025-04-30", "2025-07-31", "2026-06-30")
    assert [target_at(table, d) for d in days] == [50.0, 50.0, 80.0, 100.0, 100.0]
    assert target_at(KPI(metric="m", target={"value": 7, "by": "2025-12-31"}), "2020-01-01") == 7.0
    assert target_at(KPI(metric="m"), "2025-01-01") is None


def test_progress_is_direction_aware():
    assert progress(8.0, 10.0, 5.0, Direction.lower_is_better) == 0.4
    assert progress(150.0, 100.0, 200.0, Direction.higher_is_better) == 0.5
    assert progress(90.0, 100.0, 200.0, Direction.higher_is_better) == pytest.approx(-0.1)
    assert progress(30.0, 0.0, 20.0, Direction.higher_is_better) == 1.5  # zero baseline, beyond target
    # a target that is a limit rather than an improvement: met or not
    assert progress(0.015, 0.018, 0.02, Direction.lower_is_better) == 1.0
    assert progress(0.025, 0.018, 0.02, Direction.lower_is_better) == 0.0
    assert math.isnan(progress(1.0, None, 2.0, Direction.higher_is_better))


def test_plan_and_frame_mistakes_are_named_with_the_fix():
    inverted = PLAN.replace("{warning: 120, critical: 100}", "{warning: 100, critical: 120}")
    with pytest.raises(PlanError, match=r"KPI 'revenue': thresholds.warning 100 should be above"):
        evaluate(plan(inverted), data())
    quarterly = PLAN.replace("  - metric: revenue\n", "  - metric: revenue\n    grain: quarter\n")
    with pytest.raises(DataError, match=r"'revenue' \(quarter\).*grain='quarter'"):
        evaluate(plan(quarterly), data())
    assert evaluate(plan(quarterly), data(), kpis=["signups"])["metric"].tolist() == ["signups"]
    split = data().assign(region="north")
    split.attrs.update(grain="month", by=("region",))
    with pytest.raises(DataError, match="broken down by region"):
        evaluate(plan(), split)
    with pytest.raises(DataError, match="none of the plan's KPIs"):
        evaluate(plan(), frame({"other": [1.0]}))
    with pytest.raises(PlanError, match="'nope' is not a KPI"):
        evaluate(plan(), data(), kpis=["nope"])
    late = PLAN.replace("{from: 2024-01-01, to: 2024-03-31}", "{from: 2023-01-01, to: 2023-03-31}")
    with pytest.raises(DataError, match="KPI 'refund_rate': baseline window"):
        evaluate(plan(late), data())
