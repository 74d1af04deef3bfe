"""Import cost: what ``import kpinb`` costs, and which heavy modules it leaves unloaded.

Each case runs in a fresh interpreter, in interleaved rounds, and is reported as a ratio to
``python -c pass`` timed in the same round. ``python -X importtime`` gives kpinb's own
cumulative import time.

    python perf/imports.py            # 5 rounds
    python perf/imports.py --quick    # 1 round (smoke test)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing

CASES = {
    "python -c pass": "pass",
    "import kpinb": "import kpinb",
    "import kpinb; kpinb.catalog.metrics()": "import kpinb; kpinb.catalog.metrics()",
    "import kpinb; kpinb.compute": "import kpinb; kpinb.compute",
    "import kpinb.widgets": "import kpinb.widgets",
}
REFERENCES = {  # what the engine defers to its first use, for scale
    "import pandas (reference)": "import pandas",
    "import ibis, duckdb (reference)": "import ibis, duckdb",
}
BASELINE = "python -c pass"
# must stay unloaded by `import kpinb` (STYLE.md: the engine, views and widgets load them)
HEAVY = ("plotly", "ipywidgets", "anywidget", "IPython", "ipykernel", "jupyter_client", "nbformat", "nbclient",
         "nbconvert", "papermill", "ibis", "duckdb", "pandas")  # fmt: skip
# loaded or not, for information
OTHER = ("numpy", "pyarrow", "sqlglot", "pydantic", "yaml", "jinja2")
_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed:\n{proc.stderr[-2000:]}")
    return proc


def wall_times(rounds: int, cases: dict[str, str]) -> dict[str, _timing.Timing]:
    """Seconds of a fresh interpreter running each case, interleaved over ``rounds``."""

    def case(code: str):
        return lambda: _python(code)

    for code in cases.values():  # warm the OS file cache (and .pyc files) first
        _python(code)
    return _timing.interleaved({name: case(code) for name, code in cases.items()}, BASELINE, rounds)


def importtime(code: str = "import kpinb", rounds: int = 3) -> tuple[float, list[tuple[str, float, float]]]:
    """Median cumulative µs of ``kpinb`` under ``-X importtime``, and its slowest modules
    (name, self µs, cumulative µs) from the last run."""
    totals, rows = [], []
    for _ in range(rounds):
        err = _python(code, "-X", "importtime").stderr
        found = (_IMPORTTIME.match(line) for line in err.splitlines())
        rows = [(m.group(4), float(m.group(1)), float(m.group(2))) for m in found if m]
        totals.append(next(cum for name, _, cum in rows if name == "kpinb"))
    return statistics.median(totals), sorted(rows, key=lambda r: -r[1])


def loaded(code: str) -> list[str]:
    """Which of HEAVY and OTHER are in ``sys.modules`` after ``code``."""
    probe = f"{code}; import sys, json; print(json.dumps([m for m in {list(HEAVY + OTHER)!r} if m in sys.modules]))"
    return json.loads(_python(probe).stdout.strip().splitlines()[-1])


def run(*, quick: bool = False, rounds: int | None = None, **_: object) -> str:
    """The import benchmark as a Markdown section (also used by ``run.py``)."""
    rounds = rounds or (1 if quick else 5)
    print(f"imports: {rounds} rounds ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    timings = wall_times(rounds, CASES if quick else {**CASES, **REFERENCES})
    kpinb_us, slowest = importtime(rounds=1 if quick else 5)
    after_import = loaded("import kpinb")
    after_compute = loaded("import kpinb; kpinb.compute")
    after_catalog = loaded("import kpinb; kpinb.catalog.metrics()")
    rows = []
    for name, t in timings.items():
        lo, hi = t.ratio_range
        rows.append([f"`{name}`", f"**{t.ratio:.2f}**", f"{lo:.2f}–{hi:.2f}", f"{t.median * 1000:.0f}"])
    mods = [
        [
            f"`{m}`" + (" (heavy)" if m in HEAVY else ""),
            "yes" if m in after_import else "no",
            "yes" if m in after_catalog else "no",
            "yes" if m in after_compute else "no",
        ]
        for m in HEAVY + OTHER
    ]
    leaked = [m for m in HEAVY if m in after_import]
    kpinb_rows = [r for r in slowest if r[0].startswith("kpinb") or r[0] in {"pydantic", "yaml"}][:8]
    return "\n".join(
        [
            "## Import cost",
            "",
            f"Fresh interpreter per case, {rounds} interleaved rounds; ratio = median of per-round ratios to "
            f"`{BASELINE}` in the same round (took {time.perf_counter() - t0:.0f} s).",
            "",
            _timing.table(["case", f"× `{BASELINE}` (median)", "ratio range", "median ms (wall)"], rows),
            "",
            f"`python -X importtime -c 'import kpinb'`: kpinb cumulative **{kpinb_us / 1000:.1f} ms** (median).",
            "Heavy modules loaded by `import kpinb`: " + (", ".join(leaked) if leaked else "**none**") + ".",
            "",
            _timing.table(
                ["module", "after `import kpinb`", "after `catalog.metrics()`", "after `kpinb.compute`"], mods
            ),
            "",
            "Slowest imports under `import kpinb` (self time): "
            + ", ".join(f"`{n}` {s / 1000:.1f} ms" for n, s, _ in slowest[:6])
            + ("; kpinb's own: " + ", ".join(f"`{n}` {c / 1000:.1f} ms cumulative" for n, _, c in kpinb_rows[:4]))
            + ".",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round, no reference imports (smoke test)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 1)")
    p.add_argument("--data-dir", type=Path, help="unused (accepted like the other benchmarks)")
    a = p.parse_args(argv)
    print(run(quick=a.quick, rounds=a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
