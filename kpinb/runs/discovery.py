"""Where templates and plans are: the shipped template notebooks and example plans, found by name."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kpinb.errors import PlanError, RunError

ALL_TEMPLATES = ("objective_to_kpi", "kpi_dashboard", "benchmark_comparison", "kpi_review")
"""The shipped templates."""

REPORT_TEMPLATES = ("kpi_dashboard", "benchmark_comparison", "kpi_review")
"""What ``kpinb run`` executes per department when no ``--template`` is named (the
objective-to-KPI template is for choosing KPIs, not for recurring reports)."""


def templates_dir() -> Path:
    """The shipped templates: ``kpinb/templates`` in a wheel (and via the symlink in a source
    checkout), else the checkout's top-level ``templates/``."""
    here = Path(__file__).resolve().parents[1]  # the kpinb package
    for folder in (here / "templates", here.parent / "templates"):
        if (folder / "kpi_dashboard.ipynb").is_file():
            return folder.resolve()
    raise RunError(f"the template notebooks are not installed (looked in {here / 'templates'}). Reinstall kpinb.")


def shipped_plans_dir() -> Path:
    """The folder of the example plans shipped for the sample data."""
    here = Path(__file__).resolve().parents[1]  # the kpinb package
    for folder in (here / "templates" / "plans", here.parent / "templates" / "plans"):
        if folder.is_dir():
            return folder.resolve()
    raise RunError(f"the example plans are not installed (looked in {here / 'templates' / 'plans'}). Reinstall kpinb.")


def department_plans(plans_dir: Path | None = None, departments: Sequence[str] | None = None) -> list[Path]:
    """Plan files in ``plans_dir``, one per department (all, or the ones named)."""
    folder = Path(plans_dir) if plans_dir else shipped_plans_dir()
    found = {p.stem: p for p in sorted(folder.glob("*.yml"))}
    if not found:
        raise PlanError(f"{folder}: no plan files (*.yml). Point --plans-dir at a folder of plans.")
    if departments is None:
        return list(found.values())
    unknown = [d for d in departments if d not in found]
    if unknown:
        raise PlanError(f"{folder}: no plan for department(s) {', '.join(unknown)}. Available: {', '.join(found)}.")
    return [found[d] for d in departments]


def template_path(template: str | Path) -> Path:
    """A shipped template by name (``kpi_dashboard``) or a notebook path of your own."""
    t = str(template)
    if t.endswith(".ipynb") or "/" in t or os.sep in t:
        path = Path(t).expanduser().resolve()
        if not path.is_file():
            raise RunError(f"template {t}: no such notebook. Check the path.")
        return path
    path = templates_dir() / f"{t}.ipynb"
    if not path.is_file():
        raise RunError(f"unknown template {t!r}. Shipped templates: {', '.join(ALL_TEMPLATES)}; or give a .ipynb path.")
    return path
