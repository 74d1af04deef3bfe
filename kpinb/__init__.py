"""kpinb: from business objectives to a few well-chosen KPIs, computed from your own data.

>>> import kpinb
>>> plan = kpinb.load_plan("templates/plans/sales.yml")     # doctest: +SKIP
>>> kpinb.compute(plan, grain="quarter", by=["region"])     # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import DataError, FormulaError, KpinbError, LimitError, PlanError, RunError, SourceError, WriteError

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
    "catalog",
    "compute",
    "load_plan",
]

# Heavy modules (ibis, duckdb, plotly, ipywidgets) load on first use, not on `import kpinb`.
_LAZY = {
    "load_plan": ("kpinb.plan", "load_plan"),
    "compute": ("kpinb.engine", "compute"),
    "catalog": ("kpinb.catalog", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = import_module(module)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kpinb' has no attribute {name!r}")
