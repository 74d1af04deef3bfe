"""The presentation kit: the one place that decides how kpinb shows things to people.

Escaping of every piece of user text, the number formatter (units, percent, compact millions,
durations), status and severity colours, pills and tables. Cards, notebook displays, reports,
the run index and the widgets all draw with these, so a status is the same green and a number
the same text everywhere.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kpinb._numbers import as_float

if TYPE_CHECKING:
    from kpinb.definitions.model import Metric

__all__ = [
    "BAD", "DASH", "FONT", "GOOD", "MUTED", "NEUTRAL", "SEVERITY_STYLE", "STATUS_STYLE", "WARN",
    "display_unit", "duration_unit", "esc", "format_value", "pill", "table", "unit_key",
]  # fmt: skip

GOOD, WARN, BAD, NEUTRAL, MUTED = "#1b7f3b", "#9a5b00", "#b3261e", "#5f6368", "#dadce0"
"""Text/accent colours: on track, at risk / warning, off track / critical, neutral text, rules."""

SEVERITY_STYLE: dict[str, tuple[str, str]] = {
    "critical": (BAD, "#fdeceb"),
    "error": (BAD, "#fdeceb"),
    "warning": (WARN, "#fff3df"),
    "info": ("#1a73e8", "#e8f0fe"),
}
"""Alert and issue level -> (text colour, background)."""

_TABLE = "border-collapse:collapse;margin:4px 0 10px;min-width:60%;font-size:13px"
_TH = "text-align:left;padding:4px 8px;border-bottom:2px solid #dadce0;background:#f8f9fa;font-weight:600"
_TD = "text-align:left;padding:4px 8px;border-bottom:1px solid #eceff1;vertical-align:top"


def esc(x: Any) -> str:
    """``x`` as escaped HTML text; None and NaN give an empty string, enums their value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return html.escape(str(getattr(x, "value", x)), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str) -> str:
    """An HTML table with class ``cls``; headers are text (escaped here), cells already-escaped HTML."""
    head = "".join(f'<th style="{_TH}">{esc(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="{_TD}">{c}</td>' for c in r) + "</tr>" for r in rows)
    return f'<table class="{esc(cls)}" style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pill(text: str, color: str, background: str) -> str:
    """A rounded status label: ``● text`` in ``color`` on ``background`` (text escaped)."""
    return (
        f'<span style="white-space:nowrap;font-weight:600;color:{color};background:{background};'
        f'border-radius:10px;padding:1px 8px">● {esc(text)}</span>'
    )


DASH = "–"
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "on_track": ("On track", GOOD, "#e7f4ea"),
    "at_risk": ("At risk", WARN, "#fff3df"),
    "off_track": ("Off track", BAD, "#fdeceb"),
    "no_data": ("No data", NEUTRAL, "#f1f3f4"),
    "not_judged": ("Not judged", NEUTRAL, "#f1f3f4"),
}
"""Status -> (label, text/accent colour, background). Unknown statuses render grey with their own name."""

_DURATION_WORDS = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "days",
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
}
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def unit_key(unit: Any) -> str:
    return str(getattr(unit, "value", unit) or "count").strip().lower()


def _compact(v: float, decimals: int = 2) -> str | None:
    """1.23B / 4.56M for large numbers; None when no suffix applies."""
    a = abs(v)
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if a >= size:
            return f"{v / size:.{decimals}f}{suffix}"
    return None


def format_value(value: Any, unit: Any = "count") -> str:
    """A value for display in its unit.

    Parameters
    ----------
    value : the number (NaN, None or text give ``"–"``).
    unit : ``percent`` (stored as a fraction 0..1), ``currency``, ``count``, ``ratio``, ``score``,
        ``duration``, or a time unit for durations (``s``/``seconds``, ``min``/``minutes``,
        ``h``/``hours``, ``days``), which is kept after the number.

    Examples
    --------
    >>> format_value(0.1234, "percent"), format_value(1234567, "currency"), format_value(12345.4, "currency")
    ('12.3%', '1.23M', '12,345')
    >>> format_value(210.04, "seconds"), format_value(float("nan"), "count")
    ('210 s', '–')
    """
    v = as_float(value)
    if not math.isfinite(v):
        return DASH
    u = unit_key(unit)
    if u == "percent":
        return f"{v * 100:.1f}%"
    if u == "currency":
        big = _compact(v)
        if big:
            return big
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"
    if u == "ratio":
        return f"{v:,.2f}"
    if u == "score":
        return f"{v:,.1f}"
    if u == "duration" or u in _DURATION_WORDS:
        text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"
        label = _DURATION_WORDS.get(u)
        return f"{text} {label}" if label else text
    big = _compact(v)
    if big:
        return big
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 1000 else f"{v:,.1f}"


def duration_unit(metric: Metric) -> str | None:
    """The time unit of a duration metric, read from its formula's columns or its description.

    Returns ``"s"``, ``"min"``, ``"h"`` or ``"days"`` for a ``duration`` metric whose formula
    reads e.g. ``duration_seconds`` or ``days_to_fill``; None when unknown or not a duration.
    """
    if unit_key(metric.unit) != "duration":
        return None
    words = re.findall(r"[a-z]+", f"{metric.expr} {metric.description}".lower())
    for w in words:
        if w in ("seconds", "minutes", "hours", "days"):
            return _DURATION_WORDS[w]
    return None


def display_unit(metric: Metric | None, unit: Any) -> str:
    if metric is not None and unit_key(metric.unit) == "duration":
        return duration_unit(metric) or "duration"
    return unit_key(unit if unit is not None else (metric.unit if metric is not None else "count"))


# --- small pieces -----------------------------------------------------------------------------
