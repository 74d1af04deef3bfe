"""The digest: every department's statuses, top movers, alerts and insights, read from the
scorecards (never judged again), and its chat message.

The payload is a Slack-style message (``text`` plus Block Kit ``blocks`` in mrkdwn) that other
chat webhooks read as plain ``text``; it also carries the data as ``departments``. Its email-safe
page is a view: :func:`kpinb.views.digest.to_html`.

>>> d = Digest("KPI digest", "2025-09-01", (department(plan, [card]),))  # doctest: +SKIP
>>> payload = to_payload(d)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpinb._numbers import as_float, format_change, format_value

if TYPE_CHECKING:
    from kpinb.definitions.model import Plan
    from kpinb.definitions.notes import Note
    from kpinb.outputs.alerts import Alert
    from kpinb.outputs.insights import Insight
    from kpinb.scorecard import ObjectiveRollup, Scorecard

__all__ = ["Department", "Digest", "KpiLine", "department", "to_payload"]

HISTORY = 12
"""Periods a sparkline shows."""
MOVERS = 3
NOTES = 3
"""The latest notes a department shows."""
STATUS_WORDS = {
    "on_track": "on track", "at_risk": "at risk", "off_track": "off track", "no_data": "no data",
    "not_judged": "not judged",
}  # fmt: skip
_EMOJI = {"on_track": ":large_green_circle:", "at_risk": ":large_orange_circle:", "off_track": ":red_circle:"}


@dataclass(frozen=True)
class KpiLine:
    """One KPI as the digest shows it: numbers already formatted (``value``, ``change`` against
    the previous period, ``target`` in force), ``status`` and its ``reason``, the judged
    ``period``, ``move`` (relative change, for ranking movers) and ``history`` for the sparkline."""

    metric: str
    name: str
    status: str
    reason: str
    period: str
    value: str
    change: str
    target: str
    move: float
    direction: str
    history: tuple[float, ...] = ()


@dataclass(frozen=True)
class Department:
    """One plan's part of the digest (``problem`` says why it could not be evaluated)."""

    name: str
    department: str
    kpis: tuple[KpiLine, ...] = ()
    objectives: tuple[ObjectiveRollup, ...] = ()
    movers: tuple[KpiLine, ...] = ()
    alerts: tuple[Alert, ...] = ()
    insights: tuple[Insight, ...] = ()
    problem: str | None = None
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Digest:
    """The whole digest: a ``title``, the date it was ``made`` (ISO) and its departments."""

    title: str
    made: str
    departments: tuple[Department, ...]


def department(
    plan: Plan, cards: Sequence[Scorecard], *, insights: int = 5, notes: Sequence[Note] = ()
) -> Department:
    """One department from its scorecards (one per grain its KPIs use): KPI lines in plan order,
    objectives, the top movers, threshold and anomaly alerts, the top insights and the latest
    of ``notes`` (:func:`kpinb.definitions.notes.read_notes`)."""
    from kpinb.analytics.kpis import series_of
    from kpinb.outputs import alerts as alerts_mod
    from kpinb.outputs import insights as insights_mod

    lines, found_alerts, found_insights, evaluations = [], [], [], []
    for card in cards:
        found_alerts += alerts_mod.from_scorecard(card) + alerts_mod.anomalies(card)
        found_insights += insights_mod.for_department(card, limit=insights)
        for e in card.evaluations:
            evaluations.append(e)
            e = dataclasses.replace(e, unit=card.display_unit(e.metric))  # a duration in its time unit
            history = series_of(card.frame, e.metric)
            if e.period_start is not None:
                history = history[history.index <= e.period_start]
            lines.append(KpiLine(
                e.metric, e.name, e.status, e.reason, e.period_label, format_value(e.value, e.unit),
                format_change(e.value, e.previous, e.unit), format_value(e.target_now, e.unit),
                _move(e.value, e.previous), e.direction, tuple(float(v) for v in history.tail(HISTORY)),
            ))  # fmt: skip
    order = {k.metric: i for i, k in enumerate(plan.kpis)}
    lines.sort(key=lambda x: order.get(x.metric, len(order)))
    found_alerts.sort(key=lambda a: (a.severity != "critical", order.get(a.kpi, len(order))))
    ranked = insights_mod.ranked(found_insights, insights)
    movers = sorted((x for x in lines if math.isfinite(x.move)), key=lambda x: -abs(x.move))[:MOVERS]
    objectives: tuple[ObjectiveRollup, ...] = ()
    if cards:
        whole = dataclasses.replace(cards[0], plan=plan, evaluations=tuple(evaluations))
        objectives = whole.objectives()
    return Department(
        plan.name, plan.department, tuple(lines), objectives, tuple(movers), tuple(found_alerts), tuple(ranked),
        notes=tuple(sorted(notes, key=lambda n: n.period)[-NOTES:][::-1]),
    )


def _move(new: float, old: float) -> float:
    n, o = as_float(new), as_float(old)
    return (n - o) / abs(o) if math.isfinite(n) and math.isfinite(o) and o != 0 else math.nan


# --- chat payload --------------------------------------------------------------------------------

_BLOCK_TEXT = 2900  # Slack refuses a section text over 3000 characters


def _mrkdwn(text: str) -> str:
    """User text for Slack mrkdwn: its three control characters escaped (&, <, >)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    if len(text) > _BLOCK_TEXT:
        text = text[: _BLOCK_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def to_payload(digest: Digest) -> dict[str, Any]:
    """A Slack-style message: ``text`` (the plain summary other webhooks show), ``blocks`` and
    the data as ``departments`` (statuses, movers, alerts, insights; JSON-ready)."""
    n_alerts = sum(len(d.alerts) for d in digest.departments)
    text = f"{digest.title} ({digest.made}): {len(digest.departments)} department(s), {n_alerts} alert(s)"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": text[:150]}}]
    data = []
    for d in digest.departments:
        blocks.append(_section(f"*{_mrkdwn(d.name)}* ({_mrkdwn(d.department)})"))
        if d.problem:
            blocks.append(_section(f"Not evaluated: {_mrkdwn(d.problem)}"))
        else:
            lines = [
                f"{_EMOJI.get(k.status, ':white_circle:')} *{_mrkdwn(k.name)}* {_mrkdwn(k.value)} "
                f"({_mrkdwn(k.change)}) — {STATUS_WORDS.get(k.status, _mrkdwn(k.status))}"
                for k in d.kpis
            ]
            blocks.append(_section("\n".join(lines) or "No KPIs."))
            if d.movers:
                movers = ", ".join(f"{_mrkdwn(k.name)} {_mrkdwn(k.change)}" for k in d.movers)
                blocks.append(_section(f"*Top movers:* {movers}"))
            if d.alerts:
                blocks.append(_section("*Alerts*\n" + "\n".join(
                    f"• [{a.severity}] {_mrkdwn(a.message)}" for a in d.alerts
                )))  # fmt: skip
            if d.insights:
                blocks.append(_section("*Insights*\n" + "\n".join(f"• {_mrkdwn(i.text)}" for i in d.insights)))
            if d.notes:
                blocks.append(_section("*Notes*\n" + "\n".join(
                    f"• {n.kpi} {n.period.isoformat()}: {_mrkdwn(n.text)}" for n in d.notes
                )))  # fmt: skip
        blocks.append({"type": "divider"})
        data.append({
            "name": d.name, "department": d.department, "problem": d.problem,
            "kpis": [{f: getattr(k, f) for f in ("metric", "name", "status", "period", "value", "change", "target",
                                                  "reason")} for k in d.kpis],
            "objectives": [{"id": o.id, "statement": o.statement, "status": o.status, "reason": o.reason,
                            "progress": None if math.isnan(o.progress) else o.progress} for o in d.objectives],
            "movers": [k.metric for k in d.movers],
            "alerts": [a.to_dict() for a in d.alerts],
            "insights": [i.to_dict() for i in d.insights],
            "notes": [{"kpi": n.kpi, "period": n.period.isoformat(), "author": n.author, "text": n.text}
                      for n in d.notes],
        })  # fmt: skip
    return {"text": text, "blocks": blocks, "departments": data}
