"""What a batch runs and what came of it: run specs (from templates x departments or a ``runs.yml``)
and the results of runs and batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kpinb._io import inside, slug
from kpinb.errors import PlanError, RunError
from kpinb.runs.discovery import ALL_TEMPLATES, REPORT_TEMPLATES, department_plans, template_path

PARAMETERS = ("plan", "department", "period_end", "grain", "data_dir", "output_dir")
"""The parameters every template declares in its ``parameters`` cell."""


@dataclass(frozen=True)
class RunSpec:
    """One notebook to run: a template for a department's plan, with parameter overrides."""

    template: str
    department: str
    plan: Path
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The template's file stem (``kpi_dashboard``) as a safe file name, used for output file names."""
        return slug(Path(self.template).stem if self.template.endswith(".ipynb") else self.template)


def run_dir(out_dir: Path, department: str) -> Path:
    """``<out_dir>/<department>``, the department made a safe folder name that stays inside ``out_dir``."""
    return inside(out_dir, slug(department))


@dataclass(frozen=True)
class RunFailure:
    """Why a run failed: the cell (0-based index, None outside a cell) and the error."""

    ename: str
    evalue: str
    cell_index: int | None = None

    def __str__(self) -> str:
        where = f"cell {self.cell_index}: " if self.cell_index is not None else ""
        return f"{where}{self.ename}: {self.evalue}"


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run (paths are absolute)."""

    spec: RunSpec
    status: Literal["ok", "failed"]
    notebook: Path | None
    report: Path | None
    parameters: Mapping[str, Any]
    duration_s: float
    inputs: tuple[Mapping[str, Any], ...] = ()
    kpis: tuple[Mapping[str, Any], ...] = ()
    alerts: tuple[Mapping[str, Any], ...] | None = None
    objectives: tuple[Mapping[str, Any], ...] = ()
    error: RunFailure | None = None
    report_bytes: int | None = None
    reused: bool = False
    """True when an up-to-date report of an earlier batch was kept instead of running again."""


@dataclass(frozen=True)
class BatchResult:
    """The outcome of :func:`run_batch`."""

    out_dir: Path
    runs: tuple[RunResult, ...]
    manifest: Path
    index: Path
    duration_s: float

    @property
    def ok(self) -> bool:
        """True when every run succeeded."""
        return all(r.status == "ok" for r in self.runs)

    @property
    def failed(self) -> tuple[RunResult, ...]:
        """The runs that failed."""
        return tuple(r for r in self.runs if r.status == "failed")

    def summary(self) -> str:
        """A few lines for a terminal: one per run, then the totals and the index path."""
        lines = []
        for r in self.runs:
            counts = _status_counts(r.kpis)
            shown = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items()) or "-"
            if r.reused:
                lines.append(f"kept    {r.spec.department:18} {r.spec.name:22} {'(up to date)':>7}  {shown}")
            elif r.status == "ok":
                lines.append(f"ok      {r.spec.department:18} {r.spec.name:22} {r.duration_s:6.1f}s  {shown}")
            else:
                lines.append(f"FAILED  {r.spec.department:18} {r.spec.name:22} {r.duration_s:6.1f}s  {r.error}")
                lines.append(f"        kept: {r.notebook}" if r.notebook else "        (no notebook kept)")
        n_fail = len(self.failed)
        lines.append(
            f"{len(self.runs) - n_fail} of {len(self.runs)} runs ok"
            + (f", {n_fail} failed" if n_fail else "")
            + f" in {self.duration_s:.1f}s; index: {self.index}"
        )
        return "\n".join(lines)


def _status_counts(kpis: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in kpis:
        out[str(k.get("status"))] = out.get(str(k.get("status")), 0) + 1
    return out


def plan_runs(
    templates: Sequence[str] | None = None,
    departments: Sequence[str] | None = None,
    plans_dir: Path | None = None,
) -> list[RunSpec]:
    """Every template for every department (None: :data:`REPORT_TEMPLATES`, all departments)."""
    plans = department_plans(plans_dir, departments)
    names = list(templates) if templates else list(REPORT_TEMPLATES)
    for t in names:
        template_path(t)  # unknown templates fail before anything runs
    return [RunSpec(t, p.stem, p) for p in plans for t in names]


def load_runs(path: str | Path, plans_dir: Path | None = None) -> list[RunSpec]:
    """Read a ``runs.yml`` file: ``runs:`` entries of ``template``, ``department`` (or
    ``plan``: a plan file, relative to the runs file) and optional ``parameters``; an
    optional top-level ``parameters:`` applies to every run (a run's own win).

    .. code-block:: yaml

        parameters: {period_end: 2025-06-30}
        runs:
          - {template: kpi_dashboard, department: sales}
          - {template: kpi_review, department: [sales, marketing]}
          - {template: kpi_dashboard, plan: plans/my_team.yml, parameters: {grain: quarter}}
    """
    from kpinb import _yaml
    from kpinb._io import read_limited

    file = Path(path)
    raw = read_limited(file, _yaml.MAX_BYTES, "runs file", RunError)
    try:
        data, _ = _yaml.read(raw.decode("utf-8-sig"), file)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise RunError(
            f"{file}:{line}: not UTF-8 text (byte {raw[e.start]:#04x}). Save the runs file as UTF-8."
        ) from None
    except PlanError as e:  # the same bounded, tag-free reader as plans
        raise RunError(str(e)) from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not data["runs"]:
        raise RunError(f"{file}: expected a mapping with a non-empty `runs:` list. See kpinb.runs.specs.load_runs.")
    unknown_top = set(data) - {"runs", "parameters"}
    if unknown_top:
        raise RunError(f"{file}: unknown key(s) {', '.join(sorted(unknown_top))}; use `runs:` and `parameters:`.")
    common = data.get("parameters") or {}
    if not isinstance(common, dict):
        raise RunError(f"{file}: parameters: write a mapping (name: value).")
    problems: list[str] = []
    specs: list[RunSpec] = []
    for i, entry in enumerate(data["runs"]):
        at = f"{file}: runs[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: write a mapping with `template:` and `department:`.")
            continue
        extra = set(entry) - {"template", "department", "plan", "parameters"}
        if extra:
            keys = ", ".join(sorted(extra))
            problems.append(f"{at}: unknown key(s) {keys}; use template, department, plan, parameters.")
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            problems.append(f"{at}.parameters: write a mapping (name: value).")
            params = {}
        reserved = sorted(set(params) & {"plan", "department", "output_dir"})
        if reserved:
            problems.append(
                f"{at}.parameters: {', '.join(reserved)} are set by the run; use the run's `plan:` or "
                "`department:` key instead (output_dir is <out>/<department>)."
            )
        template = entry.get("template")
        if not isinstance(template, str):
            problems.append(f"{at}.template: required; one of {', '.join(ALL_TEMPLATES)} or a .ipynb path.")
            continue
        if template.endswith(".ipynb") and not Path(template).is_absolute():
            template = str((file.parent / template).resolve())
        try:
            template_path(template)
        except RunError as e:
            problems.append(f"{at}.template: {e}")
            continue
        try:
            if entry.get("plan"):
                plan = Path(entry["plan"]).expanduser()
                plan = plan if plan.is_absolute() else (file.parent / plan).resolve()
                depts = [str(entry.get("department") or plan.stem)]
                plans = [plan]
            else:
                dep = entry.get("department")
                if dep is None:
                    problems.append(f"{at}: give `department:` (a name, a list, or `all`) or `plan:`.")
                    continue
                depts = None if dep == "all" else [dep] if isinstance(dep, str) else [str(d) for d in dep]
                plans = department_plans(plans_dir, depts)
                depts = [p.stem for p in plans]
        except PlanError as e:
            problems.append(f"{at}: {e}")
            continue
        bad_names = [str(k) for k in {**common, **params} if not _is_identifier(k)]
        if bad_names:
            problems.append(
                f"{at}.parameters: {', '.join(map(repr, bad_names[:5]))} is not a parameter name; names are "
                "Python identifiers (letters, digits and _, not starting with a digit), e.g. period_end."
            )
            continue
        if entry.get("department") is not None and isinstance(entry.get("department"), str):
            dep_text = entry["department"]
            if dep_text != "all" and slug(dep_text) != dep_text:
                problems.append(
                    f"{at}.department: {dep_text[:60]!r} cannot name a report folder; use letters, digits, "
                    "_ - and . only (no / or ..), e.g. customer_service."
                )
                continue
        merged = plain({**common, **params})
        if merged.get("data_dir") and not Path(str(merged["data_dir"])).expanduser().is_absolute():
            merged["data_dir"] = str((file.parent / str(merged["data_dir"])).resolve())  # as plan paths do
        for d, p in zip(depts, plans, strict=True):
            specs.append(RunSpec(template, d, p, merged))
    if problems:
        raise RunError("\n".join(problems))
    return specs


def _is_identifier(name: object) -> bool:
    """A name papermill may assign in the notebook's code: an identifier, not a keyword."""
    import keyword

    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name) and name.isascii()


def plain(value: Any) -> Any:
    """YAML dates as ISO text: papermill writes unknown types raw, and ``2025-06-30`` in Python is 1989."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
