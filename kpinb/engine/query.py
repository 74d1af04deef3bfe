"""The engine: compute metrics per period and dimension, pushed down to the query engine.

All aggregate metrics of one source are computed in one grouped query (per-metric filters
become ``FILTER (WHERE ...)`` clauses); derived metrics are then combined from those small
aggregate tables. The result is tidy: one row per metric, period and dimension values.

>>> df = compute(["average_order_value"], sources={"orders": "data/sample/orders.parquet"},
...              grain="quarter", by=["region"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kpinb._shared import Shared
from kpinb.data.coverage import Coverage, coverage
from kpinb.data.engines import EngineFallback, backend_of, local_engine
from kpinb.data.expressions import compile_node, kind_of
from kpinb.data.sources import QUERY_LOCK, Table, conform, open_planned, query_error
from kpinb.data.values import unmapped
from kpinb.definitions import catalog
from kpinb.definitions.analysis import dependencies
from kpinb.definitions.formula import (
    BinOp,
    Call,
    Formula,
    Lit,
    Node,
    Prev,
    Ref,
    Unary,
    parse,
)
from kpinb.definitions.model import (
    DEFAULT_MAX_RESULT_ROWS,
    DEFAULT_STATEMENT_TIMEOUT_S,
    Calendar,
    Grain,
    Metric,
    Plan,
    Source,
)
from kpinb.engine import VALUE_COLUMNS
from kpinb.engine.calendar import STANDARD, period_ends, period_start, periods, truncate
from kpinb.errors import DataError, FormulaError, KpinbError, KpinbWarning, LimitError, PlanError

if TYPE_CHECKING:
    import pandas as pd


def compute(
    target: Plan | str | Metric | Sequence[str | Metric],
    *,
    metrics: Sequence[str] | None = None,
    grain: str | Grain = "month",
    by: Sequence[str] = (),
    start: Any = None,
    end: Any = None,
    sources: Mapping[str, Source | pd.DataFrame | str | Any] | None = None,
    max_result_rows: int | None = None,
    calendar: Calendar | None = None,
    check_values: bool = True,
    members: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Compute metrics per period (and dimension) into a tidy DataFrame.

    Parameters
    ----------
    target: a :class:`Plan` (its KPIs and their supporting metrics), or metric ids /
        :class:`Metric` definitions (then ``sources`` says where the data is).
    metrics: restrict a plan to these metric ids.
    grain: ``day``, ``week``, ``month``, ``quarter`` or ``year``.
    by: dimension columns to break every metric down by.
    start, end: inclusive date range; periods without data in it appear with missing values.
    sources: canonical source name -> file path, :class:`Source`, DataFrame or an ibis
        table (on any ibis backend, e.g. a Spark table: the query then runs there);
        overrides the plan's sources.
    max_result_rows: refuse (:class:`~kpinb.errors.LimitError`) a result of more rows than
        this; None: the plan's ``limits: {max_result_rows: ...}``, else
        :data:`~kpinb.model.DEFAULT_MAX_RESULT_ROWS`. The size is estimated before the query
        runs (periods x dimension members x metrics) and checked again exactly before missing
        periods are filled in, so a daily grain by a large dimension fails at once instead of
        exhausting memory.
    calendar: the time zone, fiscal year start and week start periods follow; None: the plan's
        (``timezone:``, ``fiscal_year_start:``, ``week_start:``), else weeks from Monday,
        calendar years and UTC.
    check_values: False skips the check that the catalog's filter values occur in the sources
        (``attrs["unmapped"]`` and its warning): for a subset of rows (the dashboard's one member)
        of a source whose every row the caller has checked.
    members: dimension -> member: only the rows of that member (compared as text), on whichever
        engine runs the source (the dashboard's first filter on a dimension). The days a source
        covers, hence complete periods, are the whole source's: a member without rows on the last
        day has no value there, not an incomplete period.

    Returns
    -------
    DataFrame with columns ``metric, period_start, <by...>, value, numerator, denominator,
    complete`` (numerator/denominator filled for ratio metrics). ``complete`` is True when every
    source the metric reads covers the whole period (from the period's first day, not before
    ``start``, through its last day: the source's latest row or its ``complete_through:``, not
    after ``end``) and the metric's ``matures_after`` has passed since the period ended; partial
    and immature periods are shown but not judged. ``attrs["coverage"]`` holds, per metric, the
    ``first`` and ``through`` days, ``matures_after_days`` and ``settled_through`` (the last
    period end whose values have settled, from the sources' own coverage) behind it. A zero denominator gives a missing
    value. ``attrs["unmapped"]`` maps a catalog metric whose filter value never occurs in its
    source's column (so it counts nothing) to the problem and its fix, which is also issued as a
    :class:`~kpinb.errors.KpinbWarning`. ``attrs["engines"]`` names the engine that ran each source:
    local Parquet files run on polars (measured faster) unless a query needs what only DuckDB
    does (``KPINB_LOCAL_ENGINE=duckdb`` keeps them on DuckDB).
    """
    import pandas as pd

    g = _grain(grain)
    by = list(dict.fromkeys([by] if isinstance(by, str) else by))
    plan, reg, ids = _resolve(target, metrics)
    specs: dict[str, Any] = dict(plan.sources) if plan is not None else {}
    specs.update(sources or {})
    base_dir = plan.base_dir if plan is not None else None
    cal = calendar or (plan.calendar if plan is not None else STANDARD)
    start_ts, end_ts = _date_arg(start, "start"), _date_arg(end, "end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise DataError(f"start {start} is after end {end}. Swap them.")

    limit = _max_rows(max_result_rows, plan)
    order = dependencies(ids, reg)
    by_source = _base_by_source(order, reg)
    results: list[dict[str, pd.DataFrame]] = []  # each query's metrics (their frames share its rows)
    estimated = 0
    flagged: dict[str, str] = {}
    covers: dict[str, Coverage] = {}
    engines: dict[str, str] = {}
    with QUERY_LOCK:
        for source, ms in by_source.items():
            spec = _spec(specs, source, ms)
            share = len(ms) * len(order) / max(1, sum(len(m) for m in by_source.values()))  # derived metrics too
            for engine in _engines(spec):
                try:
                    table = open_planned(
                        source, {**specs, source: spec}, base_dir, _timeout(plan), cal.timezone, engine
                    )  # fmt: skip
                    declared = spec if isinstance(spec, Source) else Source(path="<data>")
                    cover = coverage(
                        table, declared.complete_through, declared.row_covers.value if declared.row_covers else None
                    )
                    columns = spec.columns if isinstance(spec, Source) else None
                    problems = unmapped(table, ms, columns) if check_values else []
                    table = _members_only(table, members or {})  # the source's coverage, not the member's
                    found, rows = [], 0
                    for span, group in _by_window(ms).items():
                        got, n = _aggregate(
                            table, group, g, by, start_ts, end_ts, (limit, estimated + rows), share, _timeout(plan),
                            cal, span, cover.rows,
                        )  # fmt: skip
                        found.append(got)
                        rows += n
                    break
                except EngineFallback:  # polars cannot run it as DuckDB would: DuckDB runs it
                    continue
            engines[source] = getattr(backend_of(table.expr), "name", "ibis")
            covers[source] = cover
            for problem in problems:
                # a warning, not an error: the values are what the data says; `kpinb check` makes it an error
                warnings.warn(str(problem), KpinbWarning, stacklevel=2)
                flagged.update(dict.fromkeys(problem.metrics, str(problem)))
            results.extend(found)
            estimated += rows

    frames = {mid: f for got in results for mid, f in got.items()}
    if not frames:
        raise PlanError("no metric to compute. Name metric ids or give a plan with `kpis:`.")
    firsts = [f["period_start"].min() for f in frames.values() if len(f)]
    lasts = [f["period_start"].max() for f in frames.values() if len(f)]
    first = start_ts if start_ts is not None else (min(firsts) if firsts else None)
    last = end_ts if end_ts is not None else (max(lasts) if lasts else None)
    if first is None or last is None:
        names = ", ".join(sorted(by_source))
        raise DataError(f"no rows with a date in source(s) {names}. Check that the data is not empty.")
    spine = periods(first, last, g, cal)
    # exact now: every metric gets every period for every member combination its source has
    combos = {mid: len(f[by].drop_duplicates()) if by else 1 for mid, f in frames.items()}
    cells = len(spine) * (sum(combos.values()) + max(combos.values(), default=0) * (len(order) - len(frames)))
    if cells > limit:
        raise _too_large(cells, len(spine), max(combos.values(), default=1), len(order), g, by, limit)
    wide = {mid: f for got in results for mid, f in _complete(got, spine, by).items()}
    for mid in order:
        if reg[mid].derived:
            wide[mid] = _derive(reg[mid], wide, by)
    out = pd.concat([wide[mid].assign(metric=mid) for mid in ids], ignore_index=True)
    out = out[["metric", "period_start", *by, *VALUE_COLUMNS]]
    spans = {mid: _span(mid, reg, covers, start_ts, end_ts) for mid in ids}
    out["complete"] = _complete_periods(out, spans, g, cal)
    for mid in ids:  # a trailing or to-date window reaching before the data is partial too
        span_of = reg[mid].span
        if span_of is not None and span_of != "all" and spans[mid]["first"] is not None:
            rows = out["metric"] == mid
            lo = _window_bounds(out.loc[rows, "period_start"], span_of, g, cal)[0]
            out.loc[rows, "complete"] &= (lo >= spans[mid]["first"]).to_numpy()
    shared = {k: Shared(v) for k, v in {"unmapped": flagged, "coverage": spans, "engines": engines}.items()}
    out.attrs.update(grain=g, by=tuple(by), calendar=cal, **shared)
    return out


def _span(mid: str, reg: Mapping[str, Metric], covers: Mapping[str, Coverage], start: Any, end: Any) -> dict[str, Any]:
    """What a metric's periods are complete against: the days every source it reads covers (within
    the requested start and end) and how long its values take to settle."""
    import pandas as pd

    needed = [reg[d] for d in dependencies([mid], reg)]
    spans = [covers.get(m.source or "") for m in needed if not m.derived]
    firsts = [c.first for c in spans if c is not None]
    throughs = [c.through for c in spans if c is not None]
    known = spans and all(c is not None and c.first is not None and c.through is not None for c in spans)
    first = max(firsts) if known else None
    through = settled = min(throughs) if known else None
    if first is not None and start is not None:
        first = max(first, pd.Timestamp(start).normalize())
    if through is not None and end is not None:
        through = min(through, pd.Timestamp(end).normalize())
    days = max((m.matures_after.days for m in needed if m.matures_after is not None), default=0)
    # values settle with the data's own age: `end` cuts the rows counted, not how old their outcomes are
    settled = settled - pd.Timedelta(days=days) if settled is not None else None
    return {"first": first, "through": through, "matures_after_days": days, "settled_through": settled}


def _complete_periods(out: pd.DataFrame, spans: Mapping[str, dict[str, Any]], grain: str, cal: Calendar) -> pd.Series:
    """True where the period lies inside what every source of the row's metric covers and its
    value has had time to settle (``matures_after``)."""
    import numpy as np
    import pandas as pd

    ends = period_ends(out["period_start"], grain, cal)
    complete = np.zeros(len(out), dtype=bool)
    for mid, span in spans.items():
        if span["first"] is None or span["through"] is None:
            continue
        rows = (out["metric"] == mid).to_numpy()
        last = min(span["through"], span["settled_through"])
        complete[rows] = (out["period_start"].to_numpy()[rows] >= span["first"].to_datetime64()) & (
            ends.to_numpy()[rows] <= last.to_datetime64()
        )
    return pd.Series(complete, index=out.index, dtype=bool)


def _engines(spec: Any) -> tuple[str, ...]:
    """The engines to try for a source, in order: a local file may go to polars first
    (``local_engine()``), DuckDB runs whatever polars cannot."""
    local = isinstance(spec, (str, os.PathLike)) or (isinstance(spec, Source) and spec.url is None)
    if local and local_engine() == "polars":
        return ("polars", "duckdb")
    return ("duckdb",)


def _timeout(plan: Plan | None) -> float:
    return plan.limits.statement_timeout_s if plan is not None else DEFAULT_STATEMENT_TIMEOUT_S


def _max_rows(given: int | None, plan: Plan | None) -> int:
    if given is None:
        return plan.limits.max_result_rows if plan is not None else DEFAULT_MAX_RESULT_ROWS
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise PlanError(f"max_result_rows={given!r}: give a whole number of rows, 1 or more.")
    return given


def _too_large(rows: int, n_periods: int, n_members: int, n_metrics: int, grain: str, by: Sequence[str],
               limit: int) -> LimitError:  # fmt: skip
    members = f" x {n_members:,} {'/'.join(by)} member combinations" if by else ""
    narrower = ["a coarser grain (e.g. month)" if grain in ("day", "week") else None,
                f"fewer or smaller `by` dimensions than {', '.join(by)}" if by else None,
                "a shorter start/end range", "fewer metrics"]  # fmt: skip
    return LimitError(
        f"the result would have about {rows:,} rows ({n_periods:,} {grain} periods{members} x {n_metrics} "
        f"metric(s)), more than max_result_rows={limit:,}. Narrow it: {', '.join(n for n in narrower if n)}; "
        "or raise the limit with `limits: {max_result_rows: N}` in the plan (--max-result-rows N on the command line)."
    )


def _grain(grain: str | Grain) -> str:
    try:
        return Grain(grain).value
    except ValueError:
        raise PlanError(
            f"grain {str(grain)[:40]!r} is not one of day, week, month, quarter, year. Use one of them."
        ) from None


# pandas holds nanosecond timestamps: periods must fall inside these years
_FIRST_YEAR, _LAST_YEAR = 1678, 2261


def _date_arg(value: Any, what: str) -> pd.Timestamp | None:
    """``start``/``end`` as a naive Timestamp, or a DataError saying how to write it."""
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = None
    if ts is None or ts is pd.NaT:
        raise DataError(f"{what} {str(value)[:60]!r} is not a date. Write it as YYYY-MM-DD.")
    if not _FIRST_YEAR <= ts.year <= _LAST_YEAR:
        raise DataError(
            f"{what} {str(value)[:60]!r} is out of range. Use a date in the years {_FIRST_YEAR}-{_LAST_YEAR}."
        )
    return ts.tz_localize(None) if ts.tz is not None else ts


def queries(
    target: Plan | str | Metric | Sequence[str | Metric],
    *,
    metrics: Sequence[str] | None = None,
    grain: str | Grain = "month",
    by: Sequence[str] = (),
    sources: Mapping[str, Source | pd.DataFrame | str | Any] | None = None,
    calendar: Calendar | None = None,
) -> dict[str, str]:
    """The SQL the engine sends, one query per source (arguments as for :func:`compute`).

    >>> print(queries(plan)["orders"])  # doctest: +SKIP
    """
    import ibis

    g = _grain(grain)
    by = [by] if isinstance(by, str) else list(by)
    plan, reg, ids = _resolve(target, metrics)
    specs: dict[str, Any] = dict(plan.sources) if plan is not None else {}
    specs.update(sources or {})
    cal = calendar or (plan.calendar if plan is not None else STANDARD)
    out = {}
    with QUERY_LOCK:  # opening a file source registers a view on the shared connection
        for source, ms in _base_by_source(dependencies(ids, reg), reg).items():
            table = open_planned(
                source, {**specs, source: _spec(specs, source, ms)}, plan.base_dir if plan else None,
                _timeout(plan), cal.timezone,
            )  # fmt: skip
            query, _, _ = _build(table, ms, g, by, None, None, cal)
            out[source] = ibis.to_sql(query)
    return out


def _base_by_source(order: list[str], reg: Mapping[str, Metric]) -> dict[str, list[Metric]]:
    by_source: dict[str, list[Metric]] = {}
    for mid in order:
        if not reg[mid].derived:
            by_source.setdefault(reg[mid].source or "", []).append(reg[mid])
    return by_source


def _spec(specs: Mapping[str, Any], source: str, ms: list[Metric]) -> Any:
    if source not in specs:
        raise PlanError(
            f"metric {ms[0].id!r} reads source {source!r}, which is not given. "
            f"Declare `{source}:` under the plan's `sources:` or pass sources={{{source!r}: path}}."
        )
    return specs[source]


def _resolve(target: Any, metrics: Sequence[str] | None) -> tuple[Plan | None, dict[str, Metric], list[str]]:
    from kpinb.definitions.plan import registry

    if isinstance(target, Plan):
        reg = registry(target)
        ids = list(metrics) if metrics else _plan_metric_ids(target)
        return target, reg, ids
    items = [target] if isinstance(target, (str, Metric)) else list(target)
    reg = catalog.metrics()
    ids = []
    for item in items:
        if isinstance(item, Metric):
            reg[item.id] = item
            ids.append(item.id)
        else:
            ids.append(item)
    for mid in ids:
        if mid not in reg:
            catalog.get(mid)  # raises with suggestions
    return None, reg, list(dict.fromkeys(ids))


def _plan_metric_ids(plan: Plan) -> list[str]:
    ids: list[str] = []
    for k in plan.kpis:
        ids.extend([k.metric, *k.supporting])
    return list(dict.fromkeys(ids))


def _build(
    table: Table, ms: list[Metric], grain: str, by: list[str], start: Any, end: Any, cal: Calendar = STANDARD,
    window: Any = None,
) -> tuple[Any, list[tuple[Metric, Formula]], tuple[Any, Any]]:
    """The grouped ibis query computing all metrics ``ms`` of one source, its parsed formulas,
    and the filtered rows it groups with their time column (for the size estimate)."""
    import ibis
    import pandas as pd

    canon = catalog.sources().get(table.name)
    types = dict(canon.columns) if canon else {}
    parsed: list[tuple[Metric, Formula, Formula | None]] = []
    needed: dict[str, str | None] = {}
    for m in ms:
        f = _parse(m, m.expr, "aggregate", table)
        w = _parse(m, m.where, "row", table) if m.where else None
        parsed.append((m, f, w))
        for c in f.columns | (w.columns if w else frozenset()):
            needed[c] = types.get(c)
    if not table.time:
        raise PlanError(f"source {table.name!r} has no time column. Add `time:` to the source.")
    needed[table.time] = "timestamp"
    for d in by:
        if d not in table.columns:
            raise DataError(
                f"source {table.name!r} ({table.label}) has no column {d!r} to break down by "
                f"(metrics {', '.join(m.id for m in ms)}). Its dimensions: "
                f"{', '.join(table.dimensions) or 'none'}. Drop {d!r} from `by` or add the column."
            )
        needed[d] = "string"
    table = conform(table, needed)
    t = table.expr
    tcol = t[table.time]
    cond = tcol.notnull()
    if start is not None and window is None:  # a window reaches back before the first period shown
        cond &= tcol >= ibis.literal(start.to_pydatetime())
    if end is not None:
        end_excl = pd.Timestamp(end).normalize() + pd.Timedelta(days=1)
        cond &= tcol < ibis.literal(end_excl.to_pydatetime())
    t = t.filter(cond)
    tcol = t[table.time]
    if not tcol.type().is_timestamp():
        tcol = tcol.cast("timestamp")
    rows_of = (t, tcol)
    if window is not None:  # each period joins the rows of its window: exact for every aggregate
        t = t.mutate(**{table.time: tcol})
        spine = _window_spine(t, t[table.time], window, grain, cal, start)
        preds = [t[table.time] < spine["kpinb_hi"]]
        if window != "all":
            preds.append(t[table.time] >= spine["kpinb_lo"])
        t = t.inner_join(spine, preds)
    aggs: dict[str, Any] = {}
    for i, (m, f, w) in enumerate(parsed):
        try:
            wexpr = compile_node(w.tree, t, None, f"metric {m.id!r}") if w else None
            if wexpr is not None and kind_of(wexpr) != "true/false":
                if kind_of(wexpr) != "null":
                    raise FormulaError(
                        f"metric {m.id!r}: `where:` {_short(m.where)!r} gives {kind_of(wexpr)}, not true/false. "
                        "Compare a column, e.g. revenue > 0 or status = 'completed'."
                    )
                wexpr = wexpr.cast("boolean")
            parts = {"num": f.ratio[0], "den": f.ratio[1]} if f.ratio else {"val": f.tree}
            for suffix, node in parts.items():
                value = compile_node(node, t, wexpr, f"metric {m.id!r}")
                if kind_of(value) == "null":
                    value = value.cast("float64")
                if kind_of(value) not in ("number", "true/false"):
                    raise FormulaError(
                        f"metric {m.id!r}: formula {_short(m.expr)!r} gives {kind_of(value)}, not a number. "
                        "Aggregate numeric columns (sum, avg, count...)."
                    )
                aggs[f"m{i}_{suffix}"] = value
        except KpinbError:
            raise
        except Exception as e:  # a combination the checks above missed: still the formula's fault
            raise FormulaError(
                f"metric {m.id!r}: formula {_short(m.expr)!r} cannot be built ({type(e).__name__}). "
                "Use values of one kind in each operation, and the allowed functions."
            ) from None
    period = (t["kpinb_p"] if window is not None else truncate(tcol, grain, cal)).name("period_start")
    # an aggregate several metrics share (the orders count of AOV and of the orders KPI) runs once:
    # engines do not merge equal distinct counts, the costliest aggregates there are
    first: dict[Any, str] = {}
    same = {name: first.setdefault(value.op(), name) for name, value in aggs.items()}
    query = t.group_by([period, *by]).aggregate(**{name: aggs[name] for name in first.values()})
    if len(first) < len(aggs):
        query = query.mutate(**{name: query[col] for name, col in same.items() if name != col})
    return query, [(m, f) for m, f, _ in parsed], rows_of


def _by_window(ms: list[Metric]) -> dict[Any, list[Metric]]:
    """The metrics of one source grouped by their window (None: the period itself): one query each."""
    out: dict[Any, list[Metric]] = {}
    for m in ms:
        out.setdefault(m.span, []).append(m)
    return out


def _window_bounds(starts: Any, span: Any, grain: str, cal: Calendar) -> tuple[pd.Series, pd.Series]:
    """(first day, day after the last) of the window ending with each period starting on ``starts``."""
    import pandas as pd

    starts = pd.Series(pd.DatetimeIndex(starts))
    hi = pd.Series(period_ends(starts, grain, cal) + pd.Timedelta(days=1))
    if span == "all":
        return pd.Series(pd.NaT, index=starts.index, dtype="datetime64[ns]"), hi
    if isinstance(span, str):  # to_date:<grain>
        coarse = span.split(":", 1)[1]
        return starts.map(lambda s: period_start(s, coarse, cal)), hi
    offset = pd.DateOffset(**_window_length(span))
    return hi.map(lambda h: h - offset), hi


def _window_length(span: tuple[int, str]) -> dict[str, int]:
    """A trailing window's length as ``days`` or ``months`` (the keywords of both pandas'
    DateOffset and ibis' interval: the query's bounds and the completeness check's are one rule)."""
    n, unit = span
    if unit in ("day", "week"):
        return {"days": n * (7 if unit == "week" else 1)}
    return {"months": n * {"month": 1, "quarter": 3, "year": 12}[unit]}


_STEP = {"day": {"days": 1}, "week": {"days": 7}, "month": {"months": 1}, "quarter": {"months": 3},
         "year": {"months": 12}}  # fmt: skip


def _window_spine(t: Any, tcol: Any, span: Any, grain: str, cal: Calendar, start: Any) -> Any:
    """The periods of the rows (from ``start``) with each window's bounds, in SQL (a read-only
    database session cannot hold a table sent from here): ``kpinb_p``, ``kpinb_lo``, ``kpinb_hi``."""
    import ibis

    p = truncate(tcol, grain, cal)
    spine = t.select(kpinb_p=p).distinct()
    if start is not None:
        spine = spine.filter(spine["kpinb_p"] >= ibis.literal(period_start(start, grain, cal).to_pydatetime()))
    hi = spine["kpinb_p"] + ibis.interval(**_STEP[grain])
    if span == "all":
        lo = spine["kpinb_p"]
    elif isinstance(span, str):  # to_date:<grain>
        lo = truncate(spine["kpinb_p"], span.split(":", 1)[1], cal)
    else:
        lo = hi - ibis.interval(**_window_length(span))
    return spine.mutate(kpinb_lo=lo, kpinb_hi=hi)


def _execute(query: Any, table: Table, timeout_s: float) -> pd.DataFrame:
    """``query.execute()``; on DuckDB a timer interrupts it after ``timeout_s`` (a LimitError)."""
    import threading

    backend = backend_of(query)
    if getattr(backend, "name", "") == "polars":
        return _execute_polars(query, backend, table, timeout_s)
    raw = getattr(backend, "con", None) if getattr(backend, "name", "") == "duckdb" else None
    fired, done, guard = threading.Event(), threading.Event(), threading.Lock()
    retry = min(0.05, max(0.001, timeout_s))  # an interrupt before the query starts is lost: soon again

    def interrupt() -> None:
        if done.wait(timeout_s):
            return
        fired.set()
        while True:  # again until it ends: an interrupt before the query starts is lost
            with guard:  # never after this query ended (the next one on the connection is not ours)
                if done.is_set():
                    return
                raw.interrupt()
            done.wait(retry)

    timer = None
    if raw is not None and hasattr(raw, "interrupt"):
        timer = threading.Thread(target=interrupt, name="kpinb-statement-timeout", daemon=True)
        timer.start()
    try:
        return query.execute()
    except Exception as e:
        if fired.is_set():
            raise _timed_out(table, timeout_s) from None
        raise query_error(table, e) from None
    finally:
        with guard:
            done.set()


def _timed_out(table: Table, timeout_s: float) -> LimitError:
    return LimitError(
        f"source {table.name!r} ({table.label}): the query ran longer than statement_timeout_s={timeout_s:g} "
        "and was interrupted. Narrow it (a shorter start/end range, a coarser grain, fewer `by` dimensions), "
        "or raise the limit with `limits: {statement_timeout_s: N}` in the plan (--statement-timeout-s N)."
    )


def _execute_polars(query: Any, backend: Any, table: Table, timeout_s: float) -> pd.DataFrame:
    """``query`` collected by polars in a worker thread while this thread waits, at most
    ``timeout_s`` (a LimitError) and never past Ctrl-C.

    polars (2.1) cannot stop a running query: one given up on finishes in its thread, its result
    dropped. Not ``collect(background=True)``: its peak memory is ~550 MB higher on the sales
    set at 10M rows (measured), and polars aborts the process when a running query's handle
    is dropped."""
    import threading
    import time

    try:
        lazy = backend.compile(query)
    except Exception as e:
        raise query_error(table, e) from None
    box: dict[str, Any] = {}

    def collect() -> None:
        try:
            box["df"] = lazy.collect()
        except BaseException as e:  # reported by the waiting thread
            box["error"] = e

    worker = threading.Thread(target=collect, name="kpinb-polars", daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout_s
    while worker.is_alive():
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(table, timeout_s)
        worker.join(min(left, 0.05))  # short waits: Ctrl-C lands between them
    if "error" in box:
        raise query_error(table, box["error"]) from None
    df = box["df"]
    names = tuple(query.columns)
    if tuple(df.columns) != names:  # as ibis does: polars may name a column otherwise
        df = df.rename(dict(zip(df.columns, names, strict=True)))
    return query.__pandas_result__(df.to_pandas())


_ESTIMATE_ROWS = 1_000_000
"""Rows an estimate counts the members of ``by`` in: past them the count is a lower bound (a
dimension large enough to run away shows in the first million rows; the exact check after the
query counts every row)."""


def _estimate(
    table: Table, rows_of: tuple[Any, Any], grain: str, by: list[str], start: Any, end: Any,
    days: tuple[Any, Any] = (None, None),
) -> tuple[int, int]:  # fmt: skip
    """(periods, member combinations) the grouped query over ``rows_of`` = (table, time) would complete to.

    ``days``: the first and last row's day where the source's coverage read them already; else a
    min/max query (unless ``start`` and ``end`` say it). Then the distinct ``by`` combinations in
    the source's first :data:`_ESTIMATE_ROWS` rows: far cheaper than a runaway result.
    """
    import pandas as pd

    t, tcol = rows_of
    try:
        if (start is None and days[0] is None) or (end is None and days[1] is None):
            span = t.aggregate(lo=tcol.min(), hi=tcol.max()).execute().iloc[0]
            days = (span["lo"], span["hi"])
        head = table.expr.limit(_ESTIMATE_ROWS)  # the source's first rows: a filter before would read them all
        if len(by) == 1:  # members with a missing value are one group more: the exact check counts it
            members = int(head.aggregate(n=head[by[0]].nunique()).execute()["n"].iloc[0])
        else:
            members = int(head.select(*by).distinct().count().execute()) if by else 1
    except Exception as e:
        raise query_error(table, e) from None

    def naive(value: Any) -> Any:  # wall-clock time: an estimate need not know the time zone
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):  # a date pandas cannot hold: the query reports it
            return pd.NaT
        return stamp.tz_localize(None) if not pd.isna(stamp) and stamp.tzinfo else stamp

    lo = naive(start if start is not None else days[0])
    hi = naive(end if end is not None else days[1])
    if pd.isna(lo) or pd.isna(hi) or lo > hi:
        return 0, members
    return len(periods(lo, hi, grain)), members  # at most ~200k days between pandas' first and last date


def _aggregate(
    table: Table, ms: list[Metric], grain: str, by: list[str], start: Any, end: Any,
    budget: tuple[int, int] = (DEFAULT_MAX_RESULT_ROWS, 0), share: float = 1.0,
    timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S, cal: Calendar = STANDARD,
    window: Any = None, days: tuple[Any, Any] = (None, None),
) -> tuple[dict[str, pd.DataFrame], int]:  # fmt: skip
    """Run one grouped query for all metrics of a source; returns metric id -> long frame, and
    the rows the completed result is estimated to have.

    ``budget`` = (max_result_rows, rows already estimated for other sources): a LimitError is
    raised before the query runs when this source would take the total past the limit.
    ``share``: metrics (with derived ones) the result holds per metric of this source.
    ``timeout_s``: the embedded DuckDB query is interrupted after that long (database servers
    enforce their own ``statement_timeout``, set when the session opens). ``days``: the source's
    first and last row's day (its coverage), so that the size estimate need not read them again."""
    import pandas as pd

    query, parsed, rows_of = _build(table, ms, grain, by, start, end, cal, window)
    estimated = 0
    if by:  # without a breakdown the result is one row per period and metric: small
        n_periods, n_members = _estimate(table, rows_of, grain, by, start, end, days)
        n_metrics = max(1, round(len(ms) * share))
        estimated = n_periods * n_members * n_metrics
        limit, used = budget
        if used + estimated > limit:
            raise _too_large(used + estimated, n_periods, n_members, n_metrics, grain, by, limit)
    df = _execute(query, table, timeout_s)
    df["period_start"] = _period_stamps(df["period_start"], table)
    out = {}
    for i, (m, f) in enumerate(parsed):
        if f.ratio:
            num = df[f"m{i}_num"].astype("float64")
            den = df[f"m{i}_den"].astype("float64")
            value = num / den.where(den != 0)
        else:
            num = den = pd.Series(float("nan"), index=df.index)
            value = df[f"m{i}_val"].astype("float64")
        frame = df[["period_start", *by]].copy()
        frame["value"], frame["numerator"], frame["denominator"] = value, num, den
        out[m.id] = frame
    return out, estimated


def _members_only(table: Table, members: Mapping[str, str]) -> Table:
    """``table`` with only the rows whose dimension ``d`` is ``members[d]`` (as text)."""
    import dataclasses

    for d, member in members.items():
        if d not in table.columns:
            raise DataError(
                f"source {table.name!r} ({table.label}) has no column {d!r} to keep the member {member!r} of. "
                f"Its dimensions: {', '.join(table.dimensions) or 'none'}."
            )
        table = dataclasses.replace(table, expr=table.expr.filter(table.expr[d].cast("string") == member))
    return table


def _short(text: str | None, limit: int = 120) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _period_stamps(raw: pd.Series, table: Table) -> pd.Series:
    """Period starts as naive nanosecond timestamps; dates pandas cannot hold are a DataError."""
    import pandas as pd

    try:
        stamps = pd.to_datetime(raw)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)
        years = stamps.dropna().dt.year
        if len(years) and (years.min() < _FIRST_YEAR or years.max() > _LAST_YEAR):
            raise OverflowError
        return stamps.astype("datetime64[ns]")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        shown = sorted(str(v)[:10] for v in raw.dropna())
        span = f" (its periods run from {shown[0]} to {shown[-1]})" if shown else ""
        raise DataError(
            f"source {table.name!r} ({table.label}): column {table.time!r} has dates outside the years "
            f"{_FIRST_YEAR}-{_LAST_YEAR}{span}. Fix or remove those rows, or leave them out with `start`/`end`."
        ) from None


def _parse(m: Metric, text: str, kind: Any, table: Table) -> Formula:
    field = "expr" if kind == "aggregate" else "where"
    canon = catalog.sources().get(table.name)
    # canonical columns absent from the data are reported by conform() with the mapping fix
    known = set(table.columns) | (set(canon.columns) if canon else set())
    try:
        return parse(text, kind=kind, columns=known)
    except FormulaError as e:
        raise FormulaError(f"metric {m.id!r} `{field}` on source {table.name!r} ({table.label}): {e}") from None


def _complete(got: Mapping[str, pd.DataFrame], spine: pd.DatetimeIndex, by: list[str]) -> dict[str, pd.DataFrame]:
    """One query's metric frames (the same rows: the query's) reindexed to every period x every
    dimension combination seen, sorted: together, as one frame (a reindex per metric was 5-9 ms of
    pandas overhead each)."""
    import numpy as np
    import pandas as pd

    if not got:
        return {}
    keys = ["period_start", *by]
    first = next(iter(got.values()))
    keep = ((first["period_start"] >= spine[0]) & (first["period_start"] <= spine[-1])).to_numpy()
    named = {mid: [f"kpinb_{i}_{c}" for c in VALUE_COLUMNS] for i, mid in enumerate(got)}
    columns: dict[str, Any] = {k: first.loc[keep, k] for k in keys}
    # the spine's unit: reindex keeps the frame's own index when the two are equal (values, not
    # units), so the result's unit would depend on the order the engine returned the groups in
    columns["period_start"] = columns["period_start"].astype(spine.dtype)
    for mid, f in got.items():  # arrays of one dtype: one block, not a block per column
        columns.update({n: f[c].to_numpy()[keep] for c, n in zip(VALUE_COLUMNS, named[mid], strict=True)})
    frame = pd.DataFrame(columns)
    if by:
        combos = frame[by].drop_duplicates().sort_values(by, na_position="last")
        if combos.empty:
            return {mid: f.loc[keep].iloc[0:0].astype({"period_start": spine.dtype}) for mid, f in got.items()}
        # combos x periods without a Python tuple per cell (the size was checked in compute)
        codes = np.repeat(np.arange(len(combos)), len(spine))
        index = pd.MultiIndex.from_arrays(
            [*(combos[d].to_numpy()[codes] for d in by), np.tile(spine.to_numpy(), len(combos))],
            names=[*by, "period_start"],
        )
        full = frame.set_index([*by, "period_start"]).reindex(index)
    else:
        full = frame.set_index("period_start").reindex(spine)
    full = full.reset_index()
    return {mid: full[[*keys, *named[mid]]].set_axis([*keys, *VALUE_COLUMNS], axis=1) for mid in got}


def _derive(m: Metric, wide: dict[str, pd.DataFrame], by: list[str]) -> pd.DataFrame:
    """Evaluate a derived metric over the completed frames of the metrics it refers to."""
    import pandas as pd

    f = parse(m.expr, kind="derived")
    keys = [*by, "period_start"]
    joined: pd.DataFrame | None = None
    for ref in sorted(f.refs):
        col = wide[ref].set_index(keys)["value"].rename(ref)
        joined = col.to_frame() if joined is None else joined.join(col, how="outer")
    assert joined is not None
    joined = joined.sort_index()
    env = {c: joined[c] for c in joined.columns}
    grouped = joined.groupby(level=by, sort=False, dropna=False) if by else None
    prev = {c: (grouped[c].shift(1) if grouped is not None else joined[c].shift(1)) for c in joined.columns}

    def ev(n: Node) -> Any:
        return _evaluate(n, env, prev, m)

    if f.ratio:
        num, den = _series(ev(f.ratio[0]), joined.index), _series(ev(f.ratio[1]), joined.index)
        value = num / den.where(den != 0)
    else:
        value = _series(ev(f.tree), joined.index)
        num = den = pd.Series(float("nan"), index=joined.index)
    out = pd.DataFrame({"value": value, "numerator": num, "denominator": den}, index=joined.index)
    return out.reset_index()[["period_start", *by, *VALUE_COLUMNS]]


def _series(x: Any, index: Any) -> pd.Series:
    import pandas as pd

    if isinstance(x, pd.Series):
        return x.astype("float64")
    return pd.Series(float("nan") if x is None else float(x), index=index)


def _evaluate(n: Node, env: dict[str, Any], prev: dict[str, Any], m: Metric) -> Any:
    import numpy as np
    import pandas as pd

    def ev(x: Node) -> Any:
        return _evaluate(x, env, prev, m)

    if isinstance(n, Ref):
        return env[n.metric]
    if isinstance(n, Prev):
        return prev[n.ref.metric]
    if isinstance(n, Lit):
        if isinstance(n.value, str):
            raise FormulaError(f"metric {m.id!r}: text {n.value!r} in a derived metric. Use numbers.")
        return np.nan if n.value is None else float(n.value)
    if isinstance(n, Unary) and n.op == "neg":
        return -ev(n.arg)
    if isinstance(n, BinOp) and n.op in "+-*/":
        a, b = ev(n.left), ev(n.right)
        if n.op == "/":
            if isinstance(b, pd.Series):
                return a / b.where(b != 0)
            return a / b if b != 0 else np.nan * a
        return a + b if n.op == "+" else a - b if n.op == "-" else a * b
    if isinstance(n, Call):
        args = [ev(a) for a in n.args]
        if n.func == "coalesce":
            out = args[0]
            for a in args[1:]:
                out = out.fillna(a) if isinstance(out, pd.Series) else (a if np.isnan(out) else out)
            return out
        a, b = args
        return a.where(a != b) if isinstance(a, pd.Series) else (np.nan if a == b else a)
    raise FormulaError(
        f"metric {m.id!r}: derived metrics combine metrics with + - * /, coalesce, nullif and "
        "prev(); comparisons and case belong in aggregate metrics."
    )
