"""Goal history: a KPI's target as a list of versions with `from:`; past periods are judged
against the version in force then, on data written here and computed by the real engine."""

import datetime as dt

import pandas as pd
import pytest
import yaml

import kpinb
from kpinb import scorecard
from kpinb.analytics.review import CHANGE_COLUMNS, target_changes
from kpinb.checks.lint import check
from kpinb.definitions.model import KPI, to_dict
from kpinb.definitions.writer import plan_yaml
from kpinb.errors import PlanError

PLAN = """\
name: Shop
department: sales
sources:
  orders: {path: orders.csv, time: day}
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(amount), unit: currency, description: Paid orders}
kpis:
  - metric: revenue
    owner: Ann
    objective: grow
    target:
      - {value: 250, by: 2025-12-31}
      - {value: 400, by: 2026-06-30, from: 2025-07-01}
objectives:
  - {id: grow, statement: Grow revenue}
"""


@pytest.fixture
def shop(tmp_path):
    days = pd.date_range("2025-01-01", "2025-08-31", freq="D")
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "amount": 10.0}).to_csv(tmp_path / "orders.csv", index=False)
    (tmp_path / "plan.yml").write_text(PLAN)
    return kpinb.load_plan(tmp_path / "plan.yml")


def test_the_kpi_keeps_every_version_and_target_is_the_one_in_force_now(shop):
    k = shop.kpi("revenue")
    assert [t.value for t in k.targets] == [250.0, 400.0]
    assert (k.target.value, k.target.from_) == (400.0, dt.date(2025, 7, 1))
    assert k.target_on(dt.date(2025, 6, 30)).value == 250.0
    assert k.target_on(pd.Timestamp("2025-07-01")).value == 400.0
    assert k.target_on("2024-01-31").value == 250.0  # before the first change, the first version
    single = KPI(metric="revenue", target={"value": 1, "by": "2025-12-31"})
    assert single.targets == () and single.target_on("2025-01-01") is single.target


def test_past_periods_are_judged_against_the_version_in_force_then(shop):
    df = kpinb.compute(shop, grain="month")
    june = scorecard.evaluate(shop, df, as_of="2025-06-30", pace=False).get("revenue")
    assert (june.value, june.target_now, june.target) == (300.0, 250.0, 250.0)
    assert june.deadline == pd.Timestamp("2025-12-31")
    assert (june.status, june.rule) == ("on_track", "target")
    aug = scorecard.evaluate(shop, df, pace=False).get("revenue")
    assert (aug.period_label, aug.value, aug.target_now, aug.target) == ("2025-08", 310.0, 400.0, 400.0)
    assert aug.deadline == pd.Timestamp("2026-06-30")
    assert aug.status == "off_track" and "400.00" in aug.reason  # 310 / 400 = 78%, under 90%
    path = aug.target_path  # the line a trend draws follows the versions too
    assert path[pd.Timestamp("2025-06-01")] == 250.0 and path[pd.Timestamp("2025-07-01")] == 400.0
    assert path.index[-1] == pd.Timestamp("2026-06-01")


def test_the_writer_round_trips_a_goal_history(shop, tmp_path):
    text = plan_yaml(to_dict(shop), header="test")
    assert "  - {value: 400, by: 2026-06-30, from: 2025-07-01}" in text
    (tmp_path / "again.yml").write_text(text)
    again = kpinb.load_plan(tmp_path / "again.yml")
    assert again.kpi("revenue") == shop.kpi("revenue")


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ("[]", "`target:` is an empty list"),
        ("[{value: 1, by: 2025-12-31}, {value: 2, by: 2025-12-31}]", r"target\[1\] needs `from: YYYY-MM-DD`"),
        (
            "[{value: 1, by: 2025-12-31, from: 2025-03-01}, {value: 2, by: 2025-12-31, from: 2025-02-01}]",
            r"target\[1\].from 2025-02-01 is not after target\[0\].from 2025-03-01",
        ),
        ("[{value: 1, by: 2025-12-31}, {value: 2, by: 2025-12-31, from: 2025-02-01, bad: 1}]", r"target\[1\].bad"),
    ],
)
def test_a_wrong_history_is_one_clear_error_naming_the_file_and_version(tmp_path, versions, message):
    start, end = PLAN.index("    target:\n"), PLAN.index("objectives:")
    (tmp_path / "plan.yml").write_text(PLAN[:start] + f"    target: {versions}\n" + PLAN[end:])
    with pytest.raises(PlanError, match=message) as err:
        kpinb.load_plan(tmp_path / "plan.yml")
    assert "plan.yml" in str(err.value)


def test_check_reports_a_version_without_deadline_and_one_effective_after_its_deadline(tmp_path, shop):
    text = PLAN.replace("{value: 400, by: 2026-06-30, from: 2025-07-01}", "{value: 400, from: 2025-07-01}")
    (tmp_path / "plan.yml").write_text(text)
    issues, code = check(tmp_path / "plan.yml", today=dt.date(2025, 9, 1))
    assert code == 1 and [i.rule for i in issues if i.level == "error"] == ["time_bound"]
    text = PLAN.replace("by: 2026-06-30, from: 2025-07-01", "by: 2025-06-30, from: 2025-07-01")
    (tmp_path / "plan.yml").write_text(text)
    issues, code = check(tmp_path / "plan.yml", today=dt.date(2025, 6, 1))
    errors = [i for i in issues if i.level == "error"]
    assert code == 1 and [i.rule for i in errors] == ["goal_history"]
    assert "target[1] takes effect on 2025-07-01, after its own deadline 2025-06-30" in errors[0].message


def test_the_review_says_when_and_how_a_target_changed(shop):
    out = target_changes(shop)
    assert tuple(out.columns) == CHANGE_COLUMNS
    row = out.iloc[0]
    assert (row["metric"], row["effective"], row["previous"], row["value"]) == (
        "revenue", pd.Timestamp("2025-07-01"), 250.0, 400.0
    )
    assert row["change"] == (
        "From 2025-07-01 the target was raised from 250.00 to 400.00 (more ambitious); "
        "deadline moved from 2025-12-31 to 2026-06-30."
    )
    assert target_changes(shop, kpis=["other"]).empty
    one = shop.model_copy(update={"kpis": (shop.kpi("revenue").model_copy(update={"targets": ()}),)})
    assert target_changes(one).empty  # a single target has no history


def test_a_goal_history_given_as_targets_is_refused():
    with pytest.raises(ValueError, match="list under `target:`"):
        KPI.model_validate(yaml.safe_load("{metric: x, targets: [{value: 1, by: 2025-12-31}]}"))



def test_a_slice_with_a_goal_of_its_own_leaves_the_kpis_history_behind():
    k = KPI.model_validate(yaml.safe_load(
        "{metric: revenue, target: [{value: 1, by: 2025-12-31}, {value: 2, by: 2025-12-31, from: 2025-07-01}],"
        " slices: {region: {north: {target: {value: 5, by: 2025-12-31}}}}}"
    ))  # fmt: skip
    north = k.for_slice("region", "north")
    assert north.targets == () and north.target_on("2025-01-31").value == 5.0
