"""What a metric needs and how it combines: the metrics it derives from (in the order to compute
them), the sources it reads, and whether its values add up over members.

One walk of the formulas serves the engine (which raises on the first problem), the plan check
(which lists every problem) and the wizard and proposals (which ask what data a metric needs).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Literal

from kpinb._numbers import plain_number
from kpinb.definitions.formula import Agg, BinOp, Col, FormulaError, InList, Lit, Node, Ref, Unary, parse
from kpinb.definitions.model import KPI, Direction, Metric
from kpinb.errors import PlanError

__all__ = ["Additivity", "additivity", "closure", "dependencies", "filter_values", "sources_needed"]


def closure(
    ids: Iterable[str], registry: Mapping[str, Metric], *, strict: bool = False
) -> tuple[list[str], list[str]]:
    """``ids`` and every metric they derive from, dependencies first, and every problem found.

    Problems are sentences naming the metric and the fix: an unknown id (with the closest known
    one), a cycle, a derived metric with ``where:``, a formula that does not parse. With
    ``strict``, the first unknown id or cycle raises :class:`~kpinb.errors.PlanError` and a derived
    formula that does not parse its :class:`~kpinb.errors.FormulaError`; nothing else is checked.

    >>> closure(["average_order_value"], catalog.metrics())[0]  # doctest: +SKIP
    ['monthly_sales_revenue', 'orders_count', 'average_order_value']
    """
    order: list[str] = []
    problems: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def problem(text: str) -> None:
        if strict:
            raise PlanError(text)
        problems.append(text)

    def visit(mid: str, path: tuple[str, ...]) -> None:
        if state.get(mid) == 2:
            return
        if state.get(mid) == 1:
            problem(f"metrics refer to each other in a cycle: {' -> '.join((*path, mid))}. Break the cycle.")
            return
        m = registry.get(mid)
        if m is None:
            close = difflib.get_close_matches(mid, list(registry), n=1)
            problem(
                f"unknown metric {mid!r}"
                + (f" (used by {path[-1]!r})" if path else "")
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + ". Use a catalog id or define it under `metrics:`."
            )
            state[mid] = 2
            return
        state[mid] = 1
        if m.derived:
            if m.where and not strict:
                problems.append(f"derived metric {mid!r} has `where:`, which only aggregate metrics can have")
            try:
                refs = sorted(parse(m.expr, kind="derived").refs)
            except FormulaError as e:
                if strict:
                    raise
                problems.append(f"metric {mid!r} `expr`: {e}")
                refs = []
            for ref in refs:
                visit(ref, (*path, mid))
        elif not strict:
            for name, text, kind in (("expr", m.expr, "aggregate"), ("where", m.where, "row")):
                if text:
                    try:
                        parse(text, kind=kind)  # type: ignore[arg-type]
                    except FormulaError as e:
                        problems.append(f"metric {mid!r} `{name}`: {e}")
        state[mid] = 2
        order.append(mid)

    for mid in ids:
        visit(mid, ())
    return order, problems


def dependencies(ids: Iterable[str], registry: Mapping[str, Metric]) -> list[str]:
    """``ids`` and every metric they derive from, dependencies first (:func:`closure`, strict)."""
    return closure(ids, registry, strict=True)[0]


def sources_needed(ids: Iterable[str], registry: Mapping[str, Metric]) -> set[str]:
    """The sources the metrics ``ids`` read, through the metrics they derive from; ``{"?"}`` when
    the definitions are broken (so no set of connected sources covers them)."""
    order, problems = closure(ids, registry)
    if problems:
        return {"?"}
    return {s for mid in order if (s := registry[mid].source) is not None}


Additivity = Literal["sum", "distinct", "ratio", "none"]
"""How a metric's values over disjoint members (regions, products) combine into the whole:
``sum`` they add up (sums, counts, their sums, differences and multiples); ``distinct`` they may
overlap (distinct counts: their sum is at least the whole); ``ratio`` numerator and denominator
add up, so the whole is recomputed from the parts; ``none`` neither (averages, medians, min/max)."""

_SUMMABLE = ("sum", "count", "count_if")


def additivity(metric: Metric, registry: Mapping[str, Metric] | None = None) -> Additivity:
    """How ``metric`` combines over members (see :data:`Additivity`); derived metrics follow the
    metrics they refer to, looked up in ``registry`` (unknown ones count as ``none``).

    >>> additivity(catalog.get("monthly_sales_revenue")), additivity(catalog.get("average_order_value"))
    ... # doctest: +SKIP
    ('sum', 'ratio')
    """
    return _additivity(metric, registry or {}, 0)


def _additivity(metric: Metric, registry: Mapping[str, Metric], depth: int) -> Additivity:
    try:
        f = parse(metric.expr, kind="derived" if metric.derived else "aggregate")
    except FormulaError:
        return "none"

    def walk(node: Node) -> Additivity:
        if isinstance(node, Agg):
            return "sum" if node.func in _SUMMABLE else "distinct" if node.func == "count_distinct" else "none"
        if isinstance(node, Ref):
            ref = registry.get(node.metric)
            return _additivity(ref, registry, depth + 1) if ref is not None and depth < 20 else "none"
        if isinstance(node, Unary) and node.op == "neg":
            return walk(node.arg)
        if isinstance(node, BinOp) and node.op in "+-":
            both = {walk(node.left), walk(node.right)}
            return "none" if both - {"sum", "distinct"} else "distinct" if "distinct" in both else "sum"
        if isinstance(node, BinOp) and node.op in "*/" and isinstance(node.right, Lit):
            return walk(node.left)
        if isinstance(node, BinOp) and node.op == "*" and isinstance(node.left, Lit):
            return walk(node.right)
        return "none"

    if not metric.derived and f.ratio is not None and not isinstance(f.ratio[1], Lit):
        num, den = f.ratio
        return "ratio" if walk(num) == walk(den) == "sum" else "none"
    return walk(f.tree)


def filter_values(metric: Metric) -> dict[str, list[frozenset[str]]]:
    """The fixed text values ``metric`` selects rows by, per column: ``status = 'completed'`` gives
    ``{"status": [{"completed"}]}``; ``status in ('open', 'pending')`` one set of both, met when
    either occurs. Only equality and ``in`` count: they are the filters that silently select
    nothing when the data spells its values otherwise (``!=`` keeps every row instead).

    >>> filter_values(catalog.get("orders_count"))  # doctest: +SKIP
    {'status': [frozenset({'completed'})]}
    """
    out: dict[str, list[frozenset[str]]] = {}
    if metric.derived:
        return out
    for text, kind in ((metric.expr, "aggregate"), (metric.where, "row")):
        if not text:
            continue
        try:
            tree = parse(text, kind=kind).tree  # type: ignore[arg-type]
        except FormulaError:  # reported where the formula is checked
            continue
        for node in tree.walk():
            col, wanted = None, frozenset()
            if isinstance(node, BinOp) and node.op == "=":
                pair = (node.left, node.right) if isinstance(node.left, Col) else (node.right, node.left)
                if isinstance(pair[0], Col) and isinstance(pair[1], Lit) and isinstance(pair[1].value, str):
                    col, wanted = pair[0].name, frozenset([pair[1].value])
            elif isinstance(node, InList) and isinstance(node.arg, Col):
                col = node.arg.name
                wanted = frozenset(v.value for v in node.values if isinstance(v.value, str))
            if col is not None and wanted and wanted not in out.get(col, []):
                out.setdefault(col, []).append(wanted)
    return out


def inverted_thresholds(kpi: KPI, direction: Direction) -> str | None:
    """Why the KPI's warning and critical levels are in the wrong order for ``direction`` (the
    warning must come first as the value worsens), with the fix; None when they are fine."""
    th = kpi.thresholds
    if th is None or th.warning is None or th.critical is None:
        return None
    higher = direction is Direction.higher_is_better
    if (higher and th.warning >= th.critical) or (not higher and th.warning <= th.critical):
        return None
    side, better = ("above", "higher is better") if higher else ("below", "lower is better")
    return (
        f"KPI {kpi.metric!r}: thresholds.warning {plain_number(th.warning)} should be {side} thresholds.critical "
        f"{plain_number(th.critical)} because {better} (the warning comes first as the value worsens). Swap them, "
        "or set the KPI's `direction:`."
    )
