"""Coverage: the days a source's data is complete for, which decide whether a period is complete.

A source covers from the date of its first row to the date of its latest row, or to the
``complete_through:`` date the plan declares for it (a load that lags, a table with no row on
quiet days). A snapshot source of the catalog (``row_covers: month``: one row per subscription
at the start of each month) covers to the end of its latest snapshot's month; a source read as
snapshots (``as_of:``) stands for each whole period its dates fall in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpinb.data.sources import Table, conform, query_error
from kpinb.definitions.model import FIRST_DATE, SNAPSHOT_TIME

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Coverage", "coverage"]

_FREQ = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}


@dataclass(frozen=True)
class Coverage:
    """The first and last day (naive midnight timestamps) a source's data covers; None: no rows.
    ``rows``: the first and last row's day as the data has them (no declared coverage applied)."""

    first: pd.Timestamp | None
    through: pd.Timestamp | None
    rows: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)


def coverage(table: Table, complete_through: Any = None, row_covers: str | None = None) -> Coverage:
    """The days ``table`` covers: one min/max query over its time column, or a local Parquet file's
    statistics when they answer it (see :func:`_from_statistics`). ``row_covers`` (the
    source's, else the catalog's) is the period a row's date stands for.

    >>> coverage(open_source("orders", "orders.parquet"))  # doctest: +SKIP
    Coverage(first=Timestamp('2023-01-01 00:00:00'), through=Timestamp('2025-12-31 00:00:00'))
    """
    import pandas as pd

    from kpinb.definitions import catalog

    if not table.time or table.time not in table.columns:
        return Coverage(None, None)  # the engine names the missing time column
    t = conform(table, {table.time: "timestamp"}).expr
    tcol = t[table.time]
    span = _from_statistics(t, table.time, table.path)
    if span is None:
        try:
            span = t.aggregate(lo=tcol.min(), hi=tcol.max()).execute().iloc[0]
        except Exception as e:
            raise query_error(table, e) from None

    def day(value: Any) -> pd.Timestamp | None:
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):  # a date pandas cannot hold: the query reports it
            return None
        if pd.isna(stamp):
            return None
        return (stamp.tz_localize(None) if stamp.tzinfo else stamp).normalize()

    first, last = day(span["lo"]), day(span["hi"])
    rows = (first, last)
    if table.time == SNAPSHOT_TIME and first is not None:  # a snapshot is the state of its period, whole
        first = pd.Timestamp(FIRST_DATE)
    if complete_through is not None:
        return Coverage(first, pd.Timestamp(complete_through).normalize(), rows)
    canon = catalog.sources().get(table.name)
    covers = row_covers or (canon.row_covers if canon is not None else None)
    if last is not None and covers is not None:
        last = last.to_period(_FREQ[covers]).end_time.normalize()
    return Coverage(first, last, rows)


def _from_statistics(expr: Any, time: str, path: Any) -> dict[str, Any] | None:
    """``{lo, hi}`` of ``expr``'s column ``time`` from the Parquet file's own statistics (its row
    groups' exact min and max, no scan), when that column is the file's naive timestamp or date column
    passed through unchanged: the relation is the file's table or renames and adds columns to it (no
    filter, join or conversion; a value mapping of another column is fine). None otherwise (or when a
    row group lacks statistics): the caller scans the column."""
    import ibis.expr.operations as ops

    if path is None or any(c in str(path) for c in "*?["):  # one file (not Parquet: its footer says so below)
        return None
    rel = expr.op()
    while isinstance(rel, ops.Project):
        rel = rel.parent
    if not isinstance(rel, ops.DatabaseTable):
        return None
    field = expr[time].op()
    while isinstance(field, ops.Field) and isinstance(field.rel, ops.Project):
        field = field.rel.values.get(field.name)
    if not isinstance(field, ops.Field) or field.rel != rel:
        return None
    dtype = rel.schema[field.name]
    if not (dtype.is_date() or (dtype.is_timestamp() and dtype.timezone is None)):
        return None
    try:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(str(path)).metadata
        column = meta.schema.names.index(field.name)
        if meta.schema.column(column).physical_type == "INT96":  # legacy timestamps: no usable order
            return None
        lows, highs = [], []
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            stats = group.column(column).statistics
            if group.num_rows == 0 or (stats is not None and stats.null_count == group.num_rows):
                continue
            if stats is None or not stats.has_min_max:
                return None
            if not isinstance(stats.min, dt.date) or not isinstance(stats.max, dt.date):
                return None  # e.g. nanoseconds pyarrow hands over as a bare integer
            lows.append(stats.min)
            highs.append(stats.max)
    except Exception:  # not Parquet, unreadable metadata, a value Python cannot hold: scan instead
        return None
    return {"lo": min(lows) if lows else None, "hi": max(highs) if highs else None}
