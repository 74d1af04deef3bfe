"""Windowed metrics: trailing windows, cumulative and to-date values, exact for every aggregate
(distinct counts are not sums of per-period distincts), fiscal-aware, on the embedded DuckDB."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import window_support as ws

from kpinb import compute
from kpinb.definitions.model import Calendar, Metric
from kpinb.errors import PlanError

MONTHS = pd.date_range("2024-01-01", "2025-12-01", freq="MS")


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    df = ws.orders()
    path = tmp_path_factory.mktemp("windows") / "orders.parquet"
    df.to_parquet(path, index=False)
    return df, path


@pytest.mark.parametrize("by", [None, "region"])
def test_every_window_kind_matches_the_rows_of_its_window(orders: tuple[pd.DataFrame, Path], by: str | None) -> None:
    df, path = orders
    out = compute(ws.METRICS, sources={"orders": str(path)}, by=[by] if by else [])
    pd.testing.assert_series_equal(ws.got(out, by), ws.expected(df, MONTHS, by), check_names=False, rtol=1e-12)


def test_distinct_counts_over_a_window_are_not_sums_of_monthly_distincts(orders: tuple[pd.DataFrame, Path]) -> None:
    _, path = orders
    plain = Metric(id="buyers", name="Buyers", source="orders", expr="count_distinct(customer_id)")
    out = compute([plain, ws.METRICS[1]], sources={"orders": str(path)}).pivot(
        index="period_start", columns="metric", values="value"
    )
    assert (out["buyers_3m"].iloc[2:] < out["buyers"].rolling(3).sum().iloc[2:]).all()


def test_a_window_reaches_back_before_start_and_is_partial_before_the_data(orders: tuple[pd.DataFrame, Path]) -> None:
    df, path = orders
    out = compute(ws.METRICS[:1], sources={"orders": str(path)}, start="2025-03-01", end="2025-05-31")
    assert list(out["period_start"]) == list(pd.date_range("2025-03-01", "2025-05-01", freq="MS"))
    want = ws.expected(df, pd.DatetimeIndex(out["period_start"])).loc["rev_12m"]
    assert out["value"].tolist() == want.tolist()  # the 12 months before March count, not just March on
    early = compute(ws.METRICS[:1], sources={"orders": str(path)}).set_index("period_start")["complete"]
    assert not early[:"2024-11-01"].any() and early["2024-12-01":"2025-11-01"].all()  # 12 months of data needed


def test_to_date_follows_the_fiscal_year(orders: tuple[pd.DataFrame, Path]) -> None:
    df, path = orders
    cal = Calendar(fiscal_year_start=4)
    out = compute([ws.METRICS[5]], sources={"orders": str(path)}, calendar=cal)
    want = ws.expected(df, MONTHS, fiscal_start=4).loc["rev_ytd"]
    pd.testing.assert_series_equal(ws.got(out).loc["rev_ytd"], want, check_names=False, rtol=1e-12)
    monthly = out.set_index("period_start")["value"]
    assert monthly["2025-04-01"] < monthly["2025-03-01"]  # April starts FY2026 again


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"window": "12 fortnights"}, "12 months"),
        ({"window": "12 months", "to_date": "year"}, "give one of window, to_date"),
        ({"cumulative": True, "source": None, "expr": "{a} + {b}"}, "derived metric combines windowed ones"),
    ],
)
def test_a_bad_window_is_a_clear_plan_error(fields: dict, says: str) -> None:
    import json

    from kpinb.definitions.plan import parse_plan

    metric = {"id": "m", "name": "M", "source": "orders", "expr": "sum(revenue)", **fields}
    text = f"name: S\ndepartment: sales\nmetrics:\n  - {json.dumps(metric)}\n"
    with pytest.raises(PlanError) as e:
        parse_plan(text, "plan.yml")
    assert says in str(e.value) and "metrics[0]" in str(e.value)
