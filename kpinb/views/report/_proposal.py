"""The proposal pieces of a report: a :class:`kpinb.proposal.Proposal`'s candidates and targets,
and SMART issues, as tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kpinb.views.report._page import _day, _html, table_html


def candidates_table(p: Any) -> Any:
    """The catalog candidates of a :class:`kpinb.proposal.Proposal`, chosen ones marked."""
    rows = [
        ["✔" if x["chosen"] else "", x["objective"], x["name"], x["indicator"], x["role"].replace("_", " "),
         "yes" if x["has_data"] else "no", x["note"]]
        for x in p.candidates.to_dict("records")
    ]  # fmt: skip
    headers = ["chosen", "objective", "metric", "indicator", "role", "data connected", "note"]
    return _html(table_html(headers, rows))


def targets_table(p: Any) -> Any:
    """The proposed KPIs with baseline, target, deadline and thresholds."""
    from kpinb.views.kit import format_value

    rows = [
        [x["name"], x["indicator"], x["direction"].replace("_", " "), format_value(x["baseline"], x["unit"]),
         format_value(x["target"], x["unit"]), _day(x["deadline"]), format_value(x["warning"], x["unit"]),
         format_value(x["critical"], x["unit"])]
        for x in p.targets.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "indicator", "direction", "baseline", "target", "by", "warning at", "critical at"]
    return _html(table_html(headers, rows))


def issues_table(issues: Sequence[Any]) -> Any:
    """SMART review issues (:class:`kpinb.lint.Issue`) as a table."""
    rows = [[i.level, i.rule.replace("_", " "), i.kpi or "plan", i.message, i.fix] for i in issues]
    return _html(table_html(["level", "check", "KPI", "finding", "fix"], rows) if rows else "<p>No issue.</p>")
