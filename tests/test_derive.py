"""Computed columns on a source (`derive:`): a time column from year and month, dimensions and
flags from formulas, checked like every formula and compiled to the engine's SQL.

tests/test_databases.py runs the same definitions on PostgreSQL and Spark.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kpinb import compute, load_plan
from kpinb.definitions.model import Metric, Source
from kpinb.errors import FormulaError, PlanError

DERIVE = {
    "sold_month": "make_date(year, month, 1)",
    "area": "lower(region)",
    "big": "price >= 300000",
    "price_k": "round(price / 1000, 1)",
}
METRICS = [
    Metric(id="sold", name="Homes sold", source="houses", expr="count(*)"),
    Metric(id="big_share", name="Share of big sales", source="houses", expr="count_if(big) / count(*)", unit="percent"),
    Metric(id="avg_price_k", name="Average price (k)", source="houses", expr="avg(price_k)"),
]


def houses() -> pd.DataFrame:
    """A housing export with `year` and `month` columns and no date, like the issue's dataset (no
    price ends in 50 exactly: engines round ties differently)."""
    rows = []
    for i in range(240):
        year, month = 2024 + i // 120, (i // 10) % 12 + 1
        rows.append({"year": year, "month": month, "region": ["North", "SOUTH", "East"][i % 3],
                     "price": 150_000 + (i * 7919) % 400_000})  # fmt: skip
        rows[-1]["price"] += rows[-1]["price"] % 100 == 50  # no tie at one decimal of thousands
    return pd.DataFrame(rows)


def expected(df: pd.DataFrame, grain: str = "month") -> pd.DataFrame:
    """The same numbers by hand in pandas."""
    d = df.assign(
        period_start=pd.to_datetime(dict(year=df["year"], month=df["month"], day=1)),
        area=df["region"].str.lower(),
        big=df["price"] >= 300_000,
        price_k=(df["price"] / 1000).round(1),
    )
    if grain == "quarter":
        d["period_start"] = d["period_start"].dt.to_period("Q").dt.start_time
    g = d.groupby(["period_start", "area"])
    out = pd.concat([
        g.size().astype(float).rename("value").reset_index().assign(metric="sold"),
        (g["big"].sum() / g.size()).rename("value").reset_index().assign(metric="big_share"),
        g["price_k"].mean().rename("value").reset_index().assign(metric="avg_price_k"),
    ])  # fmt: skip
    return out.set_index(["metric", "period_start", "area"])["value"].sort_index()


def _got(frame: pd.DataFrame) -> pd.Series:
    frame = frame.dropna(subset=["value"])
    return frame.set_index(["metric", "period_start", "area"])["value"].sort_index()


@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_a_csv_with_year_and_month_columns_and_no_date_computes_by_derived_columns(tmp_path: Path, grain: str) -> None:
    df = houses()
    df.to_csv(tmp_path / "houses.csv", index=False)
    src = Source(path=str(tmp_path / "houses.csv"), time="sold_month", row_covers="month", derive=DERIVE)
    got = compute(METRICS, sources={"houses": src}, grain=grain, by=["area"])
    pd.testing.assert_series_equal(_got(got), expected(df, grain), check_names=False, rtol=1e-12)
    assert got.loc[got["period_start"] == got["period_start"].max(), "complete"].all()  # row_covers: month


def test_a_plan_file_declares_derived_columns_and_checks_them_when_it_loads(tmp_path: Path) -> None:
    houses().to_csv(tmp_path / "houses.csv", index=False)
    text = """
name: Housing
department: sales
sources:
  houses:
    path: houses.csv
    time: sold_month
    dimensions: [area]
    derive: {sold_month: "make_date(year, month, 1)", area: "lower(region)"}
metrics:
  - {id: sold, name: Sold, source: houses, expr: count(*)}
kpis:
  - {metric: sold, owner: Ana, target: {value: 10, by: 2026-12-31}}
"""
    (tmp_path / "plan.yml").write_text(text)
    assert compute(load_plan(tmp_path / "plan.yml"))["value"].sum() == 240
    (tmp_path / "plan.yml").write_text(text.replace("lower(region)", "read_csv(region)"))
    with pytest.raises(PlanError) as e:
        load_plan(tmp_path / "plan.yml")
    assert "sources.houses.derive" in str(e.value) and "unknown function 'read_csv'" in str(e.value)


@pytest.mark.parametrize(
    ("derive", "says"),
    [
        ({"m": "make_date(year, month, days)"}, "'days'"),  # a column the data lacks
        ({"m": "region + 1"}, "needs numbers"),  # text in arithmetic
        ({"m": "year(region)"}, "year() needs a date"),
        ({"m": "round(price, month)"}, "whole number of digits"),
    ],
)
def test_a_bad_derived_column_is_one_clear_error_naming_the_source_and_column(
    tmp_path: Path, derive: dict[str, str], says: str
) -> None:
    houses().to_csv(tmp_path / "houses.csv", index=False)
    derive = {"sold_month": "make_date(year, month, 1)", **derive}
    src = Source(path=str(tmp_path / "houses.csv"), time="sold_month", derive=derive)
    with pytest.raises(FormulaError) as e:
        compute(METRICS[:1], sources={"houses": src})
    assert "source 'houses'" in str(e.value) and "derive: {m: ...}" in str(e.value) and says in str(e.value)
