"""The digest: one compact page (and one chat message) of every department's statuses, top
movers, alerts and insights, read from the scorecards (never judged again).

The HTML is email-safe: one self-contained page, inline styles only, no scripts, no external
images (trends are inline SVG sparklines), every piece of user text escaped. The payload is a
Slack-style message (``text`` plus Block Kit ``blocks`` in mrkdwn) that other chat webhooks
read as plain ``text``; it also carries the data as ``departments``.

>>> d = Digest("KPI digest", "2025-09-01", (department(plan, [card]),))  # doctest: +SKIP
>>> html, payload = to_html(d), to_payload(d)  # doctest: +SKIP
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

__all__ = ["Department", "Digest", "KpiLine", "department", "to_html", "to_payload"]

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


# --- HTML ----------------------------------------------------------------------------------------

_CELL = "padding:4px 8px;border-bottom:1px solid #eceff1;vertical-align:top;text-align:left"


def to_html(digest: Digest) -> str:
    """The digest as one email-safe HTML page (inline styles, no scripts, text escaped)."""
    from kpinb.views.kit import FONT, esc

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(digest.title)}</title></head>",
        f'<body style="margin:0;padding:16px;background:#ffffff;color:#202124;{FONT};font-size:14px">',
        f'<h1 style="font-size:20px;margin:0 0 4px">{esc(digest.title)}</h1>',
        f'<p style="margin:0 0 16px;color:#5f6368">{esc(digest.made)} · {len(digest.departments)} department(s)</p>',
    ]
    for d in digest.departments:
        parts.append(_department_html(d))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _pill(status: str) -> str:
    from kpinb.views.kit import NEUTRAL, STATUS_STYLE, pill

    label, color, background = STATUS_STYLE.get(status, (status, NEUTRAL, "#f1f3f4"))
    return pill(label, color, background)


def _department_html(d: Department) -> str:
    from kpinb.views.kit import SEVERITY_STYLE, esc

    out = [
        f'<h2 style="font-size:17px;margin:20px 0 6px;border-bottom:2px solid #dadce0">{esc(d.name)} '
        f'<span style="color:#5f6368;font-weight:400;font-size:13px">({esc(d.department)})</span></h2>'
    ]
    if d.problem:
        out.append(f'<p style="color:#b3261e">Not evaluated: {esc(d.problem)}</p>')
        return "\n".join(out)
    for o in d.objectives:
        progress = "" if math.isnan(o.progress) else f" · {esc(format_value(o.progress, 'percent'))} of the way"
        out.append(
            f'<p style="margin:4px 0">{_pill(o.status)} <b>{esc(o.statement)}</b>{progress}<br>'
            f'<span style="color:#5f6368;font-size:12px">{esc(o.reason)}</span></p>'
        )
    head = "".join(
        f'<th style="{_CELL};border-bottom:2px solid #dadce0;background:#f8f9fa">{h}</th>'
        for h in ("KPI", "status", "value", "vs previous", "target now", "trend")
    )
    rows = "".join(
        f"<tr><td style=\"{_CELL}\"><b>{esc(k.name)}</b><br><span style=\"color:#5f6368;font-size:12px\">"
        f"{esc(k.period)}</span></td><td style=\"{_CELL}\" title=\"{esc(k.reason)}\">{_pill(k.status)}</td>"
        f'<td style="{_CELL}">{esc(k.value)}</td><td style="{_CELL}">{esc(k.change)}</td>'
        f'<td style="{_CELL}">{esc(k.target)}</td><td style="{_CELL}">{sparkline(k.history)}</td></tr>'
        for k in d.kpis
    )
    table = "border-collapse:collapse;font-size:13px"
    out.append(f'<table role="presentation" style="{table}"><tr>{head}</tr>{rows}</table>')
    if d.movers:
        items = "".join(f"<li>{esc(k.name)}: {esc(k.change)} ({esc(k.value)})</li>" for k in d.movers)
        out.append(f'<h3 style="font-size:14px;margin:12px 0 4px">Top movers</h3><ul style="margin:0">{items}</ul>')
    if d.alerts:
        items = "".join(
            f'<li><span style="color:{SEVERITY_STYLE[a.severity][0]};font-weight:600">{esc(a.severity)}</span> '
            f"{esc(a.message)}</li>"
            for a in d.alerts
        )
        out.append(f'<h3 style="font-size:14px;margin:12px 0 4px">Alerts</h3><ul style="margin:0">{items}</ul>')
    if d.insights:
        items = "".join(f"<li>{esc(i.text)} <b>{esc(i.shown)}</b></li>" for i in d.insights)
        out.append(f'<h3 style="font-size:14px;margin:12px 0 4px">Insights</h3><ul style="margin:0">{items}</ul>')
    if d.notes:
        names = {k.metric: k.name for k in d.kpis}
        items = "".join(
            f"<li><b>{esc(names.get(n.kpi, n.kpi))}</b> {esc(n.period.isoformat())}"
            f"{' · ' + esc(n.author) if n.author else ''}: "
            f'<span style="white-space:pre-wrap">{esc(n.text)}</span></li>'
            for n in d.notes
        )
        out.append(f'<h3 style="font-size:14px;margin:12px 0 4px">Notes</h3><ul style="margin:0">{items}</ul>')
    return "\n".join(out)


def sparkline(values: Sequence[float], width: int = 96, height: int = 24) -> str:
    """An inline SVG polyline of ``values`` (gaps skipped), coordinates to one decimal; empty
    with fewer than two values."""
    points = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
    if len(points) < 2:
        return ""
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span, n = (hi - lo) or 1.0, max(len(values) - 1, 1)
    xy = " ".join(
        f"{2 + (width - 4) * i / n:.1f},{height - 2 - (height - 4) * (v - lo) / span:.1f}" for i, v in points
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="trend"><polyline fill="none" stroke="#1a73e8" stroke-width="1.5" points="{xy}"/></svg>'
    )


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
