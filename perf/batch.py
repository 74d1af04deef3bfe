"""Batch benchmark: ``kpinb run --all`` with one and two notebooks at a time, against the floor of
running as many empty notebooks through papermill with the same number at once, and the size of
every HTML report it writes.

The batch is run through :func:`kpinb.runs.execute.run_batch`, the function ``kpinb run`` calls, in
this process (so the Jupyter stack is imported once, as the CLI does); the floor is
``papermill.execute_notebook`` on a notebook with one empty cell, a fresh kernel each, in a thread
pool of ``--jobs`` workers in the same process.
Rounds are interleaved (rotating order). Peak memory is the largest resident set of this
process and its kernels together, sampled every 0.1 s.

    python perf/batch.py               # every department x report template, 1 round
    python perf/batch.py --quick       # 1 department x an empty template, 1 round (smoke test)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
REPORT_LIMIT = 5 * 2**20  # bytes: the target for one HTML report
TARGET_FLOOR = 1.5  # batch wall time <= 1.5 x the floor's, at the same --jobs (issue 19)
QUICK_DEPARTMENTS = ("sales",)


def ensure_sample_data() -> None:
    """The shipped plans read ``data/sample``; generate it (as ``make sample`` does) when missing."""
    if (SAMPLE / "orders.parquet").exists():
        return
    print(f"batch: generating sample data in {SAMPLE} ...", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", "kpinb.cli", "sample-data", "--out", str(SAMPLE), "--rows", "200000", "--seed", "7"],
        check=True,
    )


def empty_notebook(folder: Path) -> Path:
    """A notebook with one empty code cell and the venv's ``python3`` kernel."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "empty.ipynb"
    nbformat.write(nb, str(path))
    return path


class PeakRss:
    """Largest summed RSS (MB) of this process and all its descendants while in the block."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.peak_mb = every, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a kernel that just exited
                    total += p.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(
    *, quick: bool, rounds: int, work: Path
) -> tuple[dict[int, dict[str, _timing.Timing]], dict[str, Any], dict[str, float], list[str]]:
    """Per ``--jobs`` value, time the floor and the batch in interleaved rounds; returns timings by
    jobs, the last batch results by name, peak memory by name and problems (a broken runner is
    reported, not hidden)."""
    import papermill

    from kpinb.runs.execute import run_batch
    from kpinb.runs.specs import plan_runs

    empty = empty_notebook(work)
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(work / "runtime"))
    templates = [str(empty)] if quick else None  # None: every report template
    departments = list(QUICK_DEPARTMENTS) if quick else None  # None: --all
    n_runs = len(plan_runs(templates, departments, None))
    results: dict[str, Any] = {}
    peaks: dict[str, float] = {}
    problems: list[str] = []

    def empty_run(k: int) -> None:
        papermill.execute_notebook(
            str(empty), str(work / f"empty.{k}.out.ipynb"), kernel_name="python3", progress_bar=False,
            log_output=False,
        )  # fmt: skip

    def floor(jobs: int) -> Callable[[], None]:
        def go() -> None:  # as many empty notebooks as the batch runs, `jobs` at a time, a kernel each
            with PeakRss() as peak, ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(empty_run, range(n_runs)))
            peaks[f"floor, jobs {jobs}"] = max(peaks.get(f"floor, jobs {jobs}", 0.0), peak.peak_mb)

        return go

    def batch(jobs: int) -> Callable[[], None]:
        def go() -> None:
            name = f"batch, jobs {jobs}"
            out = work / f"reports-jobs{jobs}"
            shutil.rmtree(out, ignore_errors=True)  # no report or computed number kept from a round before
            with PeakRss() as peak:
                r = run_batch(templates, departments, None, out, jobs=jobs, progress=False)
            peaks[name] = max(peaks.get(name, 0.0), peak.peak_mb)
            results[name] = r
            if not r.ok:
                failed = "; ".join(f"{x.spec.department}/{x.spec.name}: {x.error}" for x in r.failed)
                problems.append(f"`run_batch(jobs={jobs})`: {len(r.failed)} of {len(r.runs)} runs failed: {failed}")

        return go

    if not quick:  # warm-up, untimed: imports, kernel spec lookup, the exporter, the OS page cache
        empty_run(0)
        run_batch(["kpi_dashboard"], ["sales"], None, work / "warm-up", jobs=1, progress=False)
    timings: dict[int, dict[str, _timing.Timing]] = {}
    try:
        for jobs in (1, 2):
            timings[jobs] = _timing.interleaved({"floor": floor(jobs), "batch": batch(jobs)}, "floor", rounds)
    except Exception as e:  # the runner is work in progress elsewhere: report, do not crash the suite
        problems.append(f"`run_batch` raised {type(e).__name__}: {str(e).strip().splitlines()[0][:300]}")
    return timings, results, peaks, problems


def markdown(
    timings: dict[int, dict[str, _timing.Timing]], results: dict[str, Any], peaks: dict[str, float],
    problems: list[str], rounds: int, quick: bool,
) -> str:  # fmt: skip
    lines = [
        "## Batch: `kpinb run --all` against the floor of as many empty notebooks",
        "",
        (
            f"{'1 department x an empty template (smoke)' if quick else 'Every department x every report template'}"
            " on the sample data, through `kpinb.runs.execute.run_batch` (what `kpinb run` calls) in one process, "
            "starting from an empty output folder each time (no report or computed number reused); the floor is "
            "`papermill.execute_notebook` on a one-empty-cell notebook, as many times as the batch has notebooks "
            f"and as many at once as `--jobs`, in the same process. {rounds} interleaved round(s) per `--jobs`"
            + ("." if quick else " after an untimed warm-up (one empty notebook and one report notebook).")
            + " Peak memory: this process and its kernels together, sampled every 0.1 s."
        ),
        "",
    ]
    if problems:
        lines += ["**Problems:**", "", *(f"- {p}" for p in problems), ""]
    if not timings or any("batch" not in t for t in timings.values()) or "batch, jobs 1" not in results:
        return "\n".join(lines)
    n_runs = len(results["batch, jobs 1"].runs)
    rows, verdicts = [], []
    for jobs, t in timings.items():
        fl, ba = t["floor"], t["batch"]
        rows.append([f"--jobs {jobs}", f"{fl.median:.1f}", f"{ba.median:.1f}", f"**{ba.ratio:.2f}**",
                     ", ".join(f"{r:.2f}" for r in ba.ratios), f"{peaks.get(f'floor, jobs {jobs}', 0):.0f}",
                     f"{peaks.get(f'batch, jobs {jobs}', 0):.0f}"])  # fmt: skip
        missed = f"**missed** by {ba.ratio / TARGET_FLOOR - 1:.0%}"
        verdicts.append(f"--jobs {jobs}: {'met' if ba.ratio <= TARGET_FLOOR else missed}")
    per_run = [r.duration_s for r in results["batch, jobs 1"].runs]
    one, two = timings[1]["batch"].median, timings[2]["batch"].median
    head = ["", f"floor: {n_runs} empty notebooks, s", f"batch: {n_runs} notebooks, s", "batch ÷ floor (median)",
            "per round", "peak RSS MB floor", "peak RSS MB batch"]  # fmt: skip
    lines += [
        _timing.table(head, rows),
        "",
        f"- Target batch ÷ floor ≤ {TARGET_FLOOR}: {'; '.join(verdicts)}.",
        f"- Speed-up of --jobs 2 over --jobs 1: {one / two:.2f}× (the floor's: "
        f"{timings[1]['floor'].median / timings[2]['floor'].median:.2f}×).",
        f"- One notebook inside the --jobs 1 batch: median {statistics.median(per_run):.2f} s "
        f"(n = {len(per_run)}, {min(per_run):.2f}–{max(per_run):.2f} s); the sum of runs is {sum(per_run):.1f} s "
        "of the batch (the rest: fingerprints, manifest, index).",
        "",
    ]
    lines += report_sizes(results["batch, jobs 2"], quick)
    return "\n".join(lines)


def report_sizes(result: Any, quick: bool) -> list[str]:
    """The report-size section: bytes of every HTML report of one batch."""
    rows, biggest = [], 0
    for r in result.runs:
        if r.report is None or not r.report.exists():
            rows.append([r.spec.department, r.spec.name, "failed", "", ""])
            continue
        size = r.report.stat().st_size
        biggest = max(biggest, size)
        body = r.report.read_text(encoding="utf-8", errors="replace")  # the bundle sits after ~1 MB of CSS
        plotly = "basic" if "plotly.js (basic" in body else "full" if "plotly.js v" in body else "none"
        rows.append([r.spec.department, r.spec.name, f"{size:,}", f"{size / 2**20:.2f}", plotly])
    index = result.index.stat().st_size if result.index.exists() else 0
    verdict = "met" if biggest <= REPORT_LIMIT else f"**missed** by {biggest / REPORT_LIMIT - 1:.0%}"
    return [
        "## Report size: bytes of each HTML report",
        "",
        ("Empty-template smoke reports: the sizes mean nothing. " if quick else "")
        + f"Reports of the `--jobs 2` batch; `index.html` is {index:,} bytes. Largest report "
        f"{biggest / 2**20:.2f} MB; target ≤ 5 MB each: {verdict}.",
        "",
        _timing.table(["department", "template", "bytes", "MB", "plotly.js inlined"], rows),
        "",
    ]


def run(*, quick: bool = False, rounds: int | None = None, **_: object) -> str:
    """The batch and report-size benchmark as Markdown (also used by ``run.py``)."""
    # a round is a floor and a batch of 27 notebooks at --jobs 1 and 2 (~1.5 min on 2 idle cores)
    rounds = rounds or (1 if quick else 2)
    ensure_sample_data()
    print(f"batch: {rounds} round(s) ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="kpinb-bench-batch-") as tmp:
        timings, results, peaks, problems = measure(quick=quick, rounds=rounds, work=Path(tmp))
        return markdown(timings, results, peaks, problems, rounds, quick)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 department x an empty template, 1 round (smoke test)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 1)")
    p.add_argument("--data-dir", type=Path, help="unused (the batch reads data/sample, like `kpinb run`)")
    a = p.parse_args(argv)
    print(run(quick=a.quick, rounds=a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
