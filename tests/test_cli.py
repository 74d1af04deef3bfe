"""The command line, run as users run it: a subprocess on real files."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

KPINB = [sys.executable, "-m", "kpinb.cli"]
ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=None):
    return subprocess.run([*KPINB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_sample_data_is_generated_once_and_then_up_to_date(tmp_path):
    first = run("sample-data", "--out", tmp_path, "--rows", 3000, "--seed", 3)
    assert first.returncode == 0, first.stderr
    assert "generated: 16 sources" in first.stdout
    assert len(list(tmp_path.glob("*.parquet"))) == 16
    meta = json.loads((tmp_path / "_sample_data.json").read_text())
    assert meta["args"]["rows"] == 3000 and meta["args"]["seed"] == 3
    again = run("sample-data", "--out", tmp_path, "--rows", 3000, "--seed", 3)
    assert "up to date" in again.stdout


def test_compute_writes_the_tidy_table(tmp_path):
    data = tmp_path / "data"
    assert run("sample-data", "--out", data, "--rows", 3000, "--end", "2025-12").returncode == 0
    plan = tmp_path / "plan.yml"
    plan.write_text(
        "name: Web\ndepartment: web\nsources:\n  web_sessions: {path: data/web_sessions.parquet}\n"
        "kpis:\n  - metric: bounce_rate\n    supporting: [website_traffic]\n"
    )
    out = run("compute", plan, "--grain", "quarter", "--by", "region", "--csv", tmp_path / "out.csv")
    assert out.returncode == 0, out.stderr
    df = pd.read_csv(tmp_path / "out.csv")
    assert set(df.metric) == {"bounce_rate", "website_traffic"}
    assert list(df.columns) == ["metric", "period_start", "region", "value", "numerator", "denominator", "complete"]
    assert df[df.metric == "bounce_rate"].value.between(0, 1).all()
    assert len(df) == 2 * 12 * df.region.nunique()  # 3 years of quarters per region


def test_catalog_lists_matches():
    out = run("catalog", "--department", "email", "--text", "open rate")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0].startswith("email_open_rate")


def test_user_error_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "bad.yml").write_text("name: x\ndepartment: y\nkpis:\n  - metric: not_a_metric\n")
    out = run("compute", tmp_path / "bad.yml")
    assert out.returncode == 2
    assert out.stderr.startswith("kpinb: error: ") and "not_a_metric" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("plan", sorted((ROOT / "templates" / "plans").glob("*.yml")), ids=lambda p: p.stem)
def test_check_passes_on_every_shipped_plan_with_the_sample_data(plan, sample_data):
    from datetime import date

    from kpinb.checks.lint import check, format_issues

    issues, code = check(plan, today=date(2025, 12, 31))
    assert code == 0, format_issues(issues)


def test_check_fails_on_the_bad_plan():
    out = run("check", ROOT / "tests" / "plans" / "bad_plan.yml", "--today", "2026-01-15")
    assert out.returncode == 1
    assert "3 error(s)" in out.stdout
