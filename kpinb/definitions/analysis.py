"""What a metric needs: the metrics it derives from, in the order to compute them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kpinb.definitions.formula import parse
from kpinb.definitions.model import Metric
from kpinb.errors import PlanError


def dependencies(ids: Iterable[str], registry: Mapping[str, Metric]) -> list[str]:
    """``ids`` and every metric they derive from, dependencies first; cycles are errors."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(mid: str, path: tuple[str, ...]) -> None:
        if state.get(mid) == 2:
            return
        if state.get(mid) == 1:
            raise PlanError(f"metrics refer to each other in a cycle: {' -> '.join((*path, mid))}. Break the cycle.")
        if mid not in registry:
            raise PlanError(
                f"unknown metric {mid!r}"
                + (f" (used by {path[-1]!r})" if path else "")
                + ". Use a catalog id or define it under `metrics:`."
            )
        state[mid] = 1
        m = registry[mid]
        if m.derived:
            for ref in sorted(parse(m.expr, kind="derived").refs):
                visit(ref, (*path, mid))
        state[mid] = 2
        order.append(mid)

    for mid in ids:
        visit(mid, ())
    return order
