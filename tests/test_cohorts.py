"""First events and conversions from raw rows: new customers and their revenue from a customer's
first order date (no precomputed flag), and leads converted within 30 days (a lookup joined on
its key, a days-between condition, maturity). tests/test_databases.py runs them on PostgreSQL and
Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpinb import compute
from kpinb.definitions.formula import parse
from kpinb.definitions.model import Metric, Source
from kpinb.errors import FormulaError

FIRST = {"first_order": "first_date(customer_id, order_date)", "is_first": "order_date = first_order"}
COHORT_METRICS = [
    Metric(id="new_customers", name="New customers", source="orders", expr="count_distinct(customer_id)",
           where="is_first"),
    Metric(id="new_customer_revenue", name="First-order revenue", source="orders", expr="sum(revenue)",
           where="is_first"),
]  # fmt: skip
CONVERTED = {"converted_30d": "won_at is not null and days_between(created_at, won_at) between 0 and 30"}
CONVERSION = Metric(id="lead_conversion_30d", name="Leads won within 30 days", source="leads",
                    expr="count_if(converted_30d) / count(*)", unit="percent", matures_after="30 days")  # fmt: skip


def orders(n: int = 3000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "order_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h"),
        "customer_id": [f"c{i}" for i in rng.integers(0, 700, n)],
        "revenue": rng.integers(5, 300, n).astype("float64"),
    }).astype({"order_date": "datetime64[us]"})  # fmt: skip


def leads_and_customers(n: int = 1500, seed: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    leads = pd.DataFrame({
        "email": [f"p{i}@x.org" for i in range(n)],
        "created_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300 * 24, n), unit="h"),
    }).astype({"created_at": "datetime64[us]"})  # fmt: skip
    won = rng.random(n) < 0.4
    lag = pd.to_timedelta(rng.integers(0, 60 * 24, n), unit="h")
    customers = pd.DataFrame({"email": leads["email"][won], "won_at": (leads["created_at"] + lag)[won]})
    return leads, customers.reset_index(drop=True)


def expected_cohorts(df: pd.DataFrame) -> pd.Series:
    first = df.groupby("customer_id")["order_date"].transform("min")
    firsts = df[df["order_date"] == first]
    month = firsts["order_date"].dt.to_period("M").dt.start_time.rename("period_start")
    out = pd.concat([
        firsts.groupby(month)["customer_id"].nunique().astype(float).rename("value").reset_index()
        .assign(metric="new_customers"),
        firsts.groupby(month)["revenue"].sum().rename("value").reset_index().assign(metric="new_customer_revenue"),
    ])  # fmt: skip
    return out.astype({"period_start": "datetime64[ns]"}).set_index(["metric", "period_start"])["value"].sort_index()


def expected_conversion(leads: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    d = leads.merge(customers, on="email", how="left")
    days = (d["won_at"].dt.normalize() - d["created_at"].dt.normalize()).dt.days
    d["ok"] = days.between(0, 30)
    month = d["created_at"].dt.to_period("M").dt.start_time.rename("period_start")
    out = d.groupby(month)["ok"].mean()
    return out.rename("value").astype(float).rename_axis("period_start").sort_index()


def got(frame: pd.DataFrame) -> pd.Series:
    frame = frame[frame["value"].notna() & (frame["value"] != 0)].astype({"period_start": "datetime64[ns]"})
    return frame.set_index(["metric", "period_start"])["value"].sort_index()


def test_new_customers_and_their_first_order_revenue_come_from_raw_orders(tmp_path) -> None:
    df = orders()
    df.to_parquet(tmp_path / "orders.parquet", index=False)
    src = Source(path=str(tmp_path / "orders.parquet"), time="order_date", derive=FIRST)
    out = compute(COHORT_METRICS, sources={"orders": src})
    pd.testing.assert_series_equal(got(out), expected_cohorts(df), check_names=False, rtol=1e-12)
    later = compute(COHORT_METRICS, sources={"orders": src}, start="2025-07-01")  # earlier orders still count
    assert got(later).loc["new_customers"].equals(expected_cohorts(df).loc["new_customers"]["2025-07-01":])


def test_leads_won_within_30_days_join_the_customers_and_settle_after_30_days(tmp_path) -> None:
    leads, customers = leads_and_customers()
    leads.to_parquet(tmp_path / "leads.parquet", index=False)
    customers.to_parquet(tmp_path / "customers.parquet", index=False)
    sources = {
        "leads": Source(path=str(tmp_path / "leads.parquet"), time="created_at", join={"customers": "email"},
                        derive=CONVERTED),
        "customers": Source(path=str(tmp_path / "customers.parquet")),
    }  # fmt: skip
    out = compute([CONVERSION], sources=sources)
    values = out.set_index("period_start")["value"]
    want = expected_conversion(leads, customers)
    pd.testing.assert_series_equal(values.astype(float).rename_axis("period_start"), want, check_names=False,
                                   check_index_type=False, rtol=1e-12)  # fmt: skip
    assert not out.set_index("period_start")["complete"].iloc[-1]  # its leads have not had 30 days yet


@pytest.mark.parametrize("where", ["first_date(customer_id, order_date) = order_date"])
def test_first_date_reads_other_rows_so_it_belongs_in_derive(where: str) -> None:
    with pytest.raises(FormulaError) as e:
        parse(where, kind="row")
    assert "derive:" in str(e.value)


def test_catalog_metrics_compute_new_customers_from_raw_orders_when_the_flag_is_missing(sample_data, tmp_path) -> None:
    """The catalog's orders can derive `is_new_customer` (a customer's first order date) from raw
    orders; on the sample, whose flag marks first orders, the numbers are the same either way."""
    import duckdb

    raw = tmp_path / "orders.parquet"
    duckdb.sql(f"COPY (SELECT * EXCLUDE (is_new_customer) FROM '{sample_data / 'orders.parquet'}') TO '{raw}'")
    ids = ["new_customers", "customer_acquisition_rate"]
    flagged = compute(ids, sources={"orders": str(sample_data / "orders.parquet")})
    derived = compute(ids, sources={"orders": str(raw)})
    assert flagged["value"].notna().all() and flagged["value"].sum() > 0
    pd.testing.assert_frame_equal(derived, flagged, check_exact=False, rtol=1e-12)
