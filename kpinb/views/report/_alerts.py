"""The alerts of a report's KPIs and their table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kpinb.views.report._page import _html

if TYPE_CHECKING:
    from kpinb.outputs.alerts import Alert
    from kpinb.views.report._load import Report


def alerts(r: Report) -> list[Alert]:
    """The judged KPIs' alerts, read from the report's scorecard (:func:`kpinb.alerts.from_scorecard`)."""
    from kpinb.outputs.alerts import evaluate, from_scorecard

    if r.scorecard is not None:
        return from_scorecard(r.scorecard)
    return evaluate(r.plan, r.frame, as_of=r.period_end, kpis=r.kpi_ids)


def alerts_table(found: Sequence[Alert], r: Report | None = None) -> Any:
    """The alerts as displayable HTML, critical first; with the report ``r``, values in the KPIs'
    units and the plan's currency, periods labelled at its grain."""
    from kpinb.views.display import alerts_html

    if r is None:
        return _html(alerts_html(list(found)))
    return _html(alerts_html(list(found), r.registry, r.plan.currency, r.grain))
