"""Rich notebook display of plans, KPI statuses and alerts (HTML tables, every text escaped).

A bare ``plan`` or ``alert`` at the end of a cell renders as HTML by itself (their
``_repr_html_`` calls this module); wrap statuses and lists of alerts to display them:

>>> PlanView(kpinb.load_plan("templates/plans/sales.yml"))          # doctest: +SKIP
>>> StatusTable(kpinb.status.evaluate(plan, df))                     # doctest: +SKIP
>>> AlertTable(kpinb.alerts.evaluate(plan, df))                      # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpinb.views import kit
from kpinb.views.kit import (
    SEVERITY_STYLE,
    STATUS_STYLE,
    display_unit,
    esc,
    format_value,
    pill,
    progress_text,
    table,
)  # fmt: skip

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Metric, Plan
    from kpinb.outputs.alerts import Alert

__all__ = ["AlertTable", "PlanView", "StatusTable", "alerts_html", "plan_html", "status_html"]

_FONT = f"{kit.FONT};font-size:13px;color:#202124"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _period(x: Any, grain: Any) -> str:
    """A period's start as its label for people (``Dec 2025``) when the grain is known, else the date."""
    import pandas as pd

    if grain is None or x is None or pd.isna(x):
        return _date(x)
    from kpinb.analytics.compare import period_label

    return esc(period_label(x, str(grain), long=True))


def _date(x: Any) -> str:
    if x is None:
        return ""
    import pandas as pd

    try:
        t = pd.Timestamp(x)
    except (TypeError, ValueError):
        return esc(x)
    return "" if t is pd.NaT else f"{t:%Y-%m-%d}"


# --- plan ---------------------------------------------------------------------------------------


def plan_html(plan: Plan) -> str:
    """A plan as HTML: objectives, KPIs (baseline, target, thresholds, owner), sources and review.

    Database URLs show without their password; every text from the plan is escaped.
    """
    from kpinb.data.sources import redact
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    objectives = {o.id: o.statement for o in plan.objectives}
    parts = [
        f'<div class="kpinb-plan" style="{_FONT}">',
        f'<div style="font-size:16px;font-weight:700">{esc(plan.name)}</div>',
        f'<div style="color:#5f6368;margin-bottom:6px">department: {esc(plan.department)}'
        + (f" · file: {esc(plan.file)}" if plan.file else "")
        + "</div>",
    ]
    if plan.objectives:
        items = "".join(f"<li><code>{esc(o.id)}</code> {esc(o.statement)}</li>" for o in plan.objectives)
        parts.append(f'<div style="font-weight:600">Objectives</div><ul style="margin:2px 0 8px">{items}</ul>')
    rows = []
    for k in plan.kpis:
        m: Metric | None = reg.get(k.metric)
        unit = display_unit(m, None, plan.currency)
        name = k.name or (m.name if m is not None else k.metric)
        if k.baseline is None:
            baseline = ""
        elif k.baseline.value is not None:
            baseline = esc(format_value(k.baseline.value, unit))
        else:
            baseline = f"mean {_date(k.baseline.from_)} – {_date(k.baseline.to)}"
        target = ""
        if k.target is not None:
            target = esc(format_value(k.target.value, unit)) + (f" by {_date(k.target.by)}" if k.target.by else "")
        th = k.thresholds
        thresholds = ""
        if th is not None:
            bits = [
                f"{lvl} {format_value(v, unit)}"
                for lvl, v in (("warning", th.warning), ("critical", th.critical))
                if v is not None
            ]
            if th.change_pct is not None:
                bits.append(f"change > {th.change_pct:g}%")
            thresholds = esc(", ".join(bits))
        support = ", ".join(esc(reg[s].name if s in reg else s) for s in k.supporting)
        objective = k.objective or ""
        rows.append(
            [
                f"<b>{esc(name)}</b><br><code style='color:#5f6368'>{esc(k.metric)}</code>",
                esc(objective)
                + (
                    f"<br><span style='color:#5f6368'>{esc(objectives[objective])}</span>"
                    if objective in objectives
                    else ""
                ),
                esc(k.owner) or '<span style="color:#b3261e">no owner</span>',
                esc(k.grain),
                baseline,
                target or '<span style="color:#b3261e">no target</span>',
                thresholds,
                support,
            ]
        )
    parts.append('<div style="font-weight:600">KPIs</div>')
    parts.append(
        table(
            ["KPI", "objective", "owner", "grain", "baseline", "target", "thresholds", "supporting"],
            rows,
            "kpinb-plan-kpis",
        )
        if rows
        else '<div style="color:#b3261e">No KPIs yet.</div>'
    )
    if plan.sources:
        srows = []
        for name, s in plan.sources.items():
            where = esc(s.path) if s.path else esc(redact(s.url or "")) + (f" · {esc(s.table)}" if s.table else "")
            mapped = ", ".join(f"{esc(c)} ← {esc(u)}" for c, u in s.columns.items())
            srows.append(
                [f"<code>{esc(name)}</code>", where, esc(s.time), esc(", ".join(s.dimensions or ())), mapped]
            )
        parts.append('<div style="font-weight:600">Sources</div>')
        parts.append(table(["source", "location", "time", "dimensions", "columns"], srows, "kpinb-plan-sources"))
    extra = []
    if plan.benchmarks:
        extra.append(f"benchmarks: {esc(plan.benchmarks)}")
    if plan.review is not None:
        extra.append(
            f"review every {esc(plan.review.every)}"
            + (f", last {_date(plan.review.last)}" if plan.review.last else "")
        )
    if extra:
        parts.append(f'<div style="color:#5f6368">{" · ".join(extra)}</div>')
    parts.append("</div>")
    return "".join(parts)


# --- statuses -----------------------------------------------------------------------------------


def status_html(
    status: pd.DataFrame,
    registry: Mapping[str, Metric] | None = None,
    currency: str | None = None,
    grain: str | None = None,
) -> str:
    """The frame of :func:`kpinb.status.evaluate` as a table with a coloured status per KPI
    (amounts in the plan's ``currency``, periods labelled for people at ``grain``, default the
    frame's)."""
    grain = grain or status.attrs.get("grain")
    rows = []
    for r in status.to_dict("records"):
        m = registry.get(str(r.get("metric"))) if registry else None
        unit = display_unit(m, r.get("unit"), currency)
        st = str(r.get("status") or "no_data")
        label, color, background = STATUS_STYLE.get(st, (st.replace("_", " "), "#5f6368", "#f1f3f4"))
        prog_text = progress_text(r.get("progress"))
        change = r.get("change_pct")
        change_text = f"{change:+.1f}%" if isinstance(change, (int, float)) and math.isfinite(change) else ""
        rows.append(
            [
                f"<b>{esc(r.get('name') or r.get('metric'))}</b>",
                esc(r.get("owner")),
                _period(r.get("period_start"), grain),
                esc(format_value(r.get("value"), unit)),
                esc(change_text),
                esc(format_value(r.get("target_now"), unit)),
                esc(prog_text),
                pill(label, color, background),
                esc(r.get("reason")),
            ]
        )
    headers = ["KPI", "owner", "period", "value", "change", "target now", "progress", "status", "reason"]
    return f'<div class="kpinb-status" style="{_FONT}">{table(headers, rows, "kpinb-status-table")}</div>'


# --- alerts -------------------------------------------------------------------------------------


def alerts_html(
    alerts: Sequence[Alert] | pd.DataFrame,
    registry: Mapping[str, Metric] | None = None,
    currency: str | None = None,
    grain: str | None = None,
) -> str:
    """Alerts (a list of :class:`kpinb.alerts.Alert` or their frame) as a table, critical first;
    values and levels in the KPI's unit when ``registry`` knows it (amounts in ``currency``)."""
    records = (
        alerts.to_dict("records")
        if hasattr(alerts, "to_dict") and hasattr(alerts, "columns")
        else [
            {
                "kpi": a.kpi,
                "name": a.name,
                "period_start": a.period_start,
                "value": a.value,
                "threshold": a.threshold,
                "kind": a.kind,
                "severity": a.severity,
                "message": a.message,
            }
            for a in alerts  # type: ignore[union-attr]
        ]
    )
    if not records:
        return f'<div class="kpinb-alerts" style="{_FONT};color:#1b7f3b">No alerts.</div>'
    records.sort(key=lambda r: 0 if r.get("severity") == "critical" else 1)
    rows = []
    for r in records:
        sev = str(r.get("severity") or "warning")
        color, background = SEVERITY_STYLE.get(sev, ("#5f6368", "#f1f3f4"))
        m = registry.get(str(r.get("kpi"))) if registry else None
        unit = display_unit(m, None, currency) if m is not None else "count"
        value, threshold = r.get("value"), r.get("threshold")
        limit = (  # a change alert's level is a percent change, the others are values of the KPI
            f"{threshold:g}%" if r.get("kind") == "change" and _finite(threshold) else format_value(threshold, unit)
        )
        rows.append(
            [
                pill(sev, color, background),
                f"<b>{esc(r.get('name') or r.get('kpi'))}</b>",
                _period(r.get("period_start"), grain or getattr(alerts, "attrs", {}).get("grain")),
                esc(r.get("kind")),
                esc(format_value(value, unit) if _finite(value) else ""),
                esc(limit if _finite(threshold) else ""),
                esc(r.get("message")),
            ]
        )
    headers = ["severity", "KPI", "period", "kind", "value", "threshold", "message"]
    return f'<div class="kpinb-alerts" style="{_FONT}">{table(headers, rows, "kpinb-alerts-table")}</div>'


# --- wrappers and registration ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PlanView:
    """Displays a plan as HTML in a notebook (:func:`plan_html`)."""

    plan: Plan

    def _repr_html_(self) -> str:
        return plan_html(self.plan)


@dataclass(frozen=True, eq=False)
class StatusTable:
    """Displays KPI statuses as a coloured table (:func:`status_html`)."""

    status: pd.DataFrame
    registry: Mapping[str, Metric] | None = None

    def _repr_html_(self) -> str:
        return status_html(self.status, self.registry)


@dataclass(frozen=True, eq=False)
class AlertTable:
    """Displays alerts as a table, critical first (:func:`alerts_html`)."""

    alerts: Sequence[Alert] | pd.DataFrame

    def _repr_html_(self) -> str:
        return alerts_html(self.alerts)

