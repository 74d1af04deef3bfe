"""The dashboard's cube: a first filter on a dimension computes only its member, exactly.

Real files on the real engines (polars for local Parquet, DuckDB when told so), no mocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpinb.definitions.plan import load_plan
from kpinb.engine.cube import Cube

PLAN = """\
name: Customers
department: sales
objectives: [{{id: grow, statement: Grow the customer base}}]
sources: {{orders: {{path: {path}, complete_through: 2025-03-20}}}}
metrics:
  - {{id: buyers, name: Buyers, source: orders, expr: 'count_distinct(customer_id)', where: "status = 'completed'"}}
  - {{id: basket, name: Median basket, source: orders, expr: 'median(revenue)'}}
  - {{id: buyers_change, name: Change in buyers, expr: 'coalesce({{buyers}}, 0) - coalesce(prev({{buyers}}), 0)'}}
  - {{id: revenue, name: Revenue, source: orders, expr: 'sum(revenue)'}}
kpis:
  - {{metric: buyers, objective: grow, owner: Sales, target: {{value: 10, by: 2025-12-31}}}}
  - {{metric: buyers_change, objective: grow, owner: Sales, target: {{value: 1, by: 2025-12-31}}}}
  - {{metric: revenue, objective: grow, owner: Sales, supporting: [basket], target: {{value: 1, by: 2025-12-31}}}}
"""


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    """Orders over January-April 2025; "Asia" has rows in February and March only, "Africa" none
    completed; so a member's own periods are fewer than the data's, and April is incomplete. Some
    rows have no channel."""
    rng = np.random.default_rng(3)
    n = 400
    region = rng.choice(["Europe", "America", "Asia", "Africa"], n)
    day = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
    asia = region == "Asia"
    day = day.where(~asia, pd.Timestamp("2025-02-01") + pd.to_timedelta(rng.integers(0, 56, n), unit="D"))
    status = np.where(region == "Africa", "cancelled", rng.choice(["completed", "returned"], n, p=[0.8, 0.2]))
    orders = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)], "order_date": day,
        "customer_id": rng.choice([f"c{i}" for i in range(60)], n), "region": region,
        "channel": rng.choice(["web", "store", None], n), "product_category": "toys", "product": "ball", "quantity": 1,
        "revenue": rng.uniform(5, 50, n).round(2), "cost": 1.0, "is_new_customer": False, "status": status,
    })  # fmt: skip
    orders.to_parquet(tmp_path / "orders.parquet", index=False)
    path = tmp_path / "customers.yml"
    path.write_text(PLAN.format(path=tmp_path / "orders.parquet"))
    return path


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_a_first_filter_queries_only_its_member_and_equals_the_whole_breakdown(
    plan_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KPINB_LOCAL_ENGINE", engine)
    cube = Cube(load_plan(plan_path))
    exact = ["buyers", "buyers_change", "basket"]
    assert [m for m in cube.metrics if cube.kinds[m] == "exact"] == exact
    cube.frame("month")  # what the dashboard shows first: the unfiltered frame
    for region in ["Asia", "Africa", "Europe"]:
        got = cube.frame("month", {"region": region})
        # one query over the member's rows, not the breakdown by every region
        assert cube.calls[-1] == ("month", (f"region={region}",), tuple(exact))
        assert ("month", ("region",), tuple(exact)) not in cube.calls
        whole = Cube(load_plan(plan_path)).frame("month", by=["region"])
        want = whole[whole["region"] == region].drop(columns="region").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    # Asia's January is a period of the data without its rows: a missing value (not 0), and a change of 0 - 0
    asia = cube.frame("month", {"region": "Asia"}).set_index(["metric", "period_start"])
    jan, apr = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-04-01")
    assert np.isnan(asia.loc[("buyers", jan), "value"]) and asia.loc[("buyers_change", jan), "value"] == 0
    assert not asia.loc[("buyers", apr), "complete"] and asia.loc[("buyers", jan), "complete"]
    calls = len(cube.calls)
    cube.frame("month", {"region": "Asia"})  # cached
    assert len(cube.calls) == calls


def test_the_precompute_runs_every_member_before_any_whole_breakdown_and_serves_the_filters(
    plan_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from kpinb.engine import cube as module

    monkeypatch.setattr(module, "QUIET_S", 0.0)
    cube = Cube(load_plan(plan_path))
    cube.frame("month")
    members = cube.members()
    assert cube.precompute([("month", ("region",)), ("month", ("channel",))]) is not None
    assert cube.wait(timeout=60) and not cube.precompute_errors
    done = [c[1][0] for c in cube.background_calls]
    each = [f"{d}={m}" for d in ("region", "channel") for m in members[d]]
    # a filter arriving meanwhile waits for one short query at most; the breakdown by region is its members'
    # frames together, by channel a query of its own (rows without a channel are a group of it)
    assert done == [*each, "channel"]
    calls = len(cube.calls)
    for region in members["region"]:
        cube.frame("month", {"region": region})
    by = {d: cube.frame("month", by=[d]) for d in ("region", "channel")}
    assert len(cube.calls) == calls
    fresh = Cube(load_plan(plan_path))
    for d, got in by.items():
        pd.testing.assert_frame_equal(got, fresh.frame("month", by=[d]), check_exact=False, rtol=1e-12)
    assert by["channel"]["channel"].isna().any()


def test_a_dimension_of_many_members_is_precomputed_by_one_query(plan_path: Path, monkeypatch: pytest.MonkeyPatch):
    from kpinb.engine import cube as module

    monkeypatch.setattr(module, "QUIET_S", 0.0)
    monkeypatch.setattr(module, "MEMBER_QUERIES_MAX", 3)
    cube = Cube(load_plan(plan_path))
    cube.frame("month")
    cube.members()
    cube.precompute([("month", ("region",))])
    assert cube.wait(timeout=60) and [c[1] for c in cube.background_calls] == [("region",)]


def test_a_windowed_metric_is_computed_by_the_whole_breakdown(plan_path: Path):
    """A window of a member's period can hold rows of periods where the member has none: the whole
    breakdown decides."""
    text = plan_path.read_text().replace(
        "expr: 'median(revenue)'}", "expr: 'median(revenue)', window: 2 months}"
    )
    plan_path.write_text(text)
    cube = Cube(load_plan(plan_path))
    cube.frame("month")
    got = cube.frame("month", {"region": "Asia"})
    assert cube.calls[-1][:2] == ("month", ("region",))
    assert not any("=" in c[1][0] for c in cube.calls if c[1])
    assert len(got)


def test_a_filter_while_the_background_waits_for_a_quiet_user_runs_first_and_is_not_computed_twice(
    plan_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The background starts a query only once the foreground has asked for nothing for QUIET_S: a
    filter right after the dashboard is shown gets the engine at once (polars cannot stop a running
    query) and the background leaves out the member it computed."""
    from kpinb.engine import cube as module

    monkeypatch.setattr(module, "QUIET_S", 3600.0)
    cube = Cube(load_plan(plan_path))
    cube.frame("month")
    members = cube.members()["region"]
    assert cube.precompute([("month", ("region",))]) is not None
    cube.frame("month", {"region": "Asia"})
    assert cube.calls[-1][:2] == ("month", ("region=Asia",)) and cube.background_calls == []
    monkeypatch.setattr(module, "QUIET_S", 0.0)
    with module._ENGINE:
        module._ENGINE.notify_all()
    assert cube.wait(timeout=60) and not cube.precompute_errors
    assert [c[1][0] for c in cube.background_calls] == [f"region={m}" for m in members if m != "Asia"]


def test_a_member_of_a_source_polars_cannot_run_is_computed_on_duckdb(plan_path: Path):
    """Dates stored as text run on DuckDB (polars does not read them as DuckDB would): a member's query too."""
    orders = pd.read_parquet(plan_path.parent / "orders.parquet")
    orders["order_date"] = orders["order_date"].dt.strftime("%Y-%m-%d")
    orders.to_parquet(plan_path.parent / "orders.parquet", index=False)
    cube = Cube(load_plan(plan_path))
    cube.frame("month")
    got = cube.frame("month", {"region": "Asia"})
    assert cube.calls[-1][:2] == ("month", ("region=Asia",))
    whole = Cube(load_plan(plan_path)).frame("month", by=["region"])
    want = whole[whole["region"] == "Asia"].drop(columns="region").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
