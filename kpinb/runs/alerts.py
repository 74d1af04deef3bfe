"""Alerts without notebooks: a plan's threshold alerts evaluated for schedulers (``kpinb alerts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_alerts(
    plan: str | Path, period_end: str | None = None, data_dir: str | Path | None = None, as_json: bool = False,
    include_partial: bool = False, anomalies: bool = False,
) -> tuple[str, int]:  # fmt: skip
    """Evaluate a plan's threshold alerts without notebooks (for schedulers).

    Every KPI is judged at its own grain on the latest complete period ended by ``period_end``
    (``include_partial``: also a period the data covers only in part, or whose values have not settled).
    ``anomalies`` adds the early warnings (``kind: anomaly``, :func:`kpinb.outputs.alerts.anomalies`).
    Returns the text to print (JSON array, or a short summary) and the exit code:
    ``1`` when at least one alert is critical, else ``0`` (warnings do not fail a job).
    """
    import pandas as pd

    from kpinb.engine.query import compute
    from kpinb.outputs import alerts as alerts_mod
    from kpinb.views.report import load_for_report

    p = load_for_report(plan, data_dir)
    end = pd.Timestamp(period_end).normalize() if period_end else None
    found: list[Any] = []
    by_grain: dict[str, list[str]] = {}
    for k in p.kpis:
        by_grain.setdefault(k.grain.value, []).append(k.metric)
    for g, ids in by_grain.items():
        wanted = ids
        if anomalies:  # the supporting metrics too: their unusual values are the early warnings
            wanted = list(dict.fromkeys([*ids, *(m for k in p.kpis if k.metric in ids for m in k.supporting)]))
        frame = compute(p, metrics=wanted, grain=g, end=end)
        if anomalies:
            from kpinb import scorecard

            card = scorecard.evaluate(p, frame, end, kpis=ids, include_partial=include_partial, pace=False)
            found.extend(alerts_mod.from_scorecard(card) + alerts_mod.anomalies(card))
        else:
            found.extend(alerts_mod.evaluate(p, frame, as_of=end, kpis=ids, include_partial=include_partial))
    order = {k.metric: i for i, k in enumerate(p.kpis)}
    found.sort(key=lambda a: order.get(a.kpi, 0))
    text = alerts_mod.to_json(found) if as_json else alerts_mod.summary(found, title=p.name)
    return text, int(any(a.severity == "critical" for a in found))
