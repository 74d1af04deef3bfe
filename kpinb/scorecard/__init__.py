"""The scorecard: one immutable evaluation per KPI (and slice) that every view reads.

A view never judges on its own: cards, report sections, the dashboard, the run index and the
CLI read :class:`KpiEvaluation` for the status (with its rule and reason), the target in force
and its path, the pace to the deadline and whether the KPI is judged at all under a filter;
what moved a KPI comes from :func:`drivers`. The rules live in the analytics modules; this
layer applies them once, the same way for every surface.

>>> card = evaluate(plan, kpinb.compute(plan, grain="month"), as_of="2025-06-30")  # doctest: +SKIP
>>> card.get("monthly_sales_revenue").status  # doctest: +SKIP
'on_track'
"""

from kpinb.scorecard.evaluation import (
    KpiEvaluation,
    ObjectiveRollup,
    Pace,
    Scorecard,
    TreeNode,
    drivers,
    evaluate,
    target_path,
)

__all__ = [
    "KpiEvaluation", "ObjectiveRollup", "Pace", "Scorecard", "TreeNode", "drivers", "evaluate", "target_path",
]  # fmt: skip
