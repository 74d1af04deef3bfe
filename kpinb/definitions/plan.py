"""Load a plan YAML file into a checked :class:`~kpinb.model.Plan`.

Every problem found is reported at once in one :class:`~kpinb.errors.PlanError`, each on
its own line as ``file:line: field: problem. Fix.``
"""

from __future__ import annotations

import difflib
import itertools
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kpinb import _yaml
from kpinb._io import read_limited
from kpinb.definitions import catalog
from kpinb.definitions.analysis import inverted_thresholds
from kpinb.definitions.formula import parse
from kpinb.definitions.model import Metric, Plan
from kpinb.errors import FormulaError, PlanError, redact, where

MAX_PROBLEMS = 50  # a plan with more problems is probably not a plan; list the first ones

_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling",
    "float_parsing": "write a number",
    "float_type": "write a number",
    "finite_number": "write a finite number (not .nan or .inf)",
    "date_from_datetime_parsing": "write a date as YYYY-MM-DD",
    "date_parsing": "write a date as YYYY-MM-DD",
    "date_type": "write a date as YYYY-MM-DD",
    "enum": "use one of the listed values",
    "string_type": "write text",
    "string_pattern_mismatch": "use lower_snake_case letters, digits, _ or -",
    "dict_type": "write a mapping (key: value lines)",
    "tuple_type": "write a list",
    "model_type": "write a mapping (key: value lines)",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
}


def load_plan(path: str | Path | Plan) -> Plan:
    """Read and check a plan file.

    >>> plan = load_plan("templates/plans/sales.yml")  # doctest: +SKIP
    """
    if isinstance(path, Plan):
        return path
    file = Path(path)
    raw = read_limited(file, _yaml.MAX_BYTES, "plan file", PlanError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise PlanError(
            f"{where(file, line=line)}not UTF-8 text (byte {raw[e.start]:#04x}). Save the plan as UTF-8."
        ) from None
    return parse_plan(text, file)


def parse_plan(text: str, file: str | Path = "<plan>") -> Plan:
    """Check plan YAML text; ``file`` names it in messages and anchors relative paths."""
    data, lines = _yaml.read(text, file)
    if not isinstance(data, dict):
        raise PlanError(
            f"{where(file, line=1)}a plan must be a mapping with `name:`, `department:`, "
            "`sources:` and `kpis:`. See templates/plans/ for examples."
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as e:
        raise PlanError(_format_validation(e, file, lines)) from None
    # checking stops after MAX_PROBLEMS + 1: suggesting names for thousands of bad ids is slow
    found = itertools.islice(check_references(plan, lines), MAX_PROBLEMS + 1)
    problems = [f"{where(file, f, line)}{msg}" for f, line, msg in found]
    if problems:
        raise PlanError(_join(problems, file))
    plan._file = Path(file).resolve() if str(file) != "<plan>" else None
    return plan


class _Shown(reprlib.Repr):
    """Short reprs of users' values; passwords in URLs are hidden before strings are cut."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4
        self.maxlevel = 2

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(redact(x), level)


_shown = _Shown().repr


def _join(problems: list[str], file: str | Path) -> str:
    """One problem a line, at most MAX_PROBLEMS of them."""
    if len(problems) <= MAX_PROBLEMS:
        return "\n".join(problems)
    more = f"{where(file)}... and more problems; fix the ones above first."
    return "\n".join([*problems[:MAX_PROBLEMS], more])


def _format_validation(e: ValidationError, file: str | Path, lines: dict) -> str:
    out = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        line = _yaml.line_of(lines, loc)
        msg = err["msg"].removeprefix("Value error, ")
        name = loc[-1] if loc else ""
        if err["type"] == "extra_forbidden":
            msg = f"unknown field {_shown(name)}"
        elif err["type"] == "missing":
            msg = f"required field {name!r} is missing"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {_shown(err['input'])})"
        fix = _FIXES.get(err["type"])
        out.append(f"{where(file, _yaml.dotted(loc), line)}{msg}" + (f"; {fix}." if fix else "."))
    return _join(out, file)


def with_limits(plan: Plan, **overrides: float | int | None) -> Plan:
    """A copy of ``plan`` whose ``limits:`` have the given values (None: keep the plan's).

    >>> with_limits(plan, max_result_rows=20_000_000)  # doctest: +SKIP
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return plan
    try:
        limits = type(plan.limits).model_validate({**plan.limits.model_dump(), **given})
    except ValidationError as e:
        raise PlanError(_format_validation(e, "limits", {})) from None
    return plan.model_copy(update={"limits": limits})


def registry(plan: Plan | None = None) -> dict[str, Metric]:
    """Catalog metrics plus the plan's own (a plan metric overrides a catalog id)."""
    out = catalog.metrics()
    if plan is not None:
        out.update({m.id: m for m in plan.metrics})
    return out


def _unknown(kind: str, name: str, known: Iterable[str], fix: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} {fix}"


def check_references(plan: Plan, lines: dict | None = None) -> Iterable[tuple[str, int | None, str]]:
    """Yield (field, line, message) for every dangling reference or bad formula."""
    lines = lines or {}

    def at(*loc: Any) -> tuple[str, int | None]:
        return _yaml.dotted(loc), _yaml.line_of(lines, loc)

    reg = registry(plan)
    objective_ids = [o.id for o in plan.objectives]
    seen_objectives: set[str] = set()
    for i, o in enumerate(plan.objectives):
        if o.id in seen_objectives:
            yield *at("objectives", i, "id"), f"duplicate objective id {o.id!r}; ids must be unique."
        seen_objectives.add(o.id)
    for i, m in enumerate(plan.metrics):
        kind = "derived" if m.derived else "aggregate"
        for field, text, k in (("expr", m.expr, kind), ("where", m.where, "row")):
            if text is None:
                continue
            if m.derived and field == "where":
                yield *at("metrics", i, "where"), "a derived metric cannot have `where:`; remove it."
                continue
            try:
                f = parse(text, kind=k)  # type: ignore[arg-type]
            except FormulaError as e:
                yield *at("metrics", i, field), str(e)
                continue
            for ref in sorted(f.refs - set(reg)):
                yield (
                    *at("metrics", i, "expr"),
                    _unknown("metric", ref, reg, "Refer to a catalog id or a metric defined under `metrics:`."),
                )
    seen: set[str] = set()
    for i, k in enumerate(plan.kpis):
        if k.metric not in reg:
            yield (
                *at("kpis", i, "metric"),
                _unknown(
                    "metric", k.metric, reg, "Use a catalog id (kpinb.catalog.search()) or define it under `metrics:`."
                ),
            )
        if k.metric in seen:
            yield *at("kpis", i, "metric"), f"metric {k.metric!r} is already a KPI above; list it once."
        seen.add(k.metric)
        if k.objective is not None and k.objective not in seen_objectives:
            yield (
                *at("kpis", i, "objective"),
                _unknown("objective", k.objective, objective_ids, "Add it under `objectives:` or fix the id."),
            )
        for j, s in enumerate(k.supporting):
            if s not in reg:
                yield (
                    *at("kpis", i, "supporting", j),
                    _unknown("metric", s, reg, "Use a catalog id or define it under `metrics:`."),
                )
    for i, k in enumerate(plan.kpis):  # the same order check status and alerts apply
        if k.metric in reg:
            problem = inverted_thresholds(k, k.direction or reg[k.metric].direction)
            if problem:
                yield *at("kpis", i, "thresholds"), problem
    # every metric the plan will compute must have its source declared
    needed: dict[str, tuple[Any, ...]] = {}
    for i, k in enumerate(plan.kpis):
        for mid in (k.metric, *k.supporting):
            needed.setdefault(mid, ("kpis", i, "metric"))
    for i, m in enumerate(plan.metrics):
        needed.setdefault(m.id, ("metrics", i, "source"))
    try:
        from kpinb.definitions.analysis import dependencies

        expanded = dependencies([m for m in needed if m in reg], reg)
    except (FormulaError, PlanError) as e:
        yield "metrics", None, str(e)
        expanded = []
    for mid in expanded:
        m = reg[mid]
        if m.source is not None and m.source not in plan.sources:
            loc = needed.get(mid, ("sources",))
            yield (
                *at(*loc),
                (
                    f"metric {mid!r} reads source {m.source!r}, which the plan does not declare. "
                    f"Add `{m.source}:` under `sources:` with the `path:` or `url:` of your data."
                ),
            )
    canon = catalog.sources()
    for name, src in plan.sources.items():
        for other in src.join:
            if other not in plan.sources or other == name or plan.sources[other].join:
                why = (
                    "a source cannot join itself" if other == name
                    else f"{other!r} joins lookups of its own (join one level deep)" if other in plan.sources
                    else f"the plan declares no source {other!r}"
                )  # fmt: skip
                yield (
                    *at("sources", name, "join", other),
                    f"source {name!r} joins {other!r}, but {why}. Declare the lookup under `sources:` "
                    f"(`{other}: {{path: ...}}`) and join it by its key.",
                )
        if name in canon:
            for c in src.columns:
                if c not in canon[name].columns:
                    yield (
                        *at("sources", name, "columns", c),
                        _unknown(
                            f"column of canonical source {name!r}:",
                            c,
                            canon[name].columns,
                            "Map canonical column names (the keys) to your columns (the values).",
                        ),
                    )
        elif (src.time is None and src.as_of is None and not src.snapshots
              and not any(name in other.join for other in plan.sources.values())):  # fmt: skip
            yield (
                *at("sources", name),
                (f"source {name!r} is not a catalog source, so it needs `time:` naming its date column "
                 "(or `as_of:` the date a snapshot describes)."),
            )
