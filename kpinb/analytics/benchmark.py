"""Benchmarks: a KPI against an external table, against its peers, and against its own history.

Three comparisons, each a tidy DataFrame with documented columns:

- :func:`external` — the latest value against an industry table's quartiles (``p25, p50,
  p75``) read by :func:`load_benchmarks`;
- :func:`peers` — each member of a dimension (region, team, channel...) against the others;
- :func:`history` — the latest value against the same period last year and the best period
  before it.

Every gap is **direction-aware: positive means better** (above for higher-is-better metrics,
below for lower-is-better ones), in the metric's own unit.

A benchmark row is only as good as its ``source``. The shipped ``data/benchmarks.csv`` holds
*illustrative placeholders* (``source: illustrative``), not industry data; replace them with
figures from a publication you can cite before presenting a comparison as a benchmark.

>>> table = load_benchmarks("data/benchmarks.csv")  # doctest: +SKIP
>>> external(kpinb.compute(["bounce_rate"], sources=...), table)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from kpinb.analytics.compare import YEAR_AGO
from kpinb.data.benchmarks import BENCHMARK_COLUMNS, ILLUSTRATIVE, MAX_BENCHMARK_BYTES, load_benchmarks
from kpinb.definitions.model import Calendar, Direction, Grain, Plan
from kpinb.engine import RESULT_COLUMNS
from kpinb.engine.calendar import calendar_of, period_start
from kpinb.errors import DataError

__all__ = [
    "BENCHMARK_COLUMNS", "ILLUSTRATIVE", "MAX_BENCHMARK_BYTES", "external", "history", "load_benchmarks", "peers",
]

_BASE = RESULT_COLUMNS

Directions = Plan | Mapping[str, Direction | str] | None
"""Where metric directions come from: a plan (its metrics, catalog metrics and KPI
``direction:`` overrides), a mapping metric id -> direction (falling back to the catalog), or
None (the catalog only)."""


# --- the external table ------------------------------------------------------------------------


def _table(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(table, (str, Path)):
        return load_benchmarks(table)
    missing = [c for c in BENCHMARK_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"the benchmark table has no column(s) {', '.join(missing)}. Read it with load_benchmarks().")
    return table


def _select_rows(table: pd.DataFrame, mid: str, industry: str | None, segment: str | None) -> pd.Series | None:
    rows = table[table["metric"] == mid]
    for col, wanted in (("industry", industry), ("segment", segment)):
        if wanted is not None:
            rows = rows[rows[col].astype(str).str.casefold() == wanted.casefold()]
    if rows.empty:
        return None
    years = pd.to_numeric(rows["year"], errors="coerce")
    if years.notna().any():
        rows = rows[years == years.max()]
    if len(rows) > 1:
        options = ", ".join(f"{r.industry or '-'}/{r.segment or '-'}" for r in rows.itertuples())
        raise DataError(
            f"the benchmark table has {len(rows)} rows for {mid!r} (industry/segment: {options}). "
            "Pass industry= and segment= to choose one."
        )
    return rows.iloc[0]


def percentile_position(value: float, p25: float, p50: float, p75: float) -> float:
    """Where ``value`` falls in a distribution known only by its quartiles, 0-100 by value.

    Linear between the quartiles (``p25`` -> 25, ``p50`` -> 50, ``p75`` -> 75). Below ``p25``
    and above ``p75`` the nearest inter-quartile slope is extended and the result **clipped to
    0 and 100**: a tail estimate from three points, so read 0 as "far below p25" and 100 as
    "far above p75", not as exact percentiles. A value equal to several tied quartiles gets
    their mean position.

    >>> percentile_position(0.3, 0.2, 0.4, 0.5), percentile_position(0.7, 0.2, 0.4, 0.5)
    (37.5, 100.0)
    """
    if any(map(_missing, (value, p25, p50, p75))):
        return math.nan
    qs = ((p25, 25.0), (p50, 50.0), (p75, 75.0))
    ties = [pct for q, pct in qs if q == value]
    if ties:
        return sum(ties) / len(ties)
    half_iqr = (p75 - p25) / 2
    if value < p25:
        width = (p50 - p25) or half_iqr
        return max(0.0, 25.0 - 25.0 * (p25 - value) / width) if width else 0.0
    if value > p75:
        width = (p75 - p50) or half_iqr
        return min(100.0, 75.0 + 25.0 * (value - p75) / width) if width else 100.0
    lo, hi = ((p25, 25.0), (p50, 50.0)) if value < p50 else ((p50, 50.0), (p75, 75.0))
    return lo[1] + 25.0 * (value - lo[0]) / (hi[0] - lo[0])


def external(
    values: pd.DataFrame,
    table: pd.DataFrame | str | Path,
    industry: str | None = None,
    segment: str | None = None,
    directions: Directions = None,
    period: Any = None,
) -> pd.DataFrame:
    """Compare each metric's value with an external benchmark table.

    Parameters
    ----------
    values : the engine's tidy frame without ``by`` (``metric, period_start, value``).
    table : a frame from :func:`load_benchmarks`, or the path of a benchmark CSV.
    industry, segment : choose rows (case-insensitive); None accepts any, but a metric must
        then have one row (the latest ``year`` wins when several years are listed).
    directions : a :class:`Plan`, a mapping metric id -> direction, or None (catalog).
    period : compare this period; default: each metric's latest period with a value.

    Returns
    -------
    One row per metric that has a benchmark row: ``metric, period_start, value, direction,
    unit, industry, segment, p25, p50, p75``, ``percentile`` (0-100 by value, see
    :func:`percentile_position`), ``better_than_pct`` (the same read with the direction:
    100 - percentile for lower-is-better), ``gap_to_median`` and ``gap_to_top_quartile``
    (positive = better; the top quartile is ``p75`` for higher-is-better and ``p25`` for
    lower-is-better), ``source, year, note`` and ``illustrative`` (True when the row is a
    placeholder, ``source == "illustrative"``: never present it as industry data).

    Examples
    --------
    >>> df = kpinb.compute(["bounce_rate"], sources={"web_sessions": "sessions.parquet"})  # doctest: +SKIP
    >>> external(df, "data/benchmarks.csv")[["value", "p50", "percentile", "gap_to_median"]]  # doctest: +SKIP
    """
    bench = _table(table)
    _check_frame(values, allow_dims=False, what="external()")
    direction = _direction_lookup(directions)
    g = _grain(values)
    rows = []
    for mid, frame in values.groupby("metric", sort=False):
        b = _select_rows(bench, str(mid), industry, segment)
        if b is None:
            continue
        p, v = _pick(frame, period, g, calendar_of(values))
        d = direction(str(mid))
        sign = 1.0 if d is Direction.higher_is_better else -1.0
        pct = percentile_position(v, b.p25, b.p50, b.p75)
        top = b.p75 if sign > 0 else b.p25
        rows.append(
            {
                "metric": mid,
                "period_start": p,
                "value": v,
                "direction": d.value,
                "unit": b.unit,
                "industry": b.industry,
                "segment": b.segment,
                "p25": b.p25,
                "p50": b.p50,
                "p75": b.p75,
                "percentile": pct,
                "better_than_pct": pct if sign > 0 else 100.0 - pct,
                "gap_to_median": _gap(sign, v, b.p50),
                "gap_to_top_quartile": _gap(sign, v, top),
                "source": b.source,
                "year": b.year,
                "note": b.get("note", ""),
                "illustrative": str(b.source).strip().casefold() == ILLUSTRATIVE,
            }
        )
    cols = [
        "metric",
        "period_start",
        "value",
        "direction",
        "unit",
        "industry",
        "segment",
        "p25",
        "p50",
        "p75",
        "percentile",
        "better_than_pct",
        "gap_to_median",
        "gap_to_top_quartile",
        "source",
        "year",
        "note",
        "illustrative",
    ]
    out = pd.DataFrame(rows, columns=cols)
    out["year"] = out["year"].astype("Int64")
    return out


# --- peers -------------------------------------------------------------------------------------


PEER_COLUMNS = (
    "metric", "period_start", "value", "rank", "n_peers", "percentile", "best", "median", "overall",
    "overall_kind", "gap_to_best", "gap_to_median", "gap_to_overall",
)  # fmt: skip
"""Columns of :func:`peers` besides the dimension's own (which follows ``period_start``)."""


def peers(
    df: pd.DataFrame,
    dimension: str,
    period: Any = None,
    overall: pd.DataFrame | Mapping[str, float] | float | None = None,
    directions: Directions = None,
) -> pd.DataFrame:
    """Compare each member of a dimension with the others, in one period.

    Parameters
    ----------
    df : the engine's tidy frame computed with ``by=[dimension]``.
    dimension : the column whose members are compared (``region``, ``team``...).
    period : the period to compare; default: each metric's latest period where a member has
        a value.
    overall : the metric for the whole (computed without ``by``): the engine's frame, a
        mapping metric id -> value, or a number (one metric). Default: the **median of the
        members** — not the whole's value for ratios and averages, so pass the real overall
        when you have it (``overall_kind`` says which was used).
    directions : a :class:`Plan`, a mapping metric id -> direction, or None (catalog).

    Returns
    -------
    One row per metric and member, best first: ``metric, period_start, <dimension>, value,
    rank`` (1 = best, direction-aware; ties share the better rank; members without a value
    have none), ``n_peers`` (members with a value), ``percentile`` (share of the *other*
    members this one beats, ties counting half, 0-100, 100 = best; NaN with one member),
    ``best, median, overall, overall_kind`` (``given`` or ``median_of_members``) and the
    direction-aware gaps ``gap_to_best`` (0 for the best, negative otherwise),
    ``gap_to_median`` and ``gap_to_overall``.

    Examples
    --------
    >>> df = kpinb.compute(["average_order_value"], sources=..., by=["region"])  # doctest: +SKIP
    >>> peers(df, "region")[["region", "value", "rank", "gap_to_best"]]  # doctest: +SKIP
    """
    _check_frame(df, allow_dims=True, what="peers()")
    dims = _dims(df)
    if dims != [dimension]:
        raise DataError(
            f"peers() compares the members of one dimension, but the frame is broken down by "
            f"{', '.join(dims) or 'nothing'}. Compute it with by=[{dimension!r}]."
        )
    direction = _direction_lookup(directions)
    g = _grain(df)
    rows = []
    for mid, frame in df.groupby("metric", sort=False):
        sign = 1.0 if direction(str(mid)) is Direction.higher_is_better else -1.0
        if period is None:
            have = frame.loc[frame["value"].notna(), "period_start"]
            if have.empty:
                continue
            p = have.max()
        else:
            p = _period(period, g, calendar_of(df))
        here = frame[frame["period_start"] == p]
        vals = here["value"].astype("float64")
        scored = (sign * vals).dropna()
        n = len(scored)
        best = vals[scored.idxmax()] if n else math.nan
        median = float(vals.median()) if n else math.nan
        if overall is None:
            whole, kind = median, "median_of_members"
        else:
            whole, kind = _overall(overall, str(mid), p), "given"
        for idx, member, v in zip(here.index, here[dimension], vals, strict=True):
            if pd.isna(v):
                rank, pct = pd.NA, math.nan
            else:
                s = sign * v
                rank = 1 + int((scored > s).sum())
                others = n - 1
                worse, ties = int((scored < s).sum()), int((scored == s).sum()) - 1
                pct = 100.0 * (worse + 0.5 * ties) / others if others else math.nan
            rows.append(
                {
                    "metric": mid,
                    "period_start": p,
                    dimension: member,
                    "value": v,
                    "rank": rank,
                    "n_peers": n,
                    "percentile": pct,
                    "best": best,
                    "median": median,
                    "overall": whole,
                    "overall_kind": kind,
                    "gap_to_best": _gap(sign, v, best),
                    "gap_to_median": _gap(sign, v, median),
                    "gap_to_overall": _gap(sign, v, whole),
                    "_order": idx,
                }
            )
    cols = ["metric", "period_start", dimension, *PEER_COLUMNS[2:]]
    out = pd.DataFrame(rows, columns=[*cols, "_order"])
    out["rank"] = out["rank"].astype("Int64")
    metric_order = {m: i for i, m in enumerate(dict.fromkeys(df["metric"]))}
    out["_metric"] = out["metric"].map(metric_order)
    out = out.sort_values(["_metric", "rank", "_order"], na_position="last", kind="stable")
    return out[cols].reset_index(drop=True)


def _overall(overall: Any, mid: str, p: pd.Timestamp) -> float:
    if isinstance(overall, pd.DataFrame):
        _check_frame(overall, allow_dims=False, what="peers(overall=...)")
        hit = overall[(overall["metric"] == mid) & (overall["period_start"] == p)]
        return float(hit["value"].iloc[0]) if len(hit) else math.nan
    if isinstance(overall, Mapping):
        return float(overall.get(mid, math.nan))
    return float(overall)


# --- own history -------------------------------------------------------------------------------


def history(df: pd.DataFrame, period: Any = None, directions: Directions = None) -> pd.DataFrame:
    """Compare the latest value with the same period last year and the best period before it.

    Parameters
    ----------
    df : the engine's tidy frame (with or without ``by``; each metric and dimension
        combination is compared with its own history).
    period : the period to compare; default: the latest period with a value, per series.
    directions : a :class:`Plan`, a mapping metric id -> direction, or None (catalog).

    Returns
    -------
    One row per metric (and dimension values): ``metric, <by...>, period_start, value,
    direction``; ``last_year_period, last_year_value`` (one year back, 52 weeks at day and
    week grain, as :mod:`kpinb.compare`), ``gap_to_last_year`` (positive = better) and
    ``gap_to_last_year_pct`` (that gap as a percent of ``abs(last_year_value)``; NaN when it is
    0 or missing); ``best_period, best_value`` (the best value *before* ``period_start``, the
    earliest on ties) and ``gap_to_best`` (positive = a new record).

    Examples
    --------
    >>> history(kpinb.compute(["customer_churn_rate"], sources=...))  # doctest: +SKIP
    """
    _check_frame(df, allow_dims=True, what="history()")
    dims = _dims(df)
    direction = _direction_lookup(directions)
    g = _grain(df)
    rows = []
    groups = df.groupby(["metric", *dims], sort=False, dropna=False)
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        mid = str(key[0])
        d = direction(mid)
        sign = 1.0 if d is Direction.higher_is_better else -1.0
        frame = frame.sort_values("period_start")
        series = frame.set_index("period_start")["value"].astype("float64")
        if period is None:
            have = series.dropna()
            if have.empty:
                continue
            p = have.index.max()
        else:
            p = _period(period, g, calendar_of(df))
        v = float(series.get(p, math.nan))
        ly_p = p - YEAR_AGO[g] if g else p - pd.DateOffset(years=1)
        ly = float(series.get(ly_p, math.nan))
        before = series[series.index < p].dropna()
        if before.empty:
            best_p, best = pd.NaT, math.nan
        else:
            best_p = (sign * before).idxmax()
            best = float(before[best_p])
        gap_ly = _gap(sign, v, ly)
        rows.append(
            {
                "metric": mid,
                **dict(zip(dims, key[1:], strict=True)),
                "period_start": p,
                "value": v,
                "direction": d.value,
                "last_year_period": ly_p,
                "last_year_value": ly,
                "gap_to_last_year": gap_ly,
                "gap_to_last_year_pct": gap_ly / abs(ly) * 100.0 if ly and not math.isnan(ly) else math.nan,
                "best_period": best_p,
                "best_value": best,
                "gap_to_best": _gap(sign, v, best),
            }
        )
    cols = [
        "metric",
        *dims,
        "period_start",
        "value",
        "direction",
        "last_year_period",
        "last_year_value",
        "gap_to_last_year",
        "gap_to_last_year_pct",
        "best_period",
        "best_value",
        "gap_to_best",
    ]
    return pd.DataFrame(rows, columns=cols)


# --- shared helpers ----------------------------------------------------------------------------


def _check_frame(df: pd.DataFrame, *, allow_dims: bool, what: str) -> None:
    missing = [c for c in ("metric", "period_start", "value") if c not in df.columns]
    if missing:
        raise DataError(
            f"{what}: the frame has no column(s) {', '.join(missing)}. Pass the tidy frame that "
            "kpinb.compute() returns (metric, period_start, <by...>, value, ...)."
        )
    if not allow_dims and _dims(df):
        raise DataError(
            f"{what}: the frame is broken down by {', '.join(_dims(df))}. Compute the metrics "
            "without `by=` (use peers() to compare the members of a dimension)."
        )


def _dims(df: pd.DataFrame) -> list[str]:
    by = df.attrs.get("by")
    if by is None:
        by = [c for c in df.columns if c not in _BASE]
    return [c for c in by if c in df.columns]


def _grain(df: pd.DataFrame) -> str | None:
    g = df.attrs.get("grain")
    return Grain(g).value if g is not None else None


def _period(value: Any, grain: str | None, cal: Calendar | None = None) -> pd.Timestamp:
    try:
        return period_start(value, grain, cal) if grain else pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"period {value!r} is not a date. Pass a date such as '2025-06-01'.") from None


def _pick(
    frame: pd.DataFrame, period: Any, grain: str | None, cal: Calendar | None = None
) -> tuple[pd.Timestamp, float]:
    """The row of ``period``, or the latest with a value: (period_start, value)."""
    if period is None:
        have = frame[frame["value"].notna()]
        if have.empty:
            return pd.NaT, math.nan
        row = have.loc[have["period_start"].idxmax()]
        return row["period_start"], float(row["value"])
    p = _period(period, grain, cal)
    hit = frame[frame["period_start"] == p]
    return p, float(hit["value"].iloc[0]) if len(hit) else math.nan


def _gap(sign: float, value: float, reference: float) -> float:
    """Direction-aware difference, positive = better (and 0.0, never -0.0, when equal)."""
    return sign * (value - reference) + 0.0


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def _direction_lookup(directions: Directions) -> Callable[[str], Direction]:
    from kpinb.definitions.plan import registry

    if isinstance(directions, Plan):
        table = {mid: m.direction for mid, m in registry(directions).items()}
        table.update({k.metric: k.direction for k in directions.kpis if k.direction is not None})
    else:
        table = {mid: m.direction for mid, m in registry(None).items()}
        for mid, d in (directions or {}).items():
            try:
                table[mid] = Direction(d)
            except ValueError:
                raise DataError(
                    f"direction {d!r} for metric {mid!r} is not higher_is_better or lower_is_better."
                ) from None

    def lookup(mid: str) -> Direction:
        if mid not in table:
            raise DataError(
                f"no direction is known for metric {mid!r}: it is not in the catalog. Pass "
                f"directions={{{mid!r}: 'higher_is_better'}} (or 'lower_is_better'), or the plan."
            )
        return table[mid]

    return lookup
