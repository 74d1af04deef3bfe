"""Batch runs: execute the template notebooks per department with papermill and export
self-contained HTML reports, a manifest and an index.

One process drives the whole batch: a thread pool of ``jobs`` workers, each running one
notebook at a time in its own kernel (``papermill.execute_notebook``), so the Jupyter stack
is imported once rather than once per notebook. A failing run never stops the others; its
executed notebook is kept as ``<department>/<template>.failed.ipynb``.

Layout of ``out_dir`` after a batch::

    index.html                        every report with its KPI statuses
    manifest.json                     per run: parameters, inputs, versions, timings, statuses
    <department>/<template>.html      the report (code hidden unless show_code)
    <department>/<template>.ipynb     the executed notebook
    <department>/<template>.failed.ipynb
    .kpinb-run.lock                   held while a batch writes here (see :func:`batch_lock`)

Input fingerprints: the sha256 of each file a run reads (the plan, its file sources, its
benchmark table); files over :data:`HASH_LIMIT` bytes get ``size`` + ``mtime`` only, and
database sources their URL without credentials.

>>> result = run_batch(["kpi_dashboard"], ["sales"], "2025-06-30", "reports")  # doctest: +SKIP
>>> result.ok, result.index                                                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kpinb._io import inside, replaceable, slug, write_atomic
from kpinb.errors import PlanError, RunError, WriteError
from kpinb.views.kit import esc

__all__ = [
    "ALL_TEMPLATES",
    "HASH_LIMIT",
    "LOCK_NAME",
    "REPORT_TEMPLATES",
    "BatchResult",
    "RunFailure",
    "RunResult",
    "RunSpec",
    "batch_lock",
    "department_plans",
    "export_html",
    "fingerprint",
    "load_runs",
    "run_alerts",
    "run_batch",
    "template_path",
    "templates_dir",
]

ALL_TEMPLATES = ("objective_to_kpi", "kpi_dashboard", "benchmark_comparison", "kpi_review")
"""The shipped templates."""

REPORT_TEMPLATES = ("kpi_dashboard", "benchmark_comparison", "kpi_review")
"""What ``kpinb run`` executes per department when no ``--template`` is named (the
objective-to-KPI template is for choosing KPIs, not for recurring reports)."""

HASH_LIMIT = 256 * 2**20
"""Files larger than this (bytes) are fingerprinted by size and mtime instead of sha256."""

PARAMETERS = ("plan", "department", "period_end", "grain", "data_dir", "output_dir")
"""The parameters every template declares in its ``parameters`` cell."""

_VERSIONED = ("kpinb", "pandas", "numpy", "pyarrow", "duckdb", "ibis-framework", "sqlglot", "pydantic", "plotly",
              "statsmodels", "papermill", "nbclient", "nbconvert", "ipykernel", "jupyter_client")  # fmt: skip
_BASIC_TRACES = frozenset({"scatter", "bar", "pie"})


# --- where things are ---------------------------------------------------------------------------


def templates_dir() -> Path:
    """The shipped templates: ``kpinb/templates`` in a wheel (and via the symlink in a source
    checkout), else the checkout's top-level ``templates/``."""
    here = Path(__file__).resolve().parents[1]  # the kpinb package
    for folder in (here / "templates", here.parent / "templates"):
        if (folder / "kpi_dashboard.ipynb").is_file():
            return folder.resolve()
    raise RunError(f"the template notebooks are not installed (looked in {here / 'templates'}). Reinstall kpinb.")


def shipped_plans_dir() -> Path:
    """The folder of the example plans shipped for the sample data."""
    here = Path(__file__).resolve().parents[1]  # the kpinb package
    for folder in (here / "templates" / "plans", here.parent / "templates" / "plans"):
        if folder.is_dir():
            return folder.resolve()
    raise RunError(f"the example plans are not installed (looked in {here / 'templates' / 'plans'}). Reinstall kpinb.")


def department_plans(plans_dir: Path | None = None, departments: Sequence[str] | None = None) -> list[Path]:
    """Plan files in ``plans_dir``, one per department (all, or the ones named)."""
    folder = Path(plans_dir) if plans_dir else shipped_plans_dir()
    found = {p.stem: p for p in sorted(folder.glob("*.yml"))}
    if not found:
        raise PlanError(f"{folder}: no plan files (*.yml). Point --plans-dir at a folder of plans.")
    if departments is None:
        return list(found.values())
    unknown = [d for d in departments if d not in found]
    if unknown:
        raise PlanError(f"{folder}: no plan for department(s) {', '.join(unknown)}. Available: {', '.join(found)}.")
    return [found[d] for d in departments]


def template_path(template: str | Path) -> Path:
    """A shipped template by name (``kpi_dashboard``) or a notebook path of your own."""
    t = str(template)
    if t.endswith(".ipynb") or "/" in t or os.sep in t:
        path = Path(t).expanduser().resolve()
        if not path.is_file():
            raise RunError(f"template {t}: no such notebook. Check the path.")
        return path
    path = templates_dir() / f"{t}.ipynb"
    if not path.is_file():
        raise RunError(f"unknown template {t!r}. Shipped templates: {', '.join(ALL_TEMPLATES)}; or give a .ipynb path.")
    return path


# --- runs ---------------------------------------------------------------------------------------


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
        raise RunError(f"{file}: expected a mapping with a non-empty `runs:` list. See kpinb.runner.load_runs.")
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
        merged = _plain({**common, **params})
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


def _plain(value: Any) -> Any:
    """YAML dates as ISO text: papermill writes unknown types raw, and ``2025-06-30`` in Python is 1989."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


# --- fingerprints and versions ------------------------------------------------------------------


def fingerprint(path: str | Path, hash_limit: int = HASH_LIMIT) -> dict[str, Any]:
    """``{path, size, mtime, sha256 | None, method}`` of a file (or the files of a folder/glob).

    ``method`` is ``sha256`` up to ``hash_limit`` bytes, ``size+mtime`` above it (reading
    gigabytes at every run would cost more than the report), ``missing`` when absent.
    """
    p = Path(path)
    files = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else [p]
    if len(files) == 1 and files[0].is_dir():
        files = sorted(f for f in files[0].rglob("*") if f.is_file())
    files = [f for f in files if f.is_file()]
    if not files:
        return {"path": str(p), "method": "missing", "size": None, "mtime": None, "sha256": None}
    size = sum(f.stat().st_size for f in files)
    mtime = max(f.stat().st_mtime for f in files)
    out: dict[str, Any] = {
        "path": str(p), "size": size,
        "mtime": dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    if size > hash_limit:
        return {**out, "method": "size+mtime", "sha256": None}
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return {**out, "method": "sha256", "sha256": h.hexdigest()}


def plan_inputs(plan_file: Path, data_dir: str | Path | None, cache: dict[str, dict] | None = None) -> list[dict]:
    """Fingerprints of what a run reads: the plan file, its file sources, its benchmark table."""
    from kpinb.data.sources import redact
    from kpinb.views.report import load_for_report

    cache = {} if cache is None else cache

    def fp(path: Path, role: str) -> dict[str, Any]:
        key = str(path)
        if key not in cache:
            cache[key] = fingerprint(path)
        return {"role": role, **cache[key]}

    out = [fp(plan_file.resolve(), "plan")]
    try:
        plan = load_for_report(plan_file, data_dir)
    except Exception as e:  # the notebook reports the plan's problems; the manifest notes them
        return [*out, {"role": "error", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}]
    for name, src in plan.sources.items():
        if src.path:
            out.append(fp(plan.resolve(src.path), f"source:{name}"))
        else:
            out.append({"role": f"source:{name}", "url": redact(src.url or ""), "table": src.table,
                        "method": "database (not fingerprinted)"})  # fmt: skip
    if plan.benchmarks:
        out.append(fp(plan.resolve(plan.benchmarks), "benchmarks"))
    return out


def versions() -> dict[str, str | None]:
    """Python and the versions of the packages a report depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


# --- one batch per output folder -------------------------------------------------------------------

LOCK_NAME = ".kpinb-run.lock"
"""The lock file a batch holds in its output folder (never deleted; its content says who holds it)."""

# what write_atomic and _execute_one leave behind when killed, and nothing else (--out may be any folder)
_LEFTOVERS = (".manifest.json.*.tmp", ".index.html.*.tmp", "*/.*.html.*.tmp", "*/.*.ipynb.*.tmp",
              "*/.*.running.ipynb")  # fmt: skip


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


@contextmanager
def batch_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold ``out_dir/.kpinb-run.lock`` for the duration of a batch, or raise :class:`RunError`.

    The lock is an OS file lock (``flock``), so it dies with its process: a batch that was
    killed leaves a file naming a dead pid, which the next batch takes over (and then removes
    the half-written temp files the killed batch left). Two batches on one folder never
    interleave: the second one refuses at once and names the first.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "a file is there" if out.exists() and not out.is_dir() else (e.strerror or type(e).__name__)
        raise WriteError(
            f"--out {out}: cannot create the output folder ({what}). Choose a folder you can write."
        ) from None
    path = out / LOCK_NAME
    # never through a symlink (it would truncate its target), never a FIFO or device (open could block)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        import errno

        if e.errno == errno.ELOOP or path.is_symlink():
            raise RunError(
                f"{path}: the batch lock is a symbolic link; kpinb does not follow it (it would overwrite the "
                "file it points to). Remove the link, or write to another folder with --out."
            ) from None
        raise WriteError(
            f"{path}: cannot create the batch lock ({e.strerror or e}). Check that --out {out} is writable."
        ) from None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{path}: the batch lock is not a regular file. Remove it, or write to another folder.")
        os.set_blocking(fd, True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: a pid file with a liveness check
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise RunError(_locked_message(path)) from None
        else:  # pragma: no cover
            holder = _lock_holder(path)
            if holder.get("pid") not in (None, os.getpid()) and _pid_alive(int(holder["pid"])):
                raise RunError(_locked_message(path))
        previous = _lock_holder(path)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            print(
                f"kpinb run: taking over the lock of a batch that is no longer running (pid {previous['pid']}, "
                f"started {previous.get('started', '?')}) in {out}",
                file=sys.stderr,
            )
        me = {"pid": os.getpid(), "host": os.uname().nodename if hasattr(os, "uname") else "",
              "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(me) + "\n").encode())
        # what a killed batch half-wrote: nobody else writes here while we hold the lock
        for pattern in _LEFTOVERS:
            for leftover in out.glob(pattern):
                leftover.unlink(missing_ok=True)
        yield path
        os.ftruncate(fd, 0)  # released: no holder named
    finally:
        os.close(fd)  # releases the flock


def _lock_holder(path: Path) -> dict[str, Any]:
    try:  # a small JSON file; never through a link, never more than 4 kB
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            data = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _locked_message(path: Path) -> str:
    h = _lock_holder(path)
    who = f"pid {h['pid']} on {h.get('host') or '?'}, started {h.get('started', '?')}" if h.get("pid") else "?"
    return (
        f"{path.parent}: another `kpinb run` is writing reports to this folder ({who}; lock {path.name}). "
        "Wait for it to finish, or write to another folder with --out."
    )


# --- executing ----------------------------------------------------------------------------------


_KERNEL_STARTUP = """\
# Written by `kpinb run` for its batch kernels only. plotly's renderers import nbformat, whose
# jsonschema would spend seconds building the RFC 3987 IRI grammar (rfc3987_syntax) that no
# report uses; without it jsonschema merely skips the "iri" format check.
import sys

sys.modules.setdefault("rfc3987_syntax", None)
"""


def _kernel_manager_class(env: Mapping[str, str]) -> type:
    """An AsyncKernelManager that starts kernels with ``env`` added to their environment."""
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class ReportKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra}
            # the kernel's own log (e.g. "KeyboardInterrupt caught" at every shutdown) is noise in a
            # batch: cell errors are in the kept notebook and a dead kernel fails the run
            kw["extra_arguments"] = [*(kw.get("extra_arguments") or []), "--IPKernelApp.log_level=CRITICAL"]
            if zmq.has("curve") and self._kernel_supports_curve_encryption():
                # encrypt the kernel's local TCP channels when both sides can
                kw.setdefault("transport_encryption", "auto")
            await super().start_kernel(**kw)

    return ReportKernelManager


def _declared_department(plan: Path) -> str | None:
    """The plan's ``department:`` (the run is named after the file, which may differ); None
    when the file cannot be read (the notebook then reports the plan's problem)."""
    from kpinb import _yaml
    from kpinb._io import read_limited

    try:  # bounded like load_plan: a deeply nested or huge file must not stop the batch here
        data, _ = _yaml.read(read_limited(plan, _yaml.MAX_BYTES, "plan file", PlanError).decode("utf-8-sig"), plan)
    except (PlanError, UnicodeDecodeError, RecursionError):
        return None
    dep = data.get("department") if isinstance(data, dict) else None
    return dep if isinstance(dep, str) and dep else None


def _collect_summary(nb: Any) -> dict[str, Any] | None:
    from kpinb.views.report import SUMMARY_MIMETYPE

    found = None
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if SUMMARY_MIMETYPE in data:
                found = data[SUMMARY_MIMETYPE]
    if isinstance(found, str):
        found = json.loads(found)
    return found


def _failure(exc: BaseException) -> RunFailure:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return RunFailure(str(exc.ename), str(exc.evalue).strip()[:2000], exc.cell_index)
    return RunFailure(type(exc).__name__, (str(exc).strip() or repr(exc))[:2000], None)


def _parameters(spec: RunSpec, out_dir: Path, base_parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The values papermill injects into the template's ``parameters`` cell for ``spec``."""
    return {
        **base_parameters,
        "plan": str(spec.plan.resolve()),
        "department": _declared_department(spec.plan) or spec.department,
        "output_dir": str(run_dir(out_dir, spec.department)),
        **spec.parameters,
    }


def _reusable(
    spec: RunSpec, out: Path, previous: Mapping[tuple[str, str], Mapping[str, Any]], params: Mapping[str, Any],
    inputs: list[dict], vers: Mapping[str, Any], show_code: bool,
) -> RunResult | None:  # fmt: skip
    """The earlier batch's result for ``spec`` when its report is still current: it succeeded,
    its files exist, and parameters, input fingerprints, package versions and ``show_code``
    are unchanged. None otherwise (run it again)."""
    rec = previous.get((spec.name, spec.department))
    if not rec or rec.get("status") != "ok" or not rec.get("report") or not rec.get("notebook"):
        return None
    report, notebook = out / rec["report"], out / rec["notebook"]
    same = (
        rec.get("parameters") == json.loads(json.dumps(params, default=str))
        and rec.get("inputs") == json.loads(json.dumps(inputs, default=str))
        and rec.get("versions") == dict(vers)
        and rec.get("show_code") == show_code
    )
    if not same or not report.is_file() or not notebook.is_file():
        return None
    return RunResult(
        spec=spec, status="ok", notebook=notebook, report=report, parameters=dict(params),
        duration_s=float(rec.get("duration_s") or 0.0), inputs=tuple(inputs), kpis=tuple(rec.get("kpis") or ()),
        alerts=None if rec.get("alerts") is None else tuple(rec["alerts"]), report_bytes=rec.get("report_bytes"),
        reused=True,
    )  # fmt: skip


def _previous_runs(out: Path) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The run records of the manifest already in ``out`` (empty when none or unreadable)."""
    try:
        doc = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return {(r["template"], r["department"]): r for r in doc.get("runs", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _execute_one(
    spec: RunSpec,
    out_dir: Path,
    base_parameters: Mapping[str, Any],
    show_code: bool,
    km_class: type,
    timeout: int | None,
    inputs: list[dict],
) -> RunResult:
    import nbformat
    import papermill

    started = time.perf_counter()
    folder = run_dir(out_dir, spec.department)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "a file is in the way" if folder.exists() and not folder.is_dir() else (e.strerror or str(e))
        raise WriteError(
            f"{folder}: cannot create the department's report folder ({what}). Remove or rename what is there."
        ) from None
    final_nb = folder / f"{spec.name}.ipynb"
    failed_nb = folder / f"{spec.name}.failed.ipynb"
    report = folder / f"{spec.name}.html"
    tmp_nb = folder / f".{spec.name}.{os.getpid()}.{threading.get_ident()}.running.ipynb"
    params = _parameters(spec, out_dir, base_parameters)
    error: RunFailure | None = None
    nb = None
    try:
        nb = papermill.execute_notebook(
            str(template_path(spec.template)), str(tmp_nb), parameters=params, kernel_name="python3",
            progress_bar=False, log_output=False, request_save_on_cell_execute=True, start_timeout=120,
            execution_timeout=timeout, kernel_manager_class=km_class,
            resources={"metadata": {"path": str(folder)}},
        )  # fmt: skip
    except Exception as e:  # one failing run never stops the batch
        error = _failure(e)
    size = None
    if error is None:
        try:
            body = export_html(nb, show_code=show_code)
            write_atomic(report, body)
            size = len(body.encode("utf-8"))
            os.replace(tmp_nb, replaceable(final_nb))
            failed_nb.unlink(missing_ok=True)
        except Exception as e:
            error = RunFailure(f"export: {type(e).__name__}", str(e)[:2000], None)
    kept: Path | None = final_nb
    if error is not None:
        kept = _keep_failed(tmp_nb, failed_nb, spec.template)
        # stale outputs of an earlier successful batch would look current
        final_nb.unlink(missing_ok=True)
        report.unlink(missing_ok=True)
        if nb is None and kept is not None:
            try:
                nb = nbformat.read(str(kept), as_version=4)
            except Exception:
                nb = None
    summary = _collect_summary(nb) if nb is not None else None
    return RunResult(
        spec=spec, status="ok" if error is None else "failed",
        notebook=kept, report=report if error is None else None,
        parameters=params, duration_s=round(time.perf_counter() - started, 2), inputs=tuple(inputs),
        kpis=tuple((summary or {}).get("kpis", [])),
        alerts=tuple(summary["alerts"]) if summary and "alerts" in summary else None,
        error=error, report_bytes=size,
    )  # fmt: skip


def _keep_failed(tmp_nb: Path, failed_nb: Path, template: str) -> Path | None:
    """Keep a failed run's notebook as ``failed_nb``: the executed one when it is whole, else the
    parameterised template; None when neither can be written (a full disk). Never a partial file:
    papermill saves in place, so a write that failed midway leaves truncated JSON, which is dropped."""
    import nbformat

    try:
        if tmp_nb.exists():
            try:
                nbformat.read(str(tmp_nb), as_version=4)
            except Exception:  # truncated or not JSON: not worth keeping
                pass
            else:
                os.replace(tmp_nb, replaceable(failed_nb))
                return failed_nb
        # failed before the first save (the kernel did not start) or a truncated save: the input notebook
        return write_atomic(failed_nb, nbformat.writes(nbformat.read(str(template_path(template)), as_version=4)))
    except Exception:
        failed_nb.unlink(missing_ok=True)  # an older run's notebook would be mistaken for this one
        return None
    finally:
        tmp_nb.unlink(missing_ok=True)


def _execute_safely(
    spec: RunSpec, out_dir: Path, base_parameters: Mapping[str, Any], show_code: bool, km_class: type,
    timeout: int | None, inputs: list[dict],
) -> RunResult:  # fmt: skip
    """:func:`_execute_one`, with any error outside the notebook (a file where the department's folder
    goes, a template that is not a notebook, a full disk) recorded as this run's failure."""
    started = time.perf_counter()
    try:
        return _execute_one(spec, out_dir, base_parameters, show_code, km_class, timeout, inputs)
    except Exception as e:  # one failing run never stops the batch
        try:
            params = _parameters(spec, out_dir, base_parameters)
        except Exception:
            params = dict(base_parameters)
        return RunResult(
            spec=spec, status="failed", notebook=None, report=None, parameters=params,
            duration_s=round(time.perf_counter() - started, 2), inputs=tuple(inputs),
            error=RunFailure(type(e).__name__, (str(e).strip() or repr(e))[:2000], None),
        )  # fmt: skip


def run_batch(
    templates: Sequence[str] | None = None,
    departments: Sequence[str] | None = None,
    period_end: str | dt.date | None = None,
    out_dir: str | Path = "reports",
    jobs: int = 2,
    show_code: bool = False,
    runs_file: str | Path | None = None,
    *,
    plans_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    grain: str = "month",
    timeout: int | None = 600,
    progress: bool | None = None,
    skip_up_to_date: bool = False,
) -> BatchResult:
    """Execute templates per department and export HTML reports, a manifest and an index.

    Parameters
    ----------
    templates : template names or ``.ipynb`` paths; None: :data:`REPORT_TEMPLATES`.
    departments : department names (plan file stems in ``plans_dir``); None: all.
    period_end : the date the reports judge KPIs on (the latest period ended by then);
        None: the latest complete period in the data.
    out_dir : where reports, ``manifest.json`` and ``index.html`` go.
    jobs : notebooks executed at once (one kernel each).
    show_code : keep code cells in the HTML (hidden by default).
    runs_file : a ``runs.yml`` listing the runs instead of ``templates`` x ``departments``
        (see :func:`load_runs`).
    plans_dir : the plans' folder; default the example plans shipped with kpinb.
    data_dir : look the plans' data files up in this folder (see :func:`kpinb.report.with_data_dir`).
    grain : the KPI grain reports judge.
    timeout : seconds one cell may run.
    progress : show a progress bar (None: only on a terminal).
    skip_up_to_date : keep a report of the previous batch in ``out_dir`` instead of running
        it again when its parameters, inputs, template and package versions are unchanged
        (e.g. to finish a batch that was interrupted).

    Only one batch writes to ``out_dir`` at a time (:func:`batch_lock`); the manifest and the
    index are rewritten (atomically) after every finished run, so they always describe the
    reports present, even when the batch is killed.

    Returns
    -------
    :class:`BatchResult`; check ``.ok`` (``kpinb run`` exits 1 when a run failed).
    """
    from kpinb.definitions.model import Grain

    started = time.perf_counter()
    if jobs < 1:
        raise RunError(f"jobs={jobs}: run at least one notebook at a time (--jobs 1 or more).")
    try:
        grain = Grain(grain).value
    except ValueError:
        raise RunError(f"grain {grain!r} is not one of day, week, month, quarter, year.") from None
    folder = Path(plans_dir).resolve() if plans_dir else None
    specs = load_runs(runs_file, folder) if runs_file else plan_runs(templates, departments, folder)
    seen: dict[tuple[str, str], RunSpec] = {}
    for s in specs:
        key = (slug(s.department), s.name)
        if key in seen and seen[key] != s:
            raise RunError(
                f"two runs would write {'/'.join(key)}: {seen[key].department}/{seen[key].template} and "
                f"{s.department}/{s.template}. Give them different departments or templates."
            )
        seen[key] = s
    out = Path(out_dir).resolve()
    base = {
        "period_end": None
        if period_end is None
        else _plain(period_end)
        if isinstance(period_end, dt.date)
        else str(period_end),
        "grain": grain,
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
    }
    with batch_lock(out):
        return _run_locked(specs, out, base, jobs, show_code, timeout, progress, skip_up_to_date, started)


def _run_locked(
    specs: Sequence[RunSpec], out: Path, base: Mapping[str, Any], jobs: int, show_code: bool, timeout: int | None,
    progress: bool | None, skip_up_to_date: bool, started: float,
) -> BatchResult:  # fmt: skip
    from tqdm.auto import tqdm

    from kpinb.views.report import RENDERER_ENV, REPORT_RENDERER

    vers = versions()
    cache: dict[str, dict] = {}
    inputs: dict[tuple[str, str], list[dict]] = {}
    for s in specs:
        dd = s.parameters.get("data_dir", base["data_dir"])
        key = (str(s.plan), str(dd))
        if key not in inputs:
            inputs[key] = plan_inputs(s.plan, dd, cache)
    for s in specs:
        key = (str(s.plan), "template:" + s.template)
        inputs[key] = [{"role": "template", **fingerprint(template_path(s.template))}]

    def inputs_of(s: RunSpec) -> list[dict]:
        return (
            inputs[(str(s.plan), str(s.parameters.get("data_dir", base["data_dir"])))]
            + inputs[(str(s.plan), "template:" + s.template)]
        )

    results: dict[int, RunResult] = {}
    previous = _previous_runs(out) if skip_up_to_date else {}
    for i, s in enumerate(specs):
        kept = _reusable(s, out, previous, _parameters(s, out, base), inputs_of(s), vers, show_code)
        if kept is not None:
            results[i] = kept
    todo = [i for i in range(len(specs)) if i not in results]

    def checkpoint(final: bool) -> tuple[Path, Path]:
        done = tuple(results[i] for i in sorted(results))
        took = round(time.perf_counter() - started, 2)
        return (
            write_atomic(out / "manifest.json", _manifest(done, out, base, jobs, show_code, vers, took, final)),
            write_atomic(out / "index.html", _index(done, out, base)),
        )

    scratch = Path(tempfile.mkdtemp(prefix="kpinb-run-"))
    startup = scratch / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-kpinb-batch.py").write_text(_KERNEL_STARTUP, encoding="utf-8")
    env = {
        RENDERER_ENV: REPORT_RENDERER,
        "IPYTHONDIR": str(scratch / "ipython"),  # no shared history database between parallel kernels
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    km_class = _kernel_manager_class(env)
    futures: dict[Any, int] = {}
    unsaved: list[BaseException] = []

    def save_progress() -> None:
        # a full disk must not stop the batch: the next checkpoint (or the final one) tries again
        try:
            checkpoint(final=False)
        except OSError as e:
            unsaved.append(e)

    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="kpinb-run") as pool:
            futures = {
                pool.submit(_execute_safely, specs[i], out, base, show_code, km_class, timeout, inputs_of(specs[i])): i
                for i in todo
            }
            show = sys.stderr.isatty() if progress is None else progress
            with tqdm(total=len(specs), initial=len(specs) - len(todo), desc="kpinb run", unit="report",
                      disable=not show) as bar:  # fmt: skip
                try:
                    for fut in as_completed(futures):
                        r = fut.result()
                        results[futures[fut]] = r
                        save_progress()
                        bar.set_postfix_str(f"{r.spec.department}/{r.spec.name} {r.status}", refresh=False)
                        bar.update()
                except BaseException:  # Ctrl-C: start nothing new; running notebooks finish
                    for fut in futures:
                        fut.cancel()
                    raise
    except BaseException:
        # interrupted: the pool has waited for the running notebooks; record every run that finished,
        # so the manifest and index describe the reports on disk and --skip-up-to-date can reuse them
        for fut, i in futures.items():
            if i not in results and fut.done() and not fut.cancelled() and fut.exception() is None:
                results[i] = fut.result()
        save_progress()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = tuple(results[i] for i in range(len(specs)))
    duration = round(time.perf_counter() - started, 2)
    manifest, index = checkpoint(final=True)
    return BatchResult(out, runs, manifest, index, duration)


# --- HTML export --------------------------------------------------------------------------------

_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{#- Offline, self-contained reports: no require.js, MathJax, mermaid or widget CDNs; plotly.js inline once. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style type="text/css">
body.jp-Notebook { max-width: 1200px; margin: 0 auto; }
.kpinb-sub { color: #555; margin-top: -0.5em; }
.jp-RenderedHTMLCommon table { font-size: 12px; }
</style>
{%- if resources.kpinb_plotly_js %}
<script type="text/javascript">{{ resources.kpinb_plotly_js }}</script>
{%- endif %}
{%- endblock html_head_css -%}
"""

_TRACES_RE = re.compile(r'data-kpinb-traces="([^"]*)"')
def _plotly_js(bundle: Literal["basic", "full"]) -> str:
    """plotly.js for a report's head (MathJax kept local: a report opens with no network)."""
    from kpinb.views.charts import plotly_js_source

    return "window.PlotlyConfig = {MathJaxConfig: 'local'};\n" + plotly_js_source(bundle)


def _bundle_needed(nb: Any) -> Literal["none", "basic", "full"]:
    """Which plotly.js the notebook's outputs need: none, the basic bundle, or the full one."""
    need: Literal["none", "basic", "full"] = "none"
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            body = (out.get("data") or {}).get("text/html")
            if not body:
                continue
            body = "".join(body) if isinstance(body, list) else str(body)
            if "Plotly.newPlot" not in body:
                continue
            markers = _TRACES_RE.findall(body)
            traces = {t for m in markers for t in m.split()}
            if not markers or traces - _BASIC_TRACES:
                return "full"
            need = "basic"
    return need


def export_html(nb: Any, show_code: bool = False) -> str:
    """Export an executed notebook to one self-contained HTML page.

    Code cells are hidden unless ``show_code``; prompts are hidden; plotly.js is inlined once
    (the small basic bundle when every figure uses scatter, bar or pie traces, else plotly's
    full bundle) and no script, style or font is loaded from the network.
    """
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    from kpinb.views.report import SUMMARY_MIMETYPE

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"kpinb_report.html.j2": _TEMPLATE})],
        template_file="kpinb_report.html.j2",
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    # interactive-only cells (widgets) say nothing in a static page
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"report-remove"}), enabled=True)
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        if cell.get("outputs"):  # the machine-readable summary is for the manifest, not the page
            cell["outputs"] = [o for o in cell["outputs"] if SUMMARY_MIMETYPE not in (o.get("data") or {})]
    bundle = _bundle_needed(nb)
    resources = {"kpinb_plotly_js": _plotly_js(bundle) if bundle != "none" else ""}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


# --- manifest and index -------------------------------------------------------------------------


def _rel(path: Path | None, out: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return str(path)


def _manifest(
    runs: Sequence[RunResult], out: Path, base: Mapping[str, Any], jobs: int, show_code: bool,
    vers: Mapping[str, Any], duration: float, complete: bool = True,
) -> str:  # fmt: skip
    def jsonable(x: Any) -> Any:
        if isinstance(x, (dt.date, dt.datetime)):
            return x.isoformat()
        if isinstance(x, Path):
            return str(x)
        return x

    doc = {
        "kpinb_manifest": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "out_dir": str(out),
        "parameters": dict(base),
        "jobs": jobs,
        "show_code": show_code,
        "complete": complete,
        "duration_s": duration,
        "ok": all(r.status == "ok" for r in runs),
        "runs": [
            {
                "template": r.spec.name, "department": r.spec.department, "status": r.status,
                "parameters": {k: jsonable(v) for k, v in r.parameters.items()},
                "notebook": _rel(r.notebook, out), "report": _rel(r.report, out), "report_bytes": r.report_bytes,
                "duration_s": r.duration_s, "show_code": show_code, "reused": r.reused,
                "error": None if r.error is None else {"ename": r.error.ename, "evalue": r.error.evalue,
                                                       "cell_index": r.error.cell_index},
                "kpis": list(r.kpis), "alerts": None if r.alerts is None else list(r.alerts),
                "inputs": list(r.inputs), "versions": dict(vers),
            }
            for r in runs
        ],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


_STATUS_STYLE = {
    "on_track": ("#1e7e34", "on track"),
    "at_risk": ("#b26a00", "at risk"),
    "off_track": ("#c62828", "off track"),
    "no_data": ("#6c757d", "no data"),
}


def _chips(kpis: Sequence[Mapping[str, Any]]) -> str:
    e = esc
    out = []
    for k in kpis:
        colour, label = _STATUS_STYLE.get(str(k.get("status")), ("#6c757d", str(k.get("status"))))
        out.append(
            f'<span class="chip" style="border-color:{colour}" title="{e(str(k.get("reason", "")))}">'
            f'<b style="color:{colour}">{e(label)}</b> {e(str(k.get("name", k.get("metric", ""))))}</span>'
        )
    return "".join(out) or "–"


def _index(runs: Sequence[RunResult], out: Path, base: Mapping[str, Any]) -> str:
    """One row per department: its reports (failures marked) and its KPI statuses (once when
    every report judged them alike, else per report). Every user string is escaped."""
    e = esc
    rows = []
    departments: dict[str, list[RunResult]] = {}
    order = {t: i for i, t in enumerate(("kpi_dashboard", "benchmark_comparison", "kpi_review", "objective_to_kpi"))}
    for r in sorted(runs, key=lambda r: (r.spec.department, order.get(r.spec.name, len(order)), r.spec.name)):
        departments.setdefault(r.spec.department, []).append(r)
    for dep, group in departments.items():
        links = []
        for r in group:
            if r.status == "ok" and r.report is not None:
                href = urllib.parse.quote(_rel(r.report, out) or "")
                links.append(f'<a href="{e(href)}">{e(r.spec.name)}</a>')
            else:
                href = urllib.parse.quote(_rel(r.notebook, out) or "")
                kept = f' (<a href="{e(href)}">notebook</a>)' if r.notebook is not None else " (no notebook kept)"
                links.append(
                    f'<span class="failed">{e(r.spec.name)} failed</span>{kept}<div class="err">{e(str(r.error))}</div>'
                )
        judged = [r for r in group if r.kpis]
        distinct = {json.dumps(list(r.kpis), sort_keys=True, default=str) for r in judged}
        if len(distinct) <= 1:
            status = _chips(judged[0].kpis) if judged else "–"
        else:
            status = "".join(f"<div><i>{e(r.spec.name)}:</i> {_chips(r.kpis)}</div>" for r in judged)
        seconds = sum(r.duration_s for r in group)
        rows.append(
            f"<tr><td>{e(dep)}</td><td>{'<br>'.join(links)}</td><td>{status}</td>"
            f"<td class='num'>{seconds:.1f}s</td></tr>"
        )
    n_fail = sum(r.status != "ok" for r in runs)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    period = base.get("period_end") or "latest complete period"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KPI reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4em .6em; text-align: left; vertical-align: top; }}
.num {{ text-align: right; white-space: nowrap; }}
.chip {{ display: inline-block; border: 1px solid; border-radius: 1em; padding: 0 .6em; margin: .1em; font-size: 90%; }}
.ok {{ color: #1e7e34; }} .failed {{ color: #c62828; font-weight: bold; }} .err {{ font-size: 85%; color: #555; }}
</style></head>
<body><h1>KPI reports</h1>
<p>{len(runs)} reports, {n_fail} failed; KPIs judged on: {e(str(period))}; grain: {e(str(base.get("grain")))};
generated {e(when)}. Details in <a href="manifest.json">manifest.json</a>.</p>
<table><thead><tr><th>department</th><th>reports</th><th>KPI status</th><th>time</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


# --- alerts without notebooks -------------------------------------------------------------------


def run_alerts(
    plan: str | Path, period_end: str | None = None, data_dir: str | Path | None = None, as_json: bool = False,
    include_partial: bool = False,
) -> tuple[str, int]:  # fmt: skip
    """Evaluate a plan's threshold alerts without notebooks (for schedulers).

    Every KPI is judged at its own grain on the latest complete period ended by ``period_end``
    (``include_partial``: also a period the data covers only in part, or whose values have not settled).
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
        frame = compute(p, metrics=ids, grain=g, end=end)
        found.extend(alerts_mod.evaluate(p, frame, as_of=end, kpis=ids, include_partial=include_partial))
    order = {k.metric: i for i, k in enumerate(p.kpis)}
    found.sort(key=lambda a: order.get(a.kpi, 0))
    text = alerts_mod.to_json(found) if as_json else alerts_mod.summary(found, title=p.name)
    return text, int(any(a.severity == "critical" for a in found))
