"""The ``kpinb`` command line: parses arguments and calls one function per command."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from kpinb.errors import KpinbError, redact

# C0/C1 control characters (ESC starts ANSI sequences, CR rewrites a line) from data or user text
# are shown escaped: a column name must not move the cursor, recolour or clear the terminal
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    r"""``text`` with control characters other than line breaks and tabs written as escapes (``\x1b``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _say(text: object, file: Any = None) -> None:
    print(_printable(str(text)), file=file)


def _sample_data(a: argparse.Namespace) -> int:
    from kpinb.data.sample import ensure, last_complete_month, start_for
    from kpinb.runs.demo import write_demo_plans

    end = a.end or last_complete_month()
    written, fresh = ensure(a.out, rows=a.rows, seed=a.seed, start=start_for(end), force=a.force)
    plans = write_demo_plans(a.out, end)
    verb = "generated" if fresh else "up to date"
    _say(
        f"sample data {verb}: {len(written)} sources in {a.out} (rows={a.rows}, seed={a.seed}, "
        f"through {end}); {len(plans)} demo plans in {a.out / 'plans'}"
    )
    return 0


def _compute(a: argparse.Namespace) -> int:
    from kpinb.definitions.plan import load_plan
    from kpinb.engine.query import compute

    df = compute(
        _limited(load_plan(a.plan), a), metrics=a.metrics or None, grain=a.grain, by=a.by or (),
        start=a.start, end=a.end,
    )  # fmt: skip
    if a.csv:
        from kpinb._io import write_atomic

        write_atomic(a.csv, df.to_csv(index=False))
        _say(f"wrote {len(df)} rows to {a.csv}")
    else:
        with _pandas_wide():
            _say(df.to_string(index=False))
    return 0


def _report(a: argparse.Namespace) -> int:
    # `kpinb report` predates `kpinb run`; it now runs the report templates the same way.
    from kpinb.runs.execute import run_batch

    result = run_batch(None, None if a.all else a.department, None, a.out, plans_dir=a.plans_dir, grain=a.grain)
    _say(result.summary())
    return 0 if result.ok else 1


def _run(a: argparse.Namespace) -> int:
    import signal
    import threading

    from kpinb.runs.execute import run_batch

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a scheduler's SIGTERM ends the batch like Ctrl-C: what finished is recorded

    # signal handlers belong to the main thread; the previous one comes back after the batch
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        result = run_batch(
            a.template, None if a.all else a.department, a.period_end, a.out, jobs=a.jobs, show_code=a.show_code,
            runs_file=a.runs, plans_dir=a.plans_dir, data_dir=a.data_dir, grain=a.grain, timeout=a.timeout,
            skip_up_to_date=a.skip_up_to_date,
        )  # fmt: skip
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    _say(result.summary())
    return 0 if result.ok else 1


def _limited(plan: Any, a: argparse.Namespace) -> Any:
    """The plan with the limits given on the command line."""
    from kpinb.definitions.plan import with_limits

    return with_limits(plan, max_result_rows=a.max_result_rows, statement_timeout_s=a.statement_timeout_s)


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-result-rows",
        type=_count(1, 10**10),
        default=None,
        help="refuse results of more rows than this (default: the plan's limits, else 5,000,000)",
    )
    p.add_argument("--statement-timeout-s", type=_seconds, default=None,
                   help="seconds one database statement may run (default: the plan's limits, else 300)")  # fmt: skip


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not 0 < value <= 7 * 24 * 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 604800 seconds")
    return value


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
    from kpinb.runs.alerts import run_alerts
    from kpinb.views.report import load_for_report

    plan = _limited(load_for_report(a.plan, a.data_dir), a)
    text, code = run_alerts(plan, period_end=a.period_end, as_json=a.json, include_partial=a.include_partial)
    _say(text)
    return code


def _check(a: argparse.Namespace) -> int:
    from kpinb.checks.lint import format_issues
    from kpinb.runs.preflight import check

    issues, code = check(a.plan, today=a.today)
    if issues:
        _say(format_issues(issues))
    counts = {lv: sum(i.level == lv for i in issues) for lv in ("error", "warning", "info")}
    _say(f"{a.plan}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    return code


def _catalog(a: argparse.Namespace) -> int:
    from kpinb.definitions import catalog

    for m in catalog.search(department=a.department, objective=a.objective, text=a.text):
        flags = "vanity " if m.vanity else ""
        _say(f"{m.id:40} {m.department:17} {m.indicator.value:8} {m.role.value:19} {flags}{m.name}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``kpinb: error: run: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        # "argument --start: 'x' is not a date" reads better as "--start 'x' is not a date"
        message = re.sub(r"^argument (-[\w-]+)(?:/[\w-]+)?: (?=')", r"\1 ", message)
        command = self.prog.removeprefix("kpinb").strip()
        where_ = f"{command}: " if command else ""
        self.exit(2, _printable(f"kpinb: error: {where_}{' '.join(message.split())}. See `{self.prog} --help`.") + "\n")


def _date(text: str) -> str:
    """A YYYY-MM-DD argument (kept as text: the commands pass it on), in the range plans allow."""
    from kpinb.definitions.model import FIRST_DATE, LAST_DATE

    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a date; write it as YYYY-MM-DD") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise argparse.ArgumentTypeError(f"{text!r} is outside {FIRST_DATE.year}-{LAST_DATE.year}")
    return day.isoformat()


def _month(text: str) -> str:
    """A YYYY-MM argument."""
    try:
        return _date(f"{text.strip()}-01")[:7] if len(text.strip()) == 7 else _date("x")
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a month; write it as YYYY-MM") from None


def _today(text: str) -> date:
    return date.fromisoformat(_date(text))


def _count(low: int, high: int) -> Callable[[str], int]:
    """An integer argument between ``low`` and ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low:,} and {high:,}")
        return value

    parse.__name__ = "number"  # argparse names the type in its messages
    return parse


class _pandas_wide:
    def __enter__(self) -> None:
        import pandas as pd

        from kpinb._numbers import plain_number

        self._ctx = pd.option_context("display.width", 200, "display.max_columns", 20,
                                      "display.max_rows", 500, "display.float_format", plain_number)  # fmt: skip
        self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    p = _Parser(prog="kpinb", description="KPIs from objectives to reports.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample-data", help="generate the synthetic sample data")
    s.add_argument("--out", type=Path, default=Path("data/sample"))
    s.add_argument("--rows", type=_count(1, 100_000_000), default=200_000, help="approximate number of order rows")
    s.add_argument("--seed", type=_count(0, 2**32 - 1), default=7)
    s.add_argument("--force", action="store_true", help="regenerate even if up to date")
    s.add_argument(
        "--end", type=_month, default=None,
        help="last month of data, YYYY-MM (default: last month; the tests and stored outputs pin 2025-12)",
    )  # fmt: skip
    s.set_defaults(func=_sample_data)

    c = sub.add_parser("compute", help="compute a plan's metrics and print them")
    c.add_argument("plan", type=Path)
    c.add_argument("--grain", default="month", choices=["day", "week", "month", "quarter", "year"])
    c.add_argument("--by", nargs="*", help="dimension columns")
    c.add_argument("--metrics", nargs="*", help="metric ids (default: the plan's KPIs)")
    c.add_argument("--start", type=_date)
    c.add_argument("--end", type=_date)
    c.add_argument("--csv", type=Path, help="write the table to a CSV file instead of printing")
    _limit_flags(c)
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
    rn.add_argument("--period-end", type=_date, help="judge KPIs on the latest period ended by this date (YYYY-MM-DD)")
    rn.add_argument("--out", type=Path, default=Path("reports"))
    rn.add_argument("--jobs", type=_count(1, 64), default=2, help="notebooks run at once (default 2)")
    rn.add_argument("--show-code", action="store_true", help="keep code cells in the HTML reports")
    rn.add_argument("--plans-dir", type=Path, default=None, help="default: the shipped example plans")
    rn.add_argument("--data-dir", type=Path, default=None, help="look the plans' data files up in this folder")
    rn.add_argument("--grain", default="month", choices=["day", "week", "month", "quarter", "year"])
    rn.add_argument("--timeout", type=_count(1, 7 * 24 * 3600), default=600, help="seconds one notebook cell may run")
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
    al.add_argument("--period-end", type=_date, help="judge the latest period ended by this date (YYYY-MM-DD)")
    al.add_argument("--include-partial", action="store_true",
                    help="also judge a period the data covers only in part (or not yet settled), labelled")  # fmt: skip
    al.add_argument("--data-dir", type=Path, default=None, help="look the plan's data files up in this folder")
    _limit_flags(al)
    al.set_defaults(func=_alerts)

    ck = sub.add_parser(
        "check",
        help="check a plan: SMART criteria, common KPI mistakes and the quality of its data",
        description="Exit status: 0 when there is no error (warnings and infos allowed), 1 when at least "
        "one issue is an error, 2 when the plan file cannot be read.",
    )
    ck.add_argument("plan", type=Path)
    ck.add_argument(
        "--today", type=_today, default=None,
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
    import warnings

    from kpinb.errors import KpinbWarning

    args = parser().parse_args(argv)
    shown_before = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
        if issubclass(category, KpinbWarning):  # one readable line, like an error, not a source location
            _say(f"kpinb: warning: {redact(str(message)).strip()}", file=sys.stderr)
        else:
            shown_before(message, category, *rest, **kw)

    warnings.showwarning = show
    try:
        return int(args.func(args) or 0)
    except KpinbError as e:
        # messages are redacted where they are made; redacting again here costs nothing
        if args.debug:
            import traceback

            print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        else:
            _say(f"kpinb: error: {redact(str(e)).strip()}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no (a full disk, a permission): one line, not a traceback
        if args.debug:
            raise
        where_ = f"{e.filename}: " if getattr(e, "filename", None) else ""
        _say(f"kpinb: error: {where_}{e.strerror or e}. Check the path, its permissions and free space.",
              file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        _say("kpinb: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown_before


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
