"""Run the benchmarks and write one Markdown report (``make bench``).

Each benchmark is a script in this folder that prints a Markdown section on stdout (progress
on stderr) and accepts ``--quick`` and ``--data-dir``; it runs in its own process, so one
benchmark's imports, caches and memory do not colour another's numbers.

    python perf/run.py --all --out perf/results.md     # make bench
    python perf/run.py engine imports --quick
    python perf/run.py --list
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _timing  # noqa: E402

# name -> (script, what it measures), in the order `--all` runs them
BENCHMARKS: dict[str, tuple[str, str]] = {
    "imports": ("imports.py", "cost of `import kpinb`; heavy modules it leaves unloaded"),
    "engine": ("engine.py", "KPI set monthly by region: kpinb vs DuckDB SQL, pandas, kpi-engine (1M, 10M rows)"),
    "windows": ("windows.py", "windowed and joined KPIs monthly by region: kpinb vs one DuckDB query (1M, 10M rows)"),
    "dashboard": ("dashboard.py", "latency of a dashboard filter change on 10M rows after the first load"),
    "batch": ("batch.py", "`kpinb run --all` with --jobs 1 and 2 vs papermill on an empty notebook; report sizes"),
}


def run_one(name: str, quick: bool, data_dir: Path | None) -> tuple[str, bool]:
    """Run one benchmark script in a fresh process; its Markdown section and whether it worked."""
    script, _ = BENCHMARKS[name]
    argv = [sys.executable, str(HERE / script)]
    argv += ["--quick"] if quick else []
    argv += ["--data-dir", str(data_dir)] if data_dir else []
    t0 = time.perf_counter()
    # stderr (progress, tracebacks) goes straight to ours; stdout is the section
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    took = time.perf_counter() - t0
    print(f"{name}: done in {took:.0f} s", file=sys.stderr, flush=True)
    if proc.returncode != 0:  # the other benchmarks still run and are reported
        return f"## {name}\n\n**Failed** (exit code {proc.returncode}): `{' '.join(argv)}`; see its stderr.\n", False
    return proc.stdout.strip() + f"\n\n_{name}: {took:.0f} s._\n", True


def header(names: Sequence[str], quick: bool) -> str:
    facts = _timing.machine()
    facts["kpi-engine (benchmark only)"] = _timing.version("kpi-engine")
    lines = [
        "# kpinb benchmarks",
        "",
        "Written by `python perf/run.py`" + (" --quick (smoke sizes: numbers mean nothing)" if quick else "")
        + f"; benchmarks: {', '.join(names)}.",
        "",
        _timing.table(["", ""], [[k, v] for k, v in facts.items()]),
        "",
        "The machine may be shared: absolute times are noisy, ratios measured in the same round are not.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    p.add_argument("--all", action="store_true", help="every benchmark")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    p.add_argument("--out", type=Path, help="also write the report here (e.g. perf/results.md)")
    p.add_argument("--data-dir", type=Path, help="where generated data goes (default perf/data)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    a = p.parse_args(argv)
    if a.list:
        for name, (script, what) in BENCHMARKS.items():
            print(f"{name:12} {what}  [{script}]")
        return 0
    unknown = [n for n in a.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if not a.all and not a.names:
        p.error("name benchmarks to run, or --all")
    names = list(BENCHMARKS) if a.all else list(dict.fromkeys(a.names))
    t0 = time.perf_counter()
    sections, ok = [header(names, a.quick)], True
    for n in names:
        text, worked = run_one(n, a.quick, a.data_dir)
        sections.append(text)
        ok &= worked
    sections.append(f"Total: {time.perf_counter() - t0:.0f} s.\n")
    report = "\n".join(sections)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(report, encoding="utf-8")
        print(f"wrote {a.out}", file=sys.stderr)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
