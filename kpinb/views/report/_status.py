"""The KPI cards and the status table of a report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpinb.views.report._page import _html

if TYPE_CHECKING:
    from kpinb.views.report._load import Report


def cards(r: Report) -> Any:
    """The KPI cards (value, change, progress to target, status, sparkline) as displayable HTML."""
    from kpinb.views.cards import kpi_cards

    return _html(kpi_cards(r.status, r.frame, r.registry))


def status_table(r: Report) -> Any:
    """The KPI statuses with the rule and the reason, as displayable HTML."""
    from kpinb.views.display import status_html

    return _html(status_html(r.status, r.registry))
