"""Joins to lookup tables: a source names another source and the key to join on (many rows to
one); the lookup's columns become dimensions and formula columns; a key repeated in the lookup is
an error, never a silent double count. tests/test_databases.py runs them on PostgreSQL and Spark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kpinb import compute, load_plan
from kpinb.checks.lint import check
from kpinb.errors import DataError, PlanError

PLAN = """
name: Revenue by segment
department: sales
sources:
  orders:
    path: orders.csv
    time: order_date
    join: {customers: customer_id}
    derive: {big_customer: "segment = 'enterprise' and revenue > 50"}
  customers:
    path: customers.csv
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(revenue)}
  - {id: buyers, name: Buyers, source: orders, expr: count_distinct(customer_id)}
  - {id: big_orders, name: Big enterprise orders, source: orders, expr: count_if(big_customer)}
kpis:
  - {metric: revenue, owner: Ana, target: {value: 100, by: 2030-12-31}}
"""


def orders() -> pd.DataFrame:
    return pd.DataFrame({
        "order_date": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-03", "2025-02-10", "2025-02-11"]),
        "customer_id": ["c1", "c2", "c1", "c3", "c9"],  # c9 is in no lookup row
        "revenue": [100.0, 20.0, 40.0, 60.0, 5.0],
    })  # fmt: skip


def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "segment": ["enterprise", "smb", "enterprise"],
                         "revenue": [1.0, 2.0, 3.0]})  # fmt: skip  # a clashing column: the source's wins


def write(folder: Path, lookup: pd.DataFrame | None = None, text: str = PLAN) -> Path:
    orders().to_csv(folder / "orders.csv", index=False)
    (customers() if lookup is None else lookup).to_csv(folder / "customers.csv", index=False)
    (folder / "plan.yml").write_text(text)
    return folder / "plan.yml"


def test_a_lookups_columns_break_metrics_down_and_feed_formulas(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path))
    got = compute(plan, metrics=["revenue", "buyers", "big_orders"], by=["segment"])
    values = got.dropna(subset=["value"]).set_index(["metric", "period_start", "segment"])["value"]
    jan, feb = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")
    assert values[("revenue", jan, "enterprise")] == 100 and values[("revenue", jan, "smb")] == 20
    assert values[("revenue", feb, "enterprise")] == 100  # c1 40 + c3 60: the lookup's own revenue column is not read
    assert values[("buyers", feb, "enterprise")] == 2
    assert values[("big_orders", jan, "enterprise")] == 1 and values[("big_orders", feb, "enterprise")] == 1
    unmatched = got[(got["metric"] == "revenue") & got["segment"].isna() & (got["period_start"] == feb)]
    assert unmatched["value"].tolist() == [5.0]  # an order whose customer is unknown keeps counting
    totals = compute(plan, metrics=["revenue"]).set_index("period_start")["value"]
    assert totals.tolist() == [120.0, 105.0]  # the join adds no row


def test_a_key_repeated_in_the_lookup_is_an_error_not_a_double_count(tmp_path: Path) -> None:
    twice = pd.concat([customers(), customers().iloc[[0]]], ignore_index=True)
    plan = load_plan(write(tmp_path, twice))
    with pytest.raises(DataError) as e:
        compute(plan)
    assert "source 'customers'" in str(e.value) and "2 rows for customer_id = c1" in str(e.value)
    assert "more than once" in str(e.value)
    issues, code = check(tmp_path / "plan.yml")
    assert code == 1 and any("more than once" in i.message for i in issues)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("join: {customers: customer_id}", "join: {clients: customer_id}"), "declares no source 'clients'"),
        (("join: {customers: customer_id}", "join: {customers: {key: {client: customer_id}}}"), "'client'"),
    ],
)
def test_a_join_to_nothing_or_by_a_missing_column_is_one_clear_error(
    tmp_path: Path, change: tuple[str, str], says: str
) -> None:
    path = write(tmp_path, text=PLAN.replace(*change))
    with pytest.raises((PlanError, DataError)) as e:
        compute(load_plan(path))
    assert says in str(e.value)
