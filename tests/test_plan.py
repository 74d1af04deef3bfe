"""Plan files: a good plan loads; each kind of mistake gives one PlanError naming file, line, field and fix."""

import textwrap
from pathlib import Path

import pytest

from kpinb import PlanError, load_plan
from kpinb.definitions.plan import parse_plan

GOOD = """\
name: Sales 2025
department: sales
objectives:
  - id: grow-revenue
    statement: Grow revenue 20% in 2025
sources:
  orders:
    path: orders.parquet
    columns: {revenue: amount_usd}
metrics:
  - id: big_orders
    name: Big orders
    source: orders
    expr: count_if(revenue > 1000)
    unit: count
kpis:
  - metric: monthly_sales_revenue
    objective: grow-revenue
    owner: Head of Sales
    baseline: {value: 100000}
    target: {value: 120000, by: 2025-12-31}
    thresholds: {warning: 110000, critical: 100000}
    supporting: [average_order_value, big_orders]
review: {every: quarter, last: 2025-01-15}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plan.yml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_good_plan_loads_and_resolves_paths_against_its_folder(tmp_path):
    plan = load_plan(write(tmp_path, GOOD))
    assert plan.kpis[0].target.value == 120000
    assert str(plan.kpis[0].target.by) == "2025-12-31"
    assert plan.resolve(plan.sources["orders"].path) == tmp_path.resolve() / "orders.parquet"
    assert plan.metrics[0].id == "big_orders"


def error_of(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(PlanError) as err:
        load_plan(path)
    return str(err.value), str(path)


def test_malformed_yaml_names_file_and_line(tmp_path):
    msg, path = error_of(tmp_path, "name: x\ndepartment: [sales\nkpis: []\n")
    assert msg.startswith(f"{path}:")
    assert ":3:" in msg or ":2:" in msg
    assert "Fix the YAML syntax" in msg


def test_unknown_metric_suggests_catalog_ids(tmp_path):
    msg, path = error_of(tmp_path, GOOD.replace("metric: monthly_sales_revenue", "metric: monthly_sales_revenu"))
    assert f"{path}:17: kpis[0].metric: unknown metric 'monthly_sales_revenu'" in msg
    assert "Did you mean 'monthly_sales_revenue'?" in msg


def test_unknown_source_is_named_with_fix(tmp_path):
    text = GOOD.replace(
        "  orders:\n    path: orders.parquet\n    columns: {revenue: amount_usd}\n",
        "  shop: {path: x.csv, time: day}\n",
    )
    msg, _ = error_of(tmp_path, text)
    assert "reads source 'orders', which the plan does not declare" in msg
    assert "Add `orders:` under `sources:`" in msg


def test_unknown_canonical_column_in_mapping(tmp_path):
    msg, path = error_of(tmp_path, GOOD.replace("{revenue: amount_usd}", "{revenu: amount_usd}"))
    assert f"{path}:9: sources.orders.columns.revenu" in msg
    assert "Did you mean 'revenue'?" in msg


def test_target_without_deadline(tmp_path):
    msg, path = error_of(tmp_path, GOOD.replace("target: {value: 120000, by: 2025-12-31}", "target: {value: 120000}"))
    assert f"{path}:21: kpis[0].target: a target needs a deadline: add `by: YYYY-MM-DD`" in msg


def test_wrong_type_names_field_and_value(tmp_path):
    msg, path = error_of(tmp_path, GOOD.replace("baseline: {value: 100000}", "baseline: {value: lots}"))
    assert f"{path}:20: kpis[0].baseline.value" in msg
    assert "'lots'" in msg and "write a number" in msg


def test_unknown_field_and_missing_field(tmp_path):
    msg, _ = error_of(
        tmp_path, GOOD.replace("owner: Head of Sales", "ownr: Head of Sales").replace("name: Sales 2025\n", "")
    )
    assert "kpis[0].ownr: unknown field 'ownr'; remove it or check its spelling." in msg
    assert "name: required field 'name' is missing; add it." in msg


def test_bad_formula_in_plan_metric(tmp_path):
    msg, path = error_of(tmp_path, GOOD.replace("count_if(revenue > 1000)", "__import__('os')"))
    assert f"{path}:14: metrics[0].expr: formula \"__import__('os')\": unknown function '__import__'" in msg


def test_unknown_objective_and_duplicate_kpi(tmp_path):
    text = GOOD.replace("objective: grow-revenue", "objective: grow-revenu") + textwrap.dedent(
        """\
        """
    )
    text = text.replace("review:", "  - metric: monthly_sales_revenue\nreview:")
    msg, _ = error_of(tmp_path, text)
    assert "unknown objective 'grow-revenu'. Did you mean 'grow-revenue'?" in msg
    assert "is already a KPI above; list it once" in msg


def test_yaml_tags_are_never_constructed(tmp_path):
    msg, _ = error_of(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\ndepartment: x\n")
    assert "YAML tags" in msg


def test_duplicate_keys_are_refused(tmp_path):
    msg, path = error_of(tmp_path, "name: a\nname: b\ndepartment: x\n")
    assert f"{path}:2:" in msg and "duplicate key 'name'" in msg


def test_not_a_mapping(tmp_path):
    msg, _ = error_of(tmp_path, "- just\n- a list\n")
    assert "a plan must be a mapping" in msg


def test_missing_file_is_a_plan_error(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        load_plan(tmp_path / "nope.yml")


def test_all_problems_reported_together():
    text = GOOD.replace("ownr", "owner").replace("metric: monthly_sales_revenue", "metric: nope_one")
    text = text.replace("supporting: [average_order_value, big_orders]", "supporting: [nope_two]")
    with pytest.raises(PlanError) as err:
        parse_plan(text, "p.yml")
    lines = str(err.value).splitlines()
    assert any("nope_one" in line for line in lines) and any("nope_two" in line for line in lines)
