"""What the sample data generators share: dimensions (regions, products, warehouses, teams,
departments), seasonality, the calendar and context, random helpers and the Parquet plumbing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from kpinb._io import replaceable
from kpinb.errors import PlanError

_SOURCES_YAML = Path(__file__).resolve().parents[2] / "definitions" / "catalog" / "sources.yaml"
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
            f"(missing {missing}, extra {extra}). Update kpinb/data/sample/ to the catalog."
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
