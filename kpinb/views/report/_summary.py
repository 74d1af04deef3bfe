"""The machine-readable summary a report notebook publishes and ``kpinb run`` collects into its
manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kpinb.views.report._page import _day, _num

if TYPE_CHECKING:
    from kpinb.outputs.alerts import Alert
    from kpinb.views.report._load import Report


SUMMARY_MIMETYPE = "application/vnd.kpinb.summary.v1+json"
"""Mimetype of the output :func:`publish` displays; ``kpinb run`` reads it from the executed
notebook (HTML export ignores it)."""


def _sig(x: Any) -> float | None:
    """Nine significant digits: parallel aggregation may change the last bits of a sum between runs."""
    f = _num(x)
    return None if f is None else float(f"{f:.9g}")


def summary(r: Report, alerts: Sequence[Alert] | None = None) -> dict[str, Any]:
    """The report's KPI statuses (and alerts) as JSON-ready data."""
    kpis = [
        {
            "metric": row["metric"],
            "name": str(row["name"]),
            "status": str(row["status"]),
            "value": _sig(row["value"]),
            "target": _sig(row["target"]),
            "period_start": _day(row["period_start"]),
            "rule": str(row["rule"]),
            "reason": str(row["reason"]),
        }
        for _, row in r.status.iterrows()
    ]
    objectives = [
        {"id": o.id, "statement": o.statement, "status": o.status, "progress": _sig(o.progress), "reason": o.reason}
        for o in r.scorecard.objectives()
    ]
    out: dict[str, Any] = {
        "plan": r.plan.name, "department": r.department, "grain": r.grain, "period_end": r.as_of,
        "kpis": kpis, "objectives": objectives,
    }  # fmt: skip
    if alerts is not None:
        out["alerts"] = [{**a.to_dict(), "value": _sig(a.value), "threshold": _sig(a.threshold)} for a in alerts]
    return out


def publish(r: Report, alerts: Sequence[Alert] | None = None) -> None:
    """Display the summary as a :data:`SUMMARY_MIMETYPE` output that ``kpinb run`` collects.

    Nothing visible: JupyterLab shows nothing for the mimetype and the HTML export drops it.
    """
    from IPython.display import display

    display({SUMMARY_MIMETYPE: summary(r, alerts)}, raw=True)
