"""A batch computes each plan's numbers once: `kpinb run` turns the cache on for its kernels, every
template of a department reads the same computation, and a changed input is computed anew."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kpinb.definitions.plan import parse_plan
from kpinb.engine.cache import ENV, cached_compute
from kpinb.engine.query import compute

PLAN = """
name: Cached
department: sales
sources:
  orders: {path: orders.csv, time: order_date}
metrics:
  - {id: total, name: Total, source: orders, expr: sum(revenue)}
kpis:
  - {metric: total, owner: Ana, target: {value: 10, by: 2030-12-31}}
"""


def _plan(folder: Path, rows: str = "2025-01-05,10\n2025-02-03,20\n") -> object:
    (folder / "orders.csv").write_text("order_date,revenue\n" + rows)
    (folder / "plan.yml").write_text(PLAN)
    return parse_plan(PLAN, folder / "plan.yml")


def test_the_same_inputs_are_computed_once_and_a_changed_file_anew(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(ENV, str(cache))
    plan = _plan(tmp_path)
    first = cached_compute(plan, grain="month")
    again = cached_compute(plan, grain="month")
    assert len(list(cache.glob("*.pickle"))) == 1
    pd.testing.assert_frame_equal(again, first)
    assert again.attrs["coverage"] == first.attrs["coverage"] and "calendar" in again.attrs
    pd.testing.assert_frame_equal(first, compute(plan, grain="month"))
    cached_compute(plan, grain="quarter")  # other arguments: another entry
    assert len(list(cache.glob("*.pickle"))) == 2
    plan = _plan(tmp_path, "2025-01-05,10\n2025-02-03,25\n")  # the data changed
    assert cached_compute(plan, grain="month")["value"].tolist() == [10.0, 25.0]
    assert len(list(cache.glob("*.pickle"))) == 3


def test_without_the_batch_or_with_a_database_nothing_is_cached(tmp_path: Path, monkeypatch) -> None:
    plan = _plan(tmp_path)
    monkeypatch.delenv(ENV, raising=False)
    cached_compute(plan)
    assert not list(tmp_path.rglob("*.pickle"))
    monkeypatch.setenv(ENV, str(tmp_path / "cache"))
    db = plan.model_copy(update={"sources": {"orders": plan.sources["orders"].model_copy(
        update={"path": None, "url": f"duckdb:///{tmp_path / 'none.duckdb'}", "table": "orders"})}})  # fmt: skip
    from kpinb.engine.cache import _key

    assert _key(db, {}) is None


def test_a_damaged_cache_entry_is_computed_again(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(ENV, str(cache))
    plan = _plan(tmp_path)
    want = cached_compute(plan)
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    pd.testing.assert_frame_equal(cached_compute(plan), want)


def test_a_batchs_templates_of_one_department_share_one_computation() -> None:
    """The shared batch (tests/batch_support.py) runs two templates on the `hostile` plan."""
    from batch_support import shared_batch

    batch = shared_batch()
    entries = list((batch.out / ".cache").glob("*.pickle"))
    loaded = [r for r in batch.manifest["runs"] if r["status"] == "ok" and r["template"] != "objective_to_kpi"]
    frames = [pd.read_pickle(e) for e in entries]
    loads = [f for f in frames if not f.attrs.get("by")]  # report.load: every template's numbers
    broken_down = [f for f in frames if f.attrs.get("by")]  # report.breakdowns: dashboard and benchmark pages
    departments = {r["department"] for r in loaded}
    # hostile's dashboard and benchmark pages share their numbers and their breakdowns
    assert len(loaded) == len(departments) + 1 and len(loads) == len(departments)
    pages = [r for r in loaded if r["template"] in ("kpi_dashboard", "benchmark_comparison")]
    assert len({r["department"] for r in pages}) <= len(broken_down) < len(pages)
