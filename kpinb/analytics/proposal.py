"""From objectives to a proposed plan, without widgets: the batch counterpart of the wizard.

:func:`propose` finds KPI candidates for each objective in the catalog
(:func:`kpinb.catalog.search`), picks a few (5 by default, never more than 7) that the
connected data can compute, balancing leading and lagging indicators and leaving vanity
metrics out, then sets each KPI's baseline from the data, a target, a deadline and alert
thresholds, and runs the SMART checks (:func:`kpinb.lint.lint`) so the gaps a person must fill
(owners, above all) are listed. :func:`write` saves the plan atomically as YAML.

Rules for the numbers (documented defaults, all overridable):

- **baseline**: the mean of the last 12 complete periods up to ``period_end`` (a window
  ``{from, to}``, so the plan shows where it comes from);
- **target**: the baseline improved by ``improvement`` (10 %) in the metric's direction; for
  higher-is-better percentages the improvement closes that share of the gap to 100 %;
- **deadline**: 12 months after the judged period;
- **thresholds**: warning at the baseline, critical at the baseline worsened by ``improvement``.

>>> p = propose(["Improve customer retention"], "customer_service", sources_from("data/sample"))  # doctest: +SKIP
>>> write(p.plan, "plans")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb._io import slug, write_atomic
from kpinb.checks.lint import MAX_KPIS
from kpinb.definitions.analysis import sources_needed
from kpinb.definitions.model import Direction, Indicator, Metric, Plan, Role, Source, Unit
from kpinb.errors import PlanError, SourceError

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.checks.lint import Issue

__all__ = ["Proposal", "propose", "sources_from", "write"]


@dataclass(frozen=True)
class Proposal:
    """A proposed plan and how it was reached.

    ``candidates``: one row per objective and catalog match — ``objective, metric, name,
    indicator, role, vanity, has_data, chosen, note``. ``targets``: one row per chosen KPI —
    ``metric, name, unit, direction, indicator, baseline, target, deadline, warning, critical``.
    ``issues``: the SMART review of the plan.
    """

    plan: Plan
    candidates: pd.DataFrame
    targets: pd.DataFrame
    issues: tuple[Issue, ...]


def sources_from(data_dir: str | Path | None = None, plan: str | Path | Plan | None = None) -> dict[str, Source]:
    """The data a proposal may use: files named after canonical sources in ``data_dir``
    (``orders.parquet``...), else the sources of ``plan`` (paths made absolute)."""
    from kpinb.data.sources import FILE_FORMATS
    from kpinb.definitions import catalog
    from kpinb.definitions.plan import load_plan

    if data_dir not in (None, ""):
        folder = Path(str(data_dir)).expanduser()
        if not folder.is_dir():
            raise SourceError(f"{folder}: no such folder. Give the folder holding your data files.")
        out = {}
        for name in catalog.sources():
            for ext in FILE_FORMATS:
                f = folder / f"{name}{ext}"
                if f.is_file():
                    out[name] = Source(path=str(f.resolve()))
                    break
        return out
    if plan is not None:
        p = load_plan(plan)
        return {
            name: s.model_copy(update={"path": str(p.resolve(s.path))}) if s.path else s
            for name, s in p.sources.items()
        }
    return {}


def _slug(statement: str) -> str:
    words = re.findall(r"[a-z0-9]+", statement.lower())[:5]
    out = "-".join(words)[:60].strip("-") or "objective"
    return out if out[0].isalpha() else f"objective-{out}"


def _round(x: float, metric: Metric | None = None) -> float:
    """Three significant digits (four for percentages, where 99.5% and 99.46% differ): targets
    people can say out loud."""
    if not math.isfinite(x) or x == 0:
        return x
    digits = 4 if metric is not None and metric.unit is Unit.percent else 3
    return float(f"{x:.{digits}g}")


def _step(value: float, metric: Metric, share: float) -> float:
    """The size of one improvement step: ``share`` of the value, and for percentages at most
    ``share`` of the room left to 0 % or 100 % (a 97 % rate cannot grow by 10 % of itself)."""
    step = abs(value) * share
    if metric.unit is Unit.percent and 0 <= value <= 1:
        room = 1 - value if metric.direction is Direction.higher_is_better else value
        step = min(step, share * room)
    return step


def _improve(value: float, metric: Metric, share: float) -> float:
    step = _step(value, metric, share)
    return value + step if metric.direction is Direction.higher_is_better else value - step


def _worsen(value: float, metric: Metric, share: float) -> float:
    step = _step(value, metric, share)
    worse = value - step if metric.direction is Direction.higher_is_better else value + step
    return min(worse, 1.0) if metric.unit is Unit.percent and value <= 1 else worse


def suggested_levels(baseline: float, metric: Metric, improvement: float = 0.10) -> tuple[float, float, float]:
    """``(target, warning, critical)`` as a proposal sets them from a baseline (the rules above):
    the wizard offers the same numbers as examples.

    >>> suggested_levels(200.0, catalog.get("average_order_value"))  # doctest: +SKIP
    (220.0, 200.0, 180.0)
    """
    return (
        _round(_improve(baseline, metric, improvement), metric),
        _round(baseline, metric),
        _round(_worsen(baseline, metric, improvement), metric),
    )


def propose(
    objectives: Sequence[str],
    department: str,
    sources: Mapping[str, Source],
    *,
    max_kpis: int = 5,
    grain: str = "month",
    period_end: Any = None,
    improvement: float = 0.10,
    deadline: dt.date | str | None = None,
    name: str | None = None,
) -> Proposal:
    """Propose a plan for ``objectives`` from the catalog and the connected data.

    Parameters
    ----------
    objectives : objective statements ("Improve customer retention").
    department : the catalog department to search first (all departments when it has no match).
    sources : canonical source name -> :class:`Source` (see :func:`sources_from`).
    max_kpis : how many KPIs to pick (1-7).
    grain : the KPIs' grain; baselines are the mean of the last 12 complete periods... of it.
    period_end : the last date of data the baseline may use (None: the latest complete period).
    improvement : the share by which targets improve on the baseline.
    deadline : the targets' deadline (default 12 months after the judged period).
    name : the plan's name (default "<Department> KPIs").
    """
    import pandas as pd

    from kpinb.analytics.compare import latest_complete_period
    from kpinb.analytics.compare import period_end as end_of
    from kpinb.checks.lint import lint
    from kpinb.definitions import catalog
    from kpinb.definitions.model import Grain
    from kpinb.engine.query import compute

    statements = [s.strip() for s in objectives if s and s.strip()]
    if not statements:
        raise PlanError("propose(): give at least one objective statement, e.g. 'Improve customer retention'.")
    if not 1 <= max_kpis <= MAX_KPIS:
        raise PlanError(f"max_kpis={max_kpis}: choose 1 to {MAX_KPIS} KPIs; more dilutes focus.")
    g = Grain(grain).value
    reg = catalog.metrics()
    rows: list[dict[str, Any]] = []
    ranked: list[list[Metric]] = []
    for s in statements:
        found = catalog.search(department=department, objective=s) or catalog.search(objective=s)
        ranked.append(found)
        for m in found:
            has = sources_needed([m.id], reg) <= set(sources)
            rows.append({
                "objective": s, "metric": m.id, "name": m.name, "indicator": m.indicator.value,
                "role": m.role.value, "vanity": m.vanity, "has_data": has, "chosen": False,
                "note": "vanity: impressive, rarely drives a decision" if m.vanity
                else ("operational metric: supports KPIs" if m.role is not Role.kpi_candidate
                      else ("" if has else "its data source is not connected")),
            })  # fmt: skip

    def eligible(m: Metric) -> bool:
        return m.role is Role.kpi_candidate and not m.vanity and sources_needed([m.id], reg) <= set(sources)

    chosen: dict[str, int] = {}  # metric -> objective index
    depth = 0
    while len(chosen) < max_kpis and any(depth < len(r) for r in ranked):
        for i, found in enumerate(ranked):
            picks = [m for m in found if eligible(m) and m.id not in chosen]
            if depth < len(found) and picks and len(chosen) < max_kpis:
                chosen[picks[0].id] = i
        depth += 1
    kinds = {reg[m].indicator for m in chosen}
    for missing in (Indicator.leading, Indicator.lagging):
        if chosen and missing not in kinds:
            extra = next(
                ((m, i) for i, found in enumerate(ranked) for m in found
                 if eligible(m) and m.id not in chosen and m.indicator is missing),
                None,
            )  # fmt: skip
            if extra is not None:
                if len(chosen) >= max_kpis:
                    chosen.pop(next(reversed(chosen)))
                chosen[extra[0].id] = extra[1]
                kinds = {reg[m].indicator for m in chosen}
    if not chosen:
        raise PlanError(
            f"no KPI candidate for {', '.join(map(repr, statements))} in department {department!r} can be computed "
            f"from the connected sources ({', '.join(sorted(sources)) or 'none'}). Connect the data of the "
            "candidates listed by kpinb.catalog.search(objective=...)."
        )
    for r in rows:
        r["chosen"] = r["metric"] in chosen and statements.index(r["objective"]) == chosen[r["metric"]]

    ids = list(chosen)
    frame = compute(ids, sources=dict(sources), grain=g, end=period_end)
    judged = latest_complete_period(frame, period_end)
    if judged is None:
        raise PlanError(f"the connected data has no value for {', '.join(ids)}. Check the sources.")
    first = judged
    for _ in range(11):
        first = (first - pd.Timedelta(days=1)).to_period({"day": "D", "week": "W-SUN", "month": "M",
                                                           "quarter": "Q", "year": "Y"}[g]).start_time  # fmt: skip
    window = frame[(frame["period_start"] >= first) & (frame["period_start"] <= judged)]
    means = window.groupby("metric", sort=False)["value"].mean()
    last_day = end_of(judged, g).date()
    due = pd.Timestamp(deadline).date() if deadline else (pd.Timestamp(last_day) + pd.DateOffset(months=12)).date()
    targets = []
    kpis = []
    for mid in ids:
        m = reg[mid]
        base = float(means.get(mid, math.nan))
        kpi: dict[str, Any] = {"metric": mid, "objective": _slug(statements[chosen[mid]]), "grain": g}
        target = warning = critical = math.nan
        if math.isfinite(base):
            target, warning, critical = suggested_levels(base, m, improvement)
            kpi["baseline"] = {"from": first.date().isoformat(), "to": last_day.isoformat()}
            kpi["target"] = {"value": target, "by": due.isoformat()}
            kpi["thresholds"] = {"warning": warning, "critical": critical}
        support = [
            s for s in m.supporting if s in reg and sources_needed([s], reg) <= set(sources) and s not in chosen
        ][:3]
        if support:
            kpi["supporting"] = support
        kpis.append(kpi)
        targets.append({
            "metric": mid, "name": m.name, "unit": m.unit.value, "direction": m.direction.value,
            "indicator": m.indicator.value, "baseline": base, "target": target, "deadline": due,
            "warning": warning, "critical": critical,
        })  # fmt: skip
    used = set().union(*(sources_needed([k["metric"], *k.get("supporting", [])], reg) for k in kpis))
    objectives_out, seen = [], set()
    for s in statements:
        oid = _slug(s)
        if oid not in seen:
            seen.add(oid)
            objectives_out.append({"id": oid, "statement": s})
    plan = Plan.model_validate({
        "name": name or f"{department.replace('_', ' ').capitalize()} KPIs",
        "department": department,
        "objectives": objectives_out,
        "sources": {n: sources[n] for n in sorted(used)},
        "kpis": kpis,
        "review": {"every": "quarter"},
    })  # fmt: skip
    issues = tuple(lint(plan, frame, today=last_day))
    cand_cols = ["objective", "metric", "name", "indicator", "role", "vanity", "has_data", "chosen", "note"]
    target_cols = ["metric", "name", "unit", "direction", "indicator", "baseline", "target", "deadline", "warning",
                   "critical"]  # fmt: skip
    return Proposal(plan, pd.DataFrame(rows, columns=cand_cols), pd.DataFrame(targets, columns=target_cols), issues)


def to_yaml(plan: Plan, folder: str | Path | None = None) -> str:
    """The plan as YAML (:func:`kpinb.definitions.writer.plan_yaml`); file paths relative to
    ``folder`` when given (plans resolve them against their own folder)."""
    from kpinb.definitions.model import to_dict
    from kpinb.definitions.writer import plan_yaml, relative_paths

    data = to_dict(plan)
    if plan.review is not None and not data.get("review"):
        data["review"] = {"every": plan.review.every.value}
    if folder is not None:
        relative_paths(data, folder)
    return plan_yaml(data, header="Proposed by kpinb from the catalog: add owners, then review targets and thresholds.")


def write(plan: Plan, folder: str | Path | None, name: str | None = None) -> Path | None:
    """Write ``plan`` to ``<folder>/<name or department>.yml`` atomically; None when no folder.

    The name becomes a safe file name (:func:`kpinb._io.slug`: ``../x`` is written as
    ``x.yml`` inside ``folder``). The written file loads back with :func:`kpinb.load_plan`
    (checked here).
    """
    from kpinb.definitions.plan import parse_plan

    if folder in (None, ""):
        return None
    base = Path(str(folder)).expanduser()
    path = base / f"{slug(name or plan.department)}.yml"
    text = to_yaml(plan, path.parent)
    parse_plan(text, path)  # never write a plan that would not load
    return write_atomic(path, text, within=base)
