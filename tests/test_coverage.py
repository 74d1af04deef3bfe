"""Coverage and completeness (issue 13, cases 2 and 3): a period the data covers only in part, or
whose values have not settled, is flagged by the engine and not judged, alerted or forecast from."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import kpinb
from kpinb import scorecard
from kpinb.analytics import forecast
from kpinb.analytics.compare import latest_complete_period, period_label
from kpinb.cli import main
from kpinb.outputs import alerts


def _orders(tmp_path: Path, last: str = "2025-12-09") -> Path:
    days = pd.date_range("2025-01-01", last, freq="D")
    df = pd.DataFrame(
        {
            "order_date": days + pd.Timedelta(hours=12),
            "order_id": [f"o{i}" for i in range(len(days))],
            "customer_id": [f"c{i % 7}" for i in range(len(days))],
            "revenue": 100.0,
            "status": "completed",
        }
    )
    df.to_csv(tmp_path / "orders.csv", index=False)
    return tmp_path / "orders.csv"


def _plan(tmp_path: Path, extra: str = "") -> Path:
    plan = tmp_path / "plan.yml"
    plan.write_text(
        f"""name: Shop
department: sales
sources:
  orders:
    path: orders.csv
    {extra}
kpis:
  - metric: monthly_sales_revenue
    owner: Me
    target: {{value: 3000, by: 2025-12-31}}
    thresholds: {{warning: 2800, critical: 2500}}
""",
        encoding="utf-8",
    )
    return plan


def test_compute_flags_the_month_the_data_covers_only_in_part(tmp_path: Path) -> None:
    _orders(tmp_path)
    df = kpinb.compute(kpinb.load_plan(_plan(tmp_path)), grain="month")
    flags = df.set_index("period_start")["complete"]
    assert df["complete"].dtype == bool
    assert not flags[pd.Timestamp("2025-12-01")]  # data ends 2025-12-09
    assert flags[pd.Timestamp("2025-01-01"):pd.Timestamp("2025-11-01")].all()


def test_a_partial_month_is_not_judged_or_alerted_unless_asked(tmp_path: Path) -> None:
    _orders(tmp_path)
    plan = kpinb.load_plan(_plan(tmp_path))
    df = kpinb.compute(plan, grain="month")
    card = scorecard.evaluate(plan, df).get("monthly_sales_revenue")
    assert card.period_start == pd.Timestamp("2025-11-01")  # not the 9-day December (900, "-70%")
    assert card.status == "on_track" and card.period_label == "2025-11"
    assert not alerts.evaluate(plan, df)  # no critical alert for December
    assert forecast.pace(plan, df)["period_start"].iloc[0] == pd.Timestamp("2025-11-01")
    # as_of the end of December: December has ended, but the data covers it only in part
    assert scorecard.evaluate(plan, df, "2025-12-31").get("monthly_sales_revenue").period_start.month == 11

    partial = scorecard.evaluate(plan, df, include_partial=True).get("monthly_sales_revenue")
    assert partial.period_start == pd.Timestamp("2025-12-01") and partial.value == 900
    assert partial.period_label == "2025-12 (partial: Dec 1–9)"
    found = alerts.evaluate(plan, df, include_partial=True)
    assert [(a.kind, a.severity) for a in found] == [("below", "critical")]
    assert "2025-12 (partial: Dec 1–9)" in found[0].message


def test_complete_through_declares_the_sources_coverage(tmp_path: Path) -> None:
    _orders(tmp_path, last="2025-12-31")
    plan = kpinb.load_plan(_plan(tmp_path, "complete_through: 2025-11-30"))  # December is still loading
    df = kpinb.compute(plan, grain="month")
    assert not df.set_index("period_start")["complete"][pd.Timestamp("2025-12-01")]
    assert latest_complete_period(df) == pd.Timestamp("2025-11-01")


def test_a_quarter_cut_by_the_requested_start_is_partial_and_labelled(tmp_path: Path) -> None:
    _orders(tmp_path, last="2025-12-31")
    plan = kpinb.load_plan(_plan(tmp_path))
    df = kpinb.compute(plan, grain="quarter", start="2025-11-01")
    assert df["period_start"].tolist() == [pd.Timestamp("2025-10-01")]
    assert not df["complete"].iloc[0]  # it holds Nov and Dec only
    assert latest_complete_period(df) is None
    assert period_label("2025-10-01", "quarter", first="2025-11-01") == "2025-Q4 (partial: from Nov 1)"
    full = kpinb.compute(plan, grain="quarter")
    assert full["complete"].all()


def test_cli_compute_shows_the_complete_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _orders(tmp_path)
    assert main(["compute", str(_plan(tmp_path)), "--start", "2025-11-01", "--grain", "quarter"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-1] == "complete" and out[1].split()[-1] == "False"


def test_cli_alerts_judge_a_partial_period_only_with_include_partial(tmp_path: Path, capsys) -> None:
    _orders(tmp_path)
    plan = str(_plan(tmp_path))
    assert main(["alerts", "--plan", plan]) == 0
    assert main(["alerts", "--plan", plan, "--include-partial"]) == 1  # the critical alert, labelled
    assert "partial: Dec 1–9" in capsys.readouterr().out


def _opportunities(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    days = pd.date_range("2025-01-01", "2025-12-31", freq="D").repeat(4)
    pd.DataFrame(
        {
            "created_date": days,
            "lead_id": [f"l{i}" for i in range(len(days))],
            "is_won": rng.random(len(days)) < 0.2,
        }
    ).to_csv(tmp_path / "opportunities.csv", index=False)


def test_a_metric_that_matures_late_leaves_recent_periods_unjudged(tmp_path: Path) -> None:
    _opportunities(tmp_path)
    (tmp_path / "plan.yml").write_text(
        "name: Funnel\ndepartment: sales\nsources:\n  opportunities: {path: opportunities.csv}\n"
        "kpis:\n  - metric: sales_conversion_rate\n    owner: Me\n    target: {value: 0.2, by: 2025-12-31}\n",
        encoding="utf-8",
    )
    plan = kpinb.load_plan(tmp_path / "plan.yml")
    assert kpinb.catalog.get("sales_conversion_rate").matures_after == pd.Timedelta(days=60)
    df = kpinb.compute(plan, grain="month")
    flags = df.set_index("period_start")["complete"]
    # data through Dec 31: October ended 61 days before, November only 31
    assert flags[pd.Timestamp("2025-10-01")] and not flags[pd.Timestamp("2025-11-01")]
    assert not flags[pd.Timestamp("2025-12-01")]
    card = scorecard.evaluate(plan, df)
    assert card.get("sales_conversion_rate").period_start == pd.Timestamp("2025-10-01")
    late = scorecard.evaluate(plan, df, include_partial=True).get("sales_conversion_rate")
    assert late.period_label == "2025-12 (not yet settled: matures 60 days after it ends)"
    # `end` cuts the rows counted, not how old their outcomes are: June's leads settled by December
    earlier = kpinb.compute(plan, grain="month", end="2025-06-30")
    assert earlier["complete"].all()


def test_a_monthly_snapshot_covers_its_month(tmp_path: Path) -> None:
    months = pd.date_range("2025-01-01", "2025-12-01", freq="MS")
    pd.DataFrame(
        {"snapshot_date": months.repeat(3), "subscription_id": ["a", "b", "c"] * len(months), "mrr": 10.0}
    ).to_csv(tmp_path / "subs.csv", index=False)
    (tmp_path / "plan.yml").write_text(
        "name: Subs\ndepartment: sales\nsources:\n  subscriptions: {path: subs.csv}\n"
        "kpis:\n  - metric: monthly_recurring_revenue\n",
        encoding="utf-8",
    )
    df = kpinb.compute(kpinb.load_plan(tmp_path / "plan.yml"), grain="month")
    assert df["complete"].all()  # the 1 December snapshot stands for December


def test_the_dashboard_judges_the_last_complete_month_too(tmp_path: Path) -> None:
    """Its cached aggregates keep the engine's complete flag, so the cards follow the same rule
    as reports and alerts: December, covered to the 9th, is not the judged month."""
    from kpinb.widgets import Dashboard

    orders = pd.read_csv(_orders(tmp_path))
    orders.assign(region=np.where(orders.index % 2, "North", "South")).to_csv(tmp_path / "orders.csv", index=False)
    dash = Dashboard(_plan(tmp_path, "dimensions: [region]"), grain="month")
    frame = dash.cube.frame("month", metrics=["monthly_sales_revenue"])
    flags = frame.set_index("period_start")["complete"]
    assert not flags[pd.Timestamp("2025-12-01")] and flags[pd.Timestamp("2025-11-01")]
    assert "2025-11" in dash.cards.value and "2025-12 " not in dash.cards.value


def _both_ways(table: Any) -> tuple[Any, Any, bool]:
    """Coverage as computed (statistics when they answer) and by scanning the column; whether
    the statistics answered."""
    from kpinb.data import coverage as cov
    from kpinb.data.sources import conform

    t = conform(table, {table.time: "timestamp"}).expr
    used = cov._from_statistics(t, table.time, table.path) is not None
    fast = cov.coverage(table)
    scan = cov.coverage(dataclasses.replace(table, path=None))  # no file known: the query
    return fast, scan, used


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_parquet_statistics_give_the_same_coverage_as_a_scan(tmp_path: Path, engine: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kpinb.data.sources import Source, open_source

    when = pd.to_datetime(["2024-03-05 23:59", "2024-01-02 00:30", None, "2025-02-27 08:00", "2024-07-01 00:00"])
    rows = pd.DataFrame({"order_id": list("abcde"), "order_date": when, "revenue": [1.0, 2, 3, 4, 5],
                         "status": ["completed"] * 5, "region": list("xyxyx")})  # fmt: skip
    def arrow(frame: pd.DataFrame) -> pa.Table:
        return pa.Table.from_pandas(frame, preserve_index=False)

    ns = arrow(rows).schema.set(1, pa.field("order_date", pa.timestamp("ns")))
    cases = {  # name: (data, whether the statistics answer)
        # several row groups, one of them all null: its statistics have no min/max
        "groups": (arrow(rows.iloc[[2, 2, 0, 1, 3, 4]]), True),
        "dates": (arrow(rows.assign(order_date=when.date)), True),
        "nanoseconds": (arrow(rows).cast(ns), True),
        # an instant is converted to wall-clock time in the plan's zone: the scan decides
        "instants": (arrow(rows.assign(order_date=when.tz_localize("UTC"))), False),
        "text": (arrow(rows.assign(order_date=when.strftime("%Y-%m-%d"))), False),
    }
    if engine == "polars":  # polars cannot convert instants or parse text: compute() runs those on DuckDB
        del cases["instants"], cases["text"]
    for name, (data, expected) in cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(data, path, row_group_size=2)
        for spec in (Source(path=str(path)), Source(path=str(path), values={"status": {"completed": ["completed"]}})):
            table = open_source("orders", spec, engine=engine, timezone="Europe/Berlin")
            fast, scan, used = _both_ways(table)
            assert fast == scan, name
            assert used is expected, name
        assert fast.rows == (pd.Timestamp("2024-01-02"), pd.Timestamp("2025-02-27")), name
    # the time column under another name, and a filtered table: a renamed column is read from its
    # statistics; rows a filter removed must not count, so the scan decides
    renamed = tmp_path / "renamed.parquet"
    pq.write_table(arrow(rows.rename(columns={"order_date": "booked"})), renamed)
    table = open_source("orders", Source(path=str(renamed), columns={"order_date": "booked"}), engine=engine)
    fast, scan, used = _both_ways(table)
    assert used and fast == scan
    plain = open_source("orders", Source(path=str(tmp_path / "groups.parquet")), engine=engine)
    for opened in (plain, table):
        filtered = dataclasses.replace(opened, expr=opened.expr.filter(opened.expr.region == "y"))
        fast, scan, used = _both_ways(filtered)
        assert not used and fast == scan and fast.rows == (pd.Timestamp("2024-01-02"), pd.Timestamp("2025-02-27"))
        only_x = dataclasses.replace(opened, expr=opened.expr.filter(opened.expr.region == "x"))
        assert _both_ways(only_x)[0].rows == (pd.Timestamp("2024-03-05"), pd.Timestamp("2024-07-01"))
