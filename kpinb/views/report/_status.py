"""The KPI cards and the status table of a report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpinb.views.report._page import _html

if TYPE_CHECKING:
    from kpinb.views.report._load import Report


def cards(r: Report) -> Any:
    """The KPI cards (value, change, progress to target, status, sparkline) as displayable HTML."""
    from kpinb.views.cards import kpi_cards

    return _html(kpi_cards(r.status, r.frame, r.registry, currency=r.plan.currency))


def status_table(r: Report, folded: bool = False) -> Any:
    """The KPI statuses with the rule and the reason, as displayable HTML; ``folded``: inside a
    closed ``<details>`` (when the cards above already show them, the table is the detail)."""
    from kpinb.views.display import status_html
    from kpinb.views.report._page import folded as fold

    body = status_html(r.status, r.registry, r.plan.currency, r.grain)
    return _html(fold("The statuses as a table, with the rule that decided each", body) if folded else body)
