"""Batch runs over department plans.

For now each run computes a plan and writes a static HTML summary; the templated notebook
reports (papermill + nbconvert) build on this module.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._io import write_atomic
from .errors import PlanError

if TYPE_CHECKING:
    import pandas as pd


def shipped_plans_dir() -> Path:
    """The folder of the example plans shipped for the sample data."""
    return Path(__file__).resolve().parent.parent / "templates" / "plans"


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


def kpi_table(plan_path: Path, grain: str = "month") -> pd.DataFrame:
    """One row per KPI: latest complete value, previous value, change and target."""
    import pandas as pd

    from . import engine
    from .plan import load_plan, registry

    plan = load_plan(plan_path)
    reg = registry(plan)
    ids = [k.metric for k in plan.kpis]
    df = engine.compute(plan, metrics=ids, grain=grain)
    rows = []
    for k in plan.kpis:
        series = df[df["metric"] == k.metric].dropna(subset=["value"]).sort_values("period_start")
        last = series.iloc[-1] if len(series) else None
        prev = series.iloc[-2] if len(series) > 1 else None
        change = (
            (last["value"] - prev["value"]) / abs(prev["value"])
            if last is not None and prev is not None and prev["value"]
            else float("nan")
        )
        rows.append({
            "kpi": k.name or reg[k.metric].name,
            "owner": k.owner or "",
            "period": last["period_start"].date() if last is not None else None,
            "value": last["value"] if last is not None else float("nan"),
            "previous": prev["value"] if prev is not None else float("nan"),
            "change": change,
            "target": k.target.value if k.target else float("nan"),
            "deadline": k.target.by if k.target else None,
        })  # fmt: skip
    return pd.DataFrame(rows)


def summary_report(plan_path: Path, out_dir: Path, grain: str = "month") -> tuple[Path, pd.DataFrame]:
    """Compute a plan's KPIs and write ``<out_dir>/<plan>.html`` (escaped, no scripts)."""
    table = kpi_table(plan_path, grain)
    title = html.escape(f"KPI summary: {plan_path.stem}")
    body = table.to_html(index=False, escape=True, na_rep="–", float_format="{:,.4g}".format)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )
    return write_atomic(Path(out_dir) / f"{plan_path.stem}.html", page), table
