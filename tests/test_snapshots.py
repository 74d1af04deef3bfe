"""Snapshot sources: an export without a time column (one row per employee, a survey) is the
state as of a date (`as_of:`); several snapshot files with their dates form a time series.
tests/test_databases.py runs a database table as a snapshot on PostgreSQL and Spark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kpinb import compute, load_plan
from kpinb.definitions.model import Metric, Source
from kpinb.errors import DataError, PlanError

METRICS = [
    Metric(id="attrition_rate", name="Attrition rate", source="staff",
           expr="count_if(attrition = 'Yes') / count(*)", unit="percent", direction="lower_is_better"),
    Metric(id="headcount", name="Headcount", source="staff", expr="count(*)"),
    Metric(id="avg_pay", name="Average pay", source="staff", expr="avg(pay)"),
]  # fmt: skip


def staff(quarter: int) -> pd.DataFrame:
    """An HR export of one quarter: department, job role, pay and a Yes/No attrition column."""
    n = 12 + quarter
    return pd.DataFrame({
        "employee_id": range(n),
        "department": ["Sales" if i % 3 else "R&D" for i in range(n)],
        "pay": [50_000.0 + 1000 * i + 500 * quarter for i in range(n)],
        "attrition": ["Yes" if (i + quarter) % 5 == 0 else "No" for i in range(n)],
    })  # fmt: skip


def expected(frames: dict[str, pd.DataFrame], by: str | None = None) -> pd.Series:
    rows = []
    for day, df in frames.items():
        p = pd.Timestamp(day).to_period("Q").start_time
        for key, g in df.groupby(by) if by else [(None, df)]:
            extra = {by: key} if by else {}
            rows += [
                {"metric": "attrition_rate", "period_start": p, **extra, "value": (g["attrition"] == "Yes").mean()},
                {"metric": "headcount", "period_start": p, **extra, "value": float(len(g))},
                {"metric": "avg_pay", "period_start": p, **extra, "value": g["pay"].mean()},
            ]
    keys = ["metric", "period_start", *([by] if by else [])]
    frame = pd.DataFrame(rows).astype({"period_start": "datetime64[ns]"})
    return frame.set_index(keys)["value"].sort_index()


def got(frame: pd.DataFrame, by: str | None = None) -> pd.Series:
    keys = ["metric", "period_start", *([by] if by else [])]
    frame = frame.dropna(subset=["value"]).astype({"period_start": "datetime64[ns]"})
    return frame.set_index(keys)["value"].sort_index()


@pytest.mark.parametrize("by", [None, "department"])
def test_a_series_of_snapshot_files_is_a_time_series_judged_per_period(tmp_path: Path, by: str | None) -> None:
    frames = {"2025-03-31": staff(1), "2025-06-30": staff(2), "2025-09-30": staff(3)}
    for i, df in enumerate(frames.values()):
        df.to_csv(tmp_path / f"hr_q{i + 1}.csv", index=False)
    text = f"""
name: People
department: hr
sources:
  staff:
    path:
{chr(10).join(f"      - {{path: {tmp_path}/hr_q{i + 1}.csv, as_of: {d}}}" for i, d in enumerate(frames))}
    dimensions: [department]
metrics:
  - {{id: attrition_rate, name: Attrition, source: staff, expr: "count_if(attrition = 'Yes') / count(*)",
     unit: percent, direction: lower_is_better}}
kpis:
  - {{metric: attrition_rate, owner: Bo, grain: quarter, target: {{value: 0.1, by: 2026-12-31}}}}
"""
    (tmp_path / "plan.yml").write_text(text)
    plan = load_plan(tmp_path / "plan.yml")
    out = compute(METRICS, sources=dict(plan.sources), grain="quarter", by=[by] if by else [])
    pd.testing.assert_series_equal(got(out, by), expected(frames, by), check_names=False, rtol=1e-12)
    assert out["complete"].all()  # a snapshot stands for its whole quarter
    from kpinb import scorecard

    card = scorecard.evaluate(plan, compute(plan, grain="quarter"))
    assert card.get("attrition_rate").status in ("on_track", "at_risk", "off_track")


def test_one_export_without_dates_is_a_snapshot_as_of_its_date(tmp_path: Path) -> None:
    staff(1).to_parquet(tmp_path / "hr.parquet")
    src = Source(path=str(tmp_path / "hr.parquet"), as_of="2025-06-30")
    out = compute(METRICS[1:2], sources={"staff": src})
    assert out[["period_start", "value"]].values.tolist() == [[pd.Timestamp("2025-06-01"), 13.0]]


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("{path: hr.csv}", "needs `time:` naming its date column (or `as_of:`"),
        ("{path: hr.csv, time: hired, as_of: 2025-06-30}", "has no `time:` column"),
        ("{path: [hr.csv], dimensions: [department]}", "series of snapshots"),
    ],
)
def test_a_snapshot_declared_wrong_is_a_plan_error(tmp_path: Path, source: str, says: str) -> None:
    (tmp_path / "plan.yml").write_text(f"name: P\ndepartment: hr\nsources:\n  staff: {source}\n")
    with pytest.raises(PlanError) as e:
        load_plan(tmp_path / "plan.yml")
    assert says in str(e.value)


def test_snapshots_with_other_columns_are_one_clear_error(tmp_path: Path) -> None:
    staff(1).to_csv(tmp_path / "a.csv", index=False)
    staff(2).drop(columns="pay").to_csv(tmp_path / "b.csv", index=False)
    src = Source.model_validate(
        {"path": [{"path": str(tmp_path / "a.csv"), "as_of": "2025-03-31"},
                  {"path": str(tmp_path / "b.csv"), "as_of": "2025-06-30"}]}
    )
    with pytest.raises(DataError) as e:
        compute(METRICS[1:2], sources={"staff": src})
    assert "other columns" in str(e.value) and "b.csv" in str(e.value)
