"""The review pieces of a report: :mod:`kpinb.analytics.review`'s frames as tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpinb.views.kit import esc
from kpinb.views.report._page import _day, _fmt, _html, table_html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.views.report._load import Report


def misses_table(r: Report, miss: pd.DataFrame) -> Any:
    """:func:`kpinb.review.misses` formatted."""
    rows = [
        [x["name"], f"{x['periods_missed']} of {x['periods_judged']}", _fmt(r, x["metric"], x["latest_gap"]),
         _fmt(r, x["metric"], x["gap_trend"]), _fmt(r, x["metric"], x["best_value"]), _fmt(r, x["metric"], x["target"]),
         x["verdict"], x["suggestion"]]
        for x in miss.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "missed", "latest gap", "gap change per period", "best 3-period average", "target", "verdict",
               "suggestion"]  # fmt: skip
    return _html(table_html(headers, rows))


def staleness_table(stale: pd.DataFrame) -> Any:
    """:func:`kpinb.review.staleness` formatted."""
    rows = [
        [x["name"], x["last_value_period"] or "never", str(x["periods_without_data"]), "yes" if x["flat"] else "no",
         _day(x["deadline"]) or "–", "stale" if x["stale"] else "fresh", x["reason"] or "–"]
        for x in stale.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "last value", "periods without data", "flat", "deadline", "verdict", "why"]
    return _html(table_html(headers, rows))


def vanity_table(van: pd.DataFrame) -> Any:
    """:func:`kpinb.review.vanity` formatted."""
    rows = [[x["name"], x["indicator"], "vanity metric" if x["vanity"] else "no"] for x in van.to_dict("records")]
    return _html(table_html(["KPI", "indicator", "vanity"], rows))


def balance_table(bal: pd.DataFrame, verdict: str) -> Any:
    """:func:`kpinb.review.balance` formatted, with its verdict."""
    rows = [[x["indicator"], str(x["kpis"]), x["names"] or "–"] for x in bal.to_dict("records")]
    return _html(f"<p><b>{esc(verdict)}</b></p>" + table_html(["indicator", "KPIs", "which"], rows))


def suggestions_table(sug: pd.DataFrame) -> Any:
    """:func:`kpinb.review.suggestions` formatted."""
    rows = [[x["kpi"], x["topic"], x["suggestion"]] for x in sug.to_dict("records")]
    return _html(table_html(["KPI", "topic", "suggestion"], rows) if rows else "<p>No change to suggest.</p>")
