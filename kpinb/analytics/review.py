"""The periodic KPI review: targets missed again and again, stale and vanity KPIs, the balance
of leading and lagging indicators, and the changes to suggest.

Every function takes the plan and the engine's frame (totals, at the KPIs' grain) and returns
a small DataFrame with documented columns, so the review notebook only narrates.

Heuristics (each verdict says which one fired):

- a KPI is **consistently missed** when its value was worse than the target in force
  (``gap < 0`` in :func:`kpinb.status.evaluate`) in at least two thirds of the last
  ``periods`` periods with data, and at least 3 of them;
- it looks **too ambitious** when the final target is better than anything the KPI ever
  reached; it may be the **wrong measure** when it has reached the target level before yet the
  gap is not closing (the team may not be able to move it, or it no longer tracks the
  objective);
- a KPI is **stale** when its latest periods have no value (the data stopped), when its value
  has not changed over the window (nothing is measured any more), or when its deadline passed;
- a **vanity** KPI is a catalog metric flagged ``vanity`` (raw page views, likes, followers).

>>> misses(plan, kpinb.compute(plan), as_of="2025-06-30")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from kpinb._numbers import display_unit, format_value
from kpinb.analytics.compare import latest_complete_period, period_end, period_label
from kpinb.analytics.kpis import metric_of
from kpinb.definitions.model import Direction, Indicator, Metric, Plan
from kpinb.engine.calendar import calendar_of, period_start
from kpinb.engine.calendar import periods as periods_between
from kpinb.errors import KpinbError

if TYPE_CHECKING:
    from kpinb.checks.lint import Issue

__all__ = [
    "CHANGE_COLUMNS", "MISS_COLUMNS", "balance", "misses", "staleness", "suggestions", "target_changes",
    "target_history", "vanity",
]  # fmt: skip

CHANGE_COLUMNS = ("metric", "name", "effective", "previous", "value", "previous_by", "by", "change")
"""Columns of :func:`target_changes`."""

MISS_COLUMNS = (
    "metric", "name", "periods_judged", "periods_missed", "miss_share", "latest_gap", "gap_trend", "best_value",
    "target", "periods_left", "projected_gap", "reached_before", "support_link", "verdict", "suggestion",
)  # fmt: skip
"""Columns of :func:`misses`."""


def _kpis(plan: Plan, df: pd.DataFrame, kpis: Sequence[str] | None) -> list[str]:
    present = set(df["metric"].unique())
    ids = list(kpis) if kpis is not None else [k.metric for k in plan.kpis]
    return [m for m in ids if m in present]


def _grain(df: pd.DataFrame) -> str:
    from kpinb.analytics.compare import grain_of

    return grain_of(df)


def _window(df: pd.DataFrame, as_of: Any, periods: int) -> list[pd.Timestamp]:
    """The starts of the last ``periods`` periods up to the judged one, oldest first."""
    g = _grain(df)
    judged = latest_complete_period(df, as_of)
    if judged is None:
        return []
    out = [judged]
    while len(out) < periods:
        out.append(period_start(out[-1] - pd.Timedelta(days=1), g, calendar_of(df)))
    return sorted(out)


def target_history(
    plan: Plan, df: pd.DataFrame, periods: int = 6, as_of: Any = None, kpis: Sequence[str] | None = None
) -> pd.DataFrame:
    """Each KPI judged on each of the last ``periods`` complete periods.

    Returns one row per KPI and period: ``metric, period_start, value, target_now, gap,
    status`` (``gap`` positive = better than the target in force, as in :func:`kpinb.status.evaluate`).
    """
    from kpinb.analytics.status import evaluate

    ids = _kpis(plan, df, kpis)
    g = _grain(df)
    frames = []
    for start in _window(df, as_of, periods):
        st = evaluate(plan, df, as_of=period_end(start, g), kpis=ids)
        frames.append(st[["metric", "period_start", "value", "target_now", "gap", "status"]])
    cols = ["metric", "period_start", "value", "target_now", "gap", "status"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True).sort_values(["metric", "period_start"], kind="stable")[cols]


def target_changes(plan: Plan, kpis: Sequence[str] | None = None) -> pd.DataFrame:
    """When and how each KPI's target changed (its goal history, ``target:`` as a list).

    Returns one row per change, oldest first within a KPI: ``metric, name, effective`` (the new
    version's ``from:``), ``previous, value`` (the target before and after), ``previous_by, by``
    (the deadlines), ``change`` (one sentence, numbers through the one formatter). Empty when no
    KPI has a goal history.

    >>> target_changes(plan)[["metric", "effective", "change"]]  # doctest: +SKIP
    """
    rows = []
    for k in plan.kpis:
        if kpis is not None and k.metric not in kpis:
            continue
        try:
            metric: Metric | None = metric_of(k, plan)
        except KpinbError:
            metric = None
        unit = display_unit(metric, None)
        direction = k.direction or (metric.direction if metric is not None else Direction.higher_is_better)
        for old, new in zip(k.targets, k.targets[1:], strict=False):
            raised = new.value > old.value
            better = raised == (direction is Direction.higher_is_better)
            words = []
            if new.value != old.value:
                words.append(
                    f"{'raised' if raised else 'lowered'} from {format_value(old.value, unit)} to "
                    f"{format_value(new.value, unit)} ({'more' if better else 'less'} ambitious)"
                )
            if new.by != old.by:
                words.append(f"deadline moved from {old.by} to {new.by}")
            if new.path != old.path:
                words.append("path changed")
            change = "; ".join(words) or "restated unchanged"
            rows.append({
                "metric": k.metric, "name": k.name or (metric.name if metric is not None else k.metric),
                "effective": pd.Timestamp(new.from_), "previous": float(old.value), "value": float(new.value),
                "previous_by": pd.Timestamp(old.by), "by": pd.Timestamp(new.by),
                "change": f"From {new.from_} the target was {change}.",
            })  # fmt: skip
    out = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    for c in ("effective", "previous_by", "by"):
        out[c] = pd.to_datetime(out[c])
    return out


def _direction(plan: Plan, metric: str) -> Direction:
    from kpinb.analytics.kpis import direction_of

    return direction_of(plan.kpi(metric), plan)


def _name(plan: Plan, metric: str) -> str:
    from kpinb.definitions.plan import registry

    k = plan.kpi(metric)
    reg = registry(plan)
    return k.name or (reg[metric].name if metric in reg else metric)


def _slope(values: Sequence[float]) -> float:
    """Least-squares slope per step of the finite values (NaN with fewer than 2)."""
    pts = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
    if len(pts) < 2:
        return math.nan
    mx = sum(i for i, _ in pts) / len(pts)
    my = sum(v for _, v in pts) / len(pts)
    den = sum((i - mx) ** 2 for i, _ in pts)
    return sum((i - mx) * (v - my) for i, v in pts) / den if den else math.nan


def _link(df: pd.DataFrame, metric: str, supporting: Sequence[str], until: Any) -> float:
    """The strongest absolute correlation between the KPI and one of its supporting metrics."""
    wide = df[df["period_start"] <= until].pivot_table(index="period_start", columns="metric", values="value")
    if metric not in wide:
        return math.nan
    best = math.nan
    for s in supporting:
        if s in wide and s != metric:
            both = wide[[metric, s]].dropna()
            if len(both) >= 6 and both[metric].std() > 0 and both[s].std() > 0:
                c = abs(float(both[metric].corr(both[s])))
                best = c if math.isnan(best) else max(best, c)
    return best


def misses(
    plan: Plan, df: pd.DataFrame, periods: int = 6, as_of: Any = None, kpis: Sequence[str] | None = None
) -> pd.DataFrame:
    """Which KPIs keep missing their target, and whether the target or the measure looks wrong.

    Returns one row per KPI with :data:`MISS_COLUMNS`: periods judged (with a value) and missed
    in the window, the latest gap (positive = better than target), ``gap_trend`` (change of the
    gap per period; positive = closing), ``best_value`` (the best 3-period average up to the
    judged period, so one lucky period does not count), the final target, ``periods_left`` to
    its deadline and ``projected_gap`` (the latest gap carried forward by ``gap_trend`` to the
    deadline: a missed target whose projection closes is on its way), whether the best reached
    the target, ``support_link`` (the strongest correlation with a supporting metric), the
    ``verdict`` and a ``suggestion``.
    """
    hist = target_history(plan, df, periods, as_of, kpis)
    judged = latest_complete_period(df, as_of)
    rows = []
    for mid in _kpis(plan, df, kpis):
        k = plan.kpi(mid)
        m = metric_of(k, plan)

        def _fmt(x: float, m: Metric = m) -> str:
            return format_value(x, display_unit(m, m.unit))

        h = hist[hist["metric"] == mid]
        judged_rows = h[h["value"].notna() & h["gap"].notna()]
        n = len(judged_rows)
        missed = int((judged_rows["gap"] < 0).sum())
        gaps = [float(x) for x in h["gap"]]
        values = df[(df["metric"] == mid) & (df["period_start"] <= judged)].sort_values("period_start")["value"]
        sustained = values.rolling(3, min_periods=3).mean().dropna()
        higher = _direction(plan, mid) is Direction.higher_is_better
        best = float(sustained.max() if higher else sustained.min()) if len(sustained) else math.nan
        target = float(k.target.value) if k.target is not None else math.nan
        reached = bool(math.isfinite(best) and math.isfinite(target) and (best >= target if higher else best <= target))
        trend = _slope(gaps)
        link = _link(df, mid, k.supporting, judged)
        latest_gap = float(judged_rows["gap"].iloc[-1]) if n else math.nan
        left = 0
        if k.target is not None and k.target.by is not None and judged is not None:
            deadline = period_start(k.target.by, _grain(df), calendar_of(df))
            while deadline > judged and left < 10_000:
                deadline = period_start(deadline - pd.Timedelta(days=1), _grain(df), calendar_of(df))
                left += 1
        projected = latest_gap + (trend if math.isfinite(trend) else 0.0) * left
        if k.target is None:
            verdict, hint = "no target", "Add a target and a deadline (`target: {value, by}`) so the KPI can be judged."
        elif n == 0:
            verdict, hint = "no data", "The KPI had no value in the window: check its data source."
        elif n >= 3 and missed / n >= 2 / 3:
            if left and projected >= 0:
                verdict = "missed so far, closing in time"
                hint = (
                    f"Missed in {missed} of {n} periods, but at the current trend ({_fmt(trend)} per period) the gap "
                    f"closes within the {left} period(s) left: keep it and watch the pace."
                )
            elif not reached:
                verdict = "consistently missed: too ambitious?"
                hint = (
                    f"Missed in {missed} of {n} periods, not closing in time, and never sustained at the target "
                    f"(best 3-period average {_fmt(best)} vs {_fmt(target)}): re-set it from the baseline and "
                    "benchmarks, or move the deadline."
                )
            elif not trend > 0 or (math.isfinite(link) and link < 0.3):
                why = (
                    f"its supporting metrics hardly move with it (correlation {link:.2f})"
                    if math.isfinite(link) and link < 0.3
                    else "the gap is not closing"
                )
                verdict = "consistently missed: wrong measure?"
                hint = (
                    f"Missed in {missed} of {n} periods although it was at the target level before, and {why}: "
                    "check that the team can influence it and that it still measures the objective; consider a "
                    "leading indicator that moves first."
                )
            else:
                verdict = "consistently missed, gap closing"
                hint = f"Missed in {missed} of {n} periods, but the gap closes by {_fmt(trend)} per period: keep it."
        elif missed:
            verdict, hint = "sometimes missed", f"Missed in {missed} of {n} periods: watch the trend."
        else:
            verdict, hint = "met", f"Met in all {n} periods: consider a more ambitious target at the next review."
        rows.append({
            "metric": mid, "name": _name(plan, mid), "periods_judged": n, "periods_missed": missed,
            "miss_share": missed / n if n else math.nan, "latest_gap": latest_gap, "gap_trend": trend,
            "best_value": best, "target": target, "periods_left": left, "projected_gap": projected,
            "reached_before": reached, "support_link": link,
            "verdict": verdict, "suggestion": hint,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(MISS_COLUMNS))


def staleness(
    plan: Plan,
    df: pd.DataFrame,
    periods: int = 6,
    as_of: Any = None,
    today: dt.date | None = None,
    kpis: Sequence[str] | None = None,
) -> pd.DataFrame:
    """KPIs whose data stopped, whose value stopped moving, or whose deadline passed.

    Returns one row per KPI: ``metric, name, last_value_period`` (label), ``periods_without_data``
    (up to the judged period), ``flat`` (one value repeated over the window), ``deadline``,
    ``deadline_passed`` (before ``today``) and ``stale`` (any of the three), with a ``reason``.
    ``today`` defaults to the end of the judged period when ``as_of`` is given (a review as of a
    date), else to the real date: then the periods that ended since the newest data count as
    missing (data eleven months old is late, not fresh).
    """
    g = _grain(df)
    window = _window(df, as_of, periods)
    judged = window[-1] if window else None
    if as_of is None:  # as of now: periods that ended since the newest data are missing too
        when = today or dt.date.today()
        current = period_start(when, g, calendar_of(df))
        late = len(periods_between(judged, current, g, calendar_of(df))) - 2 if judged is not None else 0
    else:
        when = today or (period_end(judged, g).date() if judged is not None else dt.date.today())
        late = 0
    rows = []
    for mid in _kpis(plan, df, kpis):
        k = plan.kpi(mid)
        mine = df[df["metric"] == mid]
        s = mine[mine["period_start"] <= judged] if judged is not None else mine.iloc[0:0]
        s = s.set_index("period_start")["value"].sort_index()
        have = s.dropna()
        last = have.index.max() if len(have) else None
        missing = len(window) if last is None else int(sum(1 for p in window if p > last))
        newest = mine.loc[mine["value"].notna(), "period_start"].max()
        if as_of is None and pd.notna(newest):
            # as of now: the periods that ended since this KPI's newest value, which may be newer
            # than the judged period (a value not final yet is data that arrived, not data missing)
            last = pd.Timestamp(newest)
            missing = max(0, len(periods_between(last, current, g, calendar_of(df))) - 2)
        else:
            missing += max(0, late)
        recent = s[s.index.isin(window)].dropna()
        flat = bool(len(recent) >= 3 and recent.nunique() == 1)
        deadline = k.target.by if k.target is not None else None
        passed = bool(deadline is not None and deadline < when)
        reasons = []
        if missing:
            label = period_label(last, g, calendar=calendar_of(df)) if last is not None else None
            newest = f" (the newest is for {label})" if label else ""
            reasons.append(f"no value in the last {missing} period(s) to {when}: the data stopped or is late{newest}")
        if flat:
            reasons.append(f"the same value in each of the last {len(recent)} periods: is it still measured?")
        if passed:
            reasons.append(f"its deadline {deadline} has passed: set the next target")
        rows.append({
            "metric": mid, "name": _name(plan, mid),
            "last_value_period": period_label(last, g, calendar=calendar_of(df)) if last is not None else None,
            "periods_without_data": missing, "flat": flat, "deadline": deadline, "deadline_passed": passed,
            "stale": bool(reasons), "reason": "; ".join(reasons),
        })  # fmt: skip
    cols = ["metric", "name", "last_value_period", "periods_without_data", "flat", "deadline", "deadline_passed",
            "stale", "reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def vanity(plan: Plan) -> pd.DataFrame:
    """The plan's KPIs with the ``vanity_kpi`` rule's verdict: ``metric, name, vanity, indicator``."""
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    flagged = {i.kpi for i in _plan_issues(plan, "vanity_kpi")}
    rows = [
        {"metric": k.metric, "name": _name(plan, k.metric), "vanity": k.metric in flagged,
         "indicator": reg[k.metric].indicator.value}
        for k in plan.kpis if k.metric in reg
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["metric", "name", "vanity", "indicator"])


def balance(plan: Plan) -> tuple[pd.DataFrame, str]:
    """Leading vs lagging KPIs: the count per kind (with the KPI names) and a one-line verdict
    (the ``indicator_balance`` rule's message and fix when it fires)."""
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    kinds: dict[str, list[str]] = {i.value: [] for i in Indicator}
    for k in plan.kpis:
        if k.metric in reg:
            kinds[reg[k.metric].indicator.value].append(_name(plan, k.metric))
    frame = pd.DataFrame(
        [{"indicator": i, "kpis": len(names), "names": ", ".join(names)} for i, names in kinds.items()]
    )
    lead, lag = len(kinds["leading"]), len(kinds["lagging"])
    issues = _plan_issues(plan, "indicator_balance")
    if issues:
        verdict = f"{issues[0].message} {issues[0].fix}"
    elif lead and lag:
        verdict = f"Balanced: {lead} leading and {lag} lagging KPI(s)."
    else:
        verdict = "No KPI to balance."
    return frame, verdict


def _plan_issues(plan: Plan, rule: str) -> list[Issue]:
    """The issues one plan rule of :func:`kpinb.checks.lint.lint` raises: the rule decides, review only lays out."""
    from kpinb.checks.lint import lint

    return [i for i in lint(plan) if i.rule == rule]


def suggestions(
    plan: Plan,
    df: pd.DataFrame,
    periods: int = 6,
    as_of: Any = None,
    today: dt.date | None = None,
    kpis: Sequence[str] | None = None,
    missed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The changes to discuss at the review: ``kpi, topic, suggestion``, most pressing first.

    Collects the consistently missed targets, stale and vanity KPIs, the indicator balance and
    the SMART checks of :func:`kpinb.lint.lint` (warnings and errors), without repeats.
    ``missed``: what :func:`misses` returned for the same arguments, if already at hand (it
    judges every KPI on every period of the window: most of the work).
    """
    from kpinb.checks.lint import lint

    g = _grain(df)
    judged = latest_complete_period(df, as_of)
    when = today or (period_end(judged, g).date() if judged is not None else dt.date.today())
    rows: list[dict[str, Any]] = []
    if missed is None:
        missed = misses(plan, df, periods, as_of, kpis)
    for m in missed.to_dict("records"):
        if m["verdict"].startswith("consistently missed") and "closing" not in m["verdict"]:
            rows.append({"kpi": m["name"], "topic": m["verdict"], "suggestion": m["suggestion"]})
    for s in staleness(plan, df, periods, as_of, when, kpis).to_dict("records"):
        if s["stale"]:
            rows.append(
                {"kpi": s["name"], "topic": "stale", "suggestion": s["reason"][:1].upper() + s["reason"][1:] + "."}
            )
    seen_topics = {(r["kpi"], r["topic"]) for r in rows}
    names = {k.metric: _name(plan, k.metric) for k in plan.kpis}
    for issue in lint(plan, df, today=when):
        if issue.level == "info" or issue.rule in ("deadline_passed",):
            continue
        kpi = names.get(issue.kpi or "", "the plan") if issue.kpi else "the plan"
        if (kpi, issue.rule) in seen_topics:
            continue
        seen_topics.add((kpi, issue.rule))
        rows.append({"kpi": kpi, "topic": issue.rule.replace("_", " "), "suggestion": f"{issue.message} {issue.fix}"})
    return pd.DataFrame(rows, columns=["kpi", "topic", "suggestion"])


