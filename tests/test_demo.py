"""The demo is current on any day: `kpinb sample-data` ends last month and moves the example plans
so that no warning comes from the age of the bundled sample or plans (`--end` pins the month)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from kpinb.checks.lint import check
from kpinb.data.sample import PINNED_END, last_complete_month, start_for
from kpinb.definitions.plan import load_plan
from kpinb.runs.demo import demo_plan_text, shift_years

AGE_RULES = {"deadline_passed", "review", "review_overdue", "stale", "data_stale"}


def _kpinb(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kpinb.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("today", "end", "years"),
    [(dt.date(2026, 1, 10), "2025-12", 1), (dt.date(2026, 11, 30), "2026-10", 1), (dt.date(2027, 1, 3), "2026-12", 2)],
)
def test_the_sample_ends_last_month_and_the_plans_move_past_it(today: dt.date, end: str, years: int) -> None:
    assert last_complete_month(today) == end
    assert shift_years(end) == years
    assert start_for(end) == f"{int(end[:4]) - 3 + (end[5:] == '12')}-{int(end[5:]) % 12 + 1:02d}-01"


def test_dates_names_and_statements_move_and_numbers_stay() -> None:
    text = (
        "name: Sales 2025\nobjectives:\n  - {id: grow, statement: Grow revenue to 1.5M by the end of 2025}\n"
        "sources:\n  orders: {path: ../../data/sample/orders.parquet}\n"
        "kpis:\n  - metric: m\n    baseline: {from: 2024-02-29, to: 2024-12-31}\n"
        "    target: {value: 2025, by: 2025-12-31}\nreview: {every: quarter, last: 2025-10-15}\n"
    )
    moved = demo_plan_text(text, 1, "..")
    assert "name: Sales 2026" in moved and "by the end of 2026" in moved
    assert "from: 2025-02-28, to: 2025-12-31" in moved  # no 29 February in 2025
    assert "value: 2025, by: 2026-12-31" in moved  # a number that looks like a year stays
    assert "last: 2026-10-15" in moved and "path: ../orders.parquet" in moved


def test_a_demo_made_today_has_no_warning_about_its_age(tmp_path: Path) -> None:
    """The issue's case: every shipped plan showed 4-6 warnings (deadlines passed, review overdue)."""
    out = tmp_path / "sample"
    done = _kpinb("sample-data", "--out", out, "--rows", 200_000)
    assert done.returncode == 0, done.stderr
    end = last_complete_month()
    assert f"through {end}" in done.stdout
    plans = sorted((out / "plans").glob("*.yml"))
    assert len(plans) == 9
    for path in plans:
        plan = load_plan(path)  # sources resolve next to the sample
        assert all(plan.resolve(s.path).is_file() for s in plan.sources.values() if s.path)
        issues, code = check(path)
        assert code == 0, [i.message for i in issues if i.severity == "error"]
        aged = [i for i in issues if i.rule in AGE_RULES]
        assert not aged, f"{path.name}: {[i.message for i in aged]}"


def test_the_pinned_month_gives_the_shipped_sample(tmp_path: Path) -> None:
    done = _kpinb("sample-data", "--out", tmp_path, "--rows", 2000, "--end", PINNED_END)
    assert done.returncode == 0, done.stderr
    assert '"start": "2023-01-01"' in (tmp_path / "_sample_data.json").read_text()


@pytest.mark.parametrize("bad", ["2025-13", "2025", "next month", "2025-12-01"])
def test_a_bad_end_month_is_one_clear_error(tmp_path: Path, bad: str) -> None:
    done = _kpinb("sample-data", "--out", tmp_path, "--end", bad)
    assert done.returncode == 2 and "YYYY-MM" in done.stderr and "Traceback" not in done.stderr
