"""The wizard's SMART review as HTML: the plan in words, per KPI, with the fixes that point at the form.

No widgets and no judgement here: the notes come from :mod:`kpinb.widgets._fields` (the plan
checks' findings), numbers from the one formatter, and every user text is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from kpinb.views.kit import GOOD, SEVERITY_STYLE, display_unit, esc, format_value

if TYPE_CHECKING:
    from kpinb.definitions.model import Metric
    from kpinb.widgets._draft import KpiDraft, PlanDraft
    from kpinb.widgets._fields import Note

TEXT = "var(--jp-content-font-color1, #202124)"
"""Body text that follows JupyterLab's theme (dark or light), with a light-theme fallback."""
MUTED_TEXT = "var(--jp-content-font-color2, #5f6368)"
RULE = "var(--jp-border-color2, #dadce0)"
CODE_BACKGROUND = "var(--jp-layout-color2, #f8f9fa)"
_ORDER = {"error": 0, "warning": 1, "info": 2}
_CELL = "padding:6px 8px;vertical-align:top"


def goal_text(k: KpiDraft, unit: str) -> str:
    """``from 1.38M to 1.70M by 2026-12-31`` (or ``no target yet``)."""
    if k.target is None:
        return "no target yet"
    start = f"from {format_value(k.baseline, unit)} " if k.baseline is not None else ""
    by = f" by {k.deadline:%Y-%m-%d}" if k.deadline else ""
    return f"{start}to {format_value(k.target, unit)}{by}"


def alerts_text(k: KpiDraft, unit: str) -> str:
    """``warning at 1.50M, critical at 1.35M`` (or ``no alert levels``)."""
    levels = [
        f"{word} at {format_value(v, unit)}"
        for word, v in (("warning", k.warning), ("critical", k.critical))
        if v is not None
    ]
    return ", ".join(levels) or "no alert levels"


def _items(notes: Iterable[Note], first: str) -> str:
    """List items, errors first; ``first``: ``fix`` (what to do, then why) or ``text``."""
    out = []
    for n in sorted(notes, key=lambda n: _ORDER[n.level]):
        lead, then = (n.fix, f"({n.text})") if first == "fix" else (n.text, n.fix)
        color = SEVERITY_STYLE[n.level][0]
        out.append(f'<li style="color:{color}">{esc(lead)} <span style="color:{MUTED_TEXT}">{esc(then)}</span></li>')
    return "".join(out)


def review_html(
    draft: PlanDraft, kpis: Sequence[tuple[Metric, KpiDraft]], notes: Sequence[Note], plan_yaml: str
) -> str:
    """The review: a verdict, the objective, a table of the KPIs (baseline → target by date, owner,
    alert levels) with each KPI's fixes under it, plan-wide notes, and the YAML folded away."""
    rows = []
    for m, k in kpis:
        unit = display_unit(m, None)
        better = "higher" if m.direction.value == "higher_is_better" else "lower"
        fixes = _items((n for n in notes if n.metric == m.id), "fix")
        rows.append(
            f'<tr class="kpinb-review-kpi" data-metric="{esc(m.id)}" style="border-top:1px solid {RULE}">'
            f'<td style="{_CELL};min-width:180px"><b>{esc(m.name)}</b><br><span style="color:{MUTED_TEXT};'
            f'font-size:12px">{esc(m.indicator.value)} · {better} is better</span></td>'
            f'<td style="{_CELL};white-space:nowrap">{esc(goal_text(k, unit))}</td>'
            f'<td style="{_CELL}">{esc(k.owner or "no owner yet")}</td>'
            f'<td style="{_CELL}">{esc(alerts_text(k, unit))}</td></tr>'
            + (f'<tr><td></td><td colspan="3" style="padding:0 8px 6px"><ul style="margin:0;padding-left:18px;'
               f'font-size:12px">{fixes}</ul></td></tr>' if fixes else "")
        )  # fmt: skip
    errors = sum(1 for n in notes if n.blocking)
    if errors:
        lead = (
            f'<div style="color:{SEVERITY_STYLE["error"][0]};font-weight:600">{errors} thing(s) to fix before '
            "saving (listed under each KPI).</div>"
        )
    elif notes:
        lead = f'<div style="color:{GOOD}">Ready to save; a few suggestions below.</div>'
    else:
        lead = f'<div style="color:{GOOD}">The plan passes the SMART review.</div>'
    plan_items = _items((n for n in notes if n.metric is None), "text")
    objective = (
        f'<div style="margin-top:4px"><b>{esc(draft.name)}</b> · objective: <i>{esc(draft.statement)}</i> · '
        f"reviewed every {esc(draft.review_every)}</div>"
    )
    table = (
        f'<table class="kpinb-wizard-summary" style="border-collapse:collapse;font-size:13px;margin-top:6px;'
        f'width:100%;color:{TEXT}"><thead><tr style="text-align:left"><th style="padding:4px 8px">KPI</th>'
        '<th style="padding:4px 8px">Baseline → target</th><th style="padding:4px 8px">Owner</th>'
        f'<th style="padding:4px 8px">Alerts</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return (
        f'<div style="color:{TEXT}"><div style="font-weight:600">SMART review</div>{lead}{objective}'
        + (f'<ul class="kpinb-wizard-plan-notes" style="font-size:12px;padding-left:18px">{plan_items}</ul>'
           if plan_items else "")
        + table
        + '<details class="kpinb-wizard-yaml-details" style="margin-top:8px"><summary>Show the plan file '
        f'(YAML)</summary><pre class="kpinb-wizard-yaml" style="background:{CODE_BACKGROUND};color:{TEXT};'
        f'padding:8px;font-size:12px">{esc(plan_yaml)}</pre></details></div>'
    )  # fmt: skip
