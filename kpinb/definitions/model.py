"""Typed definitions: metrics, KPIs, objectives, sources and plans (the YAML boundary).

All models are frozen; derive changed copies with ``model_copy(update=...)``.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_serializer,
    model_validator,
)

_ID = r"^[a-z][a-z0-9_\-]*$"
Id = Annotated[str, Field(pattern=_ID, max_length=80)]

FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
"""Dates a plan may name: calendars and pandas (1677-2262) handle them with room for arithmetic."""


def _in_range(value: dt.date) -> dt.date:
    if not FIRST_DATE <= value <= LAST_DATE:
        raise ValueError(f"{value.isoformat()} is outside {FIRST_DATE.year}-{LAST_DATE.year}; write a real date")
    return value


PlanDate = Annotated[dt.date, AfterValidator(_in_range)]


def _as_texts(value: Any) -> Any:
    """One value or a list of them, each as text (YAML reads `1` as a number, `yes` as true)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in items)


ValueList = Annotated[tuple[str, ...], BeforeValidator(_as_texts)]
"""The user's values that stand for one catalog value: ``paid`` or ``[paid, settled]``."""


_WINDOW = re.compile(r"^\s*(\d{1,4})\s*(day|week|month|quarter|year)s?\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*(day|week)s?\s*$", re.I)


def _duration(value: Any) -> Any:
    """``60 days`` / ``8 weeks`` / a number of days as a timedelta; anything else is left to pydantic
    (ISO 8601 ``P60D``), whose error then names the field."""
    if isinstance(value, bool):
        raise ValueError("write a duration such as `60 days` or `8 weeks`")
    if isinstance(value, int):
        return dt.timedelta(days=value)
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m:
        return dt.timedelta(days=int(m.group(1)) * (7 if m.group(2).lower() == "week" else 1))
    return value


def _whole_days(value: dt.timedelta | None) -> dt.timedelta | None:
    if value is not None and (value < dt.timedelta(0) or value % dt.timedelta(days=1)):
        raise ValueError("write a whole number of days or weeks, e.g. `60 days` or `8 weeks`")
    return value


Duration = Annotated[dt.timedelta, BeforeValidator(_duration)]


class Unit(enum.StrEnum):
    count = "count"
    currency = "currency"
    percent = "percent"
    ratio = "ratio"
    duration = "duration"
    score = "score"


class Direction(enum.StrEnum):
    higher_is_better = "higher_is_better"
    lower_is_better = "lower_is_better"


class Indicator(enum.StrEnum):
    leading = "leading"
    lagging = "lagging"


class Role(enum.StrEnum):
    kpi_candidate = "kpi_candidate"
    operational_metric = "operational_metric"


class Grain(enum.StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class _Spec(BaseModel):
    # NaN and infinity are never a target, threshold or baseline: every comparison with them is False
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False, allow_inf_nan=False)


class Metric(_Spec):
    """Any measurable data point: an aggregate over a source, or derived from other metrics."""

    id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    department: str | None = None
    source: str | None = None
    expr: str = Field(min_length=1, max_length=5000)
    where: str | None = Field(default=None, max_length=5000)
    unit: Unit = Unit.count
    direction: Direction = Direction.higher_is_better
    indicator: Indicator = Indicator.lagging
    role: Role = Role.operational_metric
    vanity: bool = False
    objectives: tuple[str, ...] = ()
    supporting: tuple[str, ...] = ()
    matures_after: Annotated[Duration | None, AfterValidator(_whole_days)] = None
    """How long after a period ends its value settles (``60 days``: leads created in it are won
    or lost within a sales cycle); until then the period is immature and not judged."""
    window: str | None = None
    """Each period's value aggregates the rows of a window ending with it: ``12 months``,
    ``28 days``, ``4 weeks`` (trailing) or ``all`` (cumulative); distinct counts stay exact."""
    cumulative: bool = False
    """Same as ``window: all``: everything up to the end of each period."""
    to_date: Grain | None = None
    """Each period's value aggregates its ``year``/``quarter``/``month``/``week`` so far (fiscal-aware)."""

    @field_validator("window", mode="before")
    @classmethod
    def _window_text(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip().lower()
        if text != "all" and not _WINDOW.match(text):
            raise ValueError(f"window {value!r}: write e.g. `12 months`, `28 days`, `4 weeks` or `all`")
        return text

    @model_validator(mode="after")
    def _one_window(self) -> Metric:
        kinds = (("window", self.window), ("cumulative", self.cumulative), ("to_date", self.to_date))
        given = [k for k, v in kinds if v]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(given)}: they are different windows")
        if given and self.source is None:
            raise ValueError(f"`{given[0]}:` is for metrics over a source; a derived metric combines windowed ones")
        return self

    @property
    def derived(self) -> bool:
        """True when the metric is computed from other metrics rather than from a source."""
        return self.source is None

    @property
    def span(self) -> tuple[int, str] | str | None:
        """The window: ``(12, "month")``, ``"all"`` (cumulative), ``"to_date:year"``, or None."""
        if self.cumulative or self.window == "all":
            return "all"
        if self.to_date is not None:
            return f"to_date:{self.to_date.value}"
        if self.window:
            m = _WINDOW.match(self.window)
            assert m is not None
            return int(m[1]), m[2]
        return None


class Objective(_Spec):
    """What the organisation wants to achieve; KPIs say how well it is going."""

    id: Id
    statement: str = Field(min_length=1, max_length=500)
    theme: str | None = None


class Baseline(_Spec):
    """The starting point: a given value, or computed from a historical window."""

    value: float | None = None
    from_: PlanDate | None = Field(default=None, alias="from")
    to: PlanDate | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> Baseline:
        window = self.from_ is not None or self.to is not None
        if self.value is None and not window:
            raise ValueError("give either `value:` or a window `from:` and `to:`")
        if self.value is not None and window:
            raise ValueError("give either `value:` or `from:`/`to:`, not both")
        if window and (self.from_ is None or self.to is None):
            raise ValueError("a baseline window needs both `from:` and `to:` dates")
        if window and self.from_ > self.to:  # type: ignore[operator]
            raise ValueError("baseline `from:` must be on or before `to:`")
        return self


class TargetPoint(_Spec):
    """One step of a target path: the value to reach by a date."""

    by: PlanDate
    value: float


class Target(_Spec):
    """A value to reach by a deadline, optionally along a path (linear or a table).

    ``path`` defaults to ``linear`` when the KPI has a baseline (from the baseline to the target
    by the deadline), else ``flat``. ``from`` is the date this version took effect, in a goal
    history (``target: [{value, by, from}, ...]``, see :attr:`KPI.targets`).
    """

    value: float
    by: PlanDate | None = None
    path: str | tuple[TargetPoint, ...] = "flat"
    from_: PlanDate | None = Field(default=None, alias="from")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _deadline(self) -> Target:
        if self.by is None:
            raise ValueError("a target needs a deadline: add `by: YYYY-MM-DD`")
        if isinstance(self.path, str) and self.path not in ("flat", "linear"):
            raise ValueError("`path:` must be `flat`, `linear` or a list of {by, value}")
        return self


class Thresholds(_Spec):
    """Alert levels in the metric's own unit, read with its direction; and a change limit."""

    warning: float | None = None
    critical: float | None = None
    change_pct: float | None = Field(default=None, gt=0)


def _linear_when_based(data: Any, baseline: Any = None) -> Any:
    """A target without ``path:`` runs linearly from the baseline when there is one (DESIGN)."""
    target = data.get("target") if isinstance(data, dict) else None
    if isinstance(target, dict) and "path" not in target and (data.get("baseline") or baseline) is not None:
        data = {**data, "target": {**target, "path": "linear"}}
    return data


class SliceGoal(_Spec):
    """The goal of one member of a dimension (``slices: {region: {Europe: {target: ...}}}``): the
    slice is judged against it when a view is filtered to that member or breaks the KPI down.
    Without its own ``baseline:`` it takes the KPI's baseline window (never a value: that is the
    whole KPI's level)."""

    baseline: Baseline | None = None
    target: Target | None = None
    thresholds: Thresholds | None = None

    @model_validator(mode="before")
    @classmethod
    def _linear_from_a_baseline(cls, data: Any) -> Any:
        return _linear_when_based(data)


def _goal_history(data: Any) -> Any:
    """``target:`` given as a list of versions (a goal history): each version checked as a
    target, the second and later with ``from:`` strictly after the one before; ``target``
    becomes the latest version and ``targets`` all of them, in order."""
    if not isinstance(data, dict) or not isinstance(data.get("target"), list):
        if isinstance(data, dict) and "targets" in data and not isinstance(data.get("targets"), tuple):
            raise ValueError("write a goal history as a list under `target:` (not `targets:`)")
        return data
    raw = data["target"]
    if not raw:
        raise ValueError("`target:` is an empty list; give one target, or a list of versions each with `from:`")
    from pydantic import ValidationError

    versions: list[Target] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"target[{i}] must be a mapping such as {{value: 100, by: 2025-12-31, from: 2025-01-01}}")
        item = _linear_when_based({**data, "target": item})["target"]
        try:
            version = Target.model_validate(item)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValueError(
                f"target[{i}]{'.' + where if where else ''}: {first['msg'].removeprefix('Value error, ')}"
            ) from None
        if i and version.from_ is None:
            raise ValueError(f"target[{i}] needs `from: YYYY-MM-DD`, the date this version took effect")
        if i and versions[-1].from_ is not None and version.from_ <= versions[-1].from_:  # type: ignore[operator]
            raise ValueError(
                f"target[{i}].from {version.from_} is not after target[{i - 1}].from {versions[-1].from_}; "
                "list the versions oldest first, each with a later `from:`"
            )
        versions.append(version)
    return {**data, "target": versions[-1], "targets": tuple(versions) if len(versions) > 1 else ()}


class KPI(_Spec):
    """A metric elevated to measure progress toward an objective.

    ``target`` is the target in force now (the latest version of a goal history); ``targets``
    holds every version, oldest first, when the plan gives ``target:`` as a list of
    ``{value, by, from}`` mappings (empty otherwise); :meth:`target_on` picks the one in force
    on a date.
    """

    metric: str
    name: str | None = None
    objective: str | None = None
    owner: str | None = None
    grain: Grain = Grain.month
    baseline: Baseline | None = None
    target: Target | None = None
    targets: tuple[Target, ...] = ()
    """Every version of a goal history, oldest first (``target`` is the last); empty for one target."""
    thresholds: Thresholds | None = None
    direction: Direction | None = None
    weight: float = Field(default=1.0, gt=0, le=1e6)
    """How much this KPI counts in its objective's progress (a weighted mean; default 1)."""
    supporting: tuple[str, ...] = ()
    slices: dict[str, dict[str, SliceGoal]] = Field(default_factory=dict)
    """Per dimension and member, a goal of its own: ``{region: {Europe: {target: {...}}}}``."""

    @model_serializer(mode="wrap")
    def _history_as_list(self, handler: Any) -> Any:
        # a goal history is written back the way the plan gives it: a list under `target:`
        out = handler(self)
        if isinstance(out, dict):
            history = out.pop("targets", None)
            if self.targets and history:
                out["target"] = list(history)
        return out

    def target_on(self, when: Any) -> Target | None:
        """The target version in force on ``when`` (a date): the latest whose ``from:`` is on or
        before it; before the second version the first applies (also to periods before its
        own ``from:``). Without a goal history, :attr:`target`."""
        if not self.targets:
            return self.target
        day = when.date() if isinstance(when, dt.datetime) else when  # a pandas Timestamp is a datetime
        if not isinstance(day, dt.date):
            day = dt.date.fromisoformat(str(day)[:10])
        chosen = self.targets[0]
        for version in self.targets[1:]:
            if version.from_ is not None and version.from_ <= day:
                chosen = version
        return chosen

    @model_validator(mode="before")
    @classmethod
    def _linear_from_a_baseline(cls, data: Any) -> Any:
        data = _goal_history(data)
        data = _linear_when_based(data)
        slices = data.get("slices") if isinstance(data, dict) else None
        base = data.get("baseline") if isinstance(data, dict) else None
        window = base if isinstance(base, dict) and "value" not in base else None
        if isinstance(slices, dict):  # a slice's target runs from the baseline window it will use
            slices = {
                d: {m: _linear_when_based(g, window) for m, g in ms.items()} if isinstance(ms, dict) else ms
                for d, ms in slices.items()
            }
            data = {**data, "slices": slices}
        return data

    def for_slice(self, dimension: str, member: str) -> KPI | None:
        """This KPI with the goal of ``dimension = member`` (its target, thresholds and baseline,
        else the KPI's baseline window); None when the plan sets no goal for that slice."""
        goal = self.slices.get(dimension, {}).get(str(member))
        if goal is None:
            return None
        window = self.baseline if self.baseline is not None and self.baseline.value is None else None
        baseline = goal.baseline or window
        return self.model_copy(
            update={
                "baseline": baseline, "target": goal.target, "targets": (), "thresholds": goal.thresholds,
                "slices": {},
            }
        )


class Join(_Spec):
    """A lookup joined onto a source's rows (many rows to one): ``key`` names the column on both
    sides (``customer_id``), several (``[a, b]``) or ``{source_column: lookup_column}``; written
    alone, ``join: {customers: customer_id}``. (Not ``on:``: YAML reads that word as true.)"""

    key: str | tuple[str, ...] | dict[str, str]

    @model_validator(mode="before")
    @classmethod
    def _key_alone(cls, data: Any) -> Any:
        return {"key": data} if isinstance(data, (str, list, tuple)) else data

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(source column, lookup column) for each key."""
        if isinstance(self.key, str):
            return ((self.key, self.key),)
        if isinstance(self.key, dict):
            return tuple(self.key.items())
        return tuple((c, c) for c in self.key)


class Snapshot(_Spec):
    """One file of a snapshot series: its rows are the state as of ``as_of``."""

    path: str
    as_of: PlanDate


SNAPSHOT_TIME = "as_of"
"""The time column a snapshot source gets: its ``as_of`` date."""


class Source(_Spec):
    """Where a canonical source's rows live and how its columns map to the canonical ones."""

    path: str | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    sheet: str | None = None
    format: str | None = None
    time: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    dimensions: tuple[str, ...] | None = None
    values: dict[str, dict[str, ValueList]] = Field(default_factory=dict)
    """Canonical column -> catalog value -> the user's values standing for it, e.g.
    ``{status: {completed: [paid, settled]}}``; applied when the source is opened."""
    complete_through: PlanDate | None = None
    """The last day the data is complete for (a load that lags, a sparse table); default: the date
    of the latest row. A period ending after it is partial and not judged."""
    row_covers: Grain | None = None
    """The period each row's date stands for (``month`` when the time column holds the first day of
    each month): the data then covers to the end of its latest row's period."""
    as_of: PlanDate | None = None
    """A snapshot without a time column (one row per employee, say): the date its rows describe.
    Several snapshots: ``path:`` a list of ``{path, as_of}``."""
    snapshots: tuple[Snapshot, ...] = ()
    join: dict[str, Join] = Field(default_factory=dict)
    """Lookups joined onto the rows before anything else: another source of the plan -> its key,
    e.g. ``{customers: customer_id}``; their columns become usable as dimensions and in formulas."""
    derive: dict[str, str] = Field(default_factory=dict)
    """Computed columns, in order: name -> a row formula over the source's columns (and earlier
    derived ones), e.g. ``{order_month: "make_date(year, month, 1)"}``; usable as ``time:``, a
    dimension or in formulas."""

    @field_validator("derive")
    @classmethod
    def _derived_columns(cls, value: dict[str, str]) -> dict[str, str]:
        from kpinb.definitions.formula import parse
        from kpinb.errors import FormulaError

        for name, text in value.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$", name):
                raise ValueError(f"derived column {name!r}: use letters, digits and _ (not starting with a digit)")
            try:
                parse(str(text), kind="column")
            except FormulaError as e:
                raise ValueError(f"{name}: {e}") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _snapshot_list(cls, data: Any) -> Any:
        """``path: [{path: a.csv, as_of: 2025-03-31}, ...]``: a series of snapshots."""
        if isinstance(data, dict) and isinstance(data.get("path"), list):
            files = data["path"]
            if not files or not all(isinstance(f, dict) for f in files):
                raise ValueError("a list under `path:` is a series of snapshots: `- {path: a.csv, as_of: 2025-06-30}`")
            data = {**data, "snapshots": files, "path": str(files[0].get("path", ""))}
        return data

    @model_validator(mode="after")
    def _snapshot_time(self) -> Source:
        if (self.as_of is not None or self.snapshots) and self.time is not None:
            raise ValueError("a snapshot (`as_of:`) has no `time:` column: its rows are the state on that date")
        if self.as_of is not None and self.snapshots:
            raise ValueError("give `as_of:` for one file, or a `path:` list of `{path, as_of}`, not both")
        return self

    @model_validator(mode="after")
    def _one_location(self) -> Source:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path:` (a file) or `url:` (a database)")
        if self.url is not None and (self.table is None) == (self.query is None):
            raise ValueError("a database source needs exactly one of `table:` or `query:`")
        if self.query is not None and not re.match(r"^\s*(select|with)\b", self.query, re.I):
            raise ValueError("`query:` must be a read-only SELECT (or WITH ... SELECT)")
        return self

    def __repr_args__(self) -> Any:
        # repr(plan), repr(plan.sources) and tracebacks show the URL without its password
        from kpinb.errors import redact

        for name, value in super().__repr_args__():
            yield name, redact(value) if name == "url" and isinstance(value, str) else value


class Review(_Spec):
    """How often the plan is reviewed and when it last was."""

    every: Grain = Grain.quarter
    last: PlanDate | None = None


DEFAULT_MAX_RESULT_ROWS = 5_000_000
"""Rows a computation may return (all metrics, periods and members): about 0.5 GB in memory."""

DEFAULT_STATEMENT_TIMEOUT_S = 300.0
"""Seconds one database statement may run (PostgreSQL ``statement_timeout``)."""


class Limits(_Spec):
    """Guards against runaway work; raise them in the plan (``limits:``) or with the CLI flag
    of the same name (``--max-result-rows``, ``--statement-timeout-s``)."""

    max_result_rows: int = Field(default=DEFAULT_MAX_RESULT_ROWS, ge=1, le=10**10)
    statement_timeout_s: float = Field(default=DEFAULT_STATEMENT_TIMEOUT_S, gt=0, le=7 * 24 * 3600)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; write an IANA name such as Europe/Berlin, America/New_York or UTC"
        ) from None
    return value


class Calendar(BaseModel):
    """How time is cut into periods: the business's time zone, the month its fiscal year starts
    and the first day of its weeks. Fiscal years are named by the calendar year they end in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __deepcopy__(self, memo: dict[int, Any]) -> Calendar:  # frozen: pandas' attrs share it
        return self

    timezone: Annotated[str | None, AfterValidator(_zone)] = None
    fiscal_year_start: int = Field(default=1, ge=1, le=12)
    week_start: str = "monday"

    @field_validator("week_start", mode="before")
    @classmethod
    def _weekday(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text not in WEEKDAYS:
            raise ValueError(f"week_start {value!r} must be a weekday name: {', '.join(WEEKDAYS)}")
        return text


class Plan(_Spec):
    """A department's KPI plan: objectives, sources, own metrics and KPIs."""

    name: str = Field(min_length=1, max_length=200)
    department: str = Field(min_length=1, max_length=80)
    objectives: tuple[Objective, ...] = ()
    sources: dict[str, Source] = Field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    kpis: tuple[KPI, ...] = ()
    benchmarks: str | None = None
    review: Review | None = None
    limits: Limits = Limits()
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    """ISO 4217 code of the plan's money amounts (``EUR``); none = amounts shown without a symbol."""
    timezone: Annotated[str | None, AfterValidator(_zone)] = None
    """IANA zone the business's days follow; timestamps with an offset are converted to it."""
    fiscal_year_start: int = Field(default=1, ge=1, le=12)
    week_start: str = "monday"
    _file: Path | None = PrivateAttr(default=None)

    @field_validator("week_start", mode="before")
    @classmethod
    def _weekday(cls, value: Any) -> Any:
        return Calendar._weekday(value)

    @property
    def calendar(self) -> Calendar:
        """The plan's time zone, fiscal year start and week start as one value."""
        return Calendar(timezone=self.timezone, fiscal_year_start=self.fiscal_year_start, week_start=self.week_start)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Source]) -> dict[str, Source]:
        for name in value:
            if not re.match(_ID, name):
                raise ValueError(f"source name {name!r} must be lower_snake_case")
        return value

    @property
    def file(self) -> Path | None:
        """The YAML file the plan was loaded from, if any."""
        return self._file

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the plan resolve against."""
        return self._file.parent if self._file else Path.cwd()

    def resolve(self, path: str) -> Path:
        """Resolve a path written in the plan against the plan's own folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def kpi(self, metric_id: str) -> KPI:
        """The KPI measuring ``metric_id``."""
        for k in self.kpis:
            if k.metric == metric_id:
                return k
        raise KeyError(metric_id)


def to_dict(model: BaseModel) -> dict[str, Any]:
    """A plain, YAML-ready dict of a model without defaults."""
    return model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
