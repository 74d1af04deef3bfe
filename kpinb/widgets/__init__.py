"""Jupyter widgets: the objective-to-KPI wizard and the KPI dashboard.

Importing this package is cheap: ipywidgets, plotly and the engine load when a widget class
is first used.

>>> from kpinb.widgets import KpiWizard, Dashboard      # doctest: +SKIP
>>> KpiWizard(department="sales", plans_dir="plans", sources="data/sample")   # doctest: +SKIP
>>> Dashboard("plans/sales.yml", grain="month")         # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kpinb.widgets._dashboard import Dashboard
    from kpinb.widgets._wizard import KpiWizard

__all__ = ["Dashboard", "KpiWizard"]

_LAZY = {"Dashboard": "._dashboard", "KpiWizard": "._wizard"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kpinb.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
