"""The ``kpinb`` command line: parses arguments and calls one function per command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import KpinbError


def _sample_data(a: argparse.Namespace) -> int:
    from .sample_data import ensure

    written, fresh = ensure(a.out, rows=a.rows, seed=a.seed, force=a.force)
    verb = "generated" if fresh else "up to date"
    print(f"sample data {verb}: {len(written)} sources in {a.out} (rows={a.rows}, seed={a.seed})")
    return 0


def _compute(a: argparse.Namespace) -> int:
    from .engine import compute
    from .plan import load_plan

    df = compute(
        load_plan(a.plan), metrics=a.metrics or None, grain=a.grain, by=a.by or (),
        start=a.start, end=a.end,
    )  # fmt: skip
    if a.csv:
        from ._io import write_atomic

        write_atomic(a.csv, df.to_csv(index=False))
        print(f"wrote {len(df)} rows to {a.csv}")
    else:
        with _pandas_wide():
            print(df.to_string(index=False))
    return 0


def _report(a: argparse.Namespace) -> int:
    from .runner import department_plans, summary_report

    plans = department_plans(a.plans_dir, None if a.all else a.department)
    for plan_path in plans:
        path, table = summary_report(plan_path, a.out, grain=a.grain)
        with _pandas_wide():
            print(f"\n== {plan_path.stem} -> {path}\n{table.to_string(index=False)}")
    return 0


def _catalog(a: argparse.Namespace) -> int:
    from . import catalog

    for m in catalog.search(department=a.department, objective=a.objective, text=a.text):
        flags = "vanity " if m.vanity else ""
        print(f"{m.id:40} {m.department:17} {m.indicator.value:8} {m.role.value:19} {flags}{m.name}")
    return 0


class _pandas_wide:
    def __enter__(self) -> None:
        import pandas as pd

        self._ctx = pd.option_context("display.width", 200, "display.max_columns", 20,
                                      "display.max_rows", 500, "display.float_format", "{:,.4g}".format)  # fmt: skip
        self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    p = argparse.ArgumentParser(prog="kpinb", description="KPIs from objectives to reports.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample-data", help="generate the synthetic sample data")
    s.add_argument("--out", type=Path, default=Path("data/sample"))
    s.add_argument("--rows", type=int, default=200_000, help="approximate number of order rows")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--force", action="store_true", help="regenerate even if up to date")
    s.set_defaults(func=_sample_data)

    c = sub.add_parser("compute", help="compute a plan's metrics and print them")
    c.add_argument("plan", type=Path)
    c.add_argument("--grain", default="month", choices=["day", "week", "month", "quarter", "year"])
    c.add_argument("--by", nargs="*", help="dimension columns")
    c.add_argument("--metrics", nargs="*", help="metric ids (default: the plan's KPIs)")
    c.add_argument("--start")
    c.add_argument("--end")
    c.add_argument("--csv", type=Path, help="write the table to a CSV file instead of printing")
    c.set_defaults(func=_compute)

    r = sub.add_parser("report", help="compute every department plan and write HTML summaries")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--all", action="store_true")
    g.add_argument("--department", nargs="+")
    r.add_argument("--plans-dir", type=Path, default=None, help="default: the shipped plans")
    r.add_argument("--out", type=Path, default=Path("reports"))
    r.add_argument("--grain", default="month", choices=["day", "week", "month", "quarter", "year"])
    r.set_defaults(func=_report)

    k = sub.add_parser("catalog", help="search the metric catalog")
    k.add_argument("--department")
    k.add_argument("--objective")
    k.add_argument("--text")
    k.set_defaults(func=_catalog)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one message and exit 2 (``--debug`` for a traceback)."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KpinbError as e:
        if args.debug:
            raise
        print(f"kpinb: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kpinb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
