"""Test support: a small order table and every aggregate over it computed with pandas.

tests/test_engine.py (DuckDB on files) and tests/test_databases.py (PostgreSQL, Spark) compare
the engine with these expectations. They are written here by hand from the rows, never through
kpinb, so a bug in the engine's DuckDB path cannot sit on both sides of the comparison.

The rows are built so that each aggregate gives another number when ``where:`` is ignored: the
rows the filter drops hold the smallest and the largest revenues, customers found nowhere else,
new customers, and nulls; in April no row passes the filter at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kpinb.definitions.model import Metric

WHERE = "status = 'completed' and quantity >= 2"

# metric id -> (expr, the same aggregate in pandas over the rows of one group that pass)
AGGREGATES: dict[str, tuple[str, Callable[[pd.DataFrame], float]]] = {
    "sum": ("sum(revenue)", lambda g: g["revenue"].sum()),  # no rows: 0, as the engine documents
    "count": ("count(*)", lambda g: len(g)),
    "count_column": ("count(revenue)", lambda g: g["revenue"].notna().sum()),
    "count_if": ("count_if(is_new_customer)", lambda g: g["is_new_customer"].fillna(False).astype(bool).sum()),
    "count_distinct": ("count_distinct(customer_id)", lambda g: g["customer_id"].nunique()),
    "avg": ("avg(revenue)", lambda g: g["revenue"].mean()),
    "min": ("min(revenue)", lambda g: g["revenue"].min()),
    "max": ("max(revenue)", lambda g: g["revenue"].max()),
    "median": ("median(revenue)", lambda g: g["revenue"].median()),
}


def metrics(where: str | None = WHERE) -> list[Metric]:
    """One metric per aggregate over the ``orders`` source, each with ``where``."""
    return [
        Metric(id=f"{mid}_filtered" if where else mid, name=mid, source="orders", expr=expr, where=where)
        for mid, (expr, _) in AGGREGATES.items()
    ]


def orders() -> pd.DataFrame:
    """144 order lines, January to June 2024, 12 per month and region (North, South)."""
    rng = np.random.default_rng(20)
    rows = []
    for month in range(1, 7):
        for region in ("North", "South"):
            for i in range(12):
                status = "cancelled" if month == 4 else ("completed", "completed", "returned", "cancelled")[i % 4]
                quantity = None if i % 7 == 3 else int(rng.integers(0, 5))
                passes = status == "completed" and quantity is not None and quantity >= 2
                if passes:
                    revenue = round(float(rng.uniform(10, 500)), 2)
                    customer = f"c{int(rng.integers(0, 6))}"
                else:  # what the filter drops is extreme, so ignoring it shows in every aggregate
                    revenue = float(rng.choice([0.25, 9000.0 + i]))
                    customer = f"x{month}{region[0]}{i}"
                if i % 5 == 4:
                    revenue = None
                is_new = bool(not passes or i % 3 == 0) if i % 6 != 5 else None
                day = 1 + (i * 5) % 28
                stamp = pd.Timestamp(2024, month, day, (i * 7) % 24, 59, 59)
                rows.append((f"o{month}{region[0]}{i:02d}", stamp, customer, region, quantity, revenue, status, is_new))
    return pd.DataFrame(
        rows,
        columns=["order_id", "order_date", "customer_id", "region", "quantity", "revenue", "status", "is_new_customer"],
    ).astype({"quantity": "Int64", "revenue": "float64", "is_new_customer": "boolean"})


def passes_where(df: pd.DataFrame) -> pd.Series:
    """``WHERE`` in pandas: SQL's three-valued logic, so a null quantity drops the row."""
    return ((df["status"] == "completed") & (df["quantity"] >= 2)).fillna(False).astype(bool)


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """The rows as Parquet with the catalog's types (timestamps in microseconds, as the sample data)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("order_id", pa.string()), ("order_date", pa.timestamp("us")), ("customer_id", pa.string()),
         ("region", pa.string()), ("quantity", pa.int64()), ("revenue", pa.float64()), ("status", pa.string()),
         ("is_new_customer", pa.bool_())]
    )  # fmt: skip
    pq.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False), path)
    return path


def expected(
    df: pd.DataFrame, where: bool = True, by: Sequence[str] = (), ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """What ``compute(metrics(...), grain="month", by=by)`` must give, computed with pandas.

    Every group of rows (month, and each ``by`` value) is in the data, so each has a row; the
    aggregates see only the rows passing ``WHERE`` (all rows when ``where`` is False).
    """
    keys = ["period_start", *by]
    frame = df.assign(period_start=df["order_date"].dt.to_period("M").dt.start_time)
    keep = passes_where(frame) if where else pd.Series(True, index=frame.index)
    out = []
    for key, group in frame.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows = group[keep.loc[group.index]]
        for mid, (_, agg) in AGGREGATES.items():
            if ids is not None and mid not in ids:
                continue
            out.append(
                {"metric": f"{mid}_filtered" if where else mid, **dict(zip(keys, key, strict=True)),
                 "value": float(agg(rows)), "numerator": np.nan, "denominator": np.nan}
            )  # fmt: skip
    result = pd.DataFrame(out)
    result["period_start"] = pd.to_datetime(result["period_start"])
    return result


def mismatches(want: pd.DataFrame, got: pd.DataFrame, by: Sequence[str] = ()) -> list[str]:
    """Rows on one side only, or values that differ (relative 1e-9; missing equals missing)."""
    keys = ["metric", "period_start", *by]
    m = want.merge(got, on=keys, how="outer", suffixes=("_want", "_got"), indicator=True)
    problems = []
    lonely = m[m["_merge"] != "both"]
    if len(lonely):
        problems.append(f"{len(lonely)} rows on one side only:\n{lonely[[*keys, '_merge']].head(10).to_string()}")
    m = m[m["_merge"] == "both"]
    for col in ("value", "numerator", "denominator"):
        x, y = m[f"{col}_want"].astype("float64"), m[f"{col}_got"].astype("float64")
        same = (x.isna() & y.isna()) | np.isclose(x, y, rtol=1e-9, atol=0)
        if not same.all():
            bad = m[~same][[*keys, f"{col}_want", f"{col}_got"]]
            problems.append(f"{col} differs for {sorted(set(bad['metric']))}:\n{bad.head(12).to_string()}")
    return problems
