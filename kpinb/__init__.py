"""kpinb: from business objectives to a few well-chosen KPIs, computed from your own data.

>>> import kpinb
>>> plan = kpinb.load_plan("templates/plans/sales.yml")     # doctest: +SKIP
>>> kpinb.compute(plan, grain="quarter", by=["region"])     # doctest: +SKIP
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from kpinb.errors import (
    DataError,
    FormulaError,
    KpinbError,
    LimitError,
    PlanError,
    RunError,
    SourceError,
    WriteError,
)

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "FormulaError",
    "KpinbError",
    "LimitError",
    "PlanError",
    "RunError",
    "SourceError",
    "WriteError",
    "alerts",
    "benchmark",
    "cards",
    "catalog",
    "charts",
    "compare",
    "compute",
    "display",
    "drivers",
    "forecast",
    "lint",
    "load_plan",
    "proposal",
    "report",
    "review",
    "status",
    "widgets",
]

# Heavy modules (ibis, duckdb, plotly, ipywidgets) load on first use, not on `import kpinb`.
# The modules a notebook user reaches for are public names here (`from kpinb import report`),
# wherever they live in the layers below.
_LAZY = {
    "load_plan": ("kpinb.definitions.plan", "load_plan"),
    "compute": ("kpinb.engine.query", "compute"),
    "catalog": ("kpinb.definitions.catalog", None),
    "lint": ("kpinb.checks.lint", None),
    "compare": ("kpinb.analytics.compare", None),
    "status": ("kpinb.analytics.status", None),
    "forecast": ("kpinb.analytics.forecast", None),
    "benchmark": ("kpinb.analytics.benchmark", None),
    "drivers": ("kpinb.analytics.drivers", None),
    "review": ("kpinb.analytics.review", None),
    "proposal": ("kpinb.analytics.proposal", None),
    "alerts": ("kpinb.outputs.alerts", None),
    "cards": ("kpinb.views.cards", None),
    "charts": ("kpinb.views.charts", None),
    "display": ("kpinb.views.display", None),
    "report": ("kpinb.views.report", None),
    "widgets": ("kpinb.widgets", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = import_module(module)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kpinb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _html(view: str, many: bool = False) -> Any:
    def render(obj: Any) -> str:
        return getattr(import_module("kpinb.views.display"), view)([obj] if many else obj)

    return render


def _notebook_display() -> None:
    """In IPython, a plan or an alert at the end of a cell renders as an escaped HTML table.

    Registered by type name with the running shell's HTML formatter, so nothing is imported now
    and the definitions and outputs never import the views.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", {})
    if "text/html" in formatters:
        formatters["text/html"].for_type_by_name("kpinb.definitions.model", "Plan", _html("plan_html"))
        formatters["text/html"].for_type_by_name("kpinb.outputs.alerts", "Alert", _html("alerts_html", many=True))


_notebook_display()
