"""Local Parquet files run on polars where it can, on DuckDB otherwise: the same numbers either way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kpinb
from kpinb.definitions import catalog
from kpinb.definitions.model import Calendar, Metric, Source


def _both(monkeypatch, *args, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """compute() on the default route (polars first) and with KPINB_LOCAL_ENGINE=duckdb."""
    monkeypatch.delenv("KPINB_LOCAL_ENGINE", raising=False)
    fast = kpinb.compute(*args, **kwargs)
    monkeypatch.setenv("KPINB_LOCAL_ENGINE", "duckdb")
    slow = kpinb.compute(*args, **kwargs)
    monkeypatch.delenv("KPINB_LOCAL_ENGINE")
    assert set(slow.attrs["engines"].values()) == {"duckdb"}
    return fast, slow


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows and flags; values equal up to summation order (1e-9 of the metric's largest)."""
    keys = [c for c in want.columns if c not in ("value", "numerator", "denominator")]
    assert got[keys].equals(want[keys])
    for col in ("value", "numerator", "denominator"):
        a, b = got[col].to_numpy(), want[col].to_numpy()
        scale = want[col].abs().groupby(want["metric"]).transform("max").fillna(0).to_numpy()
        ok = np.isclose(a, b, rtol=1e-9, atol=0, equal_nan=True) | (np.abs(a - b) <= 1e-9 * scale)
        assert ok.all(), (col, want.loc[~ok, keys].head(3), a[~ok][:3], b[~ok][:3])


def _on_polars_as_on_duckdb(tmp_path, monkeypatch, rows: dict, metrics: list) -> pd.Series:
    """``rows`` as an orders Parquet file (day, region, ...), ``metrics`` monthly by region on polars,
    checked equal to DuckDB's; the values by (metric, region, period_start)."""
    path = tmp_path / "orders.parquet"
    pd.DataFrame({**rows, "day": pd.to_datetime(rows["day"])}).to_parquet(path)
    src = Source(path=str(path), time="day", dimensions=("region",))
    fast, slow = _both(monkeypatch, metrics, sources={"orders": src}, grain="month", by=["region"])
    assert fast.attrs["engines"] == {"orders": "polars"}
    _same(fast, slow)
    return fast.set_index(["metric", "region", "period_start"])["value"]


def test_every_catalog_metric_is_the_same_on_polars_and_duckdb(sample_data, monkeypatch):
    """Each catalog source's metrics over the bundled sample, monthly by its first dimension."""
    on_polars = set()
    for name, source in catalog.sources().items():
        ids = [mid for mid, m in catalog.metrics().items() if not m.derived and m.source == name]
        path = sample_data / f"{name}.parquet"
        if not ids or not path.exists():
            continue
        by = list(source.dimensions[:1])
        fast, slow = _both(monkeypatch, ids, sources={name: str(path)}, grain="month", by=by)
        _same(fast, slow)
        if fast.attrs["engines"][name] == "polars":
            on_polars.add(name)
    # the route is taken, not always given up: every sample source runs on polars
    assert {"orders", "support_tickets", "web_sessions", "ledger"} <= on_polars, on_polars


def test_missing_values_count_as_no_value_on_both_engines(tmp_path, monkeypatch):
    """polars' n_unique counts a missing value once and its any() of nothing is False: distinct
    counts skip missing values and an empty group's sum is 0 on both engines."""
    rows = {
        "day": ["2025-01-03", "2025-01-04", "2025-01-05", "2025-02-01", "2025-02-02"],
        "region": ["EU", "EU", "EU", "US", "US"],
        "customer": ["a", None, "a", None, None],
        "revenue": [10.0, None, 5.0, None, None],
        "status": ["done", "done", "open", "open", "open"],
    }  # fmt: skip
    metrics = [
        Metric(id="buyers", name="Buyers", source="orders", expr="count_distinct(customer)"),
        Metric(id="done_buyers", name="Done buyers", source="orders", expr="count_distinct(customer)",
               where="status = 'done'"),
        Metric(id="done_revenue", name="Done revenue", source="orders", expr="sum(revenue)", where="status = 'done'"),
        Metric(id="avg_revenue", name="Average revenue", source="orders", expr="avg(revenue)"),
    ]  # fmt: skip
    got = _on_polars_as_on_duckdb(tmp_path, monkeypatch, rows, metrics)
    assert got["buyers", "EU", pd.Timestamp("2025-01-01")] == 1
    assert got["buyers", "US", pd.Timestamp("2025-02-01")] == 0
    assert got["done_revenue", "US", pd.Timestamp("2025-02-01")] == 0
    assert np.isnan(got["avg_revenue", "US", pd.Timestamp("2025-02-01")])


def test_every_aggregate_under_a_condition_and_count_differences_match_duckdb(tmp_path, monkeypatch):
    """On polars a metric's condition masks its column instead of filtering a copy, and counts are
    64-bit: ``count(a) - count(b)`` below zero was 4294967295 there (polars counts in unsigned 32 bits)."""
    rows = {
        "day": ["2025-01-03", "2025-01-04", "2025-01-05", "2025-02-01", "2025-02-02", "2025-03-09"],
        "region": ["EU", "EU", "US", "EU", "US", "EU"],
        "customer": ["a", None, "b", "c", None, None],
        "coupon": [None, None, "x", None, "y", None],
        "revenue": [10.0, None, 5.0, 7.0, 3.0, None],
        "status": ["done", "done", "open", "open", "open", "done"],
    }  # fmt: skip
    done = "status = 'done'"
    exprs = {
        "rows": "count(*)", "count": "count(customer)", "distinct": "count_distinct(customer)",
        "count_if": "count_if(revenue > 6)", "sum": "sum(revenue)", "avg": "avg(revenue)", "min": "min(revenue)",
        "max": "max(revenue)", "median": "median(revenue)",
    }  # fmt: skip
    metrics = [Metric(id=f"done_{k}", name=k, source="orders", expr=e, where=done) for k, e in exprs.items()]
    metrics += [
        Metric(id="more_coupons", name="c", source="orders", expr="count(coupon) - count(customer)"),
        Metric(id="fewer_rows", name="r", source="orders", expr="count_distinct(customer) - count(*)"),
        Metric(id="fewer_ifs", name="i", source="orders", expr="count_if(revenue > 6) - count_if(revenue > 0)"),
    ]  # fmt: skip
    got = _on_polars_as_on_duckdb(tmp_path, monkeypatch, rows, metrics)
    jan, feb = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")
    assert got["more_coupons", "EU", jan] == -1 and got["fewer_rows", "EU", jan] == -1
    assert got["fewer_ifs", "US", jan] == -1
    assert got["done_sum", "EU", feb] == 0 and got["done_rows", "EU", feb] == 0  # rows, none matching
    assert got["done_distinct", "EU", feb] == 0 and np.isnan(got["done_avg", "EU", feb])
    assert got["done_count", "EU", jan] == 1 and got["done_distinct", "EU", jan] == 1


def test_what_polars_cannot_run_runs_on_duckdb_with_the_same_numbers(tmp_path, monkeypatch):
    """A time zone conversion and a first-order flag (a window over the source) are DuckDB's."""
    path = tmp_path / "orders.parquet"
    pd.DataFrame({
        "at": pd.to_datetime(["2025-01-31T23:30:00-05:00", "2025-02-01T10:00:00-05:00", "2025-03-01T12:00:00+00:00"],
                             utc=True),
        "customer": ["a", "a", "b"], "revenue": [1.0, 2.0, 4.0],
    }).to_parquet(path)  # fmt: skip
    src = Source(path=str(path), time="at", derive={"first": "first_date(customer, at)"})
    rev = Metric(id="rev", name="Revenue", source="orders", expr="sum(revenue)")
    cal = Calendar(timezone="America/New_York")
    fast, slow = _both(monkeypatch, [rev], sources={"orders": src}, grain="month", calendar=cal)
    assert fast.attrs["engines"] == {"orders": "duckdb"}
    _same(fast, slow)
    assert fast["value"].tolist() == [1.0, 2.0, 4.0]  # 23:30 in New York on 31 January is January's


def test_a_local_engine_that_is_not_one_is_refused(monkeypatch, sample_data):
    monkeypatch.setenv("KPINB_LOCAL_ENGINE", "spark")
    with pytest.raises(kpinb.errors.SourceError, match="KPINB_LOCAL_ENGINE='spark' is not an engine"):
        kpinb.compute(["orders_count"], sources={"orders": str(sample_data / "orders.parquet")})


def test_members_keep_one_members_rows_on_either_engine(sample_data, monkeypatch):
    """compute(members=...) is the breakdown's row of that member, whichever engine runs the source."""
    src = {"orders": str(sample_data / "orders.parquet")}
    whole = kpinb.compute(["orders_count"], sources=src, by=["region"])
    one, slow = _both(monkeypatch, ["orders_count"], sources=src, by=["region"], members={"region": "Europe"})
    _same(one, slow)
    want = whole[whole["region"] == "Europe"].reset_index(drop=True)
    assert set(one["region"]) == {"Europe"}
    assert one["value"].tolist() == want["value"].tolist()
    with pytest.raises(kpinb.errors.DataError, match="has no column 'nope' to keep the member 'x' of"):
        kpinb.compute(["orders_count"], sources=src, members={"nope": "x"})


def test_a_members_periods_are_complete_as_the_whole_sources_are(tmp_path, monkeypatch):
    """The days a source covers are the whole source's: a member whose last row is a week before
    the source's latest row is not a partial month (the breakdown does not call it one either)."""
    path = tmp_path / "orders.parquet"
    pd.DataFrame({
        "order_id": ["1", "2", "3", "4"], "region": ["North", "South", "North", "South"],
        "order_date": pd.to_datetime(["2025-01-01", "2025-01-12", "2025-02-21", "2025-02-28"]),
        "revenue": [1.0, 2.0, 3.0, 4.0], "status": "completed",
    }).to_parquet(path)  # fmt: skip
    src = {"orders": Source(path=str(path))}
    whole = kpinb.compute(["orders_count"], sources=src, by=["region"])
    one, slow = _both(monkeypatch, ["orders_count"], sources=src, by=["region"], members={"region": "North"})
    _same(one, slow)
    want = whole[whole["region"] == "North"].reset_index(drop=True)
    assert one["complete"].tolist() == want["complete"].tolist() == [True, True]
    assert one.attrs["coverage"]["orders_count"]["through"] == pd.Timestamp("2025-02-28")


@pytest.mark.parametrize("by", [[], ["region"]])
def test_completed_periods_take_the_spines_unit_whatever_order_the_groups_came_in(by):
    """pandas' reindex keeps a frame's own index when it equals the new one (values, not units): a
    result whose groups came back already in order kept the engine's unit (ns on DuckDB), one out of
    order got the spine's (us), so two engines' frames differed by the order of their rows."""
    from kpinb.engine.calendar import periods
    from kpinb.engine.query import _complete

    spine = periods("2025-01-01", "2025-03-01", "month")
    keys = pd.DataFrame({"period_start": pd.DatetimeIndex(list(spine) * (2 if by else 1)).as_unit("ns")})
    if by:
        keys["region"] = ["North"] * 3 + ["South"] * 3
    for rows in (keys, keys.iloc[::-1]):  # in order (reindex keeps it) and reversed
        got = {"m": rows.assign(value=1.0, numerator=float("nan"), denominator=float("nan"))}
        out = _complete(got, spine, by)["m"]
        assert out["period_start"].dtype == spine.dtype and len(out) == len(keys)
