"""``kpinb import-dbt``: a dbt project's semantic models and metrics as a kpinb plan.

dbt-semantic-interfaces parses and checks the YAML (the same models dbt and MetricFlow use);
this module translates what kpinb's formula language can express and lists the rest with the
reason, never dropping anything silently:

- a **semantic model** becomes a source (its table in the warehouse, its time dimension as
  ``time:``, its categorical dimensions as ``dimensions:``); a measure aggregated on another time
  dimension gets a second source over the same table with that ``time:``;
- a **simple** metric becomes ``agg(expr)`` over its semantic model's source, its filters (the
  metric's and the measure input's, ANDed) a ``where:``;
- a **ratio** metric becomes ``{numerator} / {denominator}``, a **derived** metric its ``expr``
  with ``{metric}`` references; an input with a filter becomes a filtered copy of a simple metric;
- **cumulative** and **conversion** metrics, window offsets, semi-additive measures, percentiles
  other than an exact median, filters that need a join and expression dimensions are listed as
  not translated.

>>> result = import_dbt("path/to/dbt_project", "plans/shop.yml")      # doctest: +SKIP
>>> print(result.summary())                                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpinb.errors import FormulaError, PlanError

__all__ = ["DbtImport", "Untranslated", "import_dbt", "read_manifest"]

_AGG = {"sum": "sum", "count": "count", "count_distinct": "count_distinct", "average": "avg", "min": "min",
        "max": "max", "median": "median", "sum_boolean": "count_if"}  # fmt: skip
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\(([^)]*)\)((?:\.\w+\([^)]*\))*)\s*\}\}")
_NOT_EXPRESSIBLE = {
    "cumulative": "cumulative metric (a running total over a window or to date): kpinb formulas aggregate one "
    "period at a time, running totals are not expressible yet",
    "conversion": "conversion metric (entities converting within a window): kpinb formulas cannot follow an "
    "entity from one event to another",
}


class _Skip(Exception):
    """This element cannot be translated; the message says why."""


@dataclass(frozen=True)
class Untranslated:
    """A dbt element the plan does not contain, and why."""

    kind: str  # metric, measure, dimension
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.reason}"


@dataclass(frozen=True)
class DbtImport:
    """The plan written from a dbt project: its YAML, the metrics in it and what was left out."""

    project: Path
    text: str
    metrics: tuple[str, ...]
    sources: tuple[str, ...]
    untranslated: tuple[Untranslated, ...]
    path: Path | None = None

    def summary(self) -> str:
        where = f"wrote {self.path}" if self.path else "plan"
        lines = [f"{where}: {len(self.metrics)} metric(s) from {len(self.sources)} source(s) of {self.project}"]
        if self.untranslated:
            lines.append(f"not translated ({len(self.untranslated)}):")
            lines += [f"  {u}" for u in self.untranslated]
        return "\n".join(lines)


# --- reading the dbt project ---------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not valid YAML ({str(e).splitlines()[0]}). Fix the syntax.") from None


def _ref(model: Any, file: Path, name: str) -> str:
    m = re.fullmatch(r"""\s*ref\(\s*['"]([\w.-]+)['"]\s*(?:,\s*['"][\w.-]+['"]\s*)?\)\s*""", str(model or ""))
    if not m:
        raise PlanError(f"{file}: semantic_models: {name}: model: write ref('<model name>'), got {model!r}.")
    return m.group(1)


def _metric_inputs(metric: Any) -> Any:
    """dbt accepts a bare name for a ratio's or derived metric's input; the interfaces want ``{name: ...}``."""
    if not isinstance(metric, dict) or not isinstance(metric.get("type_params"), dict):
        return metric
    tp = dict(metric["type_params"])
    for key in ("numerator", "denominator"):
        if isinstance(tp.get(key), str):
            tp[key] = {"name": tp[key]}
    if isinstance(tp.get("metrics"), list):
        tp["metrics"] = [{"name": m} if isinstance(m, str) else m for m in tp["metrics"]]
    return {**metric, "type_params": tp}


def read_manifest(project: str | Path) -> tuple[Any, dict[str, Any]]:
    """The project's semantic manifest (parsed by dbt-semantic-interfaces) and its dbt_project.yml.

    dbt's own files list ``semantic_models:`` and ``metrics:``; dbt-semantic-interfaces reads one
    element per YAML document, with the model's relation spelt out, so each is rewritten that way.
    """
    folder = Path(project).expanduser()
    config_file = folder / "dbt_project.yml"
    if not config_file.is_file():
        raise PlanError(f"{folder}: no dbt_project.yml. Point at the folder of your dbt project.")
    config = _yaml(config_file) or {}
    try:
        import yaml
        from dbt_semantic_interfaces.parsing.dir_to_model import parse_yaml_files_to_validation_ready_semantic_manifest
        from dbt_semantic_interfaces.parsing.objects import YamlConfigFile
    except ImportError:
        raise PlanError("kpinb import-dbt needs dbt-semantic-interfaces: pip install 'kpinb[dbt]'.") from None

    files = []
    for sub in config.get("model-paths") or ["models"]:
        for path in sorted((folder / sub).rglob("*.y*ml")):
            data = _yaml(path)
            if not isinstance(data, dict):
                continue
            docs = []
            for sm in data.get("semantic_models") or []:
                sm = dict(sm)
                alias = _ref(sm.pop("model", None), path, sm.get("name", "?"))
                docs.append({"semantic_model": {**sm, "node_relation": {"alias": alias, "schema_name": "main"}}})
            docs += [{"metric": _metric_inputs(m)} for m in data.get("metrics") or []]
            if docs:
                text = "\n---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
                files.append(YamlConfigFile(filepath=str(path), contents=text))
    if not files:
        raise PlanError(f"{folder}: no semantic_models or metrics in its model files. Nothing to import.")
    files.append(YamlConfigFile(filepath="<kpinb>", contents="project_configuration:\n  time_spines: []\n"))
    result = parse_yaml_files_to_validation_ready_semantic_manifest(
        files, apply_transformations=False, raise_issues_as_exceptions=False
    )
    if result.issues.has_blocking_issues:
        problems = "; ".join(i.as_readable_str() for i in result.issues.errors)
        raise PlanError(f"{folder}: dbt semantic layer files do not parse: {problems}")
    return result.semantic_manifest, config


def _database(folder: Path, config: Mapping[str, Any], database: str | Path | None) -> Path:
    """The DuckDB file: ``database``, else the duckdb output of the project's profile (profiles.yml)."""
    if database is not None:
        path = Path(database).expanduser()
    else:
        path = None
        for profiles in (folder / "profiles.yml", Path.home() / ".dbt" / "profiles.yml"):
            if not profiles.is_file():
                continue
            profile = (_yaml(profiles) or {}).get(config.get("profile") or config.get("name"), {})
            output = (profile.get("outputs") or {}).get(profile.get("target", "dev"), {})
            if output.get("type") == "duckdb" and output.get("path"):
                path = Path(output["path"]).expanduser()
                path = path if path.is_absolute() else folder / path
                break
        if path is None:
            raise PlanError(
                f"{folder}: no DuckDB path in the project's profiles.yml. Pass --database path/to/warehouse.duckdb "
                "(kpinb reads the tables dbt built)."
            )
    if not path.is_file():
        raise PlanError(f"--database {path}: no such file. Run `dbt build` first, or give the right path.")
    return path.resolve()


# --- translating ---------------------------------------------------------------------------------


@dataclass
class _Model:
    """What kpinb needs of one semantic model."""

    name: str
    table: str
    default_time: str | None
    time: dict[str, str] = field(default_factory=dict)  # time dimension -> column
    dims: dict[str, str] = field(default_factory=dict)  # categorical dimension -> column
    entities: dict[str, str] = field(default_factory=dict)  # entity -> column
    measures: dict[str, Any] = field(default_factory=dict)


def _column(expr: Any, name: str) -> str | None:
    """The plain column of a dimension or entity (None for an SQL expression)."""
    text = name if expr in (None, True) else str(expr).strip()
    return text if re.fullmatch(r"[A-Za-z_]\w*", text) else None


class _Translator:
    def __init__(self, manifest: Any, database: Path) -> None:
        self.database = database
        self.untranslated: list[Untranslated] = []
        self.sources: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, dict[str, Any]] = {}
        self.models: dict[str, _Model] = {}
        self.measure_model: dict[str, str] = {}
        for sm in manifest.semantic_models:
            m = _Model(sm.name, sm.node_relation.alias, sm.defaults.agg_time_dimension if sm.defaults else None)
            for d in sm.dimensions:
                col = _column(d.expr, d.name)
                if col is None:
                    self._skip("dimension", f"{sm.name}.{d.name}", f"an SQL expression ({d.expr}); kpinb sources "
                               "group by columns: add it as a column in the dbt model")  # fmt: skip
                elif d.type.value.lower() == "time":
                    m.time[d.name] = col
                else:
                    m.dims[d.name] = col
            for e in sm.entities:
                col = _column(e.expr, e.name)
                if col is not None:
                    m.entities[e.name] = col
            for me in sm.measures:
                m.measures[me.name] = me
                self.measure_model[me.name] = sm.name
            self.models[sm.name] = m
        self.by_name = {metric.name: metric for metric in manifest.metrics}
        for sm in manifest.semantic_models:  # `create_metric: true` makes a simple metric of the measure
            for me in sm.measures:
                if me.create_metric and me.name not in self.by_name:
                    self.by_name[me.name] = ("measure", me)
        self._busy: set[str] = set()

    def _skip(self, kind: str, name: str, reason: str) -> None:
        self.untranslated.append(Untranslated(kind, name, reason))

    # sources -----------------------------------------------------------------------------------

    def source(self, model: _Model, time_dim: str | None) -> str:
        time_dim = time_dim or model.default_time
        if time_dim is None or time_dim not in model.time:
            raise _Skip(f"semantic model {model.name} has no time dimension {time_dim!r} to aggregate on")
        name = model.name if time_dim == model.default_time else f"{model.name}_by_{time_dim}"
        if name not in self.sources:
            self.sources[name] = {
                "path": str(self.database), "table": model.table, "time": model.time[time_dim],
                **({"dimensions": sorted(set(model.dims.values()))} if model.dims else {}),
            }  # fmt: skip
        return name

    # formulas ----------------------------------------------------------------------------------

    def aggregate(self, measure: Any) -> str:
        from kpinb.definitions.formula import parse

        agg = measure.agg.value.lower()
        if measure.non_additive_dimension is not None:
            dim = measure.non_additive_dimension.name
            raise _Skip(f"measure {measure.name} is semi-additive (non_additive_dimension {dim}): kpinb cannot take "
                        "the last value per period yet")  # fmt: skip
        expr = str(measure.expr).strip() if measure.expr not in (None, True) else measure.name
        if agg == "percentile":
            p = measure.agg_params
            exact_median = (
                p and p.percentile == 0.5 and not p.use_discrete_percentile and not p.use_approximate_percentile
            )
            if not exact_median:
                raise _Skip(f"measure {measure.name}: percentile other than an exact median is not in kpinb's formulas")
            agg = "median"
        text = "count(*)" if agg == "count" and expr in ("1", "*") else f"{_AGG[agg]}({expr})"
        try:
            parse(text, kind="aggregate")
        except FormulaError as e:
            raise _Skip(f"measure {measure.name}: {e}") from None
        return text

    def where(self, templates: list[str], model: _Model, time_column: str) -> str | None:
        from kpinb.definitions.formula import parse

        parts = []
        for template in templates:

            def column(m: re.Match) -> str:
                kind, args, calls = m.group(1), [a.strip(" '\"") for a in m.group(2).split(",")], m.group(3)
                grain = re.findall(r"\.grain\(\s*['\"](\w+)['\"]\s*\)", calls or "") or args[1:2]
                name = args[0].split("__")[-1]
                if kind == "Entity" and name in model.entities:
                    return model.entities[name]
                if kind in ("Dimension", "TimeDimension"):
                    if grain and grain[0].lower() != "day":
                        raise _Skip(
                            f"a filter on {args[0]} at {grain[0]} grain (kpinb filters compare rows, not periods)"
                        )
                    if name == "metric_time":
                        return time_column
                    if name in model.dims:
                        return model.dims[name]
                    if name in model.time:
                        return model.time[name]
                if kind == "Metric":
                    raise _Skip(f"a filter on a metric ({m.group(0)}) needs a per-entity aggregate")
                raise _Skip(f"the filter {m.group(0)} refers to another semantic model: kpinb metrics read one "
                            "source, without joins")  # fmt: skip

            sql = _TEMPLATE.sub(column, template)
            try:
                parse(sql, kind="row")
            except FormulaError as e:
                raise _Skip(f"filter {template!r}: {e}") from None
            parts.append(sql)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)

    # metrics -----------------------------------------------------------------------------------

    def translate_all(self) -> None:
        for name in self.by_name:
            with contextlib.suppress(_Skip):  # recorded in self.untranslated with its reason
                self.metric(name)

    def metric(self, name: str) -> str:
        """Translate metric ``name`` (once); its kpinb id, or raise _Skip when it cannot be."""
        if name in self.metrics:
            return name
        if any(u.kind == "metric" and u.name == name for u in self.untranslated):
            raise _Skip(f"it uses metric {name}, which is not translated")
        if name not in self.by_name:
            raise _Skip(f"metric {name} is not defined in the project")
        if name in self._busy:
            raise _Skip(f"metric {name} refers to itself")
        self._busy.add(name)
        try:
            self.metrics[name] = self._translate(self.by_name[name])
            return name
        except _Skip as e:
            self._skip("metric", name, str(e))
            raise _Skip(f"it uses metric {name}, which is not translated") from None
        finally:
            self._busy.discard(name)

    def _filters(self, *parts: Any) -> list[str]:
        return [f.where_sql_template for p in parts if p is not None for f in p.where_filters]

    def _simple(self, name: str, label: str, description: str | None, measure_name: str, filters: list[str],
                agg_params: Any = None) -> dict[str, Any]:  # fmt: skip
        if agg_params is not None:  # a metric with its own aggregation instead of a measure
            model = self.models[agg_params.semantic_model]
            measure = agg_params
            time_dim = agg_params.agg_time_dimension
        else:
            if measure_name not in self.measure_model:
                raise _Skip(f"measure {measure_name} is not defined in any semantic model")
            model = self.models[self.measure_model[measure_name]]
            measure = model.measures[measure_name]
            time_dim = measure.agg_time_dimension
        src = self.source(model, time_dim)
        spec: dict[str, Any] = {"id": name, "name": label, "source": src, "expr": self.aggregate(measure)}
        where = self.where(filters, model, self.sources[src]["time"])
        if where:
            spec["where"] = where
        if description:
            spec["description"] = description.strip()
        return spec

    def _translate(self, metric: Any) -> dict[str, Any]:
        if isinstance(metric, tuple):  # a measure with create_metric
            me = metric[1]
            return self._simple(me.name, me.label or me.name, me.description, me.name, [])
        kind = metric.type.value.lower()
        label, tp = metric.label or metric.name, metric.type_params
        if kind in _NOT_EXPRESSIBLE:
            raise _Skip(_NOT_EXPRESSIBLE[kind])
        if kind == "simple":
            if tp.measure is not None and (tp.measure.join_to_timespine or tp.measure.fill_nulls_with is not None):
                raise _Skip("join_to_timespine / fill_nulls_with fills periods without rows; kpinb leaves them missing")
            if tp.join_to_timespine or tp.fill_nulls_with is not None:
                raise _Skip("join_to_timespine / fill_nulls_with fills periods without rows; kpinb leaves them missing")
            filters = self._filters(metric.filter, tp.measure.filter if tp.measure else None)
            if tp.measure is None and tp.metric_aggregation_params is not None:
                agg = tp.metric_aggregation_params
                measure = type("_Measure", (), {"name": metric.name, "agg": agg.agg, "expr": tp.expr,
                                                "agg_params": agg.agg_params,
                                                "non_additive_dimension": agg.non_additive_dimension,
                                                "semantic_model": agg.semantic_model,
                                                "agg_time_dimension": agg.agg_time_dimension})()  # fmt: skip
                return self._simple(metric.name, label, metric.description, metric.name, filters, measure)
            if tp.measure is None:
                raise _Skip("a simple metric without a measure")
            return self._simple(metric.name, label, metric.description, tp.measure.name, filters)
        if kind == "ratio":
            num = self._input(metric, tp.numerator, "numerator")
            den = self._input(metric, tp.denominator, "denominator")
            expr = f"{{{num}}} / {{{den}}}"
            spec = {"id": metric.name, "name": label, "expr": expr, "unit": "ratio"}
        elif kind == "derived":
            expr = str(tp.expr or "")
            for i, inp in enumerate(tp.metrics or []):
                ref = self._input(metric, inp, inp.alias or f"input{i + 1}")
                expr = re.sub(rf"(?<![\w{{]){re.escape(inp.alias or inp.name)}(?![\w}}])", f"{{{ref}}}", expr)
            spec = {"id": metric.name, "name": label, "expr": expr}
            from kpinb.definitions.formula import parse

            try:
                parse(expr, kind="derived")
            except FormulaError as e:
                raise _Skip(f"expr {tp.expr!r}: {e}") from None
        else:
            raise _Skip(f"metric type {kind!r} is unknown to kpinb")
        if metric.description:
            spec["description"] = metric.description.strip()
        return spec

    def _input(self, metric: Any, inp: Any, role: str) -> str:
        """The kpinb id for an input metric of a ratio or derived metric (a filtered copy when filtered)."""
        if getattr(inp, "offset_window", None) is not None or getattr(inp, "offset_to_grain", None):
            raise _Skip(f"input {inp.name} is offset in time (offset_window / offset_to_grain): kpinb's prev() is "
                        "one period of the grain computed, not a fixed window")  # fmt: skip
        base = self.metric(inp.name)
        filters = self._filters(inp.filter, metric.filter)
        if not filters:
            return base
        spec = self.metrics[base]
        if "source" not in spec:
            raise _Skip(f"a filter on {inp.name}, itself a ratio or derived metric, would filter each of its inputs")
        model = self._model_of(spec["source"])
        extra = self.where(filters, model, self.sources[spec["source"]]["time"])
        copy = {**spec, "id": f"{metric.name}_{role}", "name": f"{spec['name']} ({metric.name} {role})"}
        copy["where"] = f"({spec['where']}) and ({extra})" if spec.get("where") else extra
        copy.pop("description", None)
        self.metrics[copy["id"]] = copy
        return copy["id"]

    def _model_of(self, source: str) -> _Model:
        return next(m for name, m in self.models.items() if source == name or source.startswith(f"{name}_by_"))


def import_dbt(
    project: str | Path,
    out: str | Path | None = None,
    *,
    database: str | Path | None = None,
    department: str | None = None,
) -> DbtImport:
    """Translate a dbt project's semantic layer into a kpinb plan (written to ``out`` when given).

    Parameters
    ----------
    project : the folder holding ``dbt_project.yml`` (its ``model-paths`` are searched).
    out : the plan file to write (default: not written; ``result.text`` holds it).
    database : the DuckDB file dbt built (default: the duckdb ``path`` of the project's profile).
    department : the plan's department (default: the dbt project's name).
    """
    import yaml

    from kpinb._io import write_atomic
    from kpinb.definitions.plan import parse_plan

    folder = Path(project).expanduser()
    manifest, config = read_manifest(folder)
    t = _Translator(manifest, _database(folder, config, database))
    t.translate_all()
    name = str(config.get("name") or folder.name)
    dept = department or re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "dbt"
    plan = {
        "name": f"{name} (from dbt)",
        "department": dept,
        "sources": t.sources,
        "metrics": list(t.metrics.values()),
    }
    out_path = Path(out).expanduser() if out is not None else None
    if out_path is not None:  # the warehouse relative to the plan, so both can move together
        for src in plan["sources"].values():
            src["path"] = Path(os.path.relpath(src["path"], out_path.parent.resolve())).as_posix()
    header = [
        f"# Imported from the dbt project {name} by `kpinb import-dbt`: metrics only; add KPIs (targets, owners)."
    ]
    if t.untranslated:
        header.append("# Not translated (kpinb computes these differently or not yet):")
        header += [f"#   - {u}" for u in t.untranslated]
    text = "\n".join(header) + "\n" + yaml.safe_dump(plan, sort_keys=False, allow_unicode=True, width=1000)
    parse_plan(text, out_path or "<import-dbt>")  # never write a plan that would not load
    written = write_atomic(out_path, text) if out_path is not None else None
    return DbtImport(folder, text, tuple(t.metrics), tuple(t.sources), tuple(t.untranslated), written)
