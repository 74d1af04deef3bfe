"""Which engine runs a local file's queries: DuckDB, or polars where it was measured faster.

Local Parquet files may be scanned by polars (through ibis' polars backend): on the sales
KPI set at 10M rows it runs in about two thirds of DuckDB's time (``perf/engine.py``).
Whatever the polars route cannot run raises :class:`EngineFallback` and the engine runs that
source on DuckDB, which computes it or reports the error in its own words.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from kpinb.errors import SourceError

LOCAL_ENGINES = ("polars", "duckdb")


class EngineFallback(Exception):
    """A query on the polars route failed: run the source on DuckDB instead (never a different
    number: polars either runs a query as DuckDB would, or fails)."""


def local_engine() -> str:
    """The engine for local Parquet files: ``polars`` unless ``KPINB_LOCAL_ENGINE=duckdb``."""
    chosen = os.environ.get("KPINB_LOCAL_ENGINE", "polars").strip().lower() or "polars"
    if chosen not in LOCAL_ENGINES:
        raise SourceError(f"KPINB_LOCAL_ENGINE={chosen[:20]!r} is not an engine. Use polars or duckdb.")
    return chosen


@functools.cache
def polars_connection() -> Any:
    """The process's ibis polars backend: lazy scans of local Parquet files."""
    import ibis

    return ibis.polars.connect()


def backend_of(expr: Any) -> Any:
    """The ibis backend ``expr`` runs on (None: several, or none found)."""
    try:
        return expr._find_backend(use_default=True)
    except Exception:  # an expression over several backends fails later, at execution
        return None


def on_polars(expr: Any) -> bool:
    """Whether ``expr`` runs on the polars backend."""
    return getattr(backend_of(expr), "name", "") == "polars"
