"""The plan's calendar: time zone, fiscal year start and week start, on the embedded DuckDB.

tests/test_databases.py runs the same expectations on PostgreSQL and Spark.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from calendar_support import CALENDARS, events, expected, metrics, mismatches

from kpinb.analytics.compare import period_label
from kpinb.definitions.model import Calendar
from kpinb.definitions.plan import parse_plan
from kpinb.engine.calendar import fiscal_label, period_start, periods
from kpinb.engine.query import compute
from kpinb.errors import PlanError

GRAINS = ["day", "week", "month", "quarter", "year"]


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    df = events()
    path = tmp_path_factory.mktemp("calendar") / "orders.parquet"
    df.to_parquet(path, index=False)
    return df, path


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("name", list(CALENDARS))
def test_periods_follow_the_zone_weeks_and_fiscal_year(
    orders: tuple[pd.DataFrame, Path], name: str, grain: str
) -> None:
    df, path = orders
    cal = CALENDARS[name]
    got = compute(metrics(), sources={"orders": str(path)}, grain=grain, calendar=cal)
    problems = mismatches(expected(df, grain, cal), got)
    assert not problems, "\n".join(problems[:10])


def test_an_order_late_on_new_years_eve_in_new_york_counts_in_december(tmp_path: Path) -> None:
    """The issue's case: 23:30-05:00 is 04:30 UTC on January 1st."""
    (tmp_path / "orders.csv").write_text(
        "order_date,revenue\n2025-12-31T23:30:00-05:00,100\n2025-12-15T10:00:00-05:00,1\n2026-01-02T10:00:00-05:00,7\n"
    )
    plan_text = """
name: Sales
department: sales
timezone: America/New_York
sources:
  orders: {path: orders.csv, time: order_date}
metrics:
  - {id: total, name: Total, source: orders, expr: sum(revenue)}
kpis:
  - {metric: total, owner: Ana, target: {value: 1, by: 2026-12-31}}
"""
    (tmp_path / "plan.yml").write_text(plan_text)
    from kpinb.definitions.plan import load_plan

    plan = load_plan(tmp_path / "plan.yml")
    got = compute(plan).set_index("period_start")["value"]
    assert got[pd.Timestamp("2025-12-01")] == 101 and got[pd.Timestamp("2026-01-01")] == 7
    utc = compute(plan, calendar=Calendar()).set_index("period_start")["value"]
    assert utc[pd.Timestamp("2025-12-01")] == 1 and utc[pd.Timestamp("2026-01-01")] == 107


def test_text_times_without_an_offset_are_the_business_wall_clock(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("order_date,revenue\n2025-12-31 23:30:00,100\n2026-01-01 00:30:00,7\n")
    cal = Calendar(timezone="Asia/Tokyo")
    got = compute(metrics()[:1], sources={"orders": str(tmp_path / "orders.csv")}, calendar=cal)
    values = got.set_index("period_start")["value"]
    assert values[pd.Timestamp("2025-12-01")] == 100 and values[pd.Timestamp("2026-01-01")] == 7


def test_offsets_in_text_are_read_per_row(tmp_path: Path) -> None:
    rows = ["2025-03-31T22:00:00Z", "2025-03-31 23:00:00+01:00", "2025-04-01 00:30", "2025-03-31"]
    pd.DataFrame({"order_date": rows, "revenue": [1.0, 10.0, 100.0, 1000.0]}).to_csv(tmp_path / "o.csv", index=False)
    cal = Calendar(timezone="Europe/London", fiscal_year_start=4)  # BST: +01:00 on March 31st
    got = compute(metrics()[:1], sources={"orders": str(tmp_path / "o.csv")}, grain="year", calendar=cal)
    values = got.set_index("period_start")["value"]
    # 22:00Z = 23:00 BST (FY2025); 23:00+01:00 = 23:00 BST (FY2025); naive 00:30 (FY2026); a date (FY2025)
    assert values.to_dict() == {pd.Timestamp("2024-04-01"): 1011.0, pd.Timestamp("2025-04-01"): 100.0}


def test_fiscal_years_are_named_by_the_year_they_end_in() -> None:
    cal = Calendar(fiscal_year_start=4)
    assert period_start("2026-03-31", "year", cal) == pd.Timestamp("2025-04-01")
    assert fiscal_label("2025-04-01", "year", cal) == "FY2026"
    assert fiscal_label("2025-10-01", "quarter", cal) == "Q3 FY2026"
    assert period_label("2025-04-01", "year", calendar=cal) == "FY2026"
    assert period_label("2026-01-01", "quarter", calendar=cal) == "Q4 FY2026"
    assert period_label("2025-04-01", "quarter") == "2025-Q2"  # calendar quarters keep their names
    assert list(periods("2025-01-15", "2025-12-31", "quarter", Calendar(fiscal_year_start=2))) == [
        pd.Timestamp(d) for d in ("2024-11-01", "2025-02-01", "2025-05-01", "2025-08-01", "2025-11-01")
    ]


def test_weeks_start_on_the_plans_day() -> None:
    assert period_start("2025-01-04", "week", Calendar(week_start="sunday")) == pd.Timestamp("2024-12-29")
    assert period_start("2025-01-05", "week", Calendar(week_start="sunday")) == pd.Timestamp("2025-01-05")
    assert period_start("2025-01-05", "week") == pd.Timestamp("2024-12-30")


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("timezone", "Mars/Olympus", "IANA name"),
        ("week_start", "fri", "weekday name"),
        ("fiscal_year_start", 13, "fiscal_year_start"),
        ("currency", "euro", "currency"),
    ],
)
def test_a_bad_calendar_field_is_a_plan_error_naming_it(field: str, value: object, says: str) -> None:
    text = f"name: S\ndepartment: sales\n{field}: {value}\n"
    with pytest.raises(PlanError) as e:
        parse_plan(text, "plan.yml")
    assert field in str(e.value) and says in str(e.value)


def test_the_forecast_and_pace_use_the_fiscal_quarters(orders: tuple[pd.DataFrame, Path]) -> None:
    """A fiscal-quarter series is a valid history (its starts are not calendar quarter starts)."""
    from kpinb.analytics.forecast import forecast

    _, path = orders
    cal = Calendar(fiscal_year_start=2)
    df = compute(metrics()[:1], sources={"orders": str(path)}, grain="quarter", calendar=cal)
    series = df.set_index("period_start")["value"]
    assert {p.month for p in series.index} == {2, 5, 8, 11}
    fc = forecast(series, "quarter", until="2026-10-31", calendar=cal)
    assert fc.deadline == pd.Timestamp("2026-08-01") and len(fc.points) == 3
