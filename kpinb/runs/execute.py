"""Batch runs: execute the template notebooks per department with papermill and export
self-contained HTML reports, a manifest and an index.

One process drives the whole batch: ``jobs`` worker threads, each running one notebook at a
time (``papermill.execute_notebook``) in a kernel it keeps between notebooks (:class:`_Kernel`:
the user namespace, execution count, working folder and warning registries are reset before
each one; a kernel whose run failed is replaced), so the Jupyter stack is imported once and
kpinb once per worker rather than once per notebook. A failing run never stops the others; its
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

import contextlib
import datetime as dt
import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kpinb._io import replaceable, slug, write_atomic
from kpinb.errors import PlanError, RunError, WriteError
from kpinb.runs.discovery import template_path
from kpinb.runs.export import export_html
from kpinb.runs.index import index_page, manifest_text
from kpinb.runs.inputs import fingerprint, plan_inputs, versions
from kpinb.runs.lock import batch_lock
from kpinb.runs.specs import BatchResult, RunFailure, RunResult, RunSpec, load_runs, plain, plan_runs, run_dir

_KERNEL_STARTUP = """\
# Written by `kpinb run` for its batch kernels only. plotly's renderers import nbformat, whose
# jsonschema would spend seconds building the RFC 3987 IRI grammar (rfc3987_syntax) that no
# report uses; without it jsonschema merely skips the "iri" format check. (No name is left in the
# namespace: a kept kernel's next notebook starts without it, so the first must too.)
__import__("sys").modules.setdefault("rfc3987_syntax", None)
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
            # nor is what tornado and zmq print while a kernel is shut down mid-cell (an interrupted
            # batch): that went to the batch's own stderr as a traceback that was not kpinb's
            kw.setdefault("stderr", subprocess.DEVNULL)
            if zmq.has("curve") and self._kernel_supports_curve_encryption():
                # encrypt the kernel's local TCP channels when both sides can
                kw.setdefault("transport_encryption", "auto")
            await super().start_kernel(**kw)

    return ReportKernelManager


_KERNEL_RUNS = 50
"""Notebooks one kernel serves before it is replaced (what modules cache stays bounded)."""

_RESET = """\
get_ipython().reset(new_session=True)
__import__("gc").freeze()
__import__("os").chdir({folder!r})
with __import__("warnings").catch_warnings():
    pass
"""
"""Run in a kept kernel before its next notebook: an empty namespace and execution count 1
(``InteractiveShell.reset``), the notebook's folder as working folder, and every module's
"already warned" registry invalidated (leaving ``catch_warnings`` bumps the filters' version),
so a warning shown in an earlier notebook is shown again. What survives the reset (modules, their
caches) is frozen out of the collector: ``reset`` ends in a full ``gc.collect``, which otherwise
walked the kernel's 340,000 objects before every notebook (0.15 s, a tenth of a report's time).
What a notebook leaves is still collected by the next reset."""


@functools.cache
def _warm_engine() -> str:
    """papermill's engine name for running a notebook on a kernel that is already running
    (registered on first use)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class Manager(NotebookExecutionManager):
        """papermill's execution record, saved when the run starts, ends or fails and every
        ``autosave_cell_every`` seconds between, not twice per cell (two full JSON writes with
        schema validation per cell were a third of a short notebook's run)."""

        @contextlib.contextmanager
        def _unsaved(self) -> Iterator[None]:
            path, self.output_path = self.output_path, None
            try:
                yield
            finally:
                self.output_path = path

        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            with self._unsaved():
                super().cell_start(cell, cell_index, **kwargs)

        def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            with self._unsaved():
                super().cell_complete(cell, cell_index, **kwargs)
            self.autosave_cell()

    class WarmEngine(NBClientEngine):
        """papermill's nbclient engine on the running kernel of ``km`` through its connected client
        ``kc``, both left running."""

        @classmethod
        def execute_notebook(  # type: ignore[override]
            cls, nb: Any, kernel_name: str, output_path: str | None = None, progress_bar: bool = True,
            log_output: bool = False, autosave_cell_every: int = 30, **kwargs: Any,
        ) -> Any:  # fmt: skip
            nb_man = Manager(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                             autosave_cell_every=autosave_cell_every)  # fmt: skip
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls, nb_man: Any, kernel_name: str, log_output: bool = False, stdout_file: Any = None,
            stderr_file: Any = None, start_timeout: int = 60, execution_timeout: int | None = None, **kwargs: Any,
        ) -> Any:  # fmt: skip
            kc = kwargs.pop("kc")
            kwargs = {k: v for k, v in kwargs.items() if k not in ("input_path", "timeout", "startup_timeout")}
            client = PapermillNotebookClient(
                nb_man, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file, **kwargs,
            )  # fmt: skip
            client.kc = kc  # connected and ready: nbclient would wait for a new client's readiness
            return client.execute()

    papermill_engines.register("kpinb-warm", WarmEngine)
    return "kpinb-warm"


class _Kernel:
    """A batch worker's kernel and its client, kept between its notebooks. Used from one thread
    only (its event loop owns the sockets). Replaced after a failed run (what it left behind is
    not trusted), when it died, and after :data:`_KERNEL_RUNS` notebooks."""

    def __init__(self, km_class: type) -> None:
        self.km_class, self.km, self.kc, self.served = km_class, None, None, 0

    def ready(self, folder: Path, timeout: float) -> dict[str, Any]:
        """papermill's arguments (``km``, ``kc``) for a running kernel reset for a notebook in
        ``folder``."""
        from jupyter_core.utils import run_sync

        if self.km is not None and (self.served >= _KERNEL_RUNS or not run_sync(self.km.is_alive)()):
            self.close()
        if self.km is None:
            self.km, self.served = self.km_class(kernel_name="python3"), 0
            try:
                run_sync(self._start)(folder, timeout)
            except BaseException:
                self.close()
                raise
        elif not run_sync(self._reset)(folder, timeout):
            self.close()
            return self.ready(folder, timeout)
        self.served += 1
        return {"km": self.km, "kc": self.kc}

    async def _start(self, folder: Path, timeout: float) -> None:
        await self.km.start_kernel(cwd=str(folder))
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=timeout)

    async def _reset(self, folder: Path, timeout: float) -> bool:
        try:
            reply = await self.kc.execute_interactive(
                _RESET.format(folder=str(folder)), silent=True, store_history=False, timeout=timeout
            )
        except Exception:  # a kernel that does not answer is replaced
            return False
        return reply.get("content", {}).get("status") == "ok"

    def close(self) -> None:
        """Shut the kernel down (now: nothing it runs is wanted any more)."""
        from jupyter_core.utils import run_sync

        km, kc, self.km, self.kc = self.km, self.kc, None, None
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            with contextlib.suppress(Exception):  # already gone
                run_sync(km.shutdown_kernel)(now=True)


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
        objectives=tuple(rec.get("objectives") or ()), reused=True,
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
    kernel: _Kernel,
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
            execution_timeout=timeout, engine_name=_warm_engine(), **kernel.ready(folder, 120),
        )  # fmt: skip
    except Exception as e:  # one failing run never stops the batch
        error = _failure(e)
        kernel.close()
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
        objectives=tuple((summary or {}).get("objectives", [])),
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
    spec: RunSpec, out_dir: Path, base_parameters: Mapping[str, Any], show_code: bool, kernel: _Kernel,
    timeout: int | None, inputs: list[dict],
) -> RunResult:  # fmt: skip
    """:func:`_execute_one`, with any error outside the notebook (a file where the department's folder
    goes, a template that is not a notebook, a full disk) recorded as this run's failure."""
    started = time.perf_counter()
    try:
        return _execute_one(spec, out_dir, base_parameters, show_code, kernel, timeout, inputs)
    except Exception as e:  # one failing run never stops the batch
        kernel.close()
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
    jobs : notebooks executed at once (each worker keeps one kernel, reset between notebooks).
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
        else plain(period_end)
        if isinstance(period_end, dt.date)
        else str(period_end),
        "grain": grain,
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
    }
    with batch_lock(out):
        return _run_locked(specs, out, base, jobs, show_code, timeout, progress, skip_up_to_date, started)


def _spread(todo: list[int], specs: Sequence[RunSpec]) -> list[int]:
    """``todo`` with every plan's first run before any plan's second (stable otherwise): workers
    start on different departments, and a department's later templates read the numbers its
    first one computed (:mod:`kpinb.engine.cache`) instead of computing them at the same time."""
    rank: dict[int, int] = {}
    runs_of: dict[Path, int] = {}
    for i in todo:
        rank[i] = runs_of.get(specs[i].plan, 0)
        runs_of[specs[i].plan] = rank[i] + 1
    return sorted(todo, key=rank.__getitem__)


def _work(
    waiting: queue.SimpleQueue[int], finished: queue.SimpleQueue[tuple[int, RunResult]], stop: threading.Event,
    run: Callable[[int, _Kernel], RunResult], km_class: type,
) -> None:  # fmt: skip
    """A batch worker: run waiting notebooks one at a time on one kept kernel until none is left or
    ``stop`` is set; shut the kernel down at the end."""
    kernel = _Kernel(km_class)
    try:
        while not stop.is_set():
            try:
                i = waiting.get_nowait()
            except queue.Empty:
                return
            finished.put((i, run(i, kernel)))
    finally:
        kernel.close()


_CACHE_DAYS = 7


def _computed(out: Path) -> Path:
    """The batch's cache of computed numbers (``out/.cache``), its entries older than a week pruned."""
    folder = out / ".cache"
    cutoff = time.time() - _CACHE_DAYS * 86_400
    for old in folder.glob("*.pickle") if folder.is_dir() else []:
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass
    return folder


def _run_locked(
    specs: Sequence[RunSpec], out: Path, base: Mapping[str, Any], jobs: int, show_code: bool, timeout: int | None,
    progress: bool | None, skip_up_to_date: bool, started: float,
) -> BatchResult:  # fmt: skip
    from tqdm.auto import tqdm

    from kpinb.engine.cache import ENV as CACHE_ENV
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
    todo = _spread([i for i in range(len(specs)) if i not in results], specs)

    def checkpoint(final: bool) -> tuple[Path, Path]:
        done = tuple(results[i] for i in sorted(results))
        took = round(time.perf_counter() - started, 2)
        return (
            write_atomic(out / "manifest.json", manifest_text(done, out, base, jobs, show_code, vers, took, final)),
            write_atomic(out / "index.html", index_page(done, out, base)),
        )

    scratch = Path(tempfile.mkdtemp(prefix="kpinb-run-"))
    startup = scratch / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-kpinb-batch.py").write_text(_KERNEL_STARTUP, encoding="utf-8")
    env = {
        RENDERER_ENV: REPORT_RENDERER,
        CACHE_ENV: str(_computed(out)),  # a department's templates compute its numbers once
        "IPYTHONDIR": str(scratch / "ipython"),  # no shared history database between parallel kernels
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    km_class = _kernel_manager_class(env)
    unsaved: list[BaseException] = []

    def save_progress() -> None:
        # a full disk must not stop the batch: the next checkpoint (or the final one) tries again
        try:
            checkpoint(final=False)
        except OSError as e:
            unsaved.append(e)

    def run(i: int, kernel: _Kernel) -> RunResult:
        return _execute_safely(specs[i], out, base, show_code, kernel, timeout, inputs_of(specs[i]))

    waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in todo:
        waiting.put(i)
    finished: queue.SimpleQueue[tuple[int, RunResult]] = queue.SimpleQueue()
    stop = threading.Event()
    workers = [
        threading.Thread(target=_work, args=(waiting, finished, stop, run, km_class), name=f"kpinb-run-{n}",
                         daemon=True)
        for n in range(min(jobs, len(todo)))
    ]  # fmt: skip
    try:
        for w in workers:
            w.start()
        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(total=len(specs), initial=len(specs) - len(todo), desc="kpinb run", unit="report",
                  disable=not show) as bar:  # fmt: skip
            while any(i not in results for i in todo) and (any(w.is_alive() for w in workers) or not finished.empty()):
                try:
                    i, r = finished.get(timeout=0.2)
                except queue.Empty:
                    continue
                results[i] = r
                save_progress()
                bar.set_postfix_str(f"{r.spec.department}/{r.spec.name} {r.status}", refresh=False)
                bar.update()
    except BaseException:
        # Ctrl-C: start nothing new, let the running notebooks finish, and record every run that
        # finished, so the manifest and index describe the reports on disk and --skip-up-to-date can
        # reuse them
        stop.set()
        for w in workers:
            w.join()
        while not finished.empty():
            i, r = finished.get()
            results[i] = r
        save_progress()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = tuple(results[i] for i in range(len(specs)))
    duration = round(time.perf_counter() - started, 2)
    manifest, index = checkpoint(final=True)
    return BatchResult(out, runs, manifest, index, duration)
