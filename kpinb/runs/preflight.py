"""``kpinb check``: every validation a plan meets anywhere, in one round.

:func:`kpinb.checks.lint.check` runs the plan rules and the data checks. What ``kpinb run``,
``kpinb alerts`` and the dashboard then do with a plan (judge each KPI in the scorecard at its
grain, with its pace, and raise its alerts) runs here as well, KPI by KPI, so a problem that
only the judgement meets is an error of the check, not a failed report on the next run.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from kpinb.checks.lint import Issue
from kpinb.checks.lint import check as check_plan
from kpinb.errors import KpinbError, KpinbWarning, PlanError

if TYPE_CHECKING:
    from kpinb.definitions.model import KPI, Plan

__all__ = ["check"]

_FIX = "Fix the KPI in the plan as the message says: `kpinb run`, `kpinb alerts` and the dashboard stop on it."


def check(plan_path: str | Path, today: dt.date | None = None) -> tuple[list[Issue], int]:
    """The issues of :func:`kpinb.checks.lint.check`, then one ``judgement`` error for each KPI
    that the scorecard, its pace or its alerts refuse. Returns ``(issues, exit_code)``."""
    issues, code = check_plan(plan_path, today)
    flagged = {i.kpi for i in issues if i.level == "error"}
    if any(i.level == "error" and i.rule == "plan_file" for i in issues):
        return issues, code  # the plan as written does not load: run and alerts cannot start
    from kpinb.definitions.plan import load_plan

    try:
        plan = load_plan(plan_path)
    except PlanError:
        return issues, code  # reported above as the rules' errors
    found = [
        Issue("error", "judgement", mid, problem, _FIX)
        for mid, problem in _judge(plan, [k for k in plan.kpis if k.metric not in flagged])
    ]
    issues = issues + found
    return issues, 1 if found else code


def _judge(plan: Plan, kpis: list[KPI]) -> list[tuple[str, str]]:
    """(KPI, problem) for each KPI whose judgement fails, computing each grain's KPIs once."""
    from kpinb import scorecard
    from kpinb.engine.query import compute
    from kpinb.outputs.alerts import from_scorecard

    out: list[tuple[str, str]] = []
    by_grain: dict[str, list] = {}
    for k in kpis:
        by_grain.setdefault(k.grain.value, []).append(k)
    for grain, ks in by_grain.items():
        ids = list(dict.fromkeys(m for k in ks for m in (k.metric, *k.supporting)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KpinbWarning)
            try:
                frame = compute(plan, metrics=ids, grain=grain)
            except KpinbError:
                continue  # the data checks name what is wrong with the data
        for k in ks:
            try:
                from_scorecard(scorecard.evaluate(plan, frame, kpis=[k.metric]))
            except KpinbError as e:
                out.append((k.metric, str(e).splitlines()[0]))
    return out
