"""The plan rules: SMART and common-mistake checks that need only the plan and the catalog.

Each rule takes the context every rule reads (:class:`_Ctx`: the plan, its metric registry,
``today`` and, for :func:`kpinb.checks.lint.lint` with ``data=``, the KPIs' computed values)
and returns a list of :class:`Issue`; nothing stops early. The checks that read data (the
``achievable`` rule, the data-quality checks, the value mapping, the benchmark file) are in
:mod:`kpinb.checks.data`; :mod:`kpinb.checks.lint` runs them all and is the public entry point.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from kpinb.definitions.model import KPI, Grain, Indicator, Metric, Plan
from kpinb.errors import PlanError

if TYPE_CHECKING:
    import pandas as pd

Level = Literal["error", "warning", "info"]
MAX_KPIS = 7


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


# --- the context every rule reads --------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    plan: Plan
    reg: Mapping[str, Metric]
    today: dt.date
    data: pd.DataFrame | None = None
    undated: frozenset[str] = frozenset()  # KPIs whose target had no `by:` (dropped on loading)
    failed: Mapping[str, str] = field(default_factory=dict)  # KPI -> why the engine could not compute it


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
                f"KPI {k.metric!r} cannot be measured: {'; '.join(p.rstrip('.') for p in problems)}.",
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


def _thresholds(ctx: _Ctx, k: KPI) -> list[Issue]:
    """Warning and critical levels in the order the KPI's direction needs (the check that status
    and alerts apply when they judge; here it is reported before anything runs)."""
    from kpinb.definitions.analysis import inverted_thresholds

    m = ctx.reg.get(k.metric)
    problem = inverted_thresholds(k, k.direction or m.direction) if m is not None else None
    if problem is None:
        return []
    return [Issue("error", "thresholds", k.metric, problem, "Swap `warning:` and `critical:` under `thresholds:`.")]


def _slices(ctx: _Ctx, k: KPI) -> list[Issue]:
    """A slice goal names a dimension the KPI's data has, and its thresholds are in order."""
    from kpinb.definitions import catalog
    from kpinb.definitions.analysis import inverted_thresholds, sources_needed

    m = ctx.reg.get(k.metric)
    if not k.slices or m is None:
        return []
    dims: set[str] = set()
    for src in sources_needed([k.metric], ctx.reg) - {"?"}:
        spec, canon = ctx.plan.sources.get(src), catalog.sources().get(src)
        dims.update((spec.dimensions if spec is not None and spec.dimensions else None) or
                    (canon.dimensions if canon is not None else ()))  # fmt: skip
    out = []
    for dim, members in k.slices.items():
        if dims and dim not in dims:
            out.append(Issue(
                "error", "slices", k.metric,
                f"KPI {k.metric!r}: `slices:` sets goals by {dim!r}, which its data cannot be broken down by "
                f"(its dimensions: {', '.join(sorted(dims))}).",
                f"Use one of those dimensions under `slices:`, or declare {dim!r} in the source's `dimensions:`.",
            ))  # fmt: skip
            continue
        for member in members:
            sk = k.for_slice(dim, member)
            problem = inverted_thresholds(sk, k.direction or m.direction) if sk is not None else None
            if problem:
                out.append(Issue(
                    "error", "slices", k.metric, f"{dim} = {member}: {problem}",
                    f"Swap `warning:` and `critical:` under `slices: {{{dim}: {{{member}: {{thresholds: ...}}}}}}`.",
                ))  # fmt: skip
    return out


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

# --- small helpers -----------------------------------------------------------------------------


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
