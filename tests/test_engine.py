"""The engine on real files: every format gives the same numbers; data problems give clear errors."""

import sqlite3
import textwrap
from pathlib import Path

import aggregate_support
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
    assert list(df.columns) == ["metric", "period_start", "value", "numerator", "denominator", "complete"]


def test_sum_of_no_matching_rows_is_zero_but_ratio_by_zero_is_missing():
    only_cancelled = ORDERS.assign(status="cancelled")
    df = compute(METRICS[:3], sources={"orders": only_cancelled}, grain="year")
    assert values(df, "rev") == {"2024-01-01": 0.0, "2025-01-01": 0.0}
    assert all(np.isnan(v) for v in values(df, "aov").values())  # 0 / 0 orders


def test_frames_derived_from_a_result_share_its_metadata_read_only():
    """pandas deep-copies ``attrs`` into every derived frame: the engine's metadata is shared instead."""
    import pickle

    df = compute(METRICS, sources={"orders": ORDERS}, grain="month")
    part = df[df.metric == "rev"].reset_index(drop=True)
    for key in ("coverage", "unmapped", "engines", "calendar"):
        assert part.attrs[key] is df.attrs[key]
    assert part.attrs["coverage"]["rev"]["first"] == pd.Timestamp("2024-01-05")
    with pytest.raises(TypeError, match="read-only"):
        part.attrs["coverage"]["rev"] = {}
    again = pickle.loads(pickle.dumps(part))  # the batch cache stores frames
    assert again.attrs["coverage"] == df.attrs["coverage"]


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


# --- each kind of metric against pandas, on files written here -----------------------------------
# (expected values: tests/aggregate_support.py, by hand from the rows, never through kpinb)


@pytest.fixture
def small_orders(tmp_path):
    """The rows of tests/aggregate_support.py as Parquet and as CSV."""
    df = aggregate_support.orders()
    df.to_csv(tmp_path / "orders.csv", index=False)
    return {
        "frame": df,
        "parquet": aggregate_support.write_parquet(df, tmp_path / "orders.parquet"),
        "csv": tmp_path / "orders.csv",
    }


def test_the_filter_changes_every_aggregate_of_the_test_rows():
    """The comparisons below can only catch an aggregate that ignores `where:` if the filter
    changes its value: it does, for every aggregate, in every month."""
    df = aggregate_support.orders()
    filtered = aggregate_support.expected(df, where=True).set_index(["metric", "period_start"])["value"]
    everything = aggregate_support.expected(df, where=False)
    everything["metric"] += "_filtered"
    everything = everything.set_index(["metric", "period_start"])["value"]
    same = (filtered == everything) | (filtered.isna() & everything.isna())
    assert not same.any(), same[same]
    assert filtered.xs("2024-04-01", level="period_start").fillna(0).eq(0).all()  # nothing passes in April


@pytest.mark.parametrize("by", [(), ("region",)], ids=["month", "month-by-region"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("where", [True, False], ids=["where", "no-where"])
def test_each_aggregate_matches_pandas(small_orders, fmt, by, where):
    ms = aggregate_support.metrics(aggregate_support.WHERE if where else None)
    got = compute(ms, sources={"orders": str(small_orders[fmt])}, grain="month", by=list(by))
    want = aggregate_support.expected(small_orders["frame"], where=where, by=by)
    assert len(want) == len(ms) * 6 * (2 if by else 1)
    problems = aggregate_support.mismatches(want, got, by)
    assert not problems, "\n".join(problems)


def monthly(df, column):
    return df.groupby(df["order_date"].dt.to_period("M").dt.start_time)[column]


def assert_series(got, want, what):
    """Same periods, same values (relative 1e-12; missing equals missing)."""
    want = want.astype("float64")
    assert list(got.index) == list(want.index), (what, got.index, want.index)
    assert np.allclose(got, want, rtol=1e-12, atol=0, equal_nan=True), f"{what}:\n{pd.concat([got, want], axis=1)}"


def test_ratio_with_a_zero_denominator_is_missing_and_keeps_its_parts(small_orders):
    """A ratio is numerator / denominator per period; a zero denominator gives a missing value,
    never 0 or infinity, with both parts still reported (aggregate and derived ratios)."""
    ms = [
        Metric(id="rev_per_return", name="r", source="orders", expr="sum(revenue) / count_if(status = 'returned')"),
        Metric(id="rev_per_big", name="r", source="orders", expr="sum(revenue) / count_if(quantity >= 4)",
               where=aggregate_support.WHERE),
        Metric(id="rev", name="r", source="orders", expr="sum(revenue)"),
        Metric(id="returns", name="r", source="orders", expr="count_if(status = 'returned')"),
        Metric(id="rev_per_return_derived", name="r", expr="{rev} / {returns}"),
    ]  # fmt: skip
    got = compute(ms, sources={"orders": str(small_orders["parquet"])}, grain="month").set_index(
        ["metric", "period_start"]
    )
    df = small_orders["frame"].assign(returned=lambda d: d["status"] == "returned")
    big = df[aggregate_support.passes_where(df)].assign(big=lambda d: d["quantity"] >= 4)
    num_all, den_all = monthly(df, "revenue").sum(), monthly(df, "returned").sum()
    parts = {
        "rev_per_return": (num_all, den_all),
        "rev_per_big": (monthly(big, "revenue").sum(), monthly(big, "big").sum().astype(float)),
        "rev_per_return_derived": (num_all, den_all),
    }
    parts["rev_per_big"] = tuple(s.reindex(num_all.index, fill_value=0.0) for s in parts["rev_per_big"])
    zero_den = 0
    for mid, (num, den) in parts.items():
        row = got.loc[mid]
        assert_series(row["numerator"], num, f"{mid} numerator")
        assert_series(row["denominator"], den, f"{mid} denominator")
        assert_series(row["value"], num / den.where(den != 0), f"{mid} value")
        zero_den += int(((den == 0) & (num != 0)).sum())
        assert row["value"][den == 0].isna().all(), mid
    assert zero_den >= 3  # April for each ratio: a numerator over a zero denominator


def test_derived_metrics_match_pandas_including_prev_and_a_zero_previous_value(small_orders):
    ms = [
        *aggregate_support.metrics(),
        Metric(id="growth", name="g", expr="({sum_filtered} - prev({sum_filtered})) / prev({sum_filtered})"),
        Metric(id="spread", name="s", expr="{max_filtered} - {min_filtered}"),
        Metric(id="share", name="s", expr="coalesce({count_if_filtered} / nullif({count_filtered}, 0), 0) * 100"),
        Metric(id="inner", name="i", expr="({count_column_filtered} + 1) / {count_filtered} * 100"),
    ]
    got = compute(ms, sources={"orders": str(small_orders["parquet"])}, grain="month")
    got = got.set_index(["metric", "period_start"])["value"]
    df = small_orders["frame"]
    kept = df[aggregate_support.passes_where(df)]
    months = monthly(df, "revenue").sum().index
    total = monthly(kept, "revenue").sum().reindex(months, fill_value=0.0)
    prev = total.shift(1)
    growth = (total - prev) / prev.where(prev != 0)
    spread = monthly(kept, "revenue").max() - monthly(kept, "revenue").min()
    n, new = monthly(kept, "order_id").size(), monthly(kept, "is_new_customer").sum()
    share = (new / n).reindex(months).fillna(0) * 100
    n_all = n.reindex(months, fill_value=0)
    inner = (monthly(kept, "revenue").count().reindex(months, fill_value=0) + 1) / n_all.where(n_all != 0) * 100
    assert np.isnan(growth["2024-01-01"]) and np.isnan(growth["2024-05-01"])  # no previous month; April is 0
    assert_series(got["growth"], growth, "growth")
    assert_series(got["spread"], spread.reindex(months), "spread")
    assert_series(got["share"], share, "share")
    assert_series(got["inner"], inner, "a division inside a derived formula")
    assert np.isnan(got["inner"]["2024-04-01"])  # (0 + 1) / 0
    assert got["share"]["2024-04-01"] == 0


def test_row_expressions_inside_aggregates_match_pandas(small_orders):
    ms = [
        Metric(id="per_unit", name="m", source="orders", expr="sum(revenue / quantity)"),
        Metric(id="north", name="m", source="orders", expr="sum(case when region = 'North' then revenue else 0 end)"),
        Metric(id="filled", name="m", source="orders", expr="avg(coalesce(revenue, 0))"),
        Metric(id="mid", name="m", source="orders", expr="count_if(revenue between 10 and 100)"),
        Metric(id="lost", name="m", source="orders", expr="count_if(status in ('returned', 'cancelled'))"),
        Metric(id="blank", name="m", source="orders", expr="count_if(revenue is null)"),
        Metric(id="top_qty", name="m", source="orders", expr="max(nullif(quantity, 4))"),
        Metric(id="not_new", name="m", source="orders", expr="count_if(not is_new_customer)"),
    ]  # fmt: skip
    got = compute(ms, sources={"orders": str(small_orders["csv"])}, grain="month")
    got = got.set_index(["metric", "period_start"])["value"]
    df = small_orders["frame"].copy()
    q = df["quantity"].astype("float64")
    df["per_unit"] = df["revenue"] / q.where(q != 0)  # x / 0 is missing, and sum skips it
    df["north"] = df["revenue"].where(df["region"] == "North", 0.0)
    df["filled"] = df["revenue"].fillna(0.0)
    df["mid"] = df["revenue"].between(10, 100)
    df["lost"] = df["status"].isin(["returned", "cancelled"])
    df["blank"] = df["revenue"].isna()
    df["top_qty"] = q.where(q != 4)
    df["not_new"] = (~df["is_new_customer"]).fillna(False).astype(bool)  # not null is null: not counted
    want = {
        "per_unit": monthly(df, "per_unit").sum(), "north": monthly(df, "north").sum(),
        "filled": monthly(df, "filled").mean(), "mid": monthly(df, "mid").sum(), "lost": monthly(df, "lost").sum(),
        "blank": monthly(df, "blank").sum(), "top_qty": monthly(df, "top_qty").max(),
        "not_new": monthly(df, "not_new").sum(),
    }  # fmt: skip
    for mid, series in want.items():
        assert_series(got[mid], series, mid)
