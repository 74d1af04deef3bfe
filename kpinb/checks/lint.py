"""SMART and common-mistake checks of a plan: every rule returns issues, nothing stops early.

Each rule returns a list of :class:`Issue` (level, rule, KPI, message, fix); :func:`lint`
collects them all for a plan (and, optionally, its computed values), :func:`data_quality`
inspects the plan's sources with small aggregate queries, and :func:`check` — what
``kpinb check plan.yml`` calls — runs everything on a plan file.

Rules and their levels (an ``error`` makes :func:`check` exit with 1):

=================  ========  ==================================================================
rule               level     fires when
=================  ========  ==================================================================
specific           warning   a KPI has no ``objective:``, or its metric no ``description:``
measurable         error     a KPI's metric (or one it derives from, or a supporting metric) is
                             unknown, has a bad formula or reads an undeclared source; with
                             data: the KPI cannot be computed or has no values
achievable         warning   with data: the target needs more than 2x the best per-period
                             improvement in the history, or lies beyond the trend's value at
                             the deadline plus the historical range (see :func:`lint`)
                   info      with data: the latest value already meets the target
relevant           error     a KPI's ``objective:`` names no objective of the plan
time_bound         error     a KPI has no target, or its target no deadline (``by:``)
deadline_passed    warning   a target's deadline is before ``today``
owner              warning   a KPI has no ``owner:``
vanity_kpi         warning   a vanity metric (likes, page views...) is a KPI
kpi_count          warning   more than 7 KPIs (error: none at all)
indicator_balance  warning   the KPIs include no leading or no lagging indicator
review             warning   no ``review:`` schedule, or the last review + its interval < today
                   info      ``review:`` has no ``last:`` date
plan_reference     error     another dangling reference in the plan (a KPI listed twice, a bad
                             formula in a metric no KPI uses, an unknown canonical column...)
plan_file          error     the file is not a valid plan (YAML syntax, unknown fields...)
data_source        error     a source cannot be opened or queried
data_nulls         warning   rows with no date, or rows a KPI's metric keeps with no value in a
                             column its formula uses (see :func:`data_quality`)
data_duplicates    warning   exact duplicate rows
data_gaps          warning   periods with no rows between the first and the last
data_values        error     a catalog metric filters on a value its column never holds
                             (``status = 'completed'`` on data saying ``paid``; see ``values:``)
benchmarks         error     the plan's ``benchmarks:`` file is invalid
                   info      benchmark rows for the KPIs are illustrative placeholders
=================  ========  ==================================================================

>>> issues, exit_code = check("plans/sales.yml")  # doctest: +SKIP
>>> print(format_issues(issues))  # doctest: +SKIP
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from kpinb import _yaml
from kpinb.definitions.formula import parse
from kpinb.definitions.model import KPI, Direction, Grain, Indicator, Metric, Plan
from kpinb.errors import FormulaError, KpinbError, KpinbWarning, PlanError

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.data.values import Unmapped

__all__ = ["MAX_KPIS", "RULES", "Issue", "check", "data_quality", "format_issues", "has_errors", "lint"]

Level = Literal["error", "warning", "info"]
MAX_KPIS = 7
RULES = (
    "specific",
    "measurable",
    "achievable",
    "relevant",
    "time_bound",
    "deadline_passed",
    "owner",
    "vanity_kpi",
    "kpi_count",
    "indicator_balance",
    "review",
    "plan_reference",
    "plan_file",
    "data_source",
    "data_nulls",
    "data_duplicates",
    "data_gaps",
    "data_values",
    "benchmarks",
)
"""Every rule name an :class:`Issue` can carry."""

_SEVERITY = {"error": 0, "warning": 1, "info": 2}
_GRAIN_ORDER = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Issue:
    """One finding: ``level`` (error, warning, info), ``rule``, ``kpi`` (the KPI's metric id,
    None for the whole plan), ``message`` (what is wrong) and ``fix`` (what to do)."""

    level: Level
    rule: str
    kpi: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.level.upper()} {self.rule} [{self.kpi or 'plan'}]: {self.message} Fix: {self.fix}"


def format_issues(issues: Iterable[Issue]) -> str:
    """One line per issue: ``LEVEL rule [kpi]: message Fix: ...`` (``[plan]`` for the plan).

    >>> print(format_issues([Issue("warning", "owner", "nps", "KPI 'nps' has no owner.", "Add `owner:`.")]))
    WARNING owner [nps]: KPI 'nps' has no owner. Fix: Add `owner:`.
    """
    return "\n".join(" ".join(str(i).split()) for i in issues)


def has_errors(issues: Iterable[Issue]) -> bool:
    """True when any issue is an error.

    >>> has_errors([Issue("warning", "owner", "nps", "no owner", "add one")])
    False
    """
    return any(i.level == "error" for i in issues)


# --- the context every rule reads --------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    plan: Plan
    reg: Mapping[str, Metric]
    today: dt.date
    data: pd.DataFrame | None = None
    undated: frozenset[str] = frozenset()  # KPIs whose target had no `by:` (dropped on loading)
    failed: Mapping[str, str] = field(default_factory=dict)  # KPI -> why the engine could not compute it


def lint(plan: Plan, data: pd.DataFrame | None = None, today: dt.date | None = None) -> list[Issue]:
    """Check a plan against the SMART criteria and the common KPI mistakes.

    Parameters
    ----------
    plan : the plan (loaded or built in code; references are checked here, not assumed).
    data : optional values of the plan's KPIs, the engine's tidy frame without ``by``
        (``kpinb.compute(plan)``), each KPI at its own grain (``attrs["grain"]`` when set).
        With it, ``measurable`` also checks that each KPI has values and ``achievable``
        judges the target against the history:

        - *pace*: the improvement needed per period, ``(target - latest) / periods left``
          (sign-adjusted for the direction), must not exceed **2x the best period-to-period
          improvement** seen in the history (changes across a gap are spread over it);
        - *range*: the target must not lie beyond the **least-squares trend's value at the
          deadline (or the best value seen, whichever is better) plus the historical range**
          (max - min).

        It needs at least 3 values and a deadline after the latest period; a target the latest
        value already meets is an ``info``.
    today : the date deadlines and reviews are judged against (default: today).

    Returns
    -------
    Every issue found, errors first, then warnings, then infos; within a level KPI by KPI in
    plan order, then the plan-level ones. Data-quality checks of the sources are in
    :func:`data_quality`; :func:`check` runs both.

    Examples
    --------
    >>> issues = lint(kpinb.load_plan("plans/sales.yml"), today=dt.date(2025, 7, 1))  # doctest: +SKIP
    >>> [i.rule for i in issues if i.level == "error"]  # doctest: +SKIP
    """
    return _lint(_ctx(plan, data, today))


def _ctx(plan: Plan, data: pd.DataFrame | None, today: dt.date | None, **kw: object) -> _Ctx:
    from kpinb.definitions.plan import registry

    if data is not None:
        _check_data(data)
    return _Ctx(plan=plan, reg=registry(plan), today=today or dt.date.today(), data=data, **kw)  # type: ignore[arg-type]


def _lint(ctx: _Ctx) -> list[Issue]:
    issues: list[Issue] = []
    for k in ctx.plan.kpis:
        for kpi_rule in _KPI_RULES:
            issues.extend(kpi_rule(ctx, k))
    for plan_rule in _PLAN_RULES:
        issues.extend(plan_rule(ctx))
    return _ordered(issues)


def _ordered(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: _SEVERITY[i.level])


def _check_data(data: pd.DataFrame) -> None:
    from kpinb.errors import DataError

    missing = [c for c in ("metric", "period_start", "value") if c not in data.columns]
    if missing:
        raise DataError(
            f"lint(data=...): the frame has no column(s) {', '.join(missing)}. Pass kpinb.compute(plan)."
        )
    base = ("metric", "period_start", "value", "numerator", "denominator")
    by = data.attrs.get("by")
    dims = [c for c in (by if by is not None else data.columns) if c in data.columns and c not in base]
    if dims:
        raise DataError(
            f"lint(data=...): the frame is broken down by {', '.join(dims)}; targets are for the whole "
            "KPI. Compute the plan without `by=`."
        )


# --- per-KPI rules -----------------------------------------------------------------------------


def _specific(ctx: _Ctx, k: KPI) -> list[Issue]:
    missing, fixes = [], []
    if not k.objective:
        missing.append("it is linked to no objective")
        fixes.append("link it to the objective it measures with `objective: <id>`")
    m = ctx.reg.get(k.metric)
    if m is not None and not m.description.strip():
        missing.append(f"its metric {k.metric!r} has no description")
        fixes.append("say in the metric's `description:` exactly what it counts and why it matters")
    if not missing:
        return []
    return [
        Issue(
            "warning",
            "specific",
            k.metric,
            f"KPI {k.metric!r} is not specific: {' and '.join(missing)}.",
            _sentence("; ".join(fixes)),
        )
    ]


def _kpi_needs(ctx: _Ctx, k: KPI) -> tuple[list[str], list[str]]:
    """The metrics a KPI needs (its own, supporting ones, dependencies) and structural problems."""
    from kpinb.definitions.analysis import closure, dependencies

    seen, problems = closure([k.metric, *k.supporting], ctx.reg)
    for mid in seen:
        m = ctx.reg.get(mid)
        if m is not None and not m.derived and m.source not in ctx.plan.sources:
            problems.append(f"metric {mid!r} reads source {m.source!r}, which the plan does not declare")
    if not problems:
        try:
            dependencies([k.metric, *k.supporting], ctx.reg)
        except PlanError as e:
            problems.append(str(e).rstrip("."))
    return seen, problems


def _measurable(ctx: _Ctx, k: KPI) -> list[Issue]:
    _, problems = _kpi_needs(ctx, k)
    if problems:
        return [
            Issue(
                "error",
                "measurable",
                k.metric,
                f"KPI {k.metric!r} cannot be measured: {'; '.join(problems)}.",
                "Use a catalog id or define the metric under `metrics:`, fix its formula, and declare every "
                "source it reads under `sources:` with the `path:` or `url:` of your data.",
            )
        ]
    if k.metric in ctx.failed:
        return [
            Issue(
                "error",
                "measurable",
                k.metric,
                f"KPI {k.metric!r} cannot be computed from the data: {ctx.failed[k.metric]}",
                "Fix the source or the formula as the message says, then run the check again.",
            )
        ]
    if ctx.data is not None:
        values = ctx.data.loc[ctx.data["metric"] == k.metric, "value"]
        if values.notna().sum() == 0:
            return [
                Issue(
                    "error",
                    "measurable",
                    k.metric,
                    f"KPI {k.metric!r} has no values in the data.",
                    "Check that the source has rows in the KPI's periods, that its `where:` keeps "
                    "some, and that `columns:` maps the right columns.",
                )
            ]
    return []


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
    spine = periods(series.index.min(), series.index.max(), g)
    pos = spine.get_indexer(series.index)  # period numbers; a gap makes a jump
    last_p, last_v = series.index[-1], float(series.iloc[-1])
    deadline = period_start(k.target.by, g)
    left = len(periods(last_p, deadline, g)) - 1 if deadline > last_p else 0
    if left <= 0:
        return []
    sign = 1.0 if _direction(ctx, k) is Direction.higher_is_better else -1.0
    target = float(k.target.value)
    need = sign * (target - last_v)
    unit = g
    if need <= 0:
        return [
            Issue(
                "info",
                "achievable",
                k.metric,
                f"KPI {k.metric!r}: the latest value {_fmt(last_v)} ({last_p:%Y-%m-%d}) already meets the "
                f"target {_fmt(target)}.",
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
            f"it needs {_fmt(per_period)} better per {unit} for {left} {unit}s, but the history never "
            f"improved from one {unit} to the next"
        )
    elif per_period > 2 * best_step:
        reasons.append(
            f"it needs {_fmt(per_period)} better per {unit} for {left} {unit}s, more than twice the best "
            f"{unit}-to-{unit} improvement so far ({_fmt(best_step)})"
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
            f"({_fmt(reach)}) plus the historical range ({_fmt(spread)})"
        )
    if not reasons:
        return []
    return [
        Issue(
            "warning",
            "achievable",
            k.metric,
            f"KPI {k.metric!r}: the target {_fmt(target)} by {k.target.by} looks out of reach from "
            f"{_fmt(last_v)} ({last_p:%Y-%m-%d}): {'; and '.join(reasons)}.",
            f"Set a target the history supports (the trend gives about {_fmt(trend_at_deadline)} by the "
            "deadline), move the deadline, or write down what will change to make it reachable.",
        )
    ]


def _relevant(ctx: _Ctx, k: KPI) -> list[Issue]:
    ids = [o.id for o in ctx.plan.objectives]
    if not k.objective or k.objective in ids:
        return []
    close = difflib.get_close_matches(k.objective, ids, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return [
        Issue(
            "error",
            "relevant",
            k.metric,
            f"KPI {k.metric!r} is linked to objective {k.objective!r}, which the plan does not define "
            f"(objectives: {', '.join(ids) or 'none'}).{hint}",
            f"Add `{k.objective}` under `objectives:` with its statement, or fix the id.",
        )
    ]


def _time_bound(ctx: _Ctx, k: KPI) -> list[Issue]:
    if k.target is not None and k.target.by is not None:
        return []
    if k.metric in ctx.undated or k.target is not None:
        msg = f"KPI {k.metric!r}: its target has no deadline."
    else:
        msg = f"KPI {k.metric!r} has no target, so no one can tell whether it is on track."
    return [
        Issue(
            "error",
            "time_bound",
            k.metric,
            msg,
            "Add `target: {value: <number>, by: YYYY-MM-DD}` (the value to reach and by when).",
        )
    ]


def _deadline_passed(ctx: _Ctx, k: KPI) -> list[Issue]:
    if k.target is None or k.target.by is None or k.target.by >= ctx.today:
        return []
    return [
        Issue(
            "warning",
            "deadline_passed",
            k.metric,
            f"KPI {k.metric!r}: the target's deadline {k.target.by} has passed (today is {ctx.today}).",
            "Judge the result, then set the next target and deadline (or retire the KPI) at the review.",
        )
    ]


def _owner(ctx: _Ctx, k: KPI) -> list[Issue]:
    if k.owner and k.owner.strip():
        return []
    return [
        Issue(
            "warning",
            "owner",
            k.metric,
            f"KPI {k.metric!r} has no owner.",
            "Add `owner:`: the person who answers for the number and acts when it moves.",
        )
    ]


def _vanity_kpi(ctx: _Ctx, k: KPI) -> list[Issue]:
    m = ctx.reg.get(k.metric)
    if m is None or not m.vanity:
        return []
    from kpinb.definitions import catalog

    better = (
        [c.id for c in catalog.search(department=m.department, role="kpi_candidate") if not c.vanity][:2]
        if m.department
        else []
    )
    hint = f" such as {' or '.join(better)}" if better else ""
    return [
        Issue(
            "warning",
            "vanity_kpi",
            k.metric,
            f"KPI {k.metric!r} ({m.name}) is a vanity metric: "
            "it looks impressive but rarely changes a decision.",
            f"Keep it as a supporting metric and measure the outcome it should lead to{hint}.",
        )
    ]


_KPI_RULES: tuple[Callable[[_Ctx, KPI], list[Issue]], ...] = (
    _specific,
    _measurable,
    _achievable,
    _relevant,
    _time_bound,
    _deadline_passed,
    _owner,
    _vanity_kpi,
)


# --- plan-level rules --------------------------------------------------------------------------


def _kpi_count(ctx: _Ctx) -> list[Issue]:
    n = len(ctx.plan.kpis)
    if n == 0:
        return [
            Issue(
                "error",
                "kpi_count",
                None,
                "The plan has no KPIs.",
                "Add 1-7 entries under `kpis:`, each a metric with objective, owner, target and deadline.",
            )
        ]
    if n <= MAX_KPIS:
        return []
    return [
        Issue(
            "warning",
            "kpi_count",
            None,
            f"The plan has {n} KPIs; more than {MAX_KPIS} dilutes focus.",
            "Keep the 5-7 that best measure the objectives; list the others under a KPI's `supporting:`.",
        )
    ]


def _indicator_balance(ctx: _Ctx) -> list[Issue]:
    kinds = [ctx.reg[k.metric].indicator for k in ctx.plan.kpis if k.metric in ctx.reg]
    if not kinds:
        return []
    if Indicator.leading not in kinds:
        return [
            Issue(
                "warning",
                "indicator_balance",
                None,
                f"All {len(kinds)} KPIs are lagging indicators: "
                "they report results when it is too late to act.",
                "Add a leading KPI that predicts them "
                "(pipeline, demos scheduled, open rate, first response time).",
            )
        ]
    if Indicator.lagging not in kinds:
        return [
            Issue(
                "warning",
                "indicator_balance",
                None,
                f"All {len(kinds)} KPIs are leading indicators: "
                "none measures the outcome they should lead to.",
                "Add a lagging KPI for the result itself (revenue, churn, margin, satisfaction).",
            )
        ]
    return []


def _add(when: dt.date, every: Grain) -> dt.date:
    if every is Grain.day:
        return when + dt.timedelta(days=1)
    if every is Grain.week:
        return when + dt.timedelta(weeks=1)
    months = {Grain.month: 1, Grain.quarter: 3, Grain.year: 12}[every]
    y, m = divmod(when.month - 1 + months, 12)
    year, month = when.year + y, m + 1
    return dt.date(year, month, min(when.day, calendar.monthrange(year, month)[1]))


def _review(ctx: _Ctx) -> list[Issue]:
    r = ctx.plan.review
    if r is None:
        return [
            Issue(
                "warning",
                "review",
                None,
                "The plan has no review schedule, so it can go stale unnoticed.",
                "Add `review: {every: quarter, last: YYYY-MM-DD}` and review the KPIs on that rhythm.",
            )
        ]
    if r.last is None:
        return [
            Issue(
                "info",
                "review",
                None,
                f"The plan is reviewed every {r.every.value} but has no last review date.",
                "Add `last: YYYY-MM-DD` under `review:` after each review.",
            )
        ]
    due = _add(r.last, r.every)
    if due >= ctx.today:
        return []
    return [
        Issue(
            "warning",
            "review",
            None,
            f"The plan's review is overdue: last reviewed {r.last}, every {r.every.value}, so due by {due}.",
            "Review the KPIs (trends, missed targets, still the right measures?) and update `review.last`.",
        )
    ]


def _plan_reference(ctx: _Ctx) -> list[Issue]:
    """Dangling references the per-KPI rules do not already report."""
    from kpinb.definitions.plan import check_references

    out: list[Issue] = []
    counts: dict[str, int] = {}
    for k in ctx.plan.kpis:
        counts[k.metric] = counts.get(k.metric, 0) + 1
    for mid, n in counts.items():
        if n > 1:
            out.append(
                Issue(
                    "error",
                    "plan_reference",
                    mid,
                    f"Metric {mid!r} is listed {n} times under `kpis:`.",
                    "List each KPI once; merge their settings.",
                )
            )
    covered: set[str] = set()
    reported: list[str] = []
    for k in ctx.plan.kpis:
        seen, problems = _kpi_needs(ctx, k)
        covered.update(seen)
        reported.extend(problems)
    for fld, _line, msg in check_references(ctx.plan):
        if fld.startswith("kpis["):
            continue  # about a KPI: reported by measurable / relevant, or as a duplicate above
        hit = re.match(r"metrics\[(\d+)\]", fld)
        if hit and ctx.plan.metrics[int(hit.group(1))].id in covered:
            continue
        if any(msg.startswith(f"metric {mid!r} reads source ") for mid in covered):
            continue
        if fld == "metrics" and any(msg.rstrip(".") in p or p in msg for p in reported):
            continue
        out.append(
            Issue("error", "plan_reference", None, f"`{fld}`: {msg}", f"Edit `{fld}` as the message says.")
        )
    return out


_PLAN_RULES: tuple[Callable[[_Ctx], list[Issue]], ...] = (
    _kpi_count,
    _indicator_balance,
    _review,
    _plan_reference,
)


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
    from kpinb.data.sources import open_source
    from kpinb.engine.calendar import period_start, periods
    from kpinb.engine.query import compute

    fix_source = "Fix the source's `path:`/`url:`, `time:` and `columns:` in the plan, or the data itself."
    spec = plan.sources[name]
    if spec.path is not None:  # the engine is called without the plan: anchor the path here
        spec = spec.model_copy(update={"path": str(plan.resolve(spec.path))})
    try:
        table = open_source(name, spec)
    except KpinbError as e:
        return [
            Issue(
                "error", "data_source", None, f"Source {name!r} cannot be opened: {_one_line(e)}", fix_source
            )
        ]
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
        kept = t.filter(t[time].notnull())
        tcol = kept[time] if kept[time].type().is_timestamp() else kept[time].cast("timestamp")
        unit = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}[grain]
        present = kept.select(p=tcol.truncate(unit)).distinct().execute()["p"]
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
        counts = compute(probes, sources={name: spec}, grain="year") if probes else None
    except Exception as e:  # any engine or backend error: report it, keep checking the other sources
        return [
            Issue(
                "error", "data_source", None, f"{where_} cannot be queried: {_one_line(e)[:300]}", fix_source
            )
        ]
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
                f"{where_}: {rows - distinct} of {rows} rows exactly repeat another row, "
                "so they count twice.",
                "Remove the duplicate rows at the source (or fix the export that repeats them).",
            )
        )
    seen = {period_start(p, grain) for p in present if p is not None and p == p}
    if seen:
        spine = periods(min(seen), max(seen), grain)
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


# --- the whole check of a plan file ------------------------------------------------------------


def check(plan_path: str | Path, today: dt.date | None = None) -> tuple[list[Issue], int]:
    """Check a plan file end to end: what ``kpinb check plan.yml`` runs.

    Loads the plan (leniently: a plan with dangling references or a target without a deadline
    is still checked, and those problems become issues), runs every :func:`lint` rule,
    computes each KPI with the engine so that ``measurable`` and ``achievable`` see the data,
    runs :func:`data_quality` and checks the ``benchmarks:`` file.

    Returns
    -------
    ``(issues, exit_code)``: exit code 1 when any issue is an error, else 0. A plan file that
    cannot be read at all raises :class:`PlanError`.

    Examples
    --------
    >>> issues, code = check("tests/plans/bad_plan.yml", today=dt.date(2025, 7, 1))  # doctest: +SKIP
    >>> code  # doctest: +SKIP
    1
    """
    plan, undated, load_issues = _load_leniently(Path(plan_path))
    if plan is None:
        return load_issues, 1
    ctx = _ctx(plan, None, today, undated=undated)
    broken = {k.metric for k in plan.kpis if _kpi_needs(ctx, k)[1]}
    with warnings.catch_warnings():  # the engine's warnings about values come back as data_values issues
        warnings.simplefilter("ignore", KpinbWarning)
        data, failed = _compute_kpis(plan, broken)
    ctx = _ctx(plan, data, today, undated=undated, failed=failed)
    issues = _lint(ctx) + data_quality(plan, grain=None) + _value_issues(plan) + _benchmark_issues(plan)
    issues = _ordered(issues)
    return issues, 1 if has_errors(issues) else 0


def _load_leniently(file: Path) -> tuple[Plan | None, frozenset[str], list[Issue]]:
    from kpinb.definitions.plan import load_plan

    try:
        return load_plan(file), frozenset(), []
    except PlanError as e:
        strict = e
    from kpinb._io import read_limited

    try:  # the same bounds as load_plan: a file it refused as too large or not a file is not read again
        text = read_limited(file, _yaml.MAX_BYTES, "plan file", PlanError).decode("utf-8-sig")
    except (PlanError, UnicodeDecodeError):
        raise strict from None  # no plan to check at all: a usage error, not an issue
    fix = "Fix it in the plan file; the SMART and data checks run once the file is a valid plan."
    failed = [
        Issue("error", "plan_file", None, line.strip(), fix)
        for line in str(strict).splitlines()
        if line.strip()
    ]
    try:
        data, _ = _yaml.read(text, file)
    except PlanError:
        return None, frozenset(), failed
    if not isinstance(data, dict):
        return None, frozenset(), failed
    data, undated = _drop_undated_targets(data)
    try:
        plan = Plan.model_validate(data)
    except ValidationError:
        return None, frozenset(), failed
    plan._file = file.resolve()
    return plan, undated, []


def _drop_undated_targets(data: dict) -> tuple[dict, frozenset[str]]:
    """Remove targets without `by:` so the plan loads; the time_bound rule reports them."""
    kpis = data.get("kpis")
    if not isinstance(kpis, list):
        return data, frozenset()
    undated, out = set(), []
    for k in kpis:
        t = k.get("target") if isinstance(k, dict) else None
        if isinstance(t, dict) and t.get("by") is None:
            k = {key: v for key, v in k.items() if key != "target"}
            undated.add(str(k.get("metric")))
        out.append(k)
    return {**data, "kpis": out}, frozenset(undated)


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


def _benchmark_issues(plan: Plan) -> list[Issue]:
    if not plan.benchmarks:
        return []
    from kpinb.analytics.benchmark import ILLUSTRATIVE, load_benchmarks

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


# --- small helpers -----------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:,.4g}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def unmapped_values(plan: Plan) -> list[Unmapped]:
    """:func:`kpinb.data.values.unmapped` over every declared source the plan's KPIs (and their supporting and
    underlying metrics) read. A source that cannot be opened is skipped: the data checks report it."""
    from kpinb.data.sources import QUERY_LOCK, open_source
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
                table = open_source(name, spec, plan.base_dir, plan.limits.statement_timeout_s)
                out.extend(unmapped(table, ms, spec.columns))
        except KpinbError:
            continue
    return out
