"""A benchmark table (CSV of industry quartiles per metric) read and checked: what the plan check
and the comparisons (:mod:`kpinb.analytics.benchmark`) both read.

A benchmark row is only as good as its ``source``. The shipped ``data/benchmarks.csv`` holds
*illustrative placeholders* (``source: illustrative``), not industry data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from kpinb.definitions.model import Unit
from kpinb.errors import DataError, where

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BENCHMARK_COLUMNS", "ILLUSTRATIVE", "MAX_BENCHMARK_BYTES", "load_benchmarks"]

MAX_BENCHMARK_BYTES = 20 * 2**20
"""A benchmark table larger than this is refused (published tables are a few kB)."""

BENCHMARK_COLUMNS = ("metric", "industry", "segment", "p25", "p50", "p75", "unit", "source", "year")
"""Columns a benchmark CSV must have (``note`` and any others are optional and kept)."""

ILLUSTRATIVE = "illustrative"


def load_benchmarks(path: str | Path) -> pd.DataFrame:
    """Read and check a benchmark table (CSV).

    The file needs the columns ``metric, industry, segment, p25, p50, p75, unit, source,
    year``; ``note`` (and any other column) is optional and kept. Percentiles are numbers in
    the metric's own unit as the engine computes it (percent metrics as fractions: ``0.25``
    for 25 %) and ordered by value, ``p25 <= p50 <= p75``, also for lower-is-better metrics
    (the best quartile is then ``p25``). ``year`` may be empty; ``source`` may not: cite the
    publication, or write ``illustrative`` for a placeholder.

    Every problem in the file is reported at once in one :class:`DataError`, one line each
    as ``file:line: column x: problem. Fix.``

    Returns
    -------
    DataFrame with ``metric, industry, segment`` (text, empty meaning "any"), ``p25, p50,
    p75`` (float), ``unit``, ``source`` (text), ``year`` (nullable integer), ``note`` (text,
    empty if the file has none) and any extra columns; ``attrs["path"]`` is the file.

    Examples
    --------
    >>> table = load_benchmarks("data/benchmarks.csv")  # doctest: +SKIP
    >>> table.loc[table.metric == "bounce_rate", ["p25", "p50", "p75", "source"]]  # doctest: +SKIP
    """
    import io

    import pandas as pd

    from kpinb._io import read_limited

    file = Path(path)
    if not file.exists() and not file.is_symlink():
        raise DataError(
            f"{file}: no such benchmark file. Check the path (a plan's `benchmarks:` resolves "
            "against the plan's folder)."
        )
    # a regular file only, read with a bound: a FIFO or /dev/zero here must not hang the report
    content = read_limited(file, MAX_BENCHMARK_BYTES, "benchmark file (CSV)", DataError)
    try:
        raw = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"{file}: cannot be read as a CSV table ({first[:200]}). Save it as UTF-8 CSV with the "
            f"header row {','.join(BENCHMARK_COLUMNS)},note."
        ) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in BENCHMARK_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"{where(file, line=1)}missing column(s) {', '.join(missing)}. The header row must name "
            f"{', '.join(BENCHMARK_COLUMNS)} (and optionally note)."
        )
    raw = raw.apply(lambda s: s.str.strip())
    if "note" not in raw.columns:
        raw["note"] = ""
    problems = _check_rows(raw, file)
    if problems:
        raise DataError("\n".join(problems))
    out = raw.copy()
    for c in ("p25", "p50", "p75"):
        out[c] = out[c].astype("float64")
    out["year"] = pd.array([int(y) if y else pd.NA for y in raw["year"]], dtype="Int64")
    out.attrs["path"] = str(file)
    return out.reset_index(drop=True)


def _check_rows(raw: pd.DataFrame, file: Path) -> list[str]:
    from kpinb.definitions import catalog

    known = catalog.metrics()
    units = [u.value for u in Unit]
    problems: list[str] = []
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(raw.to_dict("records")):
        line = i + 2  # the header is line 1

        def bad(column: str, problem: str, line: int = line) -> None:
            problems.append(f"{where(file, f'column {column}', line)}{problem}")

        mid = row["metric"]
        if not mid:
            bad("metric", "is empty. Write the metric id (a catalog id or one of your plan's metrics).")
        nums: dict[str, float] = {}
        for c in ("p25", "p50", "p75"):
            try:
                x = float(row[c])
            except ValueError:
                x = math.nan
            if not math.isfinite(x):
                bad(
                    c,
                    f"{row[c]!r} is not a number. Write a plain number such as 0.25 (no %, no thousands separator).",
                )
            else:
                nums[c] = x
        if len(nums) == 3 and not nums["p25"] <= nums["p50"] <= nums["p75"]:
            bad(
                "p25" if nums["p25"] > nums["p50"] else "p75",
                f"percentiles out of order (p25={nums['p25']:g}, p50={nums['p50']:g}, p75={nums['p75']:g}). "
                "List them by value, p25 <= p50 <= p75, also for lower-is-better metrics.",
            )
        unit = row["unit"]
        if unit not in units:
            bad("unit", f"{unit!r} is not a unit. Use one of {', '.join(units)}.")
        elif mid in known and known[mid].unit.value != unit:
            bad(
                "unit",
                f"{unit!r} differs from the catalog's {known[mid].unit.value!r} for {mid!r}. "
                "Use the metric's unit and scale.",
            )
        elif unit == "percent" and any(abs(x) > 10 for x in nums.values()):
            bad(
                "unit",
                "percent values look like percentage points (above 10). Write fractions: 0.25 for 25 %.",
            )
        if not row["source"]:
            bad(
                "source",
                "is empty. Name the publication the figures come from, or write `illustrative` "
                "for a placeholder that is not industry data.",
            )
        year = row["year"]
        if year and not (year.isdigit() and 1900 <= int(year) <= 2200):
            bad(
                "year",
                f"{year!r} is not a year. Write the year of the figures (e.g. 2024) or leave it empty.",
            )
        key = (mid, row["industry"].casefold(), row["segment"].casefold(), year)
        if mid and key in seen:
            bad("metric", f"repeats line {seen[key]} (same metric, industry, segment and year). Keep one row.")
        seen.setdefault(key, line)
    return problems
