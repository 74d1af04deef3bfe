"""The presentation kit: the one place that decides how kpinb shows things to people.

Escaping of every piece of user text, the number formatter (units, percent, compact millions,
durations; defined in :mod:`kpinb._numbers` so that the sentences the analytics write use it
too), status and severity colours, pills and tables. Cards, notebook displays, reports,
the run index and the widgets all draw with these, so a status is the same green and a number
the same text everywhere.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kpinb._numbers import DASH, display_unit, duration_unit, format_value, unit_key

if TYPE_CHECKING:
    pass

__all__ = [
    "BAD", "DASH", "FONT", "GOOD", "HEADER_BG", "MUTED", "NEUTRAL", "RULE", "SEVERITY_STYLE", "STATUS_STYLE",
    "SURFACE", "TEXT", "TEXT_MUTED", "TEXT_SOFT", "WARN",
    "display_unit", "duration_unit", "esc", "format_value", "human_name", "name_at_grain", "pill",
    "progress_text", "table", "unit_key",
]  # fmt: skip

GOOD, WARN, BAD, NEUTRAL, MUTED = "#1b7f3b", "#9a5b00", "#b3261e", "#5f6368", "#dadce0"
"""Text/accent colours: on track, at risk / warning, off track / critical, neutral text, rules."""

# Surfaces and text follow JupyterLab's theme (its CSS variables), with the light values as
# fallbacks for exported pages: cards and tables are not bright white blocks in the dark theme.
SURFACE = "var(--jp-layout-color0, #fff)"
TEXT = "var(--jp-ui-font-color0, #202124)"
TEXT_SOFT = "var(--jp-ui-font-color1, #3c4043)"
TEXT_MUTED = "var(--jp-ui-font-color2, #5f6368)"
RULE = "var(--jp-border-color2, #dadce0)"
HEADER_BG = "var(--jp-layout-color2, #f8f9fa)"

SEVERITY_STYLE: dict[str, tuple[str, str]] = {
    "critical": (BAD, "#fdeceb"),
    "error": (BAD, "#fdeceb"),
    "warning": (WARN, "#fff3df"),
    "info": ("#1a73e8", "#e8f0fe"),
}
"""Alert and issue level -> (text colour, background)."""

_TABLE = f"border-collapse:collapse;margin:4px 0 10px;min-width:60%;font-size:13px;line-height:1.35;color:{TEXT}"
_TH = f"text-align:left;padding:4px 8px;border-bottom:2px solid {RULE};background:{HEADER_BG};font-weight:600"
_TD = "text-align:left;padding:4px 8px;border-bottom:1px solid var(--jp-border-color3, #eceff1);vertical-align:top"


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


STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "on_track": ("On track", GOOD, "#e7f4ea"),
    "at_risk": ("At risk", WARN, "#fff3df"),
    "off_track": ("Off track", BAD, "#fdeceb"),
    "no_data": ("No data", NEUTRAL, "#f1f3f4"),
    "not_judged": ("Not judged", NEUTRAL, "#f1f3f4"),
}
"""Status -> (label, text/accent colour, background). Unknown statuses render grey with their own name."""

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def progress_text(progress: Any) -> str:
    """The scorecard's progress from the baseline to the target as people read it: ``47%`` between
    them, ``past target`` beyond it and ``behind baseline`` below it (never ``297%`` or ``-331%``:
    outside 0-100 % the percentage says nothing a reader can use); empty when there is none.

    >>> progress_text(0.474), progress_text(2.97), progress_text(-3.31), progress_text(None)
    ('47%', 'past target', 'behind baseline', '')
    """
    try:
        p = float(progress)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(p):
        return ""
    if p >= 1:
        return "past target" if p > 1 else "target reached"
    return "behind baseline" if p < 0 else f"{p:.0%}"


def human_name(column: Any, *, capital: bool = True) -> str:
    """A column or dimension name as people write it: ``product_category`` -> ``Product category``
    (``capital=False``: ``product category``, for inside a sentence or title). Text, not escaped.

    >>> human_name("product_category"), human_name("activity_type", capital=False), human_name("MRR")
    ('Product category', 'activity type', 'MRR')
    """
    text = " ".join(str(getattr(column, "value", column) or "").replace("_", " ").replace("-", " ").split())
    if not text or any(c.isupper() for c in text):
        return text  # already written for people (or an acronym): keep it
    return text[0].upper() + text[1:] if capital else text


_PERIOD_WORDS = {"day": "Daily", "week": "Weekly", "month": "Monthly", "quarter": "Quarterly", "year": "Yearly"}


def name_at_grain(name: str, grain: str, total: bool) -> str:
    """A metric's name shown at ``grain``: a ``total`` (it sums over time) named for one period
    takes the grain's word ("Monthly sales revenue" by quarter is "Quarterly sales revenue"); an
    average over time such as MRR keeps its own ("Monthly recurring revenue" by quarter).

    >>> name_at_grain("Monthly sales revenue", "quarter", True)
    'Quarterly sales revenue'
    >>> name_at_grain("Monthly recurring revenue", "quarter", False)
    'Monthly recurring revenue'
    """
    word = _PERIOD_WORDS.get(str(grain))
    if not total or word is None:
        return name
    for other in _PERIOD_WORDS.values():
        if name.startswith(other + " "):
            return word + name[len(other) :]
    return name
