"""SMART and common-mistake checks of a plan: every rule returns issues, nothing stops early.

Each rule returns a list of :class:`Issue` (level, rule, KPI, message, fix); :func:`lint`
collects them all for a plan (and, optionally, its computed values), :func:`data_quality`
inspects the plan's sources with small aggregate queries, and :func:`check` — what
``kpinb check plan.yml`` calls — runs everything on a plan file. The plan rules live in
:mod:`kpinb.checks.rules`, the checks that read data in :mod:`kpinb.checks.data`; this module
runs them and is where callers import them from.

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

import dataclasses
import datetime as dt
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from kpinb import _yaml
from kpinb.checks.data import (
    _achievable,
    _benchmark_issues,
    _compute_kpis,
    _value_issues,
    data_quality,
)
from kpinb.checks.data import unmapped_values as unmapped_values
from kpinb.checks.rules import (
    _PLAN_RULES,
    MAX_KPIS,
    Issue,
    _Ctx,
    _deadline_passed,
    _kpi_needs,
    _measurable,
    _owner,
    _relevant,
    _slices,
    _specific,
    _thresholds,
    _time_bound,
    _vanity_kpi,
)
from kpinb.definitions.model import KPI, Plan
from kpinb.errors import KpinbWarning, PlanError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_KPIS", "RULES", "Issue", "check", "data_quality", "format_issues", "has_errors", "lint"]

RULES = (
    "specific",
    "measurable",
    "achievable",
    "relevant",
    "time_bound",
    "deadline_passed",
    "owner",
    "thresholds",
    "slices",
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
    "judgement",
)
"""Every rule name an :class:`Issue` can carry."""

_SEVERITY = {"error": 0, "warning": 1, "info": 2}


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


# --- every rule over a plan --------------------------------------------------------------------

_KPI_RULES: tuple[Callable[[_Ctx, KPI], list[Issue]], ...] = (
    _specific,
    _measurable,
    _achievable,
    _relevant,
    _time_bound,
    _deadline_passed,
    _owner,
    _thresholds,
    _slices,
    _vanity_kpi,
)


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
    issues = load_issues + _lint(ctx) + data_quality(plan, grain=None) + _value_issues(plan) + _benchmark_issues(plan)
    if any(": kpis[" in i.message for i in load_issues):  # the count is of KPIs that loaded: not a finding
        issues = [i for i in issues if i.rule != "kpi_count"]
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
    except ValidationError as e:
        data, dropped = _drop_invalid(data, e)
        try:
            plan = Plan.model_validate(data)
        except ValidationError:
            return None, frozenset(), failed
        # what was dropped is reported now; the rest (references included) is checked by the rules
        fix = "Fix it in the plan file; the rest of the plan is checked without it."
        failed = [
            dataclasses.replace(i, fix=fix)
            for i in failed
            if any(re.search(rf":\s*{re.escape(d)}(?=[.:\[])", i.message) for d in dropped)
        ]
    else:
        failed = []
    plan._file = file.resolve()
    return plan, undated, failed


def _drop_invalid(data: dict, error: ValidationError) -> tuple[dict, list[str]]:
    """``data`` without the items the model refused (a KPI, metric, objective or source with a
    wrong field; a wrong top-level field falls back to its default), and their paths as the
    plan's messages write them (``kpis[1]``, ``sources.orders``, ``week_start``), so that every
    other part of the plan is still checked in the same round."""
    drop: dict[str, set] = {}
    for err in error.errors():
        loc = err.get("loc", ())
        if not loc:
            continue
        if loc[0] in ("kpis", "metrics", "objectives") and len(loc) > 1 and isinstance(loc[1], int):
            drop.setdefault(str(loc[0]), set()).add(loc[1])
        elif loc[0] == "sources" and len(loc) > 1:
            drop.setdefault("sources", set()).add(loc[1])
        elif loc[0] not in ("name", "department"):
            drop.setdefault("", set()).add(loc[0])
    out, paths = dict(data), []
    for key, items in drop.items():
        if key == "sources" and isinstance(out.get("sources"), dict):
            out["sources"] = {n: v for n, v in out["sources"].items() if n not in items}
            paths += [f"sources.{n}" for n in items]
        elif key and isinstance(out.get(key), list):
            out[key] = [v for i, v in enumerate(out[key]) if i not in items]
            paths += [f"{key}[{i}]" for i in items]
        elif not key:
            out = {k: v for k, v in out.items() if k not in items}
            paths += [str(k) for k in items]
    return out, paths


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
