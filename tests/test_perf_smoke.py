"""The benchmark scripts keep running: tiny sizes, one round, and they print their tables.

Every script in ``perf/`` runs once with ``--quick`` (20k order lines over one year, no
10M size, one round), all four at the same time in subprocesses of their own, so the module
costs about as long as the slowest script. The numbers mean nothing at these sizes; only
that the scripts work, check their inputs and print what ``make bench`` reports is checked.
Speed itself is measured by ``make bench``, never asserted here.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "perf"
# what `import kpinb` must leave unloaded (STYLE.md: only the modules that draw or run notebooks load them)
HEAVY = ("plotly", "ipywidgets", "anywidget", "IPython", "ipykernel", "jupyter_client", "nbformat", "nbclient",
         "nbconvert", "papermill")  # fmt: skip


def _argv(script: str, *args: str) -> list[str]:
    return [sys.executable, str(BENCH / script), *args]


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Every benchmark script with --quick, run concurrently; name -> (returncode, stdout, stderr)."""
    data = tmp_path_factory.mktemp("bench-data")
    out = data / "results.md"
    cmds = {
        # run.py end to end (header, --out) on the cheapest benchmark
        "run_imports": _argv("run.py", "imports", "--quick", "--out", str(out), "--data-dir", str(data)),
        "engine": _argv("engine.py", "--quick", "--data-dir", str(data)),
        "dashboard": _argv("dashboard.py", "--quick", "--data-dir", str(data / "dash")),
        "batch": _argv("batch.py", "--quick"),
        "windows": _argv("windows.py", "--quick", "--data-dir", str(data / "windows")),
    }
    procs = {n: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n, c in cmds.items()}
    done = {}
    try:
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=300)
            done[name] = (p.returncode, stdout, stderr)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    done["results.md"] = (0, out.read_text(encoding="utf-8") if out.exists() else "", "")
    return done


def _ok(quick_runs, name):
    code, stdout, stderr = quick_runs[name]
    assert code == 0, f"{name} failed:\n{stderr[-3000:]}"
    return stdout


@pytest.mark.slow
def test_run_py_writes_the_report_with_machine_facts(quick_runs):
    report = _ok(quick_runs, "run_imports")
    assert quick_runs["results.md"][1].strip() == report.strip()
    assert "| cores |" in report and "| duckdb |" in report and "| kpinb |" in report
    assert "## Import cost" in report and "| `import kpinb` | **" in report
    assert "Heavy modules loaded by `import kpinb`: **none**." in report


@pytest.mark.slow
def test_engine_checks_and_times_every_implementation_against_the_sql(quick_runs):
    report = _ok(quick_runs, "engine")
    assert "× `duckdb_sql` (median)" in report
    assert "| 20,000 | `duckdb_sql` | **1.00** |" in report
    for impl in ("kpinb", "pandas"):
        assert f"| 20,000 | `{impl}` | **" in report, impl
    if importlib.util.find_spec("kpi_engine") is not None:
        assert "| 20,000 | `kpi_engine` | **" in report
    else:
        assert "kpi-engine is not installed" in report
    assert "- kpinb / DuckDB SQL = **" in report and "- pandas / kpinb = **" in report


@pytest.mark.slow
def test_dashboard_times_cold_and_warm_filter_changes(quick_runs):
    report = _ok(quick_runs, "dashboard")
    assert "## Dashboard: a filter change on 20,000 order lines" in report
    assert "| first load (`Dashboard(plan)`) | 1 |" in report
    assert "| warm filter change (another region) | 2 |" in report
    assert "- Target ≤ 200 ms for a change after the first on a dimension: warm changes " in report
    assert "Target ≤ 1 s for the first filter on any dimension right after load: " in report


@pytest.mark.slow
def test_batch_times_both_job_counts_against_the_papermill_floor(quick_runs):
    report = _ok(quick_runs, "batch")
    assert "## Batch: `kpinb run --all` against the floor of as many empty notebooks" in report
    # the runner is reported, not hidden, when it is broken
    if "**Problems:**" not in report:
        assert "| floor: 1 empty notebooks, s | batch: 1 notebooks, s | batch ÷ floor (median) |" in report
        assert "\n| --jobs 1 | " in report and "\n| --jobs 2 | " in report
        assert "- Target batch ÷ floor ≤ 1.5: --jobs 1: " in report and "; --jobs 2: " in report
        assert "## Report size" in report and "| sales | empty |" in report


def test_the_windows_benchmark_checks_kpinb_against_the_query_then_times_both(quick_runs):
    """Windows and joins: the check ran (a difference would fail the script) and both were timed."""
    out = _ok(quick_runs, "windows")
    assert "## windows and joins" in out and "| 20,000 | kpinb |" in out and "| 20,000 | duckdb_sql |" in out


def test_run_lists_the_benchmarks_and_rejects_unknown_ones():
    listing = subprocess.run(_argv("run.py", "--list"), capture_output=True, text=True, timeout=60, check=False)
    assert listing.returncode == 0, listing.stderr
    for name in ("imports", "engine", "dashboard", "batch", "windows"):
        assert name in listing.stdout
    bad = subprocess.run(_argv("run.py", "nosuch"), capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "unknown benchmark" in bad.stderr


def test_import_kpinb_leaves_plotly_widgets_and_the_notebook_stack_unloaded():
    code = (
        f"import sys, json, kpinb, kpinb.widgets; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    # the probe can fail: a module that is imported is seen
    code = code.replace("kpinb.widgets; ", "kpinb.widgets, nbformat; ")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["nbformat"]


@pytest.fixture(scope="module")
def bench_engine():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_engine", BENCH / "engine.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def _frame(value=(100.0, 110.0)):
    return pd.DataFrame(
        {
            "metric": ["revenue", "revenue"],
            "period_start": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "region": ["Europe", "Europe"],
            "value": list(value),
            "mom": [np.nan, value[1] / value[0] - 1],
            "status": ["off_track", "on_track"],
        }
    )


def test_the_equality_check_is_not_vacuous(bench_engine):
    want = _frame()
    bench_engine.check("same", _frame(), want)
    with pytest.raises(AssertionError, match="value differs"):
        bench_engine.check("off by 1e-8", _frame((100.0, 110.0 * (1 + 1e-8))), want)
    with pytest.raises(AssertionError, match="status differs"):
        bench_engine.check("status", _frame().assign(status=["on_track", "on_track"]), want)
    with pytest.raises(AssertionError, match="rows differ"):
        bench_engine.check("rows", _frame().iloc[:1], want)


def test_the_check_forgives_summation_order_but_not_a_count(bench_engine):
    """A near-zero change keeps the absolute error of the large sums it comes from: measured on
    an AMD EPYC, 6.015131089e-06 (pandas) vs 6.015131083e-06 (DuckDB) for gross margin MoM."""
    want = _frame((1e6, 1e6 * (1 + 6.015131083e-06))).assign(metric="gross_margin")
    got = want.assign(mom=[np.nan, 6.015131089e-06])
    bench_engine.check("summation order", got, want)
    with pytest.raises(AssertionError, match="mom differs"):
        bench_engine.check("a real difference", want.assign(mom=[np.nan, 6.1e-06]), want)
    orders = _frame((4000.0, 4100.0)).assign(metric="orders")
    with pytest.raises(AssertionError, match="value differs"):
        bench_engine.check("one order more", orders.assign(value=[4000.0, 4100.0 + 1e-7]), orders)
