"""Value mapping (`values:` on a source) and unmapped catalog filter values (issue 13, case 1)."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import pandas as pd
import pytest

import kpinb
from kpinb.checks.lint import check, unmapped_values
from kpinb.errors import DataError, KpinbWarning

ORDERS = pd.DataFrame(
    {
        "sold_on": ["2025-01-03", "2025-01-05", "2025-01-20", "2025-02-07", "2025-02-09", "2025-02-10"],
        "receipt": ["r1", "r2", "r3", "r4", "r5", "r6"],
        "client": ["c1", "c2", "c3", "c1", "c3", "c4"],
        "amount": [10.0, 20.0, 5.0, 30.0, 40.0, 7.0],
        "state": ["paid", "refunded", "settled", "settled", "paid", "refunded"],
    }
)


def _plan(tmp_path: Path, source: str, values: str = "") -> Path:
    plan = tmp_path / "plan.yml"
    plan.write_text(
        f"""name: Shop
department: sales
objectives: [{{id: grow, statement: Grow sales}}]
sources:
  orders:
    {source}
    time: sold_on
    columns: {{order_id: receipt, customer_id: client, revenue: amount, status: state}}
    {values}
kpis:
  - metric: monthly_sales_revenue
    objective: grow
    owner: Me
    target: {{value: 100, by: 2025-12-31}}
    supporting: [orders_count]
review: {{every: quarter, last: 2025-01-15}}
""",
        encoding="utf-8",
    )
    return plan


def _csv(tmp_path: Path) -> str:
    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    return "path: orders.csv"


def _sqlite(tmp_path: Path) -> str:
    with sqlite3.connect(tmp_path / "shop.sqlite") as con:
        ORDERS.to_sql("orders", con, index=False)
    return f"url: sqlite:///{tmp_path / 'shop.sqlite'}\n    table: orders"


def test_an_unmapped_filter_value_warns_and_the_value_is_still_returned_flagged(tmp_path: Path) -> None:
    plan = kpinb.load_plan(_plan(tmp_path, _csv(tmp_path)))
    with pytest.warns(KpinbWarning) as caught:
        df = kpinb.compute(plan, grain="month")
    caught = [w for w in caught if issubclass(w.category, KpinbWarning)]
    assert len(caught) == 1  # one finding per column, not one per metric
    text = str(caught[0].message)
    assert "'status' (your 'state')" in text  # the column
    assert "'completed'" in text  # the value the filter wants
    assert "'paid', 'refunded', 'settled'" in text  # the values the data has
    assert "values: {status: {completed: [paid]}}" in text  # the fix
    assert "monthly_sales_revenue, orders_count" in text
    assert (df["value"] == 0).all()  # still what the data says
    assert set(df.attrs["unmapped"]) == {"monthly_sales_revenue", "orders_count"}
    # a caller that checked the source's every row (the dashboard's one member) skips the check
    with warnings.catch_warnings():
        warnings.simplefilter("error", KpinbWarning)
        quiet = kpinb.compute(plan, grain="month", check_values=False)
    assert quiet.attrs["unmapped"] == {} and quiet["value"].equals(df["value"])


@pytest.mark.parametrize("backend", [_csv, _sqlite], ids=["csv", "sqlite"])
def test_values_map_the_users_values_onto_the_catalogs_on_every_backend(tmp_path: Path, backend) -> None:
    values = "values: {status: {completed: [paid, settled], returned: refunded}}"
    plan = kpinb.load_plan(_plan(tmp_path, backend(tmp_path), values))
    with warnings.catch_warnings():
        warnings.simplefilter("error", KpinbWarning)
        df = kpinb.compute(plan, grain="month")
    got = df.pivot_table(index="period_start", columns="metric", values="value")
    raw = ORDERS.assign(month=pd.to_datetime(ORDERS["sold_on"]).dt.to_period("M").dt.to_timestamp())
    kept = raw[raw["state"].isin(["paid", "settled"])]
    expected = kept.groupby("month").agg(revenue=("amount", "sum"), orders=("receipt", "nunique"))
    assert got["monthly_sales_revenue"].tolist() == pytest.approx(expected["revenue"].tolist())
    assert got["orders_count"].tolist() == pytest.approx(expected["orders"].tolist())
    assert df.attrs["unmapped"] == {}


def test_kpinb_check_reports_an_unmapped_filter_value_as_an_error(tmp_path: Path) -> None:
    issues, code = check(_plan(tmp_path, _csv(tmp_path)), today=pd.Timestamp("2025-06-30").date())
    found = [i for i in issues if i.rule == "data_values"]
    assert code == 1
    assert len(found) == 1 and found[0].level == "error" and found[0].kpi == "monthly_sales_revenue"
    assert "never occurs in column 'status' (your 'state')" in found[0].message
    assert "'paid', 'refunded', 'settled'" in found[0].message
    assert "`values: {status: {completed: [paid]}}`" in found[0].fix


def test_kpinb_check_is_quiet_once_the_values_are_mapped(tmp_path: Path) -> None:
    plan = _plan(tmp_path, _csv(tmp_path), "values: {status: {completed: [paid, settled]}}")
    issues, _ = check(plan, today=pd.Timestamp("2025-06-30").date())
    assert not [i for i in issues if i.rule == "data_values"]


def test_an_in_list_is_met_when_one_of_its_values_occurs(tmp_path: Path) -> None:
    tickets = pd.DataFrame(
        {"created_at": ["2025-01-02", "2025-01-03"], "ticket_id": ["t1", "t2"], "status": ["open", "closed"]}
    )
    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    (tmp_path / "plan.yml").write_text(
        "name: Desk\ndepartment: customer_service\nsources:\n  support_tickets: {path: tickets.csv}\n"
        "kpis:\n  - metric: tickets_opened\n    supporting: [tickets_closed]\n",
        encoding="utf-8",
    )
    # 'pending' never occurs, 'open' does: status in ('open', 'pending') selects rows
    assert unmapped_values(kpinb.load_plan(tmp_path / "plan.yml")) == []


def test_values_on_a_column_the_data_lacks_names_the_fix(tmp_path: Path) -> None:
    plan = kpinb.load_plan(_plan(tmp_path, _csv(tmp_path), "values: {state_code: {completed: paid}}"))
    with pytest.raises(DataError, match=r"`values:` maps values of column 'state_code'.*columns: \{state_code"):
        kpinb.compute(plan, grain="month")
