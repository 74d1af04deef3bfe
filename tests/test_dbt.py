"""`kpinb import-dbt`: a dbt semantic layer becomes a plan whose metrics compute the same numbers.

The test writes a small dbt project (dbt_project.yml, profiles.yml with a DuckDB path, one model
file with two semantic models and every kind of metric) and the DuckDB database dbt would have
built, imports it, and compares kpinb's monthly numbers with hand-written SQL on that database.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kpinb
from kpinb.cli import main
from kpinb.errors import PlanError

pytest.importorskip("dbt_semantic_interfaces")
duckdb = pytest.importorskip("duckdb")

from kpinb.definitions.dbt import import_dbt  # noqa: E402

MODELS = """
semantic_models:
  - name: orders
    description: One row per order.
    model: ref('fct_orders')
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: region, type: categorical}
      - {name: is_food, type: categorical}
      - {name: status, type: categorical}
      - {name: size_band, type: categorical, expr: "case when amount > 100 then 'big' else 'small' end"}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: order_count, agg: count, expr: "1"}
      - {name: food_orders, agg: sum_boolean, expr: is_food, create_metric: true}
      - {name: buyers, agg: count_distinct, expr: customer_id}
      - {name: avg_amount, agg: average, expr: amount}
      - {name: median_amount, agg: median, expr: amount}
      - {name: big_revenue, agg: sum, expr: "case when amount > 100 then amount else 0 end"}
      - {name: p90_amount, agg: percentile, expr: amount, agg_params: {percentile: 0.9}}
  - name: customers
    model: ref('dim_customers')
    defaults: {agg_time_dimension: signed_up_at}
    entities:
      - {name: customer, type: primary, expr: customer_id}
    dimensions:
      - {name: signed_up_at, type: time, type_params: {time_granularity: day}}
      - {name: country, type: categorical}
    measures:
      - {name: signups, agg: count, expr: customer_id}

metrics:
  - {name: revenue, label: Revenue, type: simple, type_params: {measure: revenue}}
  - name: food_revenue
    label: Food revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('order__is_food') }} = true"
  - name: completed_eu_revenue
    type: simple
    type_params:
      measure: {name: revenue, filter: "{{ Dimension('order__region') }} = 'Europe'"}
    filter: "{{ Dimension('order__status') }} in ('paid', 'shipped')"
  - {name: orders, type: simple, type_params: {measure: order_count}}
  - {name: buyers, type: simple, type_params: {measure: buyers}}
  - {name: avg_order, type: simple, type_params: {measure: avg_amount}}
  - {name: median_order, type: simple, type_params: {measure: median_amount}}
  - {name: big_revenue, type: simple, type_params: {measure: big_revenue}}
  - {name: signups, type: simple, type_params: {measure: signups}}
  - name: aov
    label: Average order value
    type: ratio
    type_params: {numerator: revenue, denominator: orders}
  - name: food_share
    type: ratio
    type_params:
      numerator: {name: orders, filter: "{{ Dimension('order__is_food') }} = true"}
      denominator: orders
  - name: revenue_per_buyer
    type: derived
    type_params:
      expr: rev / nullif(b, 0)
      metrics: [{name: revenue, alias: rev}, {name: buyers, alias: b}]
  - name: net_revenue
    type: derived
    type_params:
      expr: revenue - returned
      metrics:
        - revenue
        - {name: revenue, alias: returned, filter: "{{ Dimension('order__status') }} = 'returned'"}
  - name: cumulative_revenue
    type: cumulative
    type_params: {measure: revenue}
  - name: revenue_mom
    type: derived
    type_params:
      expr: revenue - revenue_prev
      metrics: [revenue, {name: revenue, alias: revenue_prev, offset_window: 1 month}]
  - {name: p90_order, type: simple, type_params: {measure: p90_amount}}
  - name: swiss_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('customer__country') }} = 'CH'"
  - {name: aov_of_p90, type: ratio, type_params: {numerator: p90_order, denominator: orders}}
"""

UNTRANSLATED = {
    ("dimension", "orders.size_band"), ("metric", "cumulative_revenue"), ("metric", "revenue_mom"),
    ("metric", "p90_order"), ("metric", "swiss_revenue"), ("metric", "aov_of_p90"),
}  # fmt: skip

# Hand-written SQL per metric: the number dbt's semantic layer defines, by month.
EXPECTED = {
    "revenue": "sum(amount)",
    "food_revenue": "sum(amount) filter (where is_food)",
    "completed_eu_revenue": "sum(amount) filter (where region = 'Europe' and status in ('paid', 'shipped'))",
    "orders": "count(*)",
    "food_orders": "count(*) filter (where is_food)",
    "buyers": "count(distinct customer_id)",
    "avg_order": "avg(amount)",
    "median_order": "median(amount)",
    "big_revenue": "sum(case when amount > 100 then amount else 0 end)",
    "aov": "sum(amount) / count(*)",
    "food_share": "(count(*) filter (where is_food))::double / count(*)",
    "revenue_per_buyer": "sum(amount) / nullif(count(distinct customer_id), 0)",
    "net_revenue": "sum(amount) - sum(amount) filter (where status = 'returned')",
}


def _project(root: Path) -> Path:
    rng = np.random.default_rng(18)
    n = 3000
    orders = pd.DataFrame({
        "order_id": np.arange(n),
        "customer_id": rng.integers(0, 400, n),
        "ordered_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min"),
        "region": rng.choice(["Europe", "Americas", "Asia"], n),
        "is_food": rng.random(n) < 0.4,
        "status": rng.choice(["paid", "shipped", "returned"], n, p=[0.6, 0.3, 0.1]),
        "amount": rng.gamma(2.0, 40.0, n).round(2),
    })  # fmt: skip
    customers = pd.DataFrame({
        "customer_id": np.arange(400),
        "signed_up_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, 400), unit="D"),
        "country": rng.choice(["CH", "DE", "US"], 400),
    })  # fmt: skip
    project = root / "jaffle"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: jaffle_shop\nversion: '1.0'\nprofile: jaffle\n")
    (project / "profiles.yml").write_text(
        "jaffle:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: warehouse.duckdb, threads: 1}\n"
    )
    (project / "models" / "semantic.yml").write_text(textwrap.dedent(MODELS))
    con = duckdb.connect(str(project / "warehouse.duckdb"))
    for name, df in (("fct_orders", orders), ("dim_customers", customers)):
        con.register("frame", df)
        con.execute(f"create table {name} as select * from frame")
        con.unregister("frame")
    con.close()
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return _project(tmp_path_factory.mktemp("dbt"))


def test_every_translatable_metric_computes_what_hand_written_sql_gives(project, tmp_path):
    result = import_dbt(project, tmp_path / "plans" / "shop.yml")
    assert {(u.kind, u.name) for u in result.untranslated} == UNTRANSLATED
    plan = kpinb.load_plan(result.path)
    ids = [m for m in EXPECTED if m in result.metrics]
    assert ids == list(EXPECTED)
    got = kpinb.compute(plan, metrics=[*ids, "signups"], grain="month")
    con = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        for metric, sql in EXPECTED.items():
            want = con.execute(
                f"select date_trunc('month', ordered_at)::date as p, {sql} as v from fct_orders group by 1 order by 1"
            ).df()
            have = got[got.metric == metric].sort_values("period_start")
            assert len(have) == 12 == len(want), metric
            np.testing.assert_allclose(have.value.to_numpy(float), want.v.to_numpy(float), rtol=1e-9, err_msg=metric)
        want = con.execute(
            "select date_trunc('month', signed_up_at)::date as p, count(customer_id) as v from dim_customers "
            "group by 1 order by 1"
        ).df()
    finally:
        con.close()
    have = got[got.metric == "signups"].sort_values("period_start")
    np.testing.assert_allclose(have.value.to_numpy(float), want.v.to_numpy(float))


def test_what_is_not_translated_is_listed_with_the_reason_in_the_plan_and_on_the_cli(project, tmp_path, capsys):
    out = tmp_path / "shop.yml"
    assert main(["import-dbt", str(project), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    reasons = {
        "cumulative_revenue": "running totals are not expressible yet",
        "revenue_mom": "offset in time",
        "p90_order": "percentile other than an exact median",
        "swiss_revenue": "refers to another semantic model",
        "aov_of_p90": "it uses metric p90_order, which is not translated",
        "orders.size_band": "an SQL expression",
    }
    for name, reason in reasons.items():
        line = next(x for x in text.splitlines() if x.startswith("#   - ") and f" {name}: " in x)
        assert reason in line, line
        assert f" {name}: " in printed
    assert "warehouse.duckdb" in text and not Path(kpinb.load_plan(out).sources["orders"].path).is_absolute()


def test_a_folder_without_dbt_project_or_database_says_what_to_give(tmp_path, project, capsys):
    with pytest.raises(PlanError, match=r"no dbt_project\.yml"):
        import_dbt(tmp_path)
    assert main(["import-dbt", str(project), "--database", str(tmp_path / "none.duckdb")]) == 2
    assert "no such file" in capsys.readouterr().err
