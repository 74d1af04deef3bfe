"""Windows and joins benchmark: a windowed, joined KPI set over the sample orders, kpinb vs one
hand-written DuckDB query doing the same work (issue: within 1.5x of it at 10M rows).

The KPI set, monthly by region over completed orders: distinct customers over the trailing three
months (exact, not a sum of monthly distincts), revenue year to date, and revenue of enterprise
customers (a segment from a customers lookup joined on customer_id). Both implementations are
checked equal before anything is timed; ratios come from interleaved rounds in one process.

    python perf/windows.py              # 1M and 10M rows, 5 rounds
    python perf/windows.py --quick      # 20k rows, 1 round (smoke test)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
import _timing

BASELINE = "duckdb_sql"
COMPLETED = "status = 'completed'"

SQL = """
WITH o AS (
    SELECT o.order_date, o.region, o.customer_id, o.revenue, c.segment
    FROM read_parquet($orders) o LEFT JOIN read_parquet($customers) c USING (customer_id)
    WHERE o.status = 'completed' AND o.order_date IS NOT NULL
), months AS (
    SELECT DISTINCT date_trunc('month', order_date) AS p FROM o
), customers_3m AS (
    SELECT m.p, o.region, count(DISTINCT o.customer_id) AS value
    FROM months m JOIN o ON o.order_date >= m.p - INTERVAL 2 MONTH AND o.order_date < m.p + INTERVAL 1 MONTH
    GROUP BY ALL
), revenue_ytd AS (
    SELECT m.p, o.region, sum(o.revenue) AS value
    FROM months m JOIN o ON o.order_date >= date_trunc('year', m.p) AND o.order_date < m.p + INTERVAL 1 MONTH
    GROUP BY ALL
), enterprise AS (
    SELECT date_trunc('month', order_date) AS p, region, coalesce(sum(revenue) FILTER (WHERE segment = 'enterprise'), 0)
        AS value
    FROM o GROUP BY ALL
)
SELECT 'customers_3m' AS metric, p AS period_start, region, CAST(value AS DOUBLE) AS value FROM customers_3m
UNION ALL SELECT 'revenue_ytd', p, region, value FROM revenue_ytd
UNION ALL SELECT 'enterprise_revenue', p, region, value FROM enterprise
"""


def customers_parquet(orders: Path) -> Path:
    """A lookup of every customer with a segment (a third enterprise), next to the orders file."""
    import duckdb

    path = orders.with_name(orders.stem + "-customers.parquet")
    if not path.exists():
        duckdb.sql(
            f"COPY (SELECT customer_id, CASE hash(customer_id) % 3 WHEN 0 THEN 'enterprise' WHEN 1 THEN 'mid' "
            f"ELSE 'smb' END AS segment FROM (SELECT DISTINCT customer_id FROM read_parquet('{orders}'))) "
            f"TO '{path}' (FORMAT parquet)"
        )
    return path


def run_kpinb(orders: Path, customers: Path) -> Any:
    import kpinb
    from kpinb.definitions.model import Metric, Source

    ms = [
        Metric(id="customers_3m", name="Customers (3 months)", source="orders", expr="count_distinct(customer_id)",
               where=COMPLETED, window="3 months"),
        Metric(id="revenue_ytd", name="Revenue YTD", source="orders", expr="sum(revenue)", where=COMPLETED,
               to_date="year"),
        Metric(id="enterprise_revenue", name="Enterprise revenue", source="orders", expr="sum(revenue)",
               where=f"{COMPLETED} and segment = 'enterprise'"),
    ]  # fmt: skip
    sources = {
        "orders": Source(path=str(orders), join={"customers": "customer_id"}),
        "customers": Source(path=str(customers)),
    }
    return kpinb.compute(ms, sources=sources, by=["region"])


def run_duckdb_sql(orders: Path, customers: Path, con: Any = None) -> Any:
    import duckdb

    con = con or duckdb.connect()
    return con.execute(SQL, {"orders": str(orders), "customers": str(customers)}).df()


def canonical(df: Any) -> Any:
    import pandas as pd

    out = df[["metric", "period_start", "region", "value"]].dropna(subset=["value"]).copy()
    out["period_start"] = pd.to_datetime(out["period_start"]).astype("datetime64[ns]")
    out = out.astype({"metric": object, "region": object, "value": "float64"})
    return out.sort_values(["metric", "region", "period_start"], ignore_index=True)


def check(got: Any, want: Any) -> None:
    import numpy as np

    got, want = canonical(got), canonical(want)
    keys = ["metric", "region", "period_start"]
    if not got[keys].equals(want[keys]):
        raise AssertionError(f"kpinb: rows differ from {BASELINE} ({len(got)} vs {len(want)})")
    exact = want["metric"].eq("customers_3m").to_numpy()
    a, b = got["value"].to_numpy(), want["value"].to_numpy()
    if not (a[exact] == b[exact]).all():
        raise AssertionError("kpinb: distinct customers differ from the hand-written query")
    if not np.allclose(a[~exact], b[~exact], rtol=1e-9, atol=0.0):
        raise AssertionError("kpinb: revenues differ from the hand-written query beyond 1e-9")


def bench(rows: int, rounds: int, data_dir: Path | None) -> list[Any]:
    import duckdb

    orders = _data.orders_parquet(rows, data_dir=data_dir)
    customers = customers_parquet(orders)
    con = duckdb.connect()
    fns = {"kpinb": lambda: run_kpinb(orders, customers), BASELINE: lambda: run_duckdb_sql(orders, customers, con)}
    check(fns["kpinb"](), fns[BASELINE]())  # also the warm-up
    timings = _timing.interleaved(fns, BASELINE, rounds)
    return [[f"{rows:,}", name, f"{t.median:.2f}", f"{t.ratio:.2f}", f"{t.ratio_range[0]:.2f}-{t.ratio_range[1]:.2f}"]
            for name, t in timings.items()]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--rows", type=int, nargs="*", help="sizes (default 1M and 10M)")
    a = p.parse_args(argv)
    sizes = [20_000] if a.quick else (a.rows or [1_000_000, 10_000_000])
    rounds = 1 if a.quick else 5
    out = []
    for rows in sizes:
        print(f"windows: {rows:,} rows", file=sys.stderr, flush=True)
        out += bench(rows, rounds, a.data_dir)
    print("## windows and joins\n")
    print("Trailing-3-month distinct customers, revenue YTD and enterprise revenue (a joined customers")
    print("lookup), monthly by region; both checked equal first. Target: kpinb within 1.5x of the query.\n")
    print(_timing.table(["rows", "implementation", "median s", "x DuckDB SQL", "range"], out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
