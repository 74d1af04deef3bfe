"""Interleaved timing, peak memory of a fresh process, machine facts and Markdown tables.

The machine is shared, so absolute times are noisy: implementations run in interleaved
rounds (a rotating order, so none always runs right after the same other one) and are
reported as ratios to a baseline timed in the same round.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Timing:
    """Seconds of every round of one implementation and its ratios to the baseline."""

    name: str
    seconds: tuple[float, ...]
    ratios: tuple[float, ...]  # seconds / baseline seconds of the same round

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def ratio_range(self) -> tuple[float, float]:
        return min(self.ratios), max(self.ratios)


def interleaved(
    fns: Mapping[str, Callable[[], object]], baseline: str, rounds: int, limits: Mapping[str, int] | None = None
) -> dict[str, Timing]:
    """Time every function once per round, in a rotating order; ratios are paired per round.

    ``limits`` caps the rounds of slow functions (they run in the first rounds only).
    """
    names = list(fns)
    secs: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        took = {}
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if limits and r >= limits.get(name, rounds) and name != baseline:
                continue
            gc.collect()
            t0 = time.perf_counter()
            fns[name]()
            took[name] = time.perf_counter() - t0
        for name, t in took.items():
            secs[name].append(t)
            ratios[name].append(t / took[baseline])
    return {n: Timing(n, tuple(secs[n]), tuple(ratios[n])) for n in names}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB, native allocations included.

    On Linux this is ``VmHWM`` of /proc/self/status: the high-water mark of the memory map
    the process got at ``exec``. ``getrusage().ru_maxrss`` is not used there because Linux
    carries it over fork and exec, so a child started by a 300 MB parent reports at least
    300 MB whatever it does (measured: every child reported the parent's peak).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 2**20 if sys.platform == "darwin" else kib / 1024


def child_report(**fields: object) -> None:
    """Print the last line a child process reports to :func:`run_child` (JSON)."""
    print(json.dumps({**fields, "peak_rss_mb": peak_rss_mb()}), flush=True)


def run_child(argv: Sequence[str], timeout: float = 1800) -> dict:
    """Run ``python argv...`` in a fresh process; return the JSON of its last stdout line.

    Peak memory is the child's own :func:`peak_rss_mb`: the high-water mark of its resident
    set, native allocations (DuckDB's buffers, Arrow) included, which tracemalloc does not
    see. The parent's ``RUSAGE_CHILDREN`` is no use here: it is a maximum over every child
    waited for, and on Linux a child's ``ru_maxrss`` starts at the parent's size at fork.
    """
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """Facts that make numbers comparable: cores, CPU, memory, load, versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mem = ""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "load average (1, 5, 15 min) at start": load,
        "python": platform.python_version(),
        "duckdb": version("duckdb"),
        "ibis-framework": version("ibis-framework"),
        "pandas": version("pandas"),
        "pyarrow": version("pyarrow"),
        "numpy": version("numpy"),
        "plotly": version("plotly"),
        "ipywidgets": version("ipywidgets"),
        "papermill": version("papermill"),
        "kpinb": version("kpinb"),
    }


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
