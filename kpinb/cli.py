"""The ``kpinb`` command line: parses arguments and calls one function per command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from kpinb.errors import KpinbError, redact


def _sample_data(a: argparse.Namespace) -> int:
    from kpinb.data.sample import ensure

    written, fresh = ensure(a.out, rows=a.rows, seed=a.seed, force=a.force)
    verb = "generated" if fresh else "up to date"
    print(f"sample data {verb}: {len(written)} sources in {a.out} (rows={a.rows}, seed={a.seed})")
    return 0


def _compute(a: argparse.Namespace) -> int:
    from kpinb.definitions.plan import load_plan
    from kpinb.engine.query import compute

    df = compute(
        load_plan(a.plan), metrics=a.metrics or None, grain=a.grain, by=a.by or (),
        start=a.start, end=a.end,
    )  # fmt: skip
    if a.csv:
        from kpinb._io import write_atomic

        write_atomic(a.csv, df.to_csv(index=False))
        print(f"wrote {len(df)} rows to {a.csv}")
    else:
        with _pandas_wide():
            print(df.to_string(index=False))
    return 0


def _report(a: argparse.Namespace) -> int:
    # `kpinb report` predates `kpinb run`; it now runs the report templates the same way.
    from kpinb.runs.runner import run_batch

    result = run_batch(None, None if a.all else a.department, None, a.out, plans_dir=a.plans_dir, grain=a.grain)
    print(result.summary())
    return 0 if result.ok else 1


def _run(a: argparse.Namespace) -> int:
    from kpinb.runs.runner import run_batch

    result = run_batch(
        a.template, None if a.all else a.department, a.period_end, a.out, jobs=a.jobs, show_code=a.show_code,
        runs_file=a.runs, plans_dir=a.plans_dir, data_dir=a.data_dir, grain=a.grain, timeout=a.timeout,
        skip_up_to_date=a.skip_up_to_date,
    )  # fmt: skip
    print(result.summary())
    return 0 if result.ok else 1


def _init(a: argparse.Namespace) -> int:
    from kpinb.runs.scaffold import init_project, parse_columns

    made = init_project(
        a.folder, a.department, csv=a.csv, source=a.source, columns=parse_columns(a.map), rows=a.rows, force=a.force
    )
    print(made.summary())
    return 0


def _serve(a: argparse.Namespace) -> int:
    from kpinb.runs.serve import serve

    serve(a.plan, host="0.0.0.0" if a.public else a.host, port=a.port, grain=a.grain, open_browser=a.open)
    return 0


def _import_dbt(a: argparse.Namespace) -> int:
    from kpinb.definitions.dbt import import_dbt

    result = import_dbt(a.project, a.out or Path("plans") / f"{a.project.resolve().name}.yml",
                        database=a.database, department=a.department)  # fmt: skip
    print(result.summary())
    return 0


def _alerts(a: argparse.Namespace) -> int:
    from kpinb.runs.runner import run_alerts

    text, code = run_alerts(a.plan, period_end=a.period_end, data_dir=a.data_dir, as_json=a.json)
    print(text)
    return code


def _check(a: argparse.Namespace) -> int:
    from kpinb.checks.lint import check, format_issues

    issues, code = check(a.plan, today=a.today)
    if issues:
        print(format_issues(issues))
    counts = {lv: sum(i.level == lv for i in issues) for lv in ("error", "warning", "info")}
    print(f"{a.plan}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    return code


def _catalog(a: argparse.Namespace) -> int:
    from kpinb.definitions import catalog

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

    rn = sub.add_parser(
        "run",
        help="execute template notebooks per department (papermill) and export offline HTML reports",
        description="Exit status: 0 when every run succeeded, 1 when one failed (its notebook is kept as "
        "<out>/<department>/<template>.failed.ipynb), 2 on a usage error or when another batch is writing to "
        "--out (one batch per folder at a time).",
    )
    which = rn.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every department with a plan")
    which.add_argument("--department", nargs="+", help="department names (plan file names without .yml)")
    which.add_argument("--runs", type=Path, help="a runs.yml listing template, department and parameters per run")
    rn.add_argument("--template", nargs="+", help="template names or .ipynb paths (default: kpi_dashboard "
                    "benchmark_comparison kpi_review)")  # fmt: skip
    rn.add_argument("--period-end", help="judge KPIs on the latest period ended by this date (YYYY-MM-DD)")
    rn.add_argument("--out", type=Path, default=Path("reports"))
    rn.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    rn.add_argument("--show-code", action="store_true", help="keep code cells in the HTML reports")
    rn.add_argument("--plans-dir", type=Path, default=None, help="default: the shipped example plans")
    rn.add_argument("--data-dir", type=Path, default=None, help="look the plans' data files up in this folder")
    rn.add_argument("--grain", default="month", choices=["day", "week", "month", "quarter", "year"])
    rn.add_argument("--timeout", type=int, default=600, help="seconds one notebook cell may run")
    rn.add_argument("--skip-up-to-date", action="store_true",
                    help="keep reports of the previous batch in --out whose plan, data, template, parameters and "
                    "package versions are unchanged (finishes an interrupted batch)")  # fmt: skip
    rn.set_defaults(func=_run)

    it = sub.add_parser(
        "init",
        help="create a working folder: a plan, runs.yml, a wizard notebook and a README, ready for `kpinb run`",
        description="Without --csv the folder gets the department's example plan and sample data in data/; "
        "with --csv, a plan proposed from the catalog for the columns of your CSV.",
    )
    it.add_argument("folder", type=Path)
    it.add_argument("--department", default="sales", help="a catalog department (default sales)")
    it.add_argument("--csv", type=Path, help="your own CSV file instead of the sample data")
    it.add_argument("--source", help="the canonical source the CSV holds (default: the department's main one)")
    it.add_argument("--map", nargs="+", metavar="CANONICAL=YOURS",
                    help="column mapping, e.g. --map order_date=sold_on revenue=amount_usd")  # fmt: skip
    it.add_argument("--rows", type=int, default=20_000, help="order lines of the generated sample data")
    it.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    it.set_defaults(func=_init)

    sv = sub.add_parser(
        "serve",
        help="serve the live dashboard of a plan (or one page per department of a plans folder) as a web app",
        description="Runs the filterable dashboard through Voilà: no code is shown and the page can only "
        "talk to its dashboard. Binds 127.0.0.1 (this machine only) unless --public or --host says otherwise. "
        "Exit status 2 when a plan is wrong or the port is taken.",
    )
    sv.add_argument("plan", type=Path, help="a plan file or a folder of plans")
    sv.add_argument("--port", type=int, default=8866, help="default 8866")
    where_ = sv.add_mutually_exclusive_group()
    where_.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    where_.add_argument("--public", action="store_true", help="listen on every interface (0.0.0.0)")
    sv.add_argument("--grain", default="month", choices=["week", "month", "quarter", "year"])
    sv.add_argument("--open", action="store_true", help="open the page in a browser")
    sv.set_defaults(func=_serve)

    db = sub.add_parser(
        "import-dbt",
        help="write a plan from a dbt project's semantic models and metrics (what cannot be translated is listed)",
    )
    db.add_argument("project", type=Path, help="the folder holding dbt_project.yml")
    db.add_argument("--out", type=Path, help="the plan file to write (default plans/<project folder>.yml)")
    db.add_argument("--database", type=Path, help="the DuckDB file dbt built (default: from profiles.yml)")
    db.add_argument("--department", help="the plan's department (default: the dbt project's name)")
    db.set_defaults(func=_import_dbt)

    al = sub.add_parser(
        "alerts",
        help="evaluate a plan's threshold alerts without notebooks (for schedulers)",
        description="Exit status: 0 when no alert is critical (none, or warnings only), 1 when at least one "
        "alert is critical, 2 on an error (bad plan, missing data).",
    )
    al.add_argument("--plan", type=Path, required=True)
    al.add_argument("--json", action="store_true", help="print a JSON array instead of a summary")
    al.add_argument("--period-end", help="judge the latest period ended by this date (YYYY-MM-DD)")
    al.add_argument("--data-dir", type=Path, default=None, help="look the plan's data files up in this folder")
    al.set_defaults(func=_alerts)

    ck = sub.add_parser(
        "check",
        help="check a plan: SMART criteria, common KPI mistakes and the quality of its data",
        description="Exit status: 0 when there is no error (warnings and infos allowed), 1 when at least "
        "one issue is an error, 2 when the plan file cannot be read.",
    )
    ck.add_argument("plan", type=Path)
    ck.add_argument(
        "--today", type=date.fromisoformat, default=None,
        help="judge deadlines and reviews as of this date (YYYY-MM-DD; default: today)",
    )  # fmt: skip
    ck.set_defaults(func=_check)

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
        # messages are redacted where they are made; redacting again here costs nothing
        if args.debug:
            import traceback

            print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        else:
            print(f"kpinb: error: {redact(str(e)).strip()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kpinb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
