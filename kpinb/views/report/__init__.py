"""What the report notebooks (``templates/*.ipynb``) call: load a plan for a report, show
escaped headings and tables, render plotly figures for stored notebooks or offline HTML,
and publish a machine-readable summary that ``kpinb run`` collects into its manifest.

Templates stay narrative plus calls to this module and the public API; anything that is
logic lives here, where it is typed and tested: one small module per section of the templates
(``_load``: the :class:`Report`; ``_age``: how old its data is; ``_status``: cards and statuses;
``_pace``: pace and trends;
``_alerts``; ``_breakdowns``: supporting metrics, breakdowns and drivers; ``_benchmark``;
``_review``; ``_proposal``; ``_page``: set-up, headings, notes, tables, figures; ``_summary``:
what :func:`publish` hands to ``kpinb run``). Import from this package, not from those modules.

>>> from kpinb import report
>>> report.setup()                                                   # doctest: +SKIP
>>> r = report.load("templates/plans/sales.yml", period_end="2025-06-30")  # doctest: +SKIP
>>> report.publish(r)                                                # doctest: +SKIP
"""

from __future__ import annotations

from kpinb.views.report._age import DataAge, age_of, data_age
from kpinb.views.report._alerts import alerts, alerts_table
from kpinb.views.report._benchmark import (
    benchmark_file,
    benchmark_summary,
    external,
    external_figure,
    external_table,
    history,
    history_figures,
    history_table,
    peer_figures,
    peers,
    peers_table,
)
from kpinb.views.report._breakdowns import (
    breakdown_figures,
    breakdown_table,
    breakdowns,
    dimensions,
    driver_figures,
    supporting,
    supporting_table,
)
from kpinb.views.report._decisions import insights, metric_tree, notes_table, objectives, target_changes_table
from kpinb.views.report._load import STEADY_DIGITS, Report, load, load_for_report, with_data_dir
from kpinb.views.report._pace import pace, pace_table, trend_figures
from kpinb.views.report._page import (
    RENDERER_ENV,
    REPORT_RENDERER,
    STORED_RENDERER,
    TRACES_ATTRIBUTE,
    code_block,
    heading,
    note,
    setup,
    show,
    table_html,
)
from kpinb.views.report._proposal import candidates_table, issues_table, targets_table
from kpinb.views.report._review import (
    balance_table,
    misses_table,
    staleness_table,
    suggestions_table,
    vanity_table,
)
from kpinb.views.report._status import cards, status_table
from kpinb.views.report._summary import SUMMARY_MIMETYPE, publish, summary

__all__ = [
    "RENDERER_ENV",
    "REPORT_RENDERER",
    "STEADY_DIGITS",
    "STORED_RENDERER",
    "SUMMARY_MIMETYPE",
    "TRACES_ATTRIBUTE",
    "DataAge",
    "Report",
    "age_of",
    "alerts",
    "alerts_table",
    "balance_table",
    "benchmark_file",
    "benchmark_summary",
    "breakdown_figures",
    "breakdown_table",
    "breakdowns",
    "candidates_table",
    "cards",
    "code_block",
    "data_age",
    "dimensions",
    "driver_figures",
    "external",
    "external_figure",
    "external_table",
    "heading",
    "history",
    "history_figures",
    "history_table",
    "insights",
    "issues_table",
    "load",
    "load_for_report",
    "metric_tree",
    "misses_table",
    "note",
    "notes_table",
    "objectives",
    "pace",
    "pace_table",
    "peer_figures",
    "peers",
    "peers_table",
    "publish",
    "setup",
    "show",
    "staleness_table",
    "status_table",
    "suggestions_table",
    "summary",
    "supporting",
    "supporting_table",
    "table_html",
    "target_changes_table",
    "targets_table",
    "trend_figures",
    "vanity_table",
    "with_data_dir",
]
