"""The shipped catalog: canonical sources, objective themes and department metrics.

>>> from kpinb import catalog
>>> [m.id for m in catalog.search(department="email", text="open")][:1]
['email_open_rate']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from kpinb import _yaml
from kpinb.definitions.model import Metric
from kpinb.errors import PlanError, where

DEPARTMENTS = (
    "sales", "marketing", "customer_service", "finance", "hr", "web", "email", "social",
    "operations",
)  # fmt: skip
TYPES = ("string", "number", "integer", "boolean", "date", "timestamp")


@dataclass(frozen=True)
class CanonicalSource:
    """A table the catalog's formulas are written against."""

    name: str
    description: str
    time: str
    dimensions: tuple[str, ...]
    columns: dict[str, str]  # column -> type
    row_covers: str | None = None  # a snapshot's date stands for this period (month): it covers to its end
    derive: dict[str, str] = field(default_factory=dict)  # columns computed from others when the data lacks them


@dataclass(frozen=True)
class Theme:
    """An objective theme metrics serve, with words that signal it in a statement."""

    id: str
    name: str
    keywords: tuple[str, ...]


def _read(name: str) -> tuple[object, dict, Path]:
    path = Path(str(resources.files(__package__).joinpath(name)))
    data, lines = _yaml.read(path.read_text(encoding="utf-8"), path)
    return data, lines, path


@functools.cache
def sources() -> dict[str, CanonicalSource]:
    """The canonical sources by name."""
    data, _, path = _read("sources.yaml")
    out = {}
    for name, spec in data.items():  # type: ignore[union-attr]
        cols = dict(spec["columns"])
        bad = {c: t for c, t in cols.items() if t not in TYPES}
        if bad or spec["time"] not in cols:
            raise PlanError(f"{where(path, name)}bad column types {bad} or time column")
        covers = spec.get("row_covers")
        if covers not in (None, "day", "week", "month", "quarter", "year"):
            raise PlanError(f"{where(path, name)}row_covers {covers!r} is not a grain")
        derive = dict(spec.get("derive") or {})
        if set(derive) - set(cols):
            raise PlanError(f"{where(path, name)}derive: {sorted(set(derive) - set(cols))} are not its columns")
        out[name] = CanonicalSource(
            name, spec.get("description", ""), spec["time"], tuple(spec["dimensions"]), cols, covers, derive
        )
    return out


@functools.cache
def themes() -> dict[str, Theme]:
    """The objective themes by id."""
    data, _, _ = _read("objectives.yaml")
    return {
        k: Theme(k, v["name"], tuple(v.get("keywords", ())))
        for k, v in data.items()  # type: ignore[union-attr]
    }


@functools.cache
def _load() -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for dept in DEPARTMENTS:
        data, lines, path = _read(f"{dept}.yaml")
        for i, raw in enumerate(data.get("metrics", [])):  # type: ignore[union-attr]
            try:
                m = Metric.model_validate({**raw, "department": dept})
            except ValidationError as e:
                err = e.errors()[0]
                loc = ("metrics", i, *err["loc"])
                line = _yaml.line_of(lines, loc)
                raise PlanError(f"{where(path, _yaml.dotted(loc), line)}{err['msg']}") from None
            if m.id in out:
                raise PlanError(f"{where(path, f'metrics[{i}].id')}duplicate id {m.id!r}")
            out[m.id] = m
    return out


def metrics() -> dict[str, Metric]:
    """Every catalog metric by id."""
    return dict(_load())


def get(metric_id: str) -> Metric:
    """One catalog metric; an unknown id raises a PlanError suggesting close ids."""
    try:
        return _load()[metric_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(metric_id, list(_load()), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise PlanError(
            f"unknown metric id {metric_id!r}.{hint} "
            "List the catalog with kpinb.catalog.search() or define it under `metrics:`."
        ) from None


def match_themes(statement: str) -> list[str]:
    """Objective theme ids whose keywords occur in a free-text statement, best first."""
    text = f" {statement.lower()} "
    scored = []
    for t in themes().values():
        score = sum(1 for k in t.keywords if k.lower() in text)
        if score:
            scored.append((-score, t.id))
    return [tid for _, tid in sorted(scored)]


def search(
    department: str | None = None,
    objective: str | None = None,
    text: str | None = None,
    role: str | None = None,
) -> list[Metric]:
    """Find catalog metrics, best match first.

    ``objective`` is a theme id (``improve_retention``) or a statement ("Improve customer
    retention"); ``text`` matches ids, names and descriptions. KPI candidates rank before
    operational metrics, non-vanity before vanity.
    """
    wanted = []
    if objective:
        wanted = [objective] if objective in themes() else match_themes(objective)
    statement = {w.strip(".,;:!?") for w in (objective or "").lower().split() if len(w) > 3}
    phrase = (text or "").lower().strip()
    words = phrase.split()
    ranked = []
    for m in _load().values():
        if department and m.department != department:
            continue
        if role and m.role.value != role:
            continue
        title = f"{m.id.replace('_', ' ')} {m.name}".lower()
        if words and not all(w in f"{title} {m.description.lower()}" for w in words):
            continue
        # name matches before description-only matches
        text_rank = 0 if not words or phrase in title else 1 if all(w in title for w in words) else 2
        rank = min((wanted.index(o) for o in m.objectives if o in wanted), default=None)
        if objective and rank is None:
            continue
        overlap = sum(1 for w in statement if w in title)  # "grow revenue" favours revenue metrics
        key = (text_rank, rank or 0, -overlap, m.role.value != "kpi_candidate", m.vanity, len(m.name), m.id)
        ranked.append((key, m))
    return [m for _, m in sorted(ranked, key=lambda x: x[0])]
