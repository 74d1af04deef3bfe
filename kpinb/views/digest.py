"""The digest as one email-safe HTML page: self-contained, inline styles only, no scripts, no
external images (trends are inline SVG sparklines), every piece of user text escaped.

>>> html = to_html(kpinb.outputs.digest.Digest("KPI digest", "2025-09-01", (part,)))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kpinb._numbers import format_value
from kpinb.views.kit import FONT, NEUTRAL, SEVERITY_STYLE, STATUS_STYLE, esc, pill

if TYPE_CHECKING:
    from kpinb.outputs.digest import Department, Digest

__all__ = ["sparkline", "to_html"]

_CELL = "padding:4px 8px;border-bottom:1px solid #eceff1;vertical-align:top;text-align:left"


def to_html(digest: Digest) -> str:
    """The digest as one email-safe HTML page (inline styles, no scripts, text escaped)."""
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
    label, color, background = STATUS_STYLE.get(status, (status, NEUTRAL, "#f1f3f4"))
    return pill(label, color, background)


def _department_html(d: Department) -> str:
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
