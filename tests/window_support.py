"""Test support: orders over two years and windowed metrics computed by hand in pandas.

Each window is taken literally from its definition (the rows between its first day and the end of
the period), never through kpinb, so tests/test_windows.py (DuckDB) and tests/test_databases.py
(PostgreSQL, Spark) compare the engine with an independent answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpinb.definitions.model import Metric

METRICS = [
    Metric(id="rev_12m", name="Revenue, trailing 12 months", source="orders", expr="sum(revenue)", window="12 months"),
    Metric(id="buyers_3m", name="Buyers, trailing 3 months", source="orders", expr="count_distinct(customer_id)",
           window="3 months"),
    Metric(id="buyers_28d", name="Buyers, trailing 28 days", source="orders", expr="count_distinct(customer_id)",
           window="28 days"),
    Metric(id="orders_all", name="Orders to date", source="orders", expr="count(*)", cumulative=True),
    Metric(id="buyers_all", name="Buyers ever", source="orders", expr="count_distinct(customer_id)", window="all"),
    Metric(id="rev_ytd", name="Revenue, year to date", source="orders", expr="sum(revenue)", to_date="year"),
    Metric(id="aov_qtd", name="AOV, quarter to date", source="orders", expr="sum(revenue) / count(*)",
           to_date="quarter"),
    Metric(id="median_3m", name="Median order, trailing 3 months", source="orders", expr="median(revenue)",
           window="3 months"),
]  # fmt: skip


def orders(n: int = 6000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 731, n), unit="D")
    return pd.DataFrame({
        "order_date": (days + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")).astype("datetime64[us]"),
        "revenue": rng.integers(1, 500, n).astype("float64"),
        "customer_id": [f"c{i}" for i in rng.integers(0, 900, n)],
        "region": rng.choice(["North", "South"], n),
    })  # fmt: skip


def _bounds(p: pd.Timestamp, metric: Metric, fiscal_start: int = 1) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    hi = p + pd.DateOffset(months=1)  # monthly grain
    span = metric.span
    if span == "all":
        return None, hi
    if isinstance(span, str):
        coarse = span.split(":")[1]
        months = {"month": 1, "quarter": 3, "year": 12}[coarse]
        k = (p.month - fiscal_start) % months  # months since the coarse period began
        return p - pd.DateOffset(months=k), hi
    n, unit = span
    return hi - (pd.DateOffset(days=n) if unit == "day" else pd.DateOffset(months=n)), hi


def expected(df: pd.DataFrame, months: pd.DatetimeIndex, by: str | None = None, fiscal_start: int = 1) -> pd.Series:
    """metric, period_start[, by] -> value, for each month of ``months``."""
    rows = []
    for m in METRICS:
        for p in months:
            lo, hi = _bounds(p, m, fiscal_start)
            w = df[(df["order_date"] < hi) & ((df["order_date"] >= lo) if lo is not None else True)]
            for key, g in w.groupby(by) if by else [(None, w)]:
                value = {
                    "rev_12m": g["revenue"].sum(), "buyers_3m": g["customer_id"].nunique(),
                    "buyers_28d": g["customer_id"].nunique(), "orders_all": len(g),
                    "buyers_all": g["customer_id"].nunique(), "rev_ytd": g["revenue"].sum(),
                    "aov_qtd": g["revenue"].sum() / len(g), "median_3m": g["revenue"].median(),
                }[m.id]  # fmt: skip
                rows.append({"metric": m.id, "period_start": p, **({by: key} if by else {}), "value": float(value)})
    keys = ["metric", "period_start", *([by] if by else [])]
    return pd.DataFrame(rows).set_index(keys)["value"].sort_index()


def got(frame: pd.DataFrame, by: str | None = None) -> pd.Series:
    keys = ["metric", "period_start", *([by] if by else [])]
    frame = frame.dropna(subset=["value"]).assign(period_start=lambda f: pd.to_datetime(f["period_start"]))
    return frame.set_index(keys)["value"].sort_index()
