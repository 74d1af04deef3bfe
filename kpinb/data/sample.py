"""Deterministic generator of SYNTHETIC business data for every canonical source.

Everything here is invented by seeded random streams: no real company's data. The tables have
the exact columns and types of ``catalog/sources.yaml``, plausible value ranges, yearly and
weekly seasonality, and trends that differ by region and metric, so that against sensible
targets some KPIs improve over the years and others get worse:

- revenue grows about 20% a year overall, but Europe declines;
- subscription churn rises in the last year; support first-response time improves;
- web bounce rate worsens slightly; email open rate declines slowly;
- on-time delivery improves; employee turnover rises in Customer Support.

Tables are consistent with each other where it matters: ledger revenue and cost of goods sold
mirror completed orders, inventory cost of goods sold splits the orders' cost by SKU and
warehouse, the ledger's marketing and logistics costs include the marketing spend and the
shipping costs, and tickets, NPS answers and subscriptions belong to customers who order.

The same ``(rows, seed, start, years)`` gives byte-identical Parquet files (with the same numpy
and pyarrow versions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from kpinb._io import replaceable, write_atomic
from kpinb.errors import DataError, PlanError

ROW_GROUP_SIZE = 100_000
"""Rows per Parquet row group (DuckDB reads row groups in parallel)."""

_VERSION = 1  # bump when the generated data changes, so `ensure` regenerates old files
_SOURCES_YAML = Path(__file__).resolve().parents[1] / "definitions" / "catalog" / "sources.yaml"
_MANIFEST = "_sample_data.json"
_TYPES = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

Cols = dict[str, Any]
Rng = np.random.Generator

# --- shared dimensions ------------------------------------------------------------------------

REGIONS = ("North America", "Europe", "Asia Pacific", "Latin America")
_REGION_W = np.array([0.42, 0.30, 0.18, 0.10])
_REGION_GROWTH = np.array([1.19, 0.92, 1.35, 1.22])  # yearly factor on order volume
_NR = len(REGIONS)

# category: (code, cost ratio, return rate, order share, {product: list price})
_CATALOG: dict[str, tuple[str, float, float, float, dict[str, float]]] = {
    "Electronics": ("ELE", 0.62, 0.05, 0.20, {
        "Laptop": 1150, "Smartphone": 780, "Tablet": 420, "Headphones": 140, "Smartwatch": 290}),
    "Home & Kitchen": ("HOM", 0.50, 0.03, 0.20, {
        "Coffee Maker": 95, "Blender": 70, "Cookware Set": 160, "Vacuum Cleaner": 260,
        "Air Purifier": 210}),
    "Apparel": ("APP", 0.40, 0.09, 0.28, {
        "T-Shirt": 24, "Jeans": 65, "Jacket": 140, "Sneakers": 95, "Dress": 80}),
    "Sports & Outdoors": ("SPO", 0.48, 0.04, 0.16, {
        "Yoga Mat": 35, "Dumbbell Set": 120, "Tent": 230, "Bicycle": 640, "Running Shoes": 115}),
    "Beauty": ("BEA", 0.35, 0.02, 0.16, {
        "Skincare Set": 55, "Perfume": 85, "Hair Dryer": 75, "Makeup Kit": 45,
        "Electric Shaver": 70}),
}
_CATS = tuple(_CATALOG)
_PRODUCTS = tuple(p for c in _CATS for p in _CATALOG[c][4])
_PROD_CAT = np.array([i for i, c in enumerate(_CATS) for _ in _CATALOG[c][4]])
_PROD_PRICE = np.array([v for c in _CATS for v in _CATALOG[c][4].values()], dtype=float)
_CAT_COST = np.array([_CATALOG[c][1] for c in _CATS])
_CAT_RETURN = np.array([_CATALOG[c][2] for c in _CATS])
_PROD_P = _PROD_PRICE**-0.5  # cheaper products sell more often within their category
_PROD_P = _PROD_P / np.bincount(_PROD_CAT, _PROD_P)[_PROD_CAT]
_PROD_P = _PROD_P * np.array([_CATALOG[c][3] for c in _CATS])[_PROD_CAT]
_PROD_QTY = np.clip(0.9 * (40 / _PROD_PRICE) ** 0.5, 0.04, 1.2)  # extra units per line (Poisson)

_WAREHOUSES = ("Reno", "Memphis", "Rotterdam", "Singapore", "Sao Paulo")
_WH_REGION = np.array([0, 0, 1, 2, 3])
_WH_SHARE = np.array([0.55, 0.45, 1.0, 1.0, 1.0])  # of the region's volume
_CARRIERS = ("UPS", "FedEx", "USPS", "DHL", "DPD", "GLS", "SF Express", "Aramex", "Correios")
_REGION_CARRIERS = np.array([[0, 1, 2], [3, 4, 5], [3, 6, 7], [8, 3, 1]])  # region x rank

_SEASON_RETAIL = np.array([0.85, 0.80, 0.92, 0.93, 0.97, 0.95, 0.93, 0.97, 0.98, 1.05, 1.32, 1.45])
_SEASON_WEB = np.array([0.95, 0.90, 0.97, 0.96, 0.98, 0.94, 0.92, 0.95, 1.0, 1.04, 1.20, 1.25])
_SEASON_B2B = np.array([0.95, 1.0, 1.08, 1.02, 1.0, 0.97, 0.85, 0.82, 1.05, 1.1, 1.08, 0.8])
_DOW_RETAIL = np.array([1.0, 0.98, 0.98, 1.0, 1.06, 1.12, 0.95])  # Monday .. Sunday
_DOW_WEB = np.array([1.05, 1.04, 1.03, 1.0, 0.95, 0.9, 1.0])
_DOW_WORK = np.array([1.0, 1.05, 1.05, 1.0, 0.9, 0.1, 0.06])
_HOURS_B2C = np.array([1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.8, 3.2, 3.4,
                       3.6, 3.4, 3.3, 3.3, 3.4, 3.6, 4.0, 4.4, 4.6, 4.2, 3.2, 2.0])
_HOURS_WORK = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 3.5, 4.5, 4.6, 4.2,
                        3.5, 4.2, 4.4, 4.2, 3.6, 2.4, 1.2, 0.7, 0.5, 0.4, 0.3, 0.2])

_SALES_TEAMS = ("SMB", "Mid-Market", "Enterprise")
_REPS_PER_TEAM = np.array([[6, 4, 3], [5, 3, 2], [3, 2, 2], [3, 2, 1]])  # region x team
_FIRST = ("Alex", "Maria", "James", "Sofia", "Liam", "Emma", "Noah", "Olivia", "Lucas", "Ava",
          "Mateo", "Mia", "Ethan", "Chloe", "Daniel", "Grace", "Hiro", "Yuki", "Arjun", "Priya",
          "Wei", "Mei", "Diego", "Camila", "Jonas", "Lena", "Pierre", "Amelie", "Omar", "Leila")
_LAST = ("Smith", "Garcia", "Mueller", "Rossi", "Tanaka", "Chen", "Patel", "Silva", "Martin",
         "Novak", "Kowalski", "Johnson", "Brown", "Lopez", "Schmidt", "Dubois", "Kim", "Nguyen",
         "Santos", "Fischer", "Costa", "Ito", "Singh", "Walker", "Moreau", "Berg", "Lee",
         "Rivera", "Hughes", "Kumar")

_DEPTS = ("Engineering", "Sales", "Customer Support", "Operations", "Marketing", "Finance",
          "People")
_SUPPORT = 2
_DEPT_P = np.array([0.25, 0.20, 0.18, 0.15, 0.10, 0.06, 0.06])
_DEPT_TURNOVER = np.array([0.12, 0.18, 0.20, 0.14, 0.13, 0.08, 0.10])  # yearly, at the start
_DEPT_ENGAGEMENT = np.array([3.0, 0.0, -2.0, -1.0, 2.0, 1.0, 4.0])
_DEPT_FILL_DAYS = np.array([48.0, 34.0, 24.0, 30.0, 36.0, 42.0, 38.0])
_DEPT_APPLICANTS = np.array([60.0, 45.0, 90.0, 50.0, 70.0, 40.0, 55.0])
_LEVELS = ("junior", "mid", "senior", "manager")


# --- plumbing ---------------------------------------------------------------------------------


class _Calendar:
    """Days, months and years-since-start of the generated period ``[start, end)``."""

    def __init__(self, start: str, years: int) -> None:
        first = date.fromisoformat(start)
        try:
            last = first.replace(year=first.year + years)
        except ValueError:  # 29 February
            last = first.replace(year=first.year + years, day=28)
        self.start = np.datetime64(first, "D")
        self.end = np.datetime64(last, "D")
        self.days = np.arange(self.start, self.end)
        self.n = len(self.days)
        self.t = np.arange(self.n) / 365.25
        self.dow = (self.days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        months = self.days.astype("datetime64[M]")
        self.moy = months.astype(np.int64) % 12 + 1
        self.month = (months - months[0]).astype(np.int64)
        self.n_months = int(self.month[-1]) + 1
        self.bounds = np.searchsorted(self.month, np.arange(self.n_months + 1))
        self.snapshots = self.days[self.bounds[:-1]]  # first day of each month in the period
        self.month_t = self.t[self.bounds[:-1]]
        self.month_moy = self.moy[self.bounds[:-1]]
        self.years = years


@dataclass
class _Ctx:
    """What generators share: the calendar, the size and aggregates of earlier tables."""

    cal: _Calendar
    rows: int
    scale: float
    reps: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False)  # name, region, team
    rev_day: np.ndarray = field(init=False)  # completed order revenue, region x day
    cost_day: np.ndarray = field(init=False)
    prod_cost: np.ndarray = field(init=False)  # completed order cost, region x product x month
    customers: np.ndarray = field(init=False)  # customers known at each month end, region x month
    mkt_month: np.ndarray = field(init=False)  # marketing spend, region x month
    ship_month: np.ndarray = field(init=False)  # shipping cost, region x month
    hires: tuple[np.ndarray, ...] = field(init=False)  # dept, region, hire day
    social: tuple[np.ndarray, ...] = field(init=False)  # followers, new, lost: platform x day

    def __post_init__(self) -> None:
        cal = self.cal
        self.rev_day = np.zeros((_NR, cal.n))
        self.cost_day = np.zeros((_NR, cal.n))
        self.prod_cost = np.zeros((_NR, len(_PRODUCTS), cal.n_months))
        self.customers = np.zeros((_NR, cal.n_months), dtype=np.int64)
        self.mkt_month = np.zeros((_NR, cal.n_months))
        self.ship_month = np.zeros((_NR, cal.n_months))

    def rev_month(self) -> np.ndarray:
        """Completed order revenue, region x month."""
        return np.stack([np.bincount(self.cal.month, r, self.cal.n_months) for r in self.rev_day])


def _choice(rng: Rng, n: int, p: np.ndarray | list[float]) -> np.ndarray:
    """``n`` category indices drawn with weights ``p`` (vectorised)."""
    cum = np.cumsum(p, dtype=float)
    idx = np.searchsorted(cum / cum[-1], rng.random(n), side="right")
    return np.minimum(idx, len(cum) - 1)


def _choice_rows(rng: Rng, p: np.ndarray) -> np.ndarray:
    """One category index per row of the weight matrix ``p`` (rows x categories)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cum[:, -1:]
    return np.minimum((u >= cum).sum(axis=1), p.shape[1] - 1)


def _lognormal(rng: Rng, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _cells(counts: np.ndarray, d0: int = 0, d1: int | None = None) -> tuple[np.ndarray, ...]:
    """Row and day index of each event from per-(row, day) counts, for days ``d0:d1``."""
    c = counts[:, d0:d1]
    r, d = np.indices(c.shape)
    flat = c.ravel()
    return np.repeat(r.ravel(), flat), np.repeat(d.ravel() + d0, flat)


def _spread(rng: Rng, total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` events over the cells of ``weights`` (multinomial, same shape)."""
    p = weights.ravel() / weights.sum()
    return rng.multinomial(total, p).reshape(weights.shape)


def _times(rng: Rng, cal: _Calendar, day: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """A timestamp (whole seconds) within each day index, hours weighted by ``hours``."""
    n = len(day)
    secs = _choice(rng, n, hours) * 3600 + rng.integers(0, 3600, n)
    return cal.days[day].astype("datetime64[us]") + (secs * 1_000_000).astype("timedelta64[us]")


def _events(
    rng: Rng, cal: _Calendar, counts: np.ndarray, hours: np.ndarray, d0: int = 0,
    d1: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index, day index and timestamp of the events in ``counts``, in time order."""
    row, day = _cells(counts, d0, d1)
    ts = _times(rng, cal, day, hours)
    order = np.argsort(ts, kind="stable")
    return row[order], day[order], ts[order]


def _monthly(
    rng: Rng, cal: _Calendar, counts: np.ndarray, hours: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per month (bounded memory): row index, day index, timestamp and 1-based sequence number
    of the events in ``counts`` (rows x days), in time order."""
    first = 1
    for m in range(cal.n_months):
        row, day, ts = _events(rng, cal, counts, hours, *cal.bounds[m : m + 2])
        yield row, day, ts, np.arange(first, first + len(ts))
        first += len(ts)


def _ids(prefix: str, nums: np.ndarray, width: int) -> pa.Array:
    """Identifiers like ``ORD-00000042`` from integers (vectorised in Arrow)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(nums, pa.int64()), pa.string()), width=width,
                          padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _take(names: tuple[str, ...] | list[str] | np.ndarray, idx: np.ndarray) -> pa.Array:
    """Strings ``names[idx]`` as an Arrow array (vectorised)."""
    return pa.array(list(names), pa.string()).take(pa.array(idx, pa.int64()))


def _customer_ids(local: np.ndarray, region: np.ndarray) -> pa.Array:
    return _ids("C", local * _NR + region + 1, 8)


def _pick_customers(rng: Rng, ctx: _Ctx, region: np.ndarray, month: np.ndarray) -> pa.Array:
    """Customers that exist (have ordered) by the end of ``month`` in ``region``."""
    known = np.maximum(ctx.customers[region, month], 1)
    return _customer_ids((rng.random(len(region)) * known).astype(np.int64), region)


def _schemas() -> dict[str, pa.Schema]:
    spec = yaml.safe_load(_SOURCES_YAML.read_text(encoding="utf-8"))
    return {
        name: pa.schema([(col, _TYPES[typ]) for col, typ in src["columns"].items()])
        for name, src in spec.items()
    }


def _table(name: str, schema: pa.Schema, cols: Cols) -> pa.Table:
    """Arrow table with exactly the catalog's columns and types (NaN / NaT become null)."""
    if set(cols) != set(schema.names):
        missing = sorted(set(schema.names) - set(cols))
        extra = sorted(set(cols) - set(schema.names))
        raise PlanError(
            f"sample data for source {name!r} does not match catalog/sources.yaml "
            f"(missing {missing}, extra {extra}). Update kpinb/sample_data.py to the catalog."
        )
    arrays = []
    for f in schema:
        v = cols[f.name]
        if isinstance(v, tuple):  # (values, null mask)
            arrays.append(pa.array(v[0], f.type, mask=v[1]))
        elif isinstance(v, pa.Array | pa.ChunkedArray):
            arrays.append(v if v.type == f.type else v.cast(f.type))
        else:
            arrays.append(pa.array(v, f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


class _Sink:
    """Parquet writer that buffers chunks and writes row groups of exactly ``row_group`` rows."""

    def __init__(self, path: Path, schema: pa.Schema, row_group: int) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.rg = row_group
        self.buf: list[pa.Table] = []
        self.n = 0
        self.tmp.unlink(missing_ok=True)  # a link left there would make the writer follow it
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        self.buf.append(table)
        self.n += table.num_rows
        if self.n >= self.rg:
            whole = pa.concat_tables(self.buf)
            k = self.n // self.rg * self.rg
            self.writer.write_table(whole.slice(0, k), row_group_size=self.rg)
            self.buf, self.n = [whole.slice(k)], self.n - k

    def close(self) -> None:
        if self.n:
            self.writer.write_table(pa.concat_tables(self.buf), row_group_size=self.rg)
        self.writer.close()
        os.replace(self.tmp, replaceable(self.path))

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


# --- sales and customers ----------------------------------------------------------------------


def _orders(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * _REGION_GROWTH[:, None] ** cal.t
         * _SEASON_RETAIL[cal.moy - 1] * _DOW_RETAIL[cal.dow])
    counts = _spread(rng, max(1, round(ctx.rows / 1.36)), w)
    n_cust = np.zeros(_NR, dtype=np.int64)
    for m, (region, day, ts, oid) in enumerate(_monthly(rng, cal, counts, _HOURS_B2C)):
        n, t = len(ts), cal.month_t[m]
        # customers: new ones get the next id of their region; the others are earlier customers
        known = n_cust[region]
        is_new = (rng.random(n) < 0.30 + 0.6 * np.exp(-m / 4)) | (known == 0)
        u = rng.random(n)
        local = (known * np.where(rng.random(n) < 0.5, u**2, u)).astype(np.int64)
        for r in range(_NR):
            sel = np.flatnonzero(is_new & (region == r))
            local[sel] = n_cust[r] + np.arange(len(sel))
            n_cust[r] += len(sel)
        ctx.customers[:, m] = n_cust
        channel = _choice(rng, n, [0.48 + 0.03 * t, 0.27 - 0.02 * t, 0.15 - 0.01 * t, 0.10])
        cancelled = rng.random(n) < 0.025
        lines = 1 + np.minimum(rng.poisson(0.36, n), 4)
        line = np.repeat(np.arange(n), lines)  # order of each line
        nl = len(line)
        prod = _choice(rng, nl, _PROD_P)
        cat = _PROD_CAT[prod]
        qty = 1 + rng.poisson(_PROD_QTY[prod])
        list_price = _PROD_PRICE[prod] * 1.03 ** cal.t[day[line]]
        disc_p = [0.55, 0.2, 0.15, 0.1] if cal.month_moy[m] in (11, 12) else [0.7, 0.15, 0.1, 0.05]
        discount = np.array([0.0, 0.05, 0.10, 0.20])[_choice(rng, nl, disc_p)]
        chan = channel[line]
        unit = list_price * (1 + 0.02 * rng.standard_normal(nl)) * (1 - discount)
        revenue = np.round(qty * unit * np.where(chan == 2, 0.85, 1.0), 2)
        cost = np.round(qty * list_price * _CAT_COST[cat] * (1 + 0.01 * rng.standard_normal(nl)), 2)
        returned = rng.random(nl) < _CAT_RETURN[cat]
        status = np.where(cancelled[line], 2, np.where(returned, 1, 0))
        reg, dl, done = region[line], day[line], status == 0
        key = reg[done] * cal.n + dl[done]
        ctx.rev_day += np.bincount(key, revenue[done], _NR * cal.n).reshape(_NR, cal.n)
        ctx.cost_day += np.bincount(key, cost[done], _NR * cal.n).reshape(_NR, cal.n)
        pk = reg[done] * len(_PRODUCTS) + prod[done]
        ctx.prod_cost[:, :, m] = np.bincount(pk, cost[done], _NR * len(_PRODUCTS)).reshape(_NR, -1)
        yield {
            "order_id": _ids("ORD-", oid[line], 8),
            "order_date": ts[line],
            "customer_id": _customer_ids(local[line], reg),
            "region": _take(REGIONS, reg),
            "channel": _take(("online", "retail", "partner", "direct sales"), chan),
            "product_category": _take(_CATS, cat),
            "product": _take(_PRODUCTS, prod),
            "quantity": qty,
            "revenue": revenue,
            "cost": cost,
            "is_new_customer": is_new[line],
            "status": _take(("completed", "returned", "cancelled"), status),
        }


def _subscriptions(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    n0 = max(40, round(1500 * ctx.scale))
    new = rng.poisson(n0 * 0.036 * 1.12**cal.month_t * _SEASON_B2B[cal.month_moy - 1])
    first = np.concatenate([np.full(n0, -1), np.repeat(np.arange(cal.n_months), new)])
    cap = len(first)
    region = _choice(rng, cap, _REGION_W)
    plan = _choice(rng, cap, [0.55, 0.35, 0.10])
    mrr = np.select(
        [plan == 0, plan == 1],
        [np.array([29.0, 49.0, 79.0])[_choice(rng, cap, [0.3, 0.5, 0.2])],
         149.0 * (1 + rng.poisson(0.6, cap))],
        np.round(_lognormal(rng, 900.0, 0.5, cap), -1),
    )
    known = np.maximum(ctx.customers[region, np.maximum(first, 0)], 1)
    customer = _customer_ids((rng.random(cap) * known).astype(np.int64), region)
    hazard = np.array([0.028, 0.018, 0.008])[plan] * np.array([1.0, 1.15, 0.9, 1.2])[region]
    active = first < 0
    for m in range(cal.n_months):
        active[first == m] = True
        idx = np.flatnonzero(active)
        is_new = first[idx] == m
        up = ~is_new & (rng.random(len(idx)) < 0.012)
        mrr[idx[up]] = np.round(mrr[idx[up]] * np.where(rng.random(up.sum()) < 0.7, 1.2, 1.5))
        last_year = np.clip((cal.month_t[m] - (cal.years - 1.25)) / 0.5, 0, 1)
        churned = ~is_new & (rng.random(len(idx)) < hazard[idx] * (1 + 0.35 * last_year))
        yield {
            "snapshot_date": np.full(len(idx), cal.snapshots[m]),
            "subscription_id": _ids("SUB-", idx + 1, 6),
            "customer_id": customer.take(pa.array(idx)),
            "region": _take(REGIONS, region[idx]),
            "plan": _take(("basic", "pro", "enterprise"), plan[idx]),
            "mrr": mrr[idx],
            "is_new": is_new,
            "churned": churned,
        }
        active[idx[churned]] = False


def _rep_choice(rng: Rng, ctx: _Ctx, region: np.ndarray, team: np.ndarray) -> np.ndarray:
    """A rep of the given region and team for each row (index into the roster)."""
    _, r_region, r_team = ctx.reps
    out = np.zeros(len(region), dtype=np.int64)
    for r in range(_NR):
        for k in range(len(_SALES_TEAMS)):
            sel = np.flatnonzero((region == r) & (team == k))
            pool = np.flatnonzero((r_region == r) & (r_team == k))
            out[sel] = pool[rng.integers(0, len(pool), len(sel))]
    return out


def _opportunities(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * np.array([1.15, 0.97, 1.3, 1.2])[:, None] ** cal.t
         * _SEASON_B2B[cal.moy - 1] * _DOW_WORK[cal.dow])
    counts = _spread(rng, max(300, round(30_000 * ctx.scale)), w)
    for region, day, ts, seq in _monthly(rng, cal, counts, _HOURS_WORK):
        n, t = len(ts), cal.t[day]
        channel = _choice(rng, n, [0.40, 0.25, 0.12, 0.13, 0.10])
        team = _choice(rng, n, [0.55, 0.30, 0.15])
        rep = _rep_choice(rng, ctx, region, team)
        p_qual = np.array([0.35, 0.22, 0.55, 0.45, 0.28])[channel] * (1 + 0.06 * t)
        qualified = rng.random(n) < p_qual
        demo = rng.random(n) < np.where(qualified, 0.72, 0.03)
        p_win = np.where(demo, 0.40, 0.10) * np.array([1.0, 0.9, 0.75])[team]
        won = qualified & (rng.random(n) < p_win)
        cycle = np.where(qualified, _lognormal(rng, np.array([18.0, 40.0, 85.0])[team], 0.5, n),
                         1 + rng.exponential(6.0, n))
        closed = ts.astype("datetime64[D]") + np.round(cycle).astype(np.int64).astype("m8[D]")
        is_open = closed >= cal.end
        won &= ~is_open
        value = _lognormal(rng, np.array([7500.0, 32000.0, 140000.0])[team], 0.6, n)
        value = np.round(value * np.array([1.0, 0.95, 0.85, 0.7])[region], -2)
        yield {
            "lead_id": _ids("LEAD-", seq, 6),
            "created_date": ts,
            "region": _take(REGIONS, region),
            "channel": _take(("inbound", "outbound", "referral", "partner", "events"), channel),
            "team": _take(_SALES_TEAMS, team),
            "rep": _take(ctx.reps[0], rep),
            "is_qualified": qualified,
            "demo_scheduled": demo,
            "is_won": won,
            "closed_date": (closed, is_open),
            "deal_value": (value, ~won),
        }


_ACTIVITY_P = np.array([[0.48, 0.32, 0.12, 0.08], [0.42, 0.30, 0.17, 0.11],
                        [0.30, 0.30, 0.25, 0.15]])  # team x call, email, meeting, demo


def _sales_activities(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    names, r_region, r_team = ctx.reps
    level = _lognormal(rng, 1.0, 0.35, len(names))  # how much each rep logs
    w = level[:, None] * 1.1 ** cal.t * _SEASON_B2B[cal.moy - 1] * _DOW_WORK[cal.dow]
    counts = _spread(rng, max(500, round(100_000 * ctx.scale)), w)
    for rep, day, _, seq in _monthly(rng, cal, counts, _HOURS_WORK):
        n, team = len(rep), r_team[rep]
        kind = _choice_rows(rng, _ACTIVITY_P[team])
        minutes = _lognormal(rng, np.array([7.0, 4.0, 35.0, 50.0])[kind], 0.5, n)
        yield {
            "activity_id": _ids("ACT-", seq, 7),
            "activity_date": cal.days[day],
            "rep": _take(names, rep),
            "team": _take(_SALES_TEAMS, team),
            "region": _take(REGIONS, r_region[rep]),
            "activity_type": _take(("call", "email", "meeting", "demo"), kind),
            "duration_minutes": np.round(np.maximum(minutes, 0.5), 1),
        }


# --- marketing --------------------------------------------------------------------------------


def _web_sessions(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * np.array([1.15, 1.0, 1.3, 1.2])[:, None] ** cal.t
         * _SEASON_WEB[cal.moy - 1] * _DOW_WEB[cal.dow])
    counts = _spread(rng, max(1, round(ctx.rows * 1.5)), w)
    n_vis = np.zeros(_NR, dtype=np.int64)
    for m, (region, _, ts, seq) in enumerate(_monthly(rng, cal, counts, _HOURS_B2C)):
        n, t = len(ts), cal.month_t[m]
        known = n_vis[region]
        is_new = (rng.random(n) < 0.42 + 0.45 * np.exp(-m / 3)) | (known == 0)
        local = (known * rng.random(n) ** 1.5).astype(np.int64)
        for r in range(_NR):
            sel = np.flatnonzero(is_new & (region == r))
            local[sel] = n_vis[r] + np.arange(len(sel))
            n_vis[r] += len(sel)
        channel = _choice(rng, n, [0.35, 0.20 + 0.02 * t, 0.12, 0.08, 0.18, 0.07])
        device = _choice(rng, n, [0.50 - 0.04 * t, 0.42 + 0.04 * t, 0.08])
        p_bounce = (0.40 + 0.02 * t + np.array([0.0, 0.08, 0.12, -0.06, -0.04, -0.02])[channel]
                    + np.array([-0.04, 0.05, 0.0])[device])
        bounced = rng.random(n) < p_bounce
        p_conv = (0.045 * np.array([1.0, 1.2, 0.6, 1.8, 1.4, 1.1])[channel]
                  * np.array([1.2, 0.8, 0.9])[device])
        converted = ~bounced & (rng.random(n) < p_conv)
        pages = np.where(bounced, 1, 2 + rng.poisson(2.5 + 2 * converted))
        secs = np.where(bounced, rng.exponential(8.0, n),
                        _lognormal(rng, 60.0 * pages, 0.6, n) * (1 + converted))
        yield {
            "session_id": _ids("S-", seq, 9),
            "session_start": ts,
            "visitor_id": _ids("V", local * _NR + region + 1, 9),
            "region": _take(REGIONS, region),
            "channel": _take(("organic", "paid", "social", "email", "direct", "referral"),
                             channel),
            "device": _take(("desktop", "mobile", "tablet"), device),
            "is_new_visitor": is_new,
            "pageviews": pages,
            "duration_seconds": np.round(secs, 1),
            "bounced": bounced,
            "converted": converted,
        }


_PROMO_THEMES = ("New Year Sale", "Valentine's Picks", "Spring Sale", "Easter Deals",
                 "Mother's Day", "Summer Kickoff", "Midsummer Sale", "Back to School",
                 "Autumn Edit", "Halloween Deals", "Black Friday", "Holiday Gifts")
# type: (segments, base open rate, click-to-open rate); segments: (name, list size, open uplift)
_EMAIL_TYPES: dict[str, tuple[tuple[tuple[str, float, float], ...], float, float]] = {
    "newsletter": ((("prospects", 40_000, -0.03), ("active_customers", 25_000, 0.03)), 0.26, 0.10),
    "promotion": ((("active_customers", 25_000, 0.0), ("vip", 3_000, 0.08),
                   ("prospects", 40_000, -0.04)), 0.23, 0.15),
    "onboarding": ((("new_signups", 1_500, 0.0),), 0.38, 0.18),
    "winback": ((("lapsed_customers", 15_000, 0.0),), 0.15, 0.08),
}


def _email_campaigns(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    sends = [(i, f"Newsletter {cal.days[i]}", "newsletter") for i in np.flatnonzero(cal.dow == 1)]
    sends += [(i, "Onboarding Series", "onboarding") for i in np.flatnonzero(cal.dow == 0)]
    for m in range(cal.n_months):  # two promotions (Thursdays) and one winback (Wednesday)
        month = np.arange(cal.bounds[m], cal.bounds[m + 1])
        label, theme = str(cal.snapshots[m])[:7], _PROMO_THEMES[cal.month_moy[m] - 1]
        for k, d in enumerate(month[cal.dow[month] == 3][::2][:2]):
            sends.append((d, f"{theme} {label[:4]}" + (" #2" if k else ""), "promotion"))
        sends += [(d, f"Winback {label}", "winback") for d in month[cal.dow[month] == 2][:1]]
    rows = [(d, name, typ, seg, size * _REGION_W[r] * _NR, up, r)
            for d, name, typ in sends for seg, size, up in _EMAIL_TYPES[typ][0]
            for r in range(_NR)]
    day, camp, typ, seg, size, up, region = (np.array(c) for c in zip(*rows, strict=True))
    n, t = len(day), cal.t[day]
    base = np.array([_EMAIL_TYPES[k][1] for k in typ])
    ctor = np.array([_EMAIL_TYPES[k][2] for k in typ])
    sent = rng.poisson(size * 1.12**t * _lognormal(rng, 1.0, 0.05, n))
    bounces = rng.binomial(sent, np.where(seg == "lapsed_customers", 0.03, 0.009))
    delivered = sent - bounces
    p_open = np.clip((base + up) * (1 - 0.06 * t) * _lognormal(rng, 1.0, 0.1, n), 0.02, 0.9)
    opens = rng.binomial(delivered, p_open)
    clicks = rng.binomial(opens, np.clip(_lognormal(rng, ctor, 0.2, n), 0, 1))
    unsubs = rng.binomial(opens, np.where(typ == "promotion", 0.012, 0.007))
    minute = np.array([9 * 60, 10 * 60 + 30, 8 * 60, 10 * 60 + 15])[region]  # local send time
    ts = cal.days[day].astype("datetime64[us]") + (minute * 60_000_000).astype("m8[us]")
    o = np.lexsort((region, ts))
    yield {
        "send_id": _ids("SEND-", np.arange(1, n + 1), 6),
        "sent_at": ts[o],
        "campaign": camp[o],
        "campaign_type": typ[o],
        "segment": seg[o],
        "region": _take(REGIONS, region[o]),
        "sent": sent[o],
        "delivered": delivered[o],
        "unique_opens": opens[o],
        "unique_clicks": clicks[o],
        "unsubscribes": unsubs[o],
        "bounces": bounces[o],
    }


_PLATFORMS = ("linkedin", "instagram", "x", "facebook", "tiktok")
_FOLLOWERS0 = np.array([12_000.0, 28_000.0, 21_000.0, 35_000.0, 4_000.0])
_NEW_PER_DAY = np.array([30.0, 45.0, 14.0, 26.0, 22.0])
_NEW_GROWTH = np.array([1.25, 1.08, 0.80, 0.92, 1.9])
_LOST_RATE = np.array([0.0006, 0.0010, 0.0012, 0.0008, 0.0014])  # of followers per day


def _social_followers(cal: _Calendar, rng: Rng) -> tuple[np.ndarray, ...]:
    """Followers (start of day), new and lost per platform x day."""
    lam_new = (_NEW_PER_DAY[:, None] * _NEW_GROWTH[:, None] ** cal.t
               * np.array([1.05, 1.05, 1.0, 1.0, 1.0, 0.9, 0.9])[cal.dow])
    approx = _FOLLOWERS0[:, None] + np.cumsum(lam_new, axis=1)
    approx -= np.cumsum(_LOST_RATE[:, None] * approx, axis=1)
    new = rng.poisson(lam_new)
    lost = rng.poisson(_LOST_RATE[:, None] * np.maximum(approx, 0))
    followers = _FOLLOWERS0[:, None].astype(np.int64) + np.cumsum(new - lost, axis=1) - (new - lost)
    return followers, new, lost


def _social_accounts(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    followers, new, lost = ctx.social
    day, plat = np.divmod(np.arange(cal.n * len(_PLATFORMS)), len(_PLATFORMS))
    yield {
        "snapshot_date": cal.days[day],
        "platform": _take(_PLATFORMS, plat),
        "followers": followers[plat, day],
        "new_followers": new[plat, day],
        "lost_followers": lost[plat, day],
    }


def _social_posts(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    followers = ctx.social[0]
    per_week = np.array([4.0, 5.0, 9.0, 3.0, 4.0])
    counts = rng.poisson(per_week[:, None] / 7 * 1.15 * _DOW_WORK[cal.dow])
    plat, day, ts = _events(rng, cal, counts, _HOURS_WORK)
    n, t = len(ts), cal.t[day]
    p_type = np.array([[0.30, 0.15, 0.30, 0.25], [0.60, 0.40, 0.0, 0.0], [0.25, 0.10, 0.45, 0.20],
                       [0.45, 0.25, 0.10, 0.20], [0.0, 1.0, 0.0, 0.0]])
    kind = _choice_rows(rng, p_type[plat])
    reach_f = np.array([0.25, 0.30, 0.15, 0.10, 0.9])[plat] * np.array([1.0, 1.6, 0.7, 0.8])[kind]
    impressions = np.round(followers[plat, day] * reach_f * np.exp(0.7 * rng.standard_normal(n)))
    reach = np.round(impressions * rng.uniform(0.55, 0.9, n)).astype(np.int64)
    like = (np.array([0.018, 0.028, 0.006, 0.008, 0.035])[plat]
            * np.array([1.0, 0.94, 1.0, 0.93, 1.06])[plat] ** t)
    link = np.where(kind == 3, 2.5, 1.0)
    yield {
        "post_id": _ids("POST-", np.arange(1, n + 1), 5),
        "posted_at": ts,
        "platform": _take(_PLATFORMS, plat),
        "post_type": _take(("image", "video", "text", "link"), kind),
        "impressions": impressions.astype(np.int64),
        "reach": reach,
        "likes": rng.binomial(reach, like),
        "shares": rng.binomial(reach, like * 0.12),
        "comments": rng.binomial(reach, like * 0.06),
        "clicks": rng.binomial(impressions.astype(np.int64),
                               np.array([0.010, 0.003, 0.007, 0.008, 0.002])[plat] * link),
    }


# channel, campaign, budget share, CPM, CTR, ROAS, yearly ROAS trend
_CAMPAIGNS = (
    ("paid_search", "Search - Brand", 0.12, 45.0, 0.060, 4.6, 1.0),
    ("paid_search", "Search - Generic", 0.22, 40.0, 0.032, 3.0, 0.97),
    ("paid_social", "Social - Prospecting", 0.15, 9.0, 0.011, 2.4, 0.88),
    ("paid_social", "Social - Retargeting", 0.10, 12.0, 0.016, 3.6, 0.95),
    ("display", "Display - Awareness", 0.12, 3.5, 0.006, 1.7, 1.0),
    ("email", "Email - Lifecycle", 0.03, 1.5, 0.025, 4.5, 1.0),
    ("events", "Trade Shows", 0.16, 250.0, 0.040, 2.0, 1.05),
    ("affiliates", "Affiliate Partners", 0.10, 7.0, 0.015, 3.0, 1.0),
)


def _marketing_spend(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    nc = len(_CAMPAIGNS)
    share, cpm, ctr, roas, trend = (np.array([c[i] for c in _CAMPAIGNS]) for i in range(2, 7))
    day, region, camp = (a.ravel() for a in np.indices((cal.n, _NR, nc)))
    n = len(day)
    w = _lognormal(rng, 1.0, 0.3, n) * np.where(cal.dow[day] >= 5, 0.75, 1.0)
    events = camp == 6
    w[events] *= (rng.random(events.sum()) < 0.08) & (cal.dow[day[events]] < 5)
    month = cal.month[day]
    key = (camp * _NR + region) * cal.n_months + month
    budget = 0.07 * ctx.rev_month()
    spend = np.round(budget[region, month] * share[camp] * w
                     / np.bincount(key, w, nc * _NR * cal.n_months)[key].clip(1e-9), 2)
    keep = spend > 0
    day, region, camp, month, spend = day[keep], region[keep], camp[keep], month[keep], spend[keep]
    n, t = len(day), cal.t[day]
    ctx.mkt_month = np.bincount(region * cal.n_months + month, spend,
                                _NR * cal.n_months).reshape(_NR, -1)
    impressions = rng.poisson(spend / cpm[camp] * 1000 * _lognormal(rng, 1.0, 0.1, n))
    ctr_t = ctr[camp] * np.where(camp == 2, 0.92**t, 1.0) * _lognormal(rng, 1.0, 0.1, n)
    yield {
        "spend_date": cal.days[day],
        "region": _take(REGIONS, region),
        "channel": _take([c[0] for c in _CAMPAIGNS], camp),
        "campaign": _take([c[1] for c in _CAMPAIGNS], camp),
        "spend": spend,
        "impressions": impressions,
        "clicks": rng.binomial(impressions, np.minimum(ctr_t, 1.0)),
        "attributed_revenue": np.round(
            spend * roas[camp] * trend[camp] ** t * _lognormal(rng, 1.0, 0.35, n), 2),
    }


# --- customer service -------------------------------------------------------------------------


def _support_tickets(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * _REGION_GROWTH[:, None] ** (0.6 * cal.t)
         * _SEASON_RETAIL[cal.moy - 1] ** 0.7 * np.array([1.1, 1.05, 1.0, 1.0, 0.95, 0.5, 0.4])
         [cal.dow])
    counts = _spread(rng, max(500, round(40_000 * ctx.scale)), w)
    for region, day, ts, seq in _monthly(rng, cal, counts, _HOURS_WORK * 0.6 + _HOURS_B2C * 0.4):
        n, t = len(ts), cal.t[day]
        channel = _choice_rows(rng, np.column_stack([0.50 - 0.05 * t, 0.30 + 0.05 * t,
                                                     np.full(n, 0.20)]))
        team = _choice(rng, n, [0.42, 0.20, 0.26, 0.12])
        prio = _choice(rng, n, [0.25, 0.50, 0.18, 0.07])
        first = (np.array([240.0, 1.5, 1.0])[channel] * np.array([1.3, 1.0, 0.6, 0.35])[prio]
                 * 0.78**t * np.exp(0.7 * rng.standard_normal(n)))
        avg = first * _lognormal(rng, 0.9, 0.35, n)
        res_h = (np.array([18.0, 0.6, 0.4])[channel] * np.array([1.0, 0.8, 2.5, 1.5])[team]
                 * np.array([1.2, 1.0, 0.8, 0.6])[prio] * 0.92**t
                 * np.exp(0.9 * rng.standard_normal(n)))
        done_at = ts + (res_h * 3.6e9).astype(np.int64).astype("m8[us]")
        resolved = (done_at < cal.end) & (rng.random(n) > 0.005)
        closed = resolved & (done_at < cal.end - np.timedelta64(7, "D")) & (rng.random(n) < 0.97)
        status = np.where(closed, 3, np.where(resolved, 2, np.where(rng.random(n) < 0.5, 0, 1)))
        handle = (np.array([9.0, 14.0, 8.0])[channel] * np.array([1.0, 0.8, 1.5, 1.1])[team]
                  * np.exp(0.5 * rng.standard_normal(n)))
        answered = resolved & (rng.random(n) < 0.28)
        mood = 4.55 - 0.22 * np.log1p(res_h) - 0.05 * np.log1p(first) + 0.9 * rng.standard_normal(n)
        yield {
            "ticket_id": _ids("T-", seq, 7),
            "created_at": ts,
            "customer_id": _pick_customers(rng, ctx, region, cal.month[day]),
            "region": _take(REGIONS, region),
            "channel": _take(("email", "chat", "phone"), channel),
            "team": _take(("General Support", "Billing", "Technical", "Returns"), team),
            "priority": _take(("low", "normal", "high", "urgent"), prio),
            "status": _take(("open", "pending", "resolved", "closed"), status),
            "first_response_minutes": np.round(np.maximum(first, 0.1), 1),
            "avg_response_minutes": np.round(np.maximum(avg, 0.1), 1),
            "resolution_hours": (np.round(np.maximum(res_h, 0.01), 2), ~resolved),
            "resolved": resolved,
            "handle_minutes": np.round(np.maximum(handle, 0.5), 1),
            "csat": (np.clip(np.round(mood), 1, 5).astype(np.int64), ~answered),
        }


def _nps_responses(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = _REGION_W[:, None] * _REGION_GROWTH[:, None] ** (0.5 * cal.t) * _DOW_WORK[cal.dow]
    counts = _spread(rng, max(300, round(12_000 * ctx.scale)), w)
    for region, day, ts, seq in _monthly(rng, cal, counts, _HOURS_WORK):
        n, t = len(ts), cal.t[day]
        segment = _choice(rng, n, [0.6, 0.3, 0.1])
        nps = (np.array([36.0, 26.0, 40.0, 22.0])[region] + np.array([-4.0, 0.0, 6.0])[segment]
               + np.array([2.0, -5.0, 3.0, 4.0])[region] * t) / 100
        passive = 0.32
        kind = _choice_rows(rng, np.column_stack([(1 - passive - nps) / 2, np.full(n, passive),
                                                  (1 - passive + nps) / 2]))
        detractor = _choice(rng, n, [1, 1, 2, 3, 5, 8, 10])
        score = np.select([kind == 0, kind == 1], [detractor, 7 + (rng.random(n) < 0.55)],
                          9 + (rng.random(n) < 0.55))
        yield {
            "response_id": _ids("NPS-", seq, 6),
            "responded_at": ts,
            "customer_id": _pick_customers(rng, ctx, region, cal.month[day]),
            "region": _take(REGIONS, region),
            "segment": _take(("smb", "mid_market", "enterprise"), segment),
            "score": score.astype(np.int64),
        }


# --- finance ----------------------------------------------------------------------------------

_CC = ("sales", "marketing", "operations", "rnd", "g_and_a")
_ACCOUNTS = ("revenue", "cogs", "opex", "capex", "tax", "financing")
_CASH_FLOW = np.array([0, 0, 0, 1, 0, 2])  # account -> operating, investing, financing


def _ledger(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    day_i, reg_i, cc_i, acc_i, amt = [], [], [], [], []

    def post(d: Any, r: Any, cc: int, acc: int, amount: Any) -> None:
        amount = np.atleast_1d(np.asarray(amount, dtype=float))
        day_i.append(np.broadcast_to(d, amount.shape))
        reg_i.append(np.broadcast_to(r, amount.shape))
        cc_i.append(np.full(amount.shape, cc))
        acc_i.append(np.full(amount.shape, acc))
        amt.append(amount)

    # weekly revenue and cost of goods sold postings, from completed orders
    dom = np.arange(cal.n) - cal.bounds[cal.month]
    key = cal.month * 4 + np.minimum(dom // 7, 3)
    last = np.zeros(cal.n_months * 4, dtype=np.int64)
    np.maximum.at(last, key, np.arange(cal.n))
    for r in range(_NR):
        rev = np.bincount(key, ctx.rev_day[r], cal.n_months * 4)
        cost = np.bincount(key, ctx.cost_day[r], cal.n_months * 4)
        ok = rev > 0
        post(last[ok], r, 0, 0, rev[ok] * (1 + 0.003 * rng.standard_normal(ok.sum())))
        post(last[ok], r, 2, 1, -cost[ok] * (1 + 0.003 * rng.standard_normal(ok.sum())))
    # monthly operating expenses: payroll on the 25th, invoices mid-month and at month end
    rm = ctx.rev_month()
    total = rm.sum(axis=0)
    for m in range(cal.n_months):
        d0, d1 = cal.bounds[m], cal.bounds[m + 1]
        pay, mid, end = min(d0 + 24, d1 - 1), min(d0 + 14, d1 - 1), d1 - 1
        for r in range(_NR):
            noise = _lognormal(rng, 1.0, 0.03, 8)
            post(pay, r, 0, 2, -0.075 * rm[r, m] * noise[0])
            post(end, r, 0, 2, -0.025 * rm[r, m] * noise[1])  # commissions
            post(pay, r, 1, 2, -0.02 * rm[r, m] * noise[2])
            post([mid, end], r, 1, 2, -0.5 * ctx.mkt_month[r, m] * np.ones(2))
            post(pay, r, 2, 2, -0.03 * rm[r, m] * noise[3])
            post(end, r, 2, 2, -(ctx.ship_month[r, m] + 0.01 * rm[r, m]) * noise[4])
            post(pay, r, 4, 2, -0.035 * rm[r, m] * noise[5])
            post(d0, r, 4, 2, -0.012 * rm[r, m] * noise[6])  # rent
        post(pay, [0, 1], 3, 2, -0.075 * total[m] * np.array([0.7, 0.3]) * noise[7])
    # quarterly tax on profit and capital expenditure; financing at head office
    arrays = [np.concatenate(a) for a in (day_i, reg_i, cc_i, acc_i, amt)]
    month_of = cal.month[arrays[0]]
    for q0 in range(0, cal.n_months, 3):
        q1 = min(q0 + 3, cal.n_months)
        d_end = cal.bounds[q1] - 1
        for r in range(_NR):
            in_q = (month_of >= q0) & (month_of < q1) & (arrays[1] == r)
            profit = arrays[4][in_q].sum()
            if profit > 0:
                post(d_end, r, 4, 4, -0.24 * profit)
            capex = rm[r, q0:q1].sum() * rng.uniform(0.01, 0.04)
            post(rng.integers(cal.bounds[q0], cal.bounds[q1]), r, int(rng.integers(2, 4)), 3,
                 -capex)
    loan = 3 * total.mean()
    post(0, 0, 4, 5, loan)
    post(np.minimum(cal.bounds[1:-1] + 14, cal.n - 1), 0, 4, 5,
         -(loan / 48 + 0.006 * loan) * np.ones(cal.n_months - 1))
    for m in np.flatnonzero(cal.month_moy == 4):
        post(cal.bounds[m + 1] - 1, 0, 4, 5, -0.03 * total[max(0, m - 12) : m].sum())
    d, r, cc, acc, amount = (np.concatenate(a) for a in (day_i, reg_i, cc_i, acc_i, amt))
    order = np.lexsort((acc, cc, r, d))
    d, r, cc, acc, amount = d[order], r[order], cc[order], acc[order], amount[order]
    yield {
        "entry_id": _ids("JE-", np.arange(1, len(d) + 1), 6),
        "entry_date": cal.days[d],
        "region": _take(REGIONS, r),
        "cost_center": _take(_CC, cc),
        "account_type": _take(_ACCOUNTS, acc),
        "cash_flow_category": _take(("operating", "investing", "financing"), _CASH_FLOW[acc]),
        "amount": np.round(amount, 2),
    }


# --- people -----------------------------------------------------------------------------------


def _employees(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    n0 = max(60, round(250 * ctx.scale**0.5))
    dept = _choice(rng, n0, _DEPT_P)
    region = _choice(rng, n0, [0.45, 0.28, 0.17, 0.10])
    level = _choice(rng, n0, [0.30, 0.38, 0.22, 0.10])
    hired = cal.start - (1 + rng.exponential(900, n0)).astype(np.int64).astype("m8[D]")
    mood = rng.standard_normal(n0)
    active = np.ones(n0, dtype=bool)
    log: list[tuple[np.ndarray, ...]] = []
    for m in range(cal.n_months):
        idx = np.flatnonzero(active)
        k, t, de = len(idx), cal.month_t[m], dept[idx]
        annual = _DEPT_TURNOVER[de] + (de == _SUPPORT) * 0.09 * t
        hazard = (1 - (1 - annual) ** (1 / 12)) * np.exp(-0.35 * mood[idx])
        left = rng.random(k) < hazard
        voluntary = left & (rng.random(k) < np.where(de == _SUPPORT, 0.85, 0.72))
        score = np.full(k, np.nan)
        if cal.month_moy[m] % 3 == 0:
            s = (73 + _DEPT_ENGAGEMENT[de] - (de == _SUPPORT) * 3.5 * t + 7 * mood[idx]
                 + 5 * rng.standard_normal(k))
            answered = rng.random(k) < 0.7
            score[answered] = np.round(np.clip(s, 0, 100), 1)[answered]
        yield {
            "snapshot_date": np.full(k, cal.snapshots[m]),
            "employee_id": _ids("EMP-", idx + 1, 5),
            "region": _take(REGIONS, region[idx]),
            "department": _take(_DEPTS, de),
            "level": _take(_LEVELS, level[idx]),
            "hire_date": hired[idx],
            "left": left,
            "voluntary_exit": voluntary,
            "engagement_score": score,
        }
        active[idx[left]] = False
        # backfill the leavers and grow ~8% a year; new hires appear in next month's snapshot
        grow = rng.poisson(k * 0.0065)
        g_dept = _choice(rng, grow, _DEPT_P)
        g_region = _choice(rng, grow, [0.45, 0.28, 0.17, 0.10])
        new_dept = np.concatenate([de[left], g_dept])
        new_region = np.concatenate([region[idx[left]], g_region])
        nh = len(new_dept)
        new_hired = cal.days[rng.integers(cal.bounds[m], cal.bounds[m + 1], nh)]
        dept, region = np.concatenate([dept, new_dept]), np.concatenate([region, new_region])
        level = np.concatenate([level, _choice(rng, nh, [0.45, 0.35, 0.15, 0.05])])
        hired = np.concatenate([hired, new_hired])
        mood = np.concatenate([mood, rng.standard_normal(nh)])
        active = np.concatenate([active, np.ones(nh, dtype=bool)])
        log.append((new_dept, new_region, new_hired))
    ctx.hires = tuple(np.concatenate(a) for a in zip(*log, strict=True))  # type: ignore[assignment]


def _requisitions(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    dept, region, hired = ctx.hires
    n = len(dept)
    t = (hired - cal.start).astype(np.int64) / 365.25
    fill = np.round(np.clip(_lognormal(rng, _DEPT_FILL_DAYS[dept] * 0.96**t, 0.3, n), 10, 150))
    filled = hired - rng.integers(14, 36, n).astype("timedelta64[D]")
    opened = filled - fill.astype("timedelta64[D]")
    keep = opened >= cal.start
    dept, region, filled, opened, fill = (a[keep] for a in (dept, region, filled, opened, fill))
    # cancelled openings through the period and openings still open at the end
    nc = max(1, round(0.08 * len(dept)))
    no = max(1, round(len(dept) / cal.n_months * 1.5))
    dept = np.concatenate([dept, _choice(rng, nc + no, _DEPT_P)])
    region = np.concatenate([region, _choice(rng, nc + no, [0.45, 0.28, 0.17, 0.10])])
    opened = np.concatenate([opened, cal.days[rng.integers(0, cal.n, nc)],
                             cal.days[rng.integers(max(0, cal.n - 75), cal.n, no)]])
    status = np.repeat([1, 2, 0], [len(fill), nc, no])
    nf, n = len(fill), len(dept)
    filled = np.concatenate([filled, np.full(n - nf, np.datetime64("NaT"), "datetime64[D]")])
    fill = np.concatenate([fill, np.full(n - nf, np.nan)])
    applicants = rng.poisson(_DEPT_APPLICANTS[dept]) + 5
    offers = np.select([status == 1, status == 2],
                       [1 + rng.binomial(2, 0.2, n), rng.binomial(1, 0.2, n)],
                       rng.binomial(1, 0.3, n))
    order = np.lexsort((dept, opened))
    yield {
        "requisition_id": _ids("REQ-", np.arange(1, n + 1), 5),
        "opened_date": opened[order],
        "filled_date": filled[order],
        "region": _take(REGIONS, region[order]),
        "department": _take(_DEPTS, dept[order]),
        "status": _take(("open", "filled", "cancelled"), status[order]),
        "applicants": applicants[order],
        "offers_made": offers[order],
        "offers_accepted": (status[order] == 1).astype(np.int64),
        "days_to_fill": fill[order],
    }


# --- supply chain -----------------------------------------------------------------------------


def _shipments(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * _REGION_GROWTH[:, None] ** cal.t * _SEASON_RETAIL[cal.moy - 1]
         * np.array([1.2, 1.15, 1.1, 1.1, 1.05, 0.3, 0.2])[cal.dow])
    counts = _spread(rng, max(1, round(ctx.rows * 0.5)), w)
    promised_opts = np.array([[2, 3, 5], [2, 3, 4], [3, 5, 7], [4, 7, 10]])
    for m, (region, _, ts, seq) in enumerate(_monthly(rng, cal, counts, _HOURS_WORK)):
        n, t = len(ts), cal.month_t[m]
        carrier = _choice(rng, n, [0.45, 0.35, 0.20])
        wh = np.where(region == 0, (rng.random(n) < 0.45).astype(np.int64), region + 1)
        service = _choice(rng, n, [0.2, 0.35, 0.45])
        promised = promised_opts[region, service]
        p_on = (np.minimum(0.86 + 0.04 * t, 0.97) + np.array([0.02, 0.0, -0.03])[carrier]
                - 0.04 * (cal.month_moy[m] == 12))
        on_time = rng.random(n) < p_on
        days = np.where(on_time, np.floor(promised * rng.uniform(0.45, 1.0, n) * 10) / 10,
                        np.ceil((promised + 0.1 + rng.exponential(1.2, n)) * 10) / 10)
        delivered = ts + (days * 8.64e10).astype(np.int64).astype("m8[us]") < cal.end
        cost = (np.array([7.5, 6.5, 9.0, 11.0])[region] * (1 + 2.5 / promised) * 1.03**t
                * _lognormal(rng, 1.0, 0.2, n))
        cost = np.round(cost, 2)
        ctx.ship_month[:, m] = np.bincount(region, cost, _NR)
        yield {
            "shipment_id": _ids("SHP-", seq, 8),
            "shipped_at": ts,
            "region": _take(REGIONS, region),
            "carrier": _take(_CARRIERS, _REGION_CARRIERS[region, carrier]),
            "warehouse": _take(_WAREHOUSES, wh),
            "promised_days": promised.astype(np.int64),
            "delivery_days": (days, ~delivered),
            "delivered_on_time": on_time & delivered,
            "shipping_cost": cost,
        }


def _inventory(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    n_prod, n_wh = len(_PRODUCTS), len(_WAREHOUSES)
    prod, var, wh, m = (a.ravel() for a in np.indices((n_prod, 2, n_wh, cal.n_months)))
    cat, region = _PROD_CAT[prod], _WH_REGION[wh]
    n = len(prod)
    share = np.where(var == 0, 0.6, 0.4) * _WH_SHARE[wh]
    cogs = np.round(ctx.prod_cost[region, prod, m] * share * _lognormal(rng, 1.0, 0.05, n), 2)
    cover = np.array([1.1, 2.0, 2.6, 2.2, 1.6])[cat] * _lognormal(rng, 1.0, 0.3, n)  # months
    unit_cost = _PROD_PRICE[prod] * _CAT_COST[cat] * 1.03 ** cal.month_t[m]
    units = np.round(np.maximum(cogs, unit_cost) * cover / unit_cost).astype(np.int64)
    value = np.round(units * unit_cost, 2)
    days_in = np.diff(cal.bounds)[m]
    p_out = np.clip(0.5 * np.exp(-2.2 * value / np.maximum(cogs, 1.0)), 0, 0.5)
    order = np.lexsort((wh, var, prod, m))
    sku = [f"{_CATALOG[_CATS[_PROD_CAT[p]]][0]}-{p % 5 + 1:02d}{v}" for p in range(n_prod)
           for v in "AB"]
    yield {
        "snapshot_date": cal.snapshots[m][order],
        "sku": _take(sku, (prod * 2 + var)[order]),
        "warehouse": _take(_WAREHOUSES, wh[order]),
        "region": _take(REGIONS, region[order]),
        "product_category": _take(_CATS, cat[order]),
        "on_hand_units": units[order],
        "on_hand_value": value[order],
        "cogs": cogs[order],
        "stockout_days": rng.binomial(days_in, p_out)[order],
    }


# --- entry points -----------------------------------------------------------------------------

# Fixed order: later generators use aggregates of earlier ones (orders first, ledger late).
_GENERATORS: dict[str, Callable[[_Ctx, Rng], Iterator[Cols]]] = {
    "orders": _orders,
    "subscriptions": _subscriptions,
    "opportunities": _opportunities,
    "sales_activities": _sales_activities,
    "web_sessions": _web_sessions,
    "email_campaigns": _email_campaigns,
    "social_posts": _social_posts,
    "social_accounts": _social_accounts,
    "support_tickets": _support_tickets,
    "nps_responses": _nps_responses,
    "marketing_spend": _marketing_spend,
    "shipments": _shipments,
    "ledger": _ledger,
    "employees": _employees,
    "requisitions": _requisitions,
    "inventory": _inventory,
}


def _roster(rng: Rng, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sales reps: unique names with their region and team."""
    per = _REPS_PER_TEAM * max(1, round(scale**0.5))
    region, team = (np.repeat(a.ravel(), per.ravel()) for a in np.indices(per.shape))
    pick = rng.choice(len(_FIRST) * len(_LAST), len(region), replace=False)
    names = np.array([f"{_FIRST[i // len(_LAST)]} {_LAST[i % len(_LAST)]}" for i in pick])
    return names, region, team


def generate(
    out: str | Path, rows: int = 200_000, seed: int = 7, start: str = "2023-01-01",
    years: int = 3, *, _row_group_size: int = ROW_GROUP_SIZE,
) -> dict[str, Path]:
    """Write one Parquet file per canonical source into `out`; return {source: path}.

    ``rows`` is the approximate number of order lines; the other tables scale from it (web
    sessions ~1.5x, shipments ~0.5x, the rest much smaller; snapshots by their natural counts).
    The period is ``years`` years from ``start``. The same arguments give identical files.
    """
    if rows < 1 or years < 1:
        raise DataError(f"rows and years must be at least 1 (got rows={rows}, years={years}). Pass --rows 1 or more.")
    schemas = _schemas()
    if set(schemas) != set(_GENERATORS):
        raise PlanError(
            f"catalog/sources.yaml declares {sorted(set(schemas) - set(_GENERATORS))} and "
            f"kpinb/sample_data.py generates {sorted(set(_GENERATORS) - set(schemas))} besides "
            "the common sources: add or remove a generator in kpinb/sample_data.py."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = _Ctx(_Calendar(start, years), rows, rows / 200_000)
    streams = np.random.SeedSequence(seed).spawn(len(_GENERATORS) + 2)
    ctx.reps = _roster(np.random.default_rng(streams[-2]), ctx.scale)
    ctx.social = _social_followers(ctx.cal, np.random.default_rng(streams[-1]))
    written: dict[str, Path] = {}
    for (name, gen), stream in zip(_GENERATORS.items(), streams, strict=False):
        path = out / f"{name}.parquet"
        sink = _Sink(path, schemas[name], _row_group_size)
        try:
            for cols in gen(ctx, np.random.default_rng(stream)):
                sink.write(_table(name, schemas[name], cols))
        except BaseException:
            sink.abort()
            raise
        sink.close()
        written[name] = path
    return {name: written[name] for name in schemas}


def ensure(
    out: str | Path, rows: int = 200_000, seed: int = 7, start: str = "2023-01-01",
    years: int = 3, force: bool = False,
) -> tuple[dict[str, Path], bool]:
    """Generate the sample data into `out` unless it is already there with the same arguments.

    Returns ``({source: path}, fresh)`` where ``fresh`` is True when files were (re)generated.
    A small manifest (``_sample_data.json``) next to the files records how they were made.
    """
    out = Path(out)
    manifest = out / _MANIFEST
    wanted = {"version": _VERSION, "rows": rows, "seed": seed, "start": start, "years": years}
    if not force and manifest.exists():
        try:
            have = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            have = {}
        files = {name: out / f"{name}.parquet" for name in _schemas()}
        if (have.get("args") == wanted and set(have.get("files", {})) == set(files)
                and all(p.exists() and p.stat().st_size == have["files"][n]
                        for n, p in files.items())):
            return files, False
    written = generate(out, rows=rows, seed=seed, start=start, years=years)
    sizes = {name: p.stat().st_size for name, p in written.items()}
    write_atomic(manifest, json.dumps({"args": wanted, "files": sizes}, indent=2) + "\n")
    return written, True
