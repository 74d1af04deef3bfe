"""The checks that read data: the one module through which the checks reach the data layer.

``achievable`` judges a target against the KPI's computed history, :func:`data_quality`
queries the plan's sources, :func:`unmapped_values` looks for catalog filter values the data
never holds, and the ``benchmarks:`` file is read and checked here. They return the same
:class:`~kpinb.checks.rules.Issue` as the plan rules of :mod:`kpinb.checks.rules`;
:mod:`kpinb.checks.lint` runs them all and is the public entry point.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kpinb._numbers import display_unit, format_value
from kpinb.checks.rules import Issue, _Ctx, _kpi_needs
from kpinb.definitions.formula import parse
from kpinb.definitions.model import KPI, Direction, Grain, Metric, Plan
from kpinb.errors import FormulaError, KpinbError

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.data.values import Unmapped

__all__ = ["data_quality", "unmapped_values"]

_GRAIN_ORDER = ("day", "week", "month", "quarter", "year")


# --- the achievable rule: a target against the KPI's history ----------------------------------


def _direction(ctx: _Ctx, k: KPI) -> Direction:
    return k.direction or ctx.reg[k.metric].direction


def _achievable(ctx: _Ctx, k: KPI) -> list[Issue]:
    from kpinb.engine.calendar import period_start, periods

    if ctx.data is None or k.target is None or k.target.by is None or k.metric not in ctx.reg:
        return []
    rows = ctx.data[ctx.data["metric"] == k.metric]
    g = ctx.data.attrs.get("grain") or k.grain.value
    g = Grain(g).value
    series = rows.set_index("period_start")["value"].astype("float64").sort_index().dropna()
    series = series[~series.index.duplicated()]
    if len(series) < 3:
        return []
    cal = ctx.data.attrs.get("calendar")
    spine = periods(series.index.min(), series.index.max(), g, cal)
    pos = spine.get_indexer(series.index)  # period numbers; a gap makes a jump
    last_p, last_v = series.index[-1], float(series.iloc[-1])
    deadline = period_start(k.target.by, g, cal)
    left = len(periods(last_p, deadline, g, cal)) - 1 if deadline > last_p else 0
    if left <= 0:
        return []
    sign = 1.0 if _direction(ctx, k) is Direction.higher_is_better else -1.0
    metric = ctx.reg[k.metric]

    def fmt(x: float) -> str:
        return format_value(x, display_unit(metric, metric.unit))

    target = float(k.target.value)
    need = sign * (target - last_v)
    unit = g
    if need <= 0:
        return [
            Issue(
                "info",
                "achievable",
                k.metric,
                f"KPI {k.metric!r}: the latest value {fmt(last_v)} ({last_p:%Y-%m-%d}) already meets the "
                f"target {fmt(target)}.",
                "Raise the target if it should still stretch the team, or check `direction:`.",
            )
        ]
    per_period = need / left
    values = series.to_numpy()
    steps = [sign * (values[i] - values[i - 1]) / (pos[i] - pos[i - 1]) for i in range(1, len(values))]
    best_step = max(steps)
    reasons = []
    if best_step <= 0:
        reasons.append(
            f"it needs {fmt(per_period)} better per {unit} for {left} {unit}s, but the history never "
            f"improved from one {unit} to the next"
        )
    elif per_period > 2 * best_step:
        reasons.append(
            f"it needs {fmt(per_period)} better per {unit} for {left} {unit}s, more than twice the best "
            f"{unit}-to-{unit} improvement so far ({fmt(best_step)})"
        )
    n = len(values)
    mean_x, mean_y = sum(pos) / n, sum(values) / n
    sxx = sum((x - mean_x) ** 2 for x in pos)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(pos, values, strict=True)) / sxx
    trend_at_deadline = mean_y + slope * (pos[-1] + left - mean_x)
    best_seen = max(values) if sign > 0 else min(values)
    reach = max(sign * trend_at_deadline, sign * best_seen) * sign
    spread = float(max(values) - min(values))
    ceiling = reach + sign * spread
    if sign * (target - ceiling) > 0:
        reasons.append(
            f"the target lies beyond the trend's value at the deadline or the best value seen "
            f"({fmt(reach)}) plus the historical range ({fmt(spread)})"
        )
    if not reasons:
        return []
    return [
        Issue(
            "warning",
            "achievable",
            k.metric,
            f"KPI {k.metric!r}: the target {fmt(target)} by {k.target.by} looks out of reach from "
            f"{fmt(last_v)} ({last_p:%Y-%m-%d}): {'; and '.join(reasons)}.",
            f"Set a target the history supports (the trend gives about {fmt(trend_at_deadline)} by the "
            "deadline), move the deadline, or write down what will change to make it reachable.",
        )
    ]


# --- data quality ------------------------------------------------------------------------------


def data_quality(plan: Plan, grain: str | Grain | None = "month") -> list[Issue]:
    """Check the sources the plan's KPIs read, with a few small aggregate queries each.

    For every declared source that a KPI (or one of its supporting or underlying metrics)
    reads:

    - ``data_nulls``: rows with no value in the time column (they are left out of every
      metric), and rows a metric keeps (after its ``where:``) with no value in a column its
      formula uses. A column the formula handles explicitly — ``count(col)`` (counts only
      values), ``coalesce(col, ...)`` or ``col is [not] null`` — is taken as missing by design
      and not reported, so ``where: csat is not null`` is how to say "unanswered is fine";
    - ``data_duplicates``: exact duplicate rows (they are counted twice);
    - ``data_gaps``: periods at ``grain`` with no rows between the first and the last period
      (a gap shows as a missing value, not a zero); ``grain=None`` uses, per source, the finest
      grain of the KPIs reading it;
    - ``data_source`` (error): the source cannot be opened or queried.

    The queries run where the data is (DuckDB for files, the database for URLs; the null
    counts go through the engine, so ``where:`` filters and column mappings apply); only
    counts and the list of periods come back.

    Examples
    --------
    >>> for issue in data_quality(kpinb.load_plan("plans/sales.yml")):  # doctest: +SKIP
    ...     print(issue)
    """
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    ctx = _Ctx(plan=plan, reg=reg, today=dt.date.today())
    checks: dict[str, dict[tuple[str, str | None], list[str]]] = {}  # source -> (column, where) -> metrics
    finest: dict[str, str] = {}
    for k in plan.kpis:
        seen, _ = _kpi_needs(ctx, k)
        for mid in seen:
            m = reg.get(mid)
            if m is None or m.derived or m.source not in plan.sources:
                continue
            src: str = m.source  # type: ignore[assignment]
            pairs = checks.setdefault(src, {})
            for col in _null_sensitive_columns(m):
                pairs.setdefault((col, m.where), []).append(mid)
            old = finest.get(src)
            if old is None or _GRAIN_ORDER.index(k.grain.value) < _GRAIN_ORDER.index(old):
                finest[src] = k.grain.value
    issues: list[Issue] = []
    for name in (s for s in plan.sources if s in checks):
        g = Grain(grain).value if grain is not None else finest.get(name, "month")
        issues.extend(_source_quality(plan, name, checks[name], g))
    return issues


def _null_sensitive_columns(m: Metric) -> list[str]:
    """Columns of an aggregate metric whose missing values its formula does not handle itself."""
    from kpinb.definitions.formula import Agg, Call, Col, Unary

    def node_handles_nulls(node: Agg | Unary) -> bool:
        return node.func == "count" if isinstance(node, Agg) else node.op in ("isnull", "notnull")

    cols: set[str] = set()
    handled: set[str] = set()
    for text, kind in ((m.expr, "aggregate"), (m.where, "row")):
        if not text:
            continue
        try:
            tree = parse(text, kind=kind).tree  # type: ignore[arg-type]
        except FormulaError:
            continue
        for node in tree.walk():
            if isinstance(node, Col):
                cols.add(node.name)
            elif isinstance(node, (Agg, Unary)) and isinstance(node.arg, Col) and node_handles_nulls(node):
                handled.add(node.arg.name)
            elif isinstance(node, Call) and node.func == "coalesce":
                handled.update(a.name for a in node.args if isinstance(a, Col))
    return sorted(cols - handled)


def _source_quality(
    plan: Plan, name: str, pairs: Mapping[tuple[str, str | None], list[str]], grain: str
) -> list[Issue]:
    from kpinb.data.sources import conform, open_planned
    from kpinb.engine.calendar import period_start, periods, truncate
    from kpinb.engine.query import compute

    fix_source = "Fix the source's `path:`/`url:`, `time:` and `columns:` in the plan, or the data itself."
    # the engine is called without the plan: anchor the paths here
    anchored = {
        n: s.model_copy(update={"path": str(plan.resolve(s.path))}) if s.path is not None else s
        for n, s in plan.sources.items()
    }
    try:
        table = open_planned(name, anchored, timezone=plan.timezone)
    except KpinbError as e:
        return [Issue("error", "data_source", None, f"Source {name!r} cannot be opened: {_one_line(e)}", fix_source)]
    where_ = f"Source {name!r} ({table.label})"
    t, time = table.expr, table.time
    if not time or time not in t.columns:
        return [
            Issue(
                "error",
                "data_source",
                None,
                f"{where_} has no time column {time or '(none given)'!r}.",
                "Set `time:` to the source's date column.",
            )
        ]
    try:
        res = t.aggregate(rows=t.count(), no_time=t.count(where=t[time].isnull())).execute().iloc[0]
        distinct = int(t.distinct().count().execute())
        kept = conform(table, {time: "timestamp"}).expr
        kept = kept.filter(kept[time].notnull())
        present = kept.select(p=truncate(kept[time], grain, plan.calendar)).distinct().execute()["p"]
        probes = [
            Metric(
                id=f"nulls-{i}",
                name=f"rows without {col}",
                source=name,
                expr=f'count_if("{col}" is null)',
                where=where,
            )
            for i, ((col, where), _) in enumerate(pairs.items())
            if col != time and col in t.columns
        ]
        counts = compute(probes, sources=anchored, grain="year", calendar=plan.calendar) if probes else None
    except Exception as e:  # any engine or backend error: report it, keep checking the other sources
        return [Issue("error", "data_source", None, f"{where_} cannot be queried: {_one_line(e)[:300]}", fix_source)]
    rows = int(res["rows"])
    out: list[Issue] = []
    nulls = [f"{int(res['no_time'])} in {time!r} (the time column)"] if int(res["no_time"]) else []
    if counts is not None:
        totals = counts.groupby("metric", sort=False)["value"].sum()
        worst: dict[str, tuple[int, list[str]]] = {}
        for i, ((col, _), metrics) in enumerate(pairs.items()):
            n = int(totals.get(f"nulls-{i}", 0) or 0)
            if n and n > worst.get(col, (0, []))[0]:
                worst[col] = (n, metrics)
        nulls += [f"{n} in {col!r} (read by {', '.join(ms)})" for col, (n, ms) in sorted(worst.items())]
    if nulls:
        out.append(
            Issue(
                "warning",
                "data_nulls",
                None,
                f"{where_}: of {rows} rows, missing values: {'; '.join(nulls)}.",
                "Fill or drop those rows at the source; if values are missing by design, say so in the "
                "formula (e.g. `where: col is not null`). Rows without a date are left out of every metric.",
            )
        )
    if distinct < rows:
        out.append(
            Issue(
                "warning",
                "data_duplicates",
                None,
                f"{where_}: {rows - distinct} of {rows} rows exactly repeat another row, so they count twice.",
                "Remove the duplicate rows at the source (or fix the export that repeats them).",
            )
        )
    seen = {period_start(p, grain, plan.calendar) for p in present if p is not None and p == p}
    if seen:
        spine = periods(min(seen), max(seen), grain, plan.calendar)
        gaps = [p for p in spine if p not in seen]
        if gaps:
            shown = ", ".join(f"{p:%Y-%m-%d}" for p in gaps[:5]) + (" ..." if len(gaps) > 5 else "")
            out.append(
                Issue(
                    "warning",
                    "data_gaps",
                    None,
                    f"{where_}: {len(gaps)} {grain}(s) with no rows between {min(seen):%Y-%m-%d} and "
                    f"{max(seen):%Y-%m-%d}: {shown}.",
                    "Check the export or load for those periods; a gap shows as a missing value, not a zero.",
                )
            )
    return out


# --- the KPIs' values and the plan's value mapping and benchmarks, for check() ----------------


def _compute_kpis(plan: Plan, skip: set[str]) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """Each KPI at its grain: one engine call per grain, or per KPI when that call fails, so that
    one broken KPI does not hide the others."""
    import pandas as pd

    from kpinb.engine.query import compute

    by_grain: dict[str, list[str]] = {}
    for k in plan.kpis:
        if k.metric not in skip:
            ids = by_grain.setdefault(k.grain.value, [])
            ids.extend([] if k.metric in ids else [k.metric])
    frames, failed = [], {}
    for grain, ids in by_grain.items():
        try:
            frames.append(compute(plan, metrics=ids, grain=grain))
            continue
        except KpinbError:
            pass
        for mid in ids:
            try:
                frames.append(compute(plan, metrics=[mid], grain=grain))
            except KpinbError as e:
                failed[mid] = _one_line(e)
    if not frames:
        return None, failed
    data = pd.concat(frames, ignore_index=True)
    data.attrs = {"by": ()} | ({"grain": next(iter(by_grain))} if len(by_grain) == 1 else {})
    return data, failed


def _value_issues(plan: Plan) -> list[Issue]:
    """``data_values``: catalog filter values that never occur in the KPIs' sources (one query per source)."""

    kpis = {k.metric for k in plan.kpis}
    return [
        Issue("error", "data_values", next((m for m in u.metrics if m in kpis), None), u.problem, u.fix)
        for u in unmapped_values(plan)
    ]


def _notes_issues(plan: Plan) -> list[Issue]:
    """``notes``: each wrong line of the plan's notes file (:mod:`kpinb.definitions.notes`)."""
    from kpinb.definitions.notes import read_notes

    if plan.file is None:
        return []
    try:
        read_notes(plan)
    except KpinbError as e:
        return [
            Issue("error", "notes", None, line.strip(), "Fix that line of the notes file as the message says.")
            for line in str(e).splitlines()
            if line.strip()
        ]
    return []


def _benchmark_issues(plan: Plan) -> list[Issue]:
    if not plan.benchmarks:
        return []
    from kpinb.data.benchmarks import ILLUSTRATIVE, load_benchmarks

    try:
        table = load_benchmarks(plan.resolve(plan.benchmarks))
    except KpinbError as e:
        return [
            Issue("error", "benchmarks", None, line, "Fix the benchmark file as the message says.")
            for line in str(e).splitlines()
            if line.strip()
        ]
    kpis = {k.metric for k in plan.kpis}
    rows = table[table["metric"].isin(kpis)]
    placeholders = sorted(set(rows.loc[rows["source"].str.casefold() == ILLUSTRATIVE, "metric"]))
    if not placeholders:
        return []
    return [
        Issue(
            "info",
            "benchmarks",
            None,
            f"Benchmarks for {', '.join(placeholders)} are illustrative placeholders, not industry data.",
            "Replace them with figures from a publication you can cite (fill in `source` and `year`) "
            "before presenting them as benchmarks.",
        )
    ]


def unmapped_values(plan: Plan) -> list[Unmapped]:
    """:func:`kpinb.data.values.unmapped` over every declared source the plan's KPIs (and their supporting and
    underlying metrics) read. A source that cannot be opened is skipped: the data checks report it."""
    from kpinb.data.sources import QUERY_LOCK, open_planned
    from kpinb.data.values import catalog_filters, unmapped
    from kpinb.definitions.analysis import closure
    from kpinb.definitions.plan import registry
    from kpinb.errors import KpinbError

    reg = registry(plan)
    ids = [mid for k in plan.kpis for mid in (k.metric, *k.supporting)]
    order, _ = closure(dict.fromkeys(ids), reg)
    by_source: dict[str, list[Metric]] = {}
    for mid in order:
        m = reg.get(mid)
        if m is not None and not m.derived and m.source in plan.sources:
            by_source.setdefault(m.source, []).append(m)  # type: ignore[arg-type]
    out: list[Unmapped] = []
    for name, ms in by_source.items():
        if not catalog_filters(ms):
            continue
        spec = plan.sources[name]
        try:
            with QUERY_LOCK:
                table = open_planned(name, plan.sources, plan.base_dir, plan.limits.statement_timeout_s, plan.timezone)
                out.extend(unmapped(table, ms, spec.columns))
        except KpinbError:
            continue
    return out


# --- small helpers -----------------------------------------------------------------------------




def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
