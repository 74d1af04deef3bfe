"""Plan checks: every rule fires where it should, once, with a message and a fix; nothing stops early."""

import collections
import datetime as dt
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from kpinb import PlanError, load_plan
from kpinb.checks.lint import RULES, Issue, check, data_quality, format_issues, has_errors, lint
from kpinb.definitions.model import KPI, Metric, Objective, Plan, Review, Target

HERE = Path(__file__).resolve().parent
BAD_PLAN = HERE / "plans" / "bad_plan.yml"
TODAY = dt.date(2025, 7, 1)

# every rule the issue asks for, and the KPI it must name in the bad plan (None: the whole plan)
EXPECTED = {
    "specific": "signups",
    "measurable": "pipeline_value",
    "achievable": "active_users",
    "relevant": "page_visits",
    "time_bound": "trials",
    "deadline_passed": "demos",
    "owner": "upgrades",
    "vanity_kpi": "likes",
    "kpi_count": None,
    "indicator_balance": None,
    "review": None,
    "data_nulls": None,
    "data_duplicates": None,
    "data_gaps": None,
}


@pytest.fixture(scope="module")
def bad() -> tuple[list[Issue], int]:
    return check(BAD_PLAN, today=TODAY)


def test_bad_plan_triggers_every_rule_exactly_once_on_the_expected_kpi(bad):
    issues, code = bad
    counts = collections.Counter(i.rule for i in issues)
    assert counts == collections.Counter(list(EXPECTED)), format_issues(issues)
    assert {i.rule: i.kpi for i in issues} == EXPECTED
    assert code == 1 and has_errors(issues)
    levels = {i.rule: i.level for i in issues}
    assert {r for r, lv in levels.items() if lv == "error"} == {"measurable", "relevant", "time_bound"}
    order = ["error", "warning", "info"]
    assert [i.level for i in issues] == sorted((i.level for i in issues), key=order.index)
    assert set(EXPECTED) <= set(RULES)


def test_bad_plan_messages_say_what_and_how_to_fix(bad):
    issues, _ = bad
    by_rule = {i.rule: i for i in issues}
    assert "reads source 'crm', which the plan does not declare" in by_rule["measurable"].message
    assert "objective 'grow-usag'" in by_rule["relevant"].message
    assert "Did you mean 'grow-usage'?" in by_rule["relevant"].message
    assert by_rule["time_bound"].message == "KPI 'trials': its target has no deadline."
    assert "2025-03-31 has passed" in by_rule["deadline_passed"].message
    assert "8 KPIs" in by_rule["kpi_count"].message
    assert "leading indicators" in by_rule["indicator_balance"].message
    assert "due by 2024-04-15" in by_rule["review"].message
    nulls = by_rule["data_nulls"].message
    assert "of 45 rows" in nulls and "1 in 'day' (the time column)" in nulls
    assert "1 in 'user_id' (read by active_users)" in nulls
    assert "1 of 45 rows exactly repeat another row" in by_rule["data_duplicates"].message
    gaps = by_rule["data_gaps"].message
    assert "1 month(s) with no rows between 2025-01-01 and 2025-06-01: 2025-04-01" in gaps
    achievable = by_rule["achievable"].message
    assert "the target 500 by 2025-12-31 looks out of reach from 5 (2025-06-01)" in achievable
    assert all(i.fix for i in issues)


def test_format_issues_prints_one_line_each(bad):
    issues, _ = bad
    lines = format_issues(issues).splitlines()
    assert len(lines) == len(issues)
    pattern = re.compile(r"^(ERROR|WARNING|INFO) [a-z_]+ \[[a-z_\-]+\]: .+ Fix: .+$")
    assert all(pattern.match(line) for line in lines), lines
    assert "WARNING owner [upgrades]: KPI 'upgrades' has no owner. Fix: Add `owner:`" in format_issues(issues)
    assert "WARNING kpi_count [plan]: The plan has 8 KPIs" in format_issues(issues)
    assert format_issues([]) == ""
    assert not has_errors([Issue("info", "review", None, "m", "f")])


# --- a clean plan passes ---------------------------------------------------------------------


def write_clean(tmp_path: Path, extra: str = "", events: pd.DataFrame | None = None) -> Path:
    """Two KPIs (one leading, one lagging) over six tidy months of events."""
    if events is None:
        rows = []
        for month in range(1, 7):
            day = [f"2025-{month:02d}-{d + 1:02d}" for d in range(20)]
            rows += [{"day": day[d], "kind": "signup", "amount": None} for d in range(10 + month)]
            rows += [{"day": day[d], "kind": "order", "amount": 100.0 + 10 * month} for d in range(5)]
        events = pd.DataFrame(rows)
    events.to_csv(tmp_path / "events.csv", index=False)
    plan = tmp_path / "plan.yml"
    plan.write_text(textwrap.dedent("""\
        name: Clean plan
        department: growth
        objectives:
          - {id: grow, statement: Grow paying customers}
        sources:
          events: {path: events.csv, time: day}
        metrics:
          - {id: signups, name: Sign-ups, source: events, expr: "count_if(kind = 'signup')",
             indicator: leading, description: New accounts created.}
          - {id: revenue, name: Revenue, source: events, expr: sum(amount), where: "kind = 'order'",
             unit: currency, indicator: lagging, description: Revenue of orders.}
        kpis:
          - {metric: signups, objective: grow, owner: Growth Lead, target: {value: 18, by: 2025-12-31}}
          - {metric: revenue, objective: grow, owner: CFO, target: {value: 900, by: 2025-12-31}}
        review: {every: quarter, last: 2025-06-15}
        """) + extra, encoding="utf-8")  # fmt: skip
    return plan


def test_a_clean_plan_has_no_issues_and_exits_0(tmp_path):
    # `amount` is empty on sign-up rows, but revenue only reads order rows: not a data problem
    issues, code = check(write_clean(tmp_path), today=TODAY)
    assert issues == [] and code == 0


def test_illustrative_and_invalid_benchmarks_are_reported(tmp_path):
    bench = tmp_path / "bench.csv"
    bench.write_text("metric,industry,segment,p25,p50,p75,unit,source,year\n"
                     "signups,all,all,5,10,20,count,illustrative,\n", encoding="utf-8")  # fmt: skip
    issues, code = check(write_clean(tmp_path, "benchmarks: bench.csv\n"), today=TODAY)
    assert [(i.level, i.rule) for i in issues] == [("info", "benchmarks")] and code == 0
    assert "signups are illustrative placeholders, not industry data" in issues[0].message
    bench.write_text("metric,industry,segment,p25,p50,p75,unit,source,year\nsignups,all,all,5,x,20,count,,\n")
    issues, code = check(tmp_path / "plan.yml", today=TODAY)
    assert [i.rule for i in issues] == ["benchmarks", "benchmarks"] and code == 1
    assert issues[0].message.startswith(f"{bench}:2: column p50:")


# --- the rules one by one --------------------------------------------------------------------


def test_lint_checks_a_plan_built_in_code_without_loading_it():
    plan = Plan(
        name="Wizard draft", department="sales",
        objectives=(Objective(id="grow", statement="Grow revenue"),),
        kpis=(KPI(metric="monthly_sales_revnue", objective="grow", owner="Ann"),
              KPI(metric="monthly_sales_revenue")),
    )  # fmt: skip
    issues = lint(plan, today=TODAY)
    got = sorted((i.rule, i.kpi) for i in issues)
    assert got == [
        ("indicator_balance", None),  # only lagging
        ("measurable", "monthly_sales_revenue"),  # reads `orders`, which the draft does not declare
        ("measurable", "monthly_sales_revnue"),
        ("owner", "monthly_sales_revenue"),
        ("review", None),
        ("specific", "monthly_sales_revenue"),
        ("time_bound", "monthly_sales_revenue"),
        ("time_bound", "monthly_sales_revnue"),
    ]
    unknown = next(i for i in issues if i.kpi == "monthly_sales_revnue" and i.rule == "measurable")
    assert "did you mean 'monthly_sales_revenue'?" in unknown.message
    assert next(i for i in issues if i.rule == "time_bound").message.endswith("has no target, so no one can "
                                                                              "tell whether it is on track.")


def kpi_plan(direction: str = "higher_is_better", target: float = 42, by: str = "2025-10-31") -> Plan:
    metric = Metric(id="score", name="Score", description="A score.", source="events", expr="sum(x)",
                    direction=direction, indicator="leading")  # fmt: skip
    other = metric.model_copy(update={"id": "result", "indicator": "lagging"})
    return Plan(
        name="p", department="d", objectives=(Objective(id="o", statement="s"),),
        sources={"events": {"path": "events.csv", "time": "day"}}, metrics=(metric, other),
        kpis=(KPI(metric="score", objective="o", owner="me", target=Target(value=target, by=by)),),
        review=Review(every="quarter", last=dt.date(2025, 6, 1)),
    )  # fmt: skip


def history(values: list[float], metric: str = "score") -> pd.DataFrame:
    months = pd.date_range("2025-01-01", periods=len(values), freq="MS")
    df = pd.DataFrame({"metric": metric, "period_start": months, "value": values})
    df.attrs.update(grain="month", by=())
    return df


def achievable(plan: Plan, data: pd.DataFrame) -> list[Issue]:
    return [i for i in lint(plan, data, today=dt.date(2025, 4, 15)) if i.rule == "achievable"]


# history 10, 12, 13, 15 (Jan-Apr): best month-to-month gain 2; least-squares slope 1.6 a month;
# October is 6 months after April: the trend gives 12.5 + 1.6 * (9 - 1.5) = 24.5 then; range 5.
@pytest.mark.parametrize(
    ("target", "by", "reasons"),
    [
        (24, "2025-10-31", []),  # 1.5 a month, under 2 x 2; 24 <= 24.5 + 5
        (30, "2025-10-31", ["range"]),  # 2.5 a month is fine, but 30 > 29.5
        (42, "2025-10-31", ["pace", "range"]),  # 4.5 a month > 4, and 42 > 29.5
        (19.5, "2025-05-31", ["pace"]),  # 4.5 in one month > 4; the trend gives 16.5 + 5 >= 19.5
    ],
)
def test_achievable_pace_and_range_rules(target, by, reasons):
    issues = achievable(kpi_plan(target=target, by=by), history([10, 12, 13, 15]))
    if not reasons:
        assert issues == []
        return
    (issue,) = issues
    assert (issue.level, issue.rule, issue.kpi) == ("warning", "achievable", "score")
    pace = "more than twice the best month-to-month improvement so far (2)" in issue.message
    assert pace == ("pace" in reasons)
    assert ("plus the historical range (5)" in issue.message) == ("range" in reasons)
    if "range" in reasons and by == "2025-10-31":
        assert "the trend's value at the deadline or the best value seen (24.5)" in issue.message


def test_achievable_lower_is_better_and_already_met():
    # 0.5, 0.45, 0.47, 0.44: slope -0.016 a month, trend at October 0.345; range 0.06
    # -> below 0.345 - 0.06 = 0.285 is out of reach
    data = history([0.5, 0.45, 0.47, 0.44])
    (issue,) = achievable(kpi_plan("lower_is_better", target=0.2), data)
    assert issue.rule == "achievable" and "(0.345) plus the historical range (0.06)" in issue.message
    assert "more than twice" not in issue.message  # 0.04 a month vs a best gain of 0.05
    assert achievable(kpi_plan("lower_is_better", target=0.3), data) == []
    (met,) = achievable(kpi_plan("lower_is_better", target=0.5), data)
    assert (met.level, met.rule) == ("info", "achievable") and "already meets the target 0.5" in met.message


def test_achievable_never_improved_and_gaps_spread_the_change():
    (issue,) = achievable(kpi_plan(target=12), history([10, 9, 8]))
    assert "the history never improved from one month to the next" in issue.message
    # 10 -> (no data) -> 14 is +2 a month, not +4: 13.5 a month for 1 month is more than twice that
    (issue,) = achievable(kpi_plan(target=28, by="2025-05-31"), history([10, float("nan"), 14, 15]))
    assert "improvement so far (2)" in issue.message


def test_measurable_with_data_needs_values():
    issues = lint(kpi_plan(target=20), history([float("nan")] * 4), today=TODAY)
    (m,) = [i for i in issues if i.rule == "measurable"]
    assert (m.level, m.kpi, m.message) == ("error", "score", "KPI 'score' has no values in the data.")


def test_review_due_date_clamps_to_the_month_end():
    plan = kpi_plan(target=20).model_copy(update={"review": Review(every="month", last=dt.date(2025, 1, 31))})
    assert [i.rule for i in lint(plan, today=dt.date(2025, 2, 28))] == ["indicator_balance"]
    (review,) = [i for i in lint(plan, today=dt.date(2025, 3, 1)) if i.rule == "review"]
    assert "due by 2025-02-28" in review.message


# --- loading, references and sources ---------------------------------------------------------


def test_an_invalid_plan_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "plan.yml"
    path.write_text("name: x\ndepartment: y\nkpis: [{metric: nps, colour: red}]\n", encoding="utf-8")
    issues, code = check(path, today=TODAY)
    assert code == 1 and [i.rule for i in issues if i.level == "error"] == ["plan_file"]
    assert "kpis[0].colour: unknown field 'colour'" in issues[0].message
    assert "the rest of the plan is checked without it" in issues[0].fix  # the plan's other rules still ran


def test_a_missing_plan_file_raises(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        check(tmp_path / "nope.yml")


def test_other_dangling_references_are_plan_reference_errors(tmp_path):
    plan = write_clean(tmp_path)
    text = plan.read_text().replace(
        "kpis:\n",
        "  - {id: unused, name: Unused, source: events, expr: 'sum(amount) +', description: x}\n"
        "kpis:\n  - {metric: revenue, objective: grow, owner: CFO, target: {value: 900, by: 2025-12-31}}\n",
    )  # fmt: skip
    plan.write_text(text)
    issues, code = check(plan, today=TODAY)
    refs = [i for i in issues if i.rule == "plan_reference"]
    assert code == 1 and len(refs) == 2, format_issues(issues)
    assert refs[0].kpi == "revenue" and "listed 2 times under `kpis:`" in refs[0].message
    assert refs[1].kpi is None and refs[1].message.startswith("`metrics[2].expr`: formula 'sum(amount) +'")


def test_unreadable_source_is_a_data_source_error(tmp_path):
    plan = write_clean(tmp_path)
    (tmp_path / "events.csv").unlink()
    issues, code = check(plan, today=TODAY)
    assert code == 1
    assert sorted((i.rule, i.kpi) for i in issues) == [
        ("data_source", None), ("measurable", "revenue"), ("measurable", "signups"),
    ]  # fmt: skip
    assert "file not found" in next(i for i in issues if i.rule == "data_source").message


def test_nulls_are_counted_in_the_rows_a_metric_keeps_unless_the_formula_handles_them(tmp_path):
    events = pd.DataFrame({
        "day": pd.to_datetime(["2025-01-05", "2025-01-06", "2025-02-05", "2025-02-06"]),
        "kind": ["order", "order", "order", "signup"], "amount": [10.0, None, 30.0, None],
    })  # fmt: skip
    path = write_clean(tmp_path, events=events)
    plan = load_plan(path)
    (nulls,) = data_quality(plan)
    assert nulls.rule == "data_nulls" and "1 in 'amount' (read by revenue)" in nulls.message
    counted = [m.model_copy(update={"expr": "sum(amount) / count(amount)"}) if m.id == "revenue" else m
               for m in plan.metrics]  # fmt: skip
    assert data_quality(plan.model_copy(update={"metrics": tuple(counted)})) == []


def test_shipped_plans_have_no_errors_without_data():
    plans = sorted((HERE.parent / "templates" / "plans").glob("*.yml"))
    assert plans
    for path in plans:
        issues = lint(load_plan(path), today=dt.date(2025, 7, 1))
        assert not has_errors(issues), f"{path.name}:\n{format_issues(issues)}"


def test_check_reports_inverted_thresholds_with_the_other_problems_in_one_round(tmp_path):
    """Issue 13, case 7: warning 11% above critical 12% for a higher-is-better KPI passed
    `kpinb check` with 0 errors, then `kpinb alerts` failed. One validation, run by all."""
    (tmp_path / "opportunities.csv").write_text("created_at,stage\n2025-01-05,won\n", encoding="utf-8")
    plan = tmp_path / "plan.yml"
    plan.write_text(
        textwrap.dedent("""\
            name: Sales
            department: sales
            sources:
              opportunities: {path: opportunities.csv}
            kpis:
              - metric: sales_conversion_rate
                target: {value: 0.13, by: 2030-12-31}
                thresholds: {warning: 0.11, critical: 0.12}
                supporting: [no_such_metric]
              - metric: qualified_leads
                direction: lower_is_better
                target: {value: 420, by: 2030-12-31}
                thresholds: {warning: 350, critical: 300}
        """),
        encoding="utf-8",
    )
    with pytest.raises(PlanError) as e:
        load_plan(plan)
    assert "kpis[0].thresholds" in str(e.value) and "kpis[1].thresholds" in str(e.value)
    issues, code = check(plan, today=dt.date(2025, 7, 1))
    assert code == 1
    rules = collections.Counter((i.rule, i.kpi) for i in issues if i.level == "error")
    assert rules[("thresholds", "sales_conversion_rate")] == 1
    assert rules[("thresholds", "qualified_leads")] == 1  # the KPI's own direction counts
    assert any("no_such_metric" in i.message for i in issues)  # ... and the other problems, same round


def test_a_plan_with_mistakes_of_every_kind_is_reported_in_one_round(tmp_path: Path) -> None:
    """The issue's case: five mistakes took four fix-and-rerun rounds. A wrong field (dropped, the
    rest still checked), a wrong plan setting, an unknown metric, inverted thresholds, a column
    mapping to nothing and a missing file: all in the first run of `kpinb check`."""
    import subprocess
    import sys

    pd.DataFrame(
        {"order_date": pd.date_range("2025-01-01", periods=90, freq="D"), "revenue": 10.0, "status": "completed",
         "order_id": range(90), "customer_id": "c1", "is_new_customer": False, "quantity": 1}
    ).to_parquet(tmp_path / "orders.parquet")  # fmt: skip
    (tmp_path / "plan.yml").write_text(
        textwrap.dedent("""\
        name: Five mistakes
        department: sales
        week_start: fri
        sources:
          orders: {path: orders.parquet, columns: {revenue: amount_usd}}
          leads: {path: missing.csv, time: created}
        metrics:
          - {id: leads_count, name: Leads, source: leads, expr: count(*)}
        kpis:
          - {metric: monthly_revenue, owner: Ana, target: {value: 200, by: 2027-06-30}}
          - metric: average_order_value
            owner: Ana
            target: {value: 330, by: 2027-06-30}
            thresholds: {warning: 300, critical: 310}
          - {metric: orders_count, owner: Bo, target: {value: lots, by: 2027-06-30}}
          - {metric: leads_count, owner: Bo, target: {value: 420, by: 2027-06-30}}
        """)
    )
    done = subprocess.run(
        [sys.executable, "-m", "kpinb.cli", "check", str(tmp_path / "plan.yml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    for needle in ("kpis[2].target.value", "week_start 'fri'", "unknown metric 'monthly_revenue'",
                   "thresholds.warning 300 should be above", "maps to 'amount_usd'", "missing.csv"):  # fmt: skip
        assert any(needle in line for line in errors), (needle, done.stdout)
    assert "Traceback" not in done.stderr + done.stdout
