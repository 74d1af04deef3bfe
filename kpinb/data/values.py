"""Values: a source's own spellings mapped onto the catalog's, and the check that the values
catalog filters select on occur in the data at all.

Catalog metrics filter on fixed values (``where: status = 'completed'``). Data that says
``paid`` instead gives 0 for every period without any error, so the mapping (the plan's
``values: {status: {completed: [paid, settled]}}``) is applied when a source is opened, before
any backend sees the rows, and :func:`unmapped` finds a filter value that never occurs: the
engine warns about it, ``kpinb check`` reports it as an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kpinb.errors import DataError, shown

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from kpinb.definitions.model import Metric

__all__ = ["Unmapped", "apply_values", "catalog_filters", "unmapped"]

_SHOWN_VALUES = 12  # values of the data a message lists


class Opened(Protocol):
    """What :func:`unmapped` reads of an opened source (:class:`kpinb.data.sources.Table`)."""

    name: str
    label: str
    expr: ir.Table

    @property
    def columns(self) -> tuple[str, ...]: ...


def apply_values(expr: ir.Table, values: Mapping[str, Mapping[str, Iterable[str]]], where_: str) -> ir.Table:
    """``expr`` with each mapped column's user values replaced by the catalog value they stand for
    (other values stay as they are); ``where_`` names the source in messages."""
    import ibis

    for col, mapping in values.items():
        if col not in expr.columns:
            raise DataError(
                f"{where_}: `values:` maps values of column {col!r}, which the data does not have. "
                f"Use the canonical column name (map your column to it with `columns: {{{col}: your_column}}`); "
                f"columns there: {', '.join(map(shown, expr.columns[:40]))}."
            )
        seen: dict[str, str] = {}
        for canonical, users in mapping.items():
            for u in users:
                if seen.setdefault(u, canonical) != canonical:
                    raise DataError(
                        f"{where_}: `values: {{{col}: ...}}` maps {u!r} to both {seen[u]!r} and {canonical!r}. "
                        "Map each of your values to one catalog value."
                    )
        column = expr[col]
        text = column if column.type().is_string() else column.cast("string")
        cases = [(text.isin(list(users)), ibis.literal(canonical)) for canonical, users in mapping.items() if users]
        if cases:
            expr = expr.mutate(**{col: ibis.cases(*cases, else_=text)})
    return expr


def catalog_filters(metrics: Iterable[Metric]) -> dict[str, dict[str, list[frozenset[str]]]]:
    """Source -> column -> the value sets catalog metrics among ``metrics`` filter on (each set is
    met when one of its values occurs; see :func:`kpinb.definitions.analysis.filter_values`).

    Only metrics exactly as the catalog defines them count: a plan's own metric filters on the
    values its author wrote for their data."""
    from kpinb.definitions import catalog
    from kpinb.definitions.analysis import filter_values

    known = catalog.metrics()
    out: dict[str, dict[str, list[frozenset[str]]]] = {}
    for m in metrics:
        if m.derived or known.get(m.id) != m:
            continue
        for col, sets in filter_values(m).items():
            have = out.setdefault(m.source or "", {}).setdefault(col, [])
            have.extend(s for s in sets if s not in have)
    return out


@dataclass(frozen=True)
class Unmapped:
    """A column whose data has none of the values a catalog filter selects on."""

    source: str
    label: str
    column: str
    user_column: str
    wanted: tuple[str, ...]
    found: tuple[str, ...]
    more: bool
    metrics: tuple[str, ...]

    @property
    def problem(self) -> str:
        col = repr(self.column) if self.user_column == self.column else f"{self.column!r} (your {self.user_column!r})"
        wanted = " or ".join(repr(v) for v in self.wanted)
        found = ", ".join(repr(shown(v)) for v in self.found) + (", ..." if self.more else "")
        return (
            f"source {self.source!r} ({self.label}): catalog metric(s) {', '.join(self.metrics)} select rows where "
            f"{self.column} is {wanted}, which never occurs in column {col}; its values are {found}. "
            "Those metrics count nothing (0 or no value in every period)."
        )

    @property
    def fix(self) -> str:
        example = shown(self.found[0]) if self.found else "your_value"
        return (
            f"Map your values onto the catalog's in the plan's source, e.g. `values: {{{self.column}: "
            f"{{{self.wanted[0]}: [{example}]}}}}` (list each of your values that means {self.wanted[0]!r}), or map "
            f"another column with `columns: {{{self.column}: your_column}}`."
        )

    def __str__(self) -> str:
        return f"{self.problem} Fix: {self.fix}"


def unmapped(table: Opened, metrics: Iterable[Metric], columns: Mapping[str, str] | None = None) -> list[Unmapped]:
    """The columns of ``table`` (opened, values mapped) where a catalog metric among ``metrics``
    filters on values none of which occur, although the column has values.

    One aggregate query per source answers for every filtered column (and a small distinct
    query per column that fails, to show its values). A column the data lacks is left to the
    engine's missing-column error; a query the backend cannot run is no finding.
    """
    import ibis

    from kpinb.definitions import catalog
    from kpinb.definitions.analysis import filter_values

    known = catalog.metrics()
    sets_of = {m.id: filter_values(m) for m in metrics if m.source == table.name and known.get(m.id) == m}
    wanted = catalog_filters(known[mid] for mid in sets_of).get(table.name, {})
    wanted = {c: sets for c, sets in wanted.items() if c in table.columns}
    if not wanted:
        return []
    t = table.expr
    aggs: dict[str, Any] = {}
    texts = {}
    for i, (col, sets) in enumerate(wanted.items()):
        column = t[col]
        text = column if column.type().is_string() else column.cast("string")
        texts[col] = text
        aggs[f"c{i}"] = column.notnull().any()
        for j, values in enumerate(sets):
            aggs[f"c{i}_{j}"] = text.isin(sorted(values)).any()
    try:
        row = t.aggregate(**aggs).execute().iloc[0]
    except Exception as e:  # the check must never stop a computation; the engine reports real errors
        from kpinb.data.engines import EngineFallback, on_polars

        if on_polars(t):  # a check polars cannot run is DuckDB's to run, never skipped
            raise EngineFallback(str(e)) from e
        return []
    out = []
    names = {canonical: user for canonical, user in (columns or {}).items()}
    for i, (col, sets) in enumerate(wanted.items()):
        if not _true(row[f"c{i}"]):
            continue
        missing = [values for j, values in enumerate(sets) if not _true(row[f"c{i}_{j}"])]
        if not missing:
            continue
        try:
            found = t.select(v=texts[col]).filter(ibis._.v.notnull()).distinct().order_by("v")
            found = [str(v) for v in found.limit(_SHOWN_VALUES + 1).execute()["v"]]
        except Exception:
            found = []
        metrics_ = tuple(mid for mid, sets_ in sets_of.items() if any(s in missing for s in sets_.get(col, [])))
        wanted_values = tuple(sorted({v for values in missing for v in values}))
        shown_values, more = tuple(found[:_SHOWN_VALUES]), len(found) > _SHOWN_VALUES
        user = names.get(col, col)
        out.append(Unmapped(table.name, table.label, col, user, wanted_values, shown_values, more, metrics_))
    return out


def _true(x: Any) -> bool:
    try:
        return bool(x) and x == x  # NaN / NA (no rows) is not true
    except (TypeError, ValueError):
        return False
