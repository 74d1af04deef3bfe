"""The periodic review (kpinb.analytics.review) and proposals from objectives
(kpinb.analytics.proposal): exact values on hand-made frames and the sample data."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_status import PLAN, data, plan

import kpinb
from kpinb.analytics import proposal, review
from kpinb.definitions import catalog

ROOT = Path(__file__).resolve().parent.parent


def test_target_history_judges_each_of_the_last_periods():
    hist = review.target_history(plan(), data(), periods=3, as_of="2025-06-30", kpis=["signups"])
    assert hist["period_start"].dt.strftime("%Y-%m").tolist() == ["2025-04", "2025-05", "2025-06"]
    assert hist["value"].tolist() == [70.0, 75.0, 76.0]
    assert hist["target_now"].tolist() == [80.0, 80.0, 80.0]  # the milestone of 2025-06-30
    assert hist["gap"].tolist() == [-10.0, -5.0, -4.0]


def test_misses_counts_the_misses_and_the_trend_of_the_gap():
    out = review.misses(plan(), data(), periods=3, as_of="2025-06-30", kpis=["signups"]).iloc[0]
    assert (out["periods_judged"], out["periods_missed"], out["miss_share"]) == (3, 3, 1.0)
    assert out["latest_gap"] == -4.0
    assert out["gap_trend"] == pytest.approx(3.0)  # -10 -> -5 -> -4: closing by 3 a month
    assert out["best_value"] == pytest.approx((70 + 75 + 76) / 3)


def test_staleness_finds_stopped_data_flat_values_and_passed_deadlines():
    stopped = data(visits=[500.0] * 15 + [math.nan] * 3, signups=[10.0] * 18)
    out = review.staleness(plan(), stopped, periods=6, as_of="2025-06-30", today=pd.Timestamp("2026-02-01").date())
    rows = out.set_index("metric")
    assert rows.loc["visits", "periods_without_data"] == 3 and rows.loc["visits", "stale"]
    assert rows.loc["signups", "flat"] and rows.loc["signups", "stale"]
    assert rows.loc["revenue", "deadline_passed"]  # 2025-12-31 is before 2026-02-01
    assert not rows.loc["refund_rate", "flat"]


def test_data_months_old_is_late_when_the_review_is_as_of_today_not_fresh():
    """The issue's case: the review called 11-month-old data fresh (it judged against the data's end)."""
    old = data(visits=[500.0 + i for i in range(18)])  # monthly values through 2025-06
    rows = review.staleness(plan(), old, periods=6, today=pd.Timestamp("2026-05-20").date()).set_index("metric")
    assert rows.loc["visits", "periods_without_data"] == 10 and rows.loc["visits", "stale"]  # July-April ended
    assert "the newest is for 2025-06" in rows.loc["visits", "reason"]
    fresh = review.staleness(plan(), old, periods=6, today=pd.Timestamp("2025-07-20").date()).set_index("metric")
    assert fresh.loc["visits", "periods_without_data"] == 0  # June is the last month that ended


def test_a_value_not_final_yet_is_not_missing_data_when_the_review_is_as_of_today():
    """The sample report's case: two months not final yet for one KPI moved the judged period back,
    and every KPI was called stale ("no value in the last 2 periods") although they had values."""
    df = data()  # monthly values through 2025-06
    df["complete"] = ~((df["metric"] == "refund_rate") & (df["period_start"] >= "2025-05-01"))
    rows = review.staleness(plan(), df, periods=6, today=pd.Timestamp("2025-07-20").date()).set_index("metric")
    assert (rows["periods_without_data"] == 0).all() and not rows["reason"].str.contains("no value").any()
    assert set(rows["last_value_period"]) == {"2025-06"}
    later = review.staleness(plan(), df, periods=6, today=pd.Timestamp("2025-10-02").date()).set_index("metric")
    assert (later["periods_without_data"] == 3).all()  # July, August, September ended without data


def test_suggestions_put_a_missed_target_first_without_repeats():
    text = PLAN.replace("target: {value: 200, by: 2025-12-31, path: linear}", "target: {value: 400, by: 2025-07-31}")
    out = review.suggestions(plan(text), data(), periods=6, as_of="2025-06-30", today=pd.Timestamp("2025-07-01").date())
    assert len(out) == len(out.drop_duplicates())
    assert {"kpi", "topic", "suggestion"} <= set(out.columns)
    assert out["kpi"].iloc[0] == "Revenue" and "the plan" in set(out["kpi"])  # KPIs by name, then plan-wide
    # the misses a review already judged are used as they are (the template passes them on)
    missed = review.misses(plan(text), data(), periods=6, as_of="2025-06-30")
    again = review.suggestions(plan(text), data(), periods=6, as_of="2025-06-30",
                               today=pd.Timestamp("2025-07-01").date(), missed=missed)  # fmt: skip
    pd.testing.assert_frame_equal(again, out)
    none = review.suggestions(plan(text), data(), periods=6, as_of="2025-06-30",
                              today=pd.Timestamp("2025-07-01").date(), missed=missed.iloc[0:0])  # fmt: skip
    assert out["topic"].str.startswith("consistently missed").any()
    assert not none["topic"].str.startswith("consistently missed").any()


def test_a_proposal_on_the_sample_data_has_checked_baselines_targets_and_loads_back(sample_data, tmp_path):
    sources = proposal.sources_from(sample_data)
    got = proposal.propose(
        ["Grow revenue"], "sales", sources, max_kpis=3, period_end="2025-06-30", deadline="2026-06-30"
    )
    plan_ = got.plan
    assert 1 <= len(plan_.kpis) <= 3 and plan_.department == "sales"
    reg = catalog.metrics()
    monthly = kpinb.compute(plan_, grain="month", end="2025-06-30")
    for k in plan_.kpis:
        assert k.target is not None and str(k.target.by) == "2026-06-30"
        assert k.baseline is not None and k.baseline.to is not None
        window = monthly[(monthly["metric"] == k.metric) & (monthly["period_start"] > "2024-06-01")]
        base = float(window["value"].mean())
        higher = reg[k.metric].direction.value == "higher_is_better"
        assert (k.target.value > base) if higher else (k.target.value < base)
        assert np.isfinite(k.target.value)
    assert set(plan_.sources) <= set(sources)  # only the sources its KPIs read
    path = proposal.write(plan_, tmp_path / "plans")
    again = kpinb.load_plan(path)
    assert [k.metric for k in again.kpis] == [k.metric for k in plan_.kpis]
    assert path.read_text().startswith("# Proposed by kpinb")


def test_a_proposal_refuses_more_kpis_than_a_plan_should_hold():
    with pytest.raises(kpinb.PlanError, match="max_kpis=9"):
        proposal.propose(["Grow revenue"], "sales", {}, max_kpis=9)

