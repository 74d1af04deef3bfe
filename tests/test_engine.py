"""The engine on real files: every format gives the same numbers; data problems give clear errors."""

import sqlite3
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from kpinb import DataError, PlanError, SourceError, compute, load_plan
from kpinb.definitions.model import Metric
from kpinb.engine.calendar import periods
from kpinb.engine.query import queries

ORDERS = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7"],
        "order_date": pd.to_datetime(
            ["2024-01-05", "2024-01-20", "2024-03-02", "2024-03-31 23:59", "2024-12-31", "2025-01-01", "2025-01-02"],
            format="ISO8601",
        ),
        "customer_id": ["a", "b", "a", "c", "b", "a", "d"],
        "region": ["North", "South", "North", "North", "South", "North", "South"],
        "revenue": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
        "cost": [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
        "status": ["completed"] * 5 + ["cancelled", "completed"],
        "is_new_customer": [True, True, False, True, False, False, True],
    }
)

METRICS = [
    Metric(id="rev", name="Revenue", source="orders", expr="sum(revenue)", where="status = 'completed'"),
    Metric(id="n", name="Orders", source="orders", expr="count_distinct(order_id)", where="status = 'completed'"),
    Metric(id="aov", name="AOV", expr="{rev} / {n}"),
    Metric(id="new_share", name="New share", source="orders", expr="count_if(is_new_customer) / count(*)"),
    Metric(id="growth", name="Growth", expr="({rev} - prev({rev})) / prev({rev})"),
]


def values(df, metric, **dims):
    sel = df[df.metric == metric]
    for k, v in dims.items():
        sel = sel[sel[k] == v]
    return dict(zip(sel.period_start.dt.strftime("%Y-%m-%d"), sel.value, strict=True))


def test_monthly_values_with_gaps_and_derived_metrics():
    df = compute(METRICS, sources={"orders": ORDERS}, grain="month")
    rev = values(df, "rev")
    assert len(rev) == 13  # Jan 2024 .. Jan 2025, every month present
    assert rev["2024-01-01"] == 30 and rev["2024-03-01"] == 70 and rev["2024-12-01"] == 50
    assert np.isnan(rev["2024-02-01"])  # no rows at all: missing, not dropped
    assert rev["2025-01-01"] == 70  # the cancelled order is filtered out
    assert values(df, "aov")["2024-03-01"] == 35
    assert values(df, "new_share")["2025-01-01"] == 0.5
    growth = values(df, "growth")
    assert np.isnan(growth["2024-03-01"])  # previous month (Feb) has no data
    assert growth["2025-01-01"] == pytest.approx(70 / 50 - 1)
    aov = df[(df.metric == "aov") & (df.period_start == "2024-03-01")].iloc[0]
    assert (aov.numerator, aov.denominator) == (70, 2)
    assert list(df.columns) == ["metric", "period_start", "value", "numerator", "denominator"]


def test_sum_of_no_matching_rows_is_zero_but_ratio_by_zero_is_missing():
    only_cancelled = ORDERS.assign(status="cancelled")
    df = compute(METRICS[:3], sources={"orders": only_cancelled}, grain="year")
    assert values(df, "rev") == {"2024-01-01": 0.0, "2025-01-01": 0.0}
    assert all(np.isnan(v) for v in values(df, "aov").values())  # 0 / 0 orders


def test_quarters_and_years_cut_at_boundaries_with_dimension():
    df = compute(METRICS[:3], sources={"orders": ORDERS}, grain="quarter", by=["region"])
    assert values(df, "rev", region="North") == {
        "2024-01-01": 80.0,  # 31 March 23:59 stays in Q1
        "2024-04-01": pytest.approx(np.nan, nan_ok=True),
        "2024-07-01": pytest.approx(np.nan, nan_ok=True),
        "2024-10-01": pytest.approx(np.nan, nan_ok=True),
        "2025-01-01": 0.0,
    }
    assert values(df, "rev", region="South")["2024-10-01"] == 50
    yearly = compute(METRICS[:1], sources={"orders": ORDERS}, grain="year")
    assert values(yearly, "rev") == {"2024-01-01": 150.0, "2025-01-01": 70.0}


def test_weeks_start_on_monday_and_range_limits():
    df = compute(METRICS[:1], sources={"orders": ORDERS}, grain="week", start="2024-12-23", end="2025-01-12")
    rev = values(df, "rev")
    assert list(rev) == ["2024-12-23", "2024-12-30", "2025-01-06"]
    assert rev["2024-12-30"] == 50 + 70  # Tue 31 Dec and Thu 2 Jan share the week of Mon 30 Dec
    assert np.isnan(rev["2024-12-23"]) and np.isnan(rev["2025-01-06"])
    assert list(periods("2024-02-29", "2024-03-01", "week").strftime("%Y-%m-%d")) == ["2024-02-26"]


@pytest.fixture
def orders_in_every_format(tmp_path):
    paths = {}
    ORDERS.to_csv(tmp_path / "orders.csv", index=False)
    paths["csv"] = tmp_path / "orders.csv"
    ORDERS.to_parquet(tmp_path / "orders.parquet")
    paths["parquet"] = tmp_path / "orders.parquet"
    ORDERS.to_excel(tmp_path / "orders.xlsx", index=False)
    paths["excel"] = tmp_path / "orders.xlsx"
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.register("src", ORDERS)
    con.execute("create table orders as select * from src")
    con.close()
    paths["duckdb"] = tmp_path / "shop.duckdb"
    with sqlite3.connect(tmp_path / "shop.sqlite") as lite:
        ORDERS.assign(order_date=ORDERS.order_date.dt.strftime("%Y-%m-%d %H:%M:%S")).to_sql("orders", lite, index=False)
    paths["sqlite"] = tmp_path / "shop.sqlite"
    return paths


@pytest.mark.parametrize("fmt", ["csv", "parquet", "excel", "duckdb", "sqlite"])
def test_every_file_format_gives_the_same_numbers(orders_in_every_format, fmt):
    expected = compute(METRICS, sources={"orders": ORDERS}, grain="month", by=["region"])
    got = compute(METRICS, sources={"orders": str(orders_in_every_format[fmt])}, grain="month", by=["region"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def write_plan(tmp_path, body):
    path = tmp_path / "plans" / "p.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_plan_maps_user_columns_and_resolves_paths_from_its_folder(tmp_path, monkeypatch):
    ORDERS.rename(columns={"revenue": "amount_usd", "order_date": "placed"}).to_csv(tmp_path / "mine.csv", index=False)
    plan = load_plan(
        write_plan(
            tmp_path,
            """\
            name: Mine
            department: sales
            sources:
              orders: {path: ../mine.csv, time: placed, columns: {revenue: amount_usd}}
            kpis:
              - metric: average_order_value
            """,
        )
    )
    monkeypatch.chdir("/")  # paths resolve against the plan, not the working directory
    df = compute(plan, grain="year")
    assert values(df, "average_order_value") == {"2024-01-01": 30.0, "2025-01-01": 70.0}


def test_one_query_per_source_with_all_metrics_in_it():
    sql = queries(METRICS, sources={"orders": ORDERS}, grain="month")
    assert list(sql) == ["orders"]
    text = sql["orders"].upper()
    assert text.count("GROUP BY") == 1 and "FILTER" in text
    assert "COUNT(DISTINCT" in text and "DATE_TRUNC('MONTH'" in text


def test_missing_column_names_source_file_and_mapping_fix(tmp_path):
    ORDERS.drop(columns=["revenue"]).to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(DataError) as err:
        compute(METRICS[:1], sources={"orders": str(tmp_path / "o.csv")})
    msg = str(err.value)
    assert "source 'orders'" in msg and str(tmp_path / "o.csv") in msg
    assert "missing column 'revenue'" in msg and "columns: {revenue: your_column}" in msg


def test_text_in_a_numeric_column_is_a_clear_error(tmp_path):
    ORDERS.astype({"revenue": str}).assign(revenue=["10", "n/a"] * 3 + ["5"]).to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(DataError, match=r"column 'revenue' has type string.*needs number.*'n/a'"):
        compute(METRICS[:1], sources={"orders": str(tmp_path / "o.csv")})


def test_text_dates_are_a_clear_error():
    bad = ORDERS.assign(order_date=["soon"] * 7)
    with pytest.raises(DataError, match=r"column 'order_date' holds text that is not a date, e\.g\. 'soon'"):
        compute(METRICS[:1], sources={"orders": bad})


def test_integer_flags_work_as_booleans():
    df = compute(METRICS[3:4], sources={"orders": ORDERS.astype({"is_new_customer": int})}, grain="year")
    assert values(df, "new_share") == {"2024-01-01": 0.6, "2025-01-01": 0.5}


def test_missing_file_unknown_metric_unknown_dimension_bad_grain(tmp_path):
    with pytest.raises(SourceError, match=r"file not found: .*nope.parquet.*kpinb sample-data"):
        compute(METRICS[:1], sources={"orders": str(tmp_path / "nope.parquet")})
    with pytest.raises(PlanError, match=r"unknown metric id 'average_ordr_value'\. Did you mean 'average_order_value'"):
        compute(["average_ordr_value"], sources={"orders": ORDERS})
    with pytest.raises(DataError, match=r"no column 'team' to break down by.*Its dimensions: region"):
        compute(METRICS[:1], sources={"orders": ORDERS}, by=["team"])
    with pytest.raises(PlanError, match="grain 'fortnight' is not one of"):
        compute(METRICS[:1], sources={"orders": ORDERS}, grain="fortnight")
    with pytest.raises(PlanError, match="reads source 'orders', which is not given"):
        compute(METRICS[:1], sources={})


def test_empty_data_is_a_clear_error(tmp_path):
    (tmp_path / "empty.csv").write_text(",".join(ORDERS.columns) + "\n")
    with pytest.raises((DataError, SourceError), match="orders"):
        compute(METRICS[:1], sources={"orders": str(tmp_path / "empty.csv")})
    with pytest.raises(DataError, match="has no rows"):
        compute(METRICS[:1], sources={"orders": ORDERS.iloc[0:0]})


def test_engine_without_median_says_so(orders_in_every_format):
    med = Metric(id="med", name="Median order", source="orders", expr="median(revenue)")
    with pytest.raises(DataError, match=r"source 'orders'.*Median"):
        compute([med], sources={"orders": str(orders_in_every_format["sqlite"])})


def test_computes_from_several_threads_at_once_give_the_serial_numbers(sample_data) -> None:
    """The dashboard precomputes in a background thread while a notebook cell computes: the
    shared DuckDB connection must serve both without mixing or failing."""
    from concurrent.futures import ThreadPoolExecutor

    plan = load_plan(Path(__file__).resolve().parents[1] / "templates" / "plans" / "sales.yml")
    jobs = [("month", ("region",)), ("quarter", ()), ("week", ("region",)), ("month", ())] * 2
    serial = [compute(plan, grain=g, by=by) for g, by in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda job: compute(plan, grain=job[0], by=job[1]), jobs))
    for want, got in zip(serial, parallel, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
