"""kpinb: from business objectives to a few well-chosen KPIs, computed from your own data.

>>> import kpinb
>>> plan = kpinb.load_plan("templates/plans/sales.yml")     # doctest: +SKIP
>>> kpinb.compute(plan, grain="quarter", by=["region"])     # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from kpinb.errors import DataError, FormulaError, KpinbError, PlanError, RunError, SourceError, WriteError

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "FormulaError",
    "KpinbError",
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
