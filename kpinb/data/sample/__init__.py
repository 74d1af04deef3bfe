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
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np

from kpinb._io import write_atomic
from kpinb.data.sample._common import _FIRST, _LAST, _REPS_PER_TEAM, Cols, Rng, _Calendar, _Ctx, _schemas, _Sink, _table
from kpinb.data.sample.finance import _ledger
from kpinb.data.sample.hr import _employees, _requisitions
from kpinb.data.sample.marketing import (
    _email_campaigns,
    _marketing_spend,
    _social_accounts,
    _social_followers,
    _social_posts,
    _web_sessions,
)
from kpinb.data.sample.operations import _inventory, _shipments
from kpinb.data.sample.sales import _opportunities, _orders, _sales_activities, _subscriptions
from kpinb.data.sample.service import _nps_responses, _support_tickets
from kpinb.errors import DataError, PlanError

ROW_GROUP_SIZE = 100_000
"""Rows per Parquet row group (DuckDB reads row groups in parallel)."""

_VERSION = 1  # bump when the generated data changes, so `ensure` regenerates old files
_MANIFEST = "_sample_data.json"


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


PINNED_END = "2025-12"
"""The last month of the sample the shipped plans, stored notebook outputs and tests are written for
(``kpinb sample-data --end 2025-12``); without ``--end`` the sample ends last month (a current demo)."""


def last_complete_month(today: date | None = None) -> str:
    """The month before ``today``'s (``YYYY-MM``): the newest month a sample made today holds whole."""
    today = today or date.today()
    return f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"


def start_for(end: str, years: int = 3) -> str:
    """The first day of a ``years``-long sample whose last month is ``end`` (``YYYY-MM``)."""
    try:
        year, month = (int(x) for x in end.split("-"))
        if not (1900 <= year <= 2199 and 1 <= month <= 12) or len(end) != 7:
            raise ValueError
    except ValueError:
        raise DataError(f"end {end!r} is not a month. Write it as YYYY-MM, e.g. {PINNED_END}.") from None
    first = year * 12 + month - 1 - (12 * years - 1)
    return f"{first // 12}-{first % 12 + 1:02d}-01"


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
            f"kpinb/data/sample/ generates {sorted(set(_GENERATORS) - set(schemas))} besides "
            "the common sources: add or remove a generator in kpinb/data/sample/."
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
