"""The error contract: every mistake a user can make raises a kpinb error naming where and the fix.

The CLI, run as users run it (the venv's ``kpinb`` script), prints such an error in one or
two lines starting ``kpinb: error:`` on stderr and exits 2; ``--debug`` shows the traceback.
A database password never appears in a message.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import kpinb
from kpinb import compute, load_plan
from kpinb.data.sources import open_source
from kpinb.data.sources import redact as sources_redact
from kpinb.definitions.model import Metric, Source
from kpinb.definitions.plan import parse_plan
from kpinb.errors import DataError, FormulaError, KpinbError, PlanError, RunError, SourceError, redact

KPINB = Path(sys.executable).with_name("kpinb")  # the console script of the venv running the tests
SECRET = "S3cretPw"
CLOSED = "127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once
URL = f"postgresql://user:{SECRET}@{CLOSED}/db"


# --- the exception types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "builtin"),
    [
        (PlanError, ValueError),
        (FormulaError, ValueError),
        (DataError, ValueError),
        (SourceError, OSError),
        (RunError, RuntimeError),
    ],
)
def test_each_kpinb_error_is_also_the_builtin_kind(kind: type[KpinbError], builtin: type[Exception]) -> None:
    assert issubclass(kind, KpinbError) and issubclass(kind, builtin)
    assert getattr(kpinb, kind.__name__) is kind  # public


# --- user mistakes through the library ------------------------------------------------------

ORDERS = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3"],
        "order_date": pd.to_datetime(["2024-01-05", "2024-02-20", "2024-03-02"]),
        "revenue": [10.0, 20.0, 30.0],
        "status": ["completed"] * 3,
    }
)
GOOD_PLAN = (
    "name: Web\ndepartment: web\nsources:\n  web_sessions: {path: sessions.csv}\nkpis:\n  - metric: bounce_rate\n"
)


def _latin1_csv(tmp: Path) -> Path:
    path = tmp / "orders.csv"
    path.write_bytes(b"order_id,order_date,revenue,status\no\xe91,2024-01-01,10,completed\n")
    return path


def _non_utf8_plan(tmp: Path) -> Path:
    path = tmp / "plan.yml"
    path.write_bytes(b"name: Ventes\ndepartment: sales\nowner: Ren\xe9\n")
    return path


# (what the user does, the error kind, substrings the message must hold: where + fix)
MISTAKES: list[tuple[str, Callable[[Path], Any], type[KpinbError], list[str]]] = [
    ("plan path wrong", lambda tmp: load_plan(tmp / "nope.yml"), PlanError, ["nope.yml", "Check the path"]),
    ("plan is a folder", lambda tmp: load_plan(tmp), PlanError, ["cannot be read", "Check the path"]),
    (
        "plan not UTF-8",
        lambda tmp: load_plan(_non_utf8_plan(tmp)),
        PlanError,
        ["plan.yml:3:", "Save the plan as UTF-8"],
    ),
    (
        "impossible date",
        lambda tmp: parse_plan("name: a\ndepartment: b\nreview: {last: 2025-02-30}\n", "p.yml"),
        PlanError,
        ["p.yml:3: review.last:", "YYYY-MM-DD"],
    ),
    (
        "YAML tag",
        lambda tmp: parse_plan("name: !!python/object/apply:os.system ['true']\n", "p.yml"),
        PlanError,
        ["p.yml:1:", "YAML tags are not allowed", "write a plain value"],
    ),
    ("unknown metric", lambda tmp: compute(["bounce_rat"]), PlanError, ["'bounce_rat'", "Did you mean 'bounce_rate'"]),
    (
        "data file missing",
        lambda tmp: compute(["average_order_value"], sources={"orders": str(tmp / "nope.csv")}),
        SourceError,
        ["source 'orders'", "nope.csv", "Fix `path:`"],
    ),
    (
        "start is not a date",
        lambda tmp: compute(["average_order_value"], sources={"orders": ORDERS}, start="last tuesday"),
        DataError,
        ["start 'last tuesday'", "YYYY-MM-DD"],
    ),
    (
        "CSV not UTF-8",
        lambda tmp: compute(["average_order_value"], sources={"orders": str(_latin1_csv(tmp))}),
        SourceError,
        ["source 'orders'", "orders.csv", "not UTF-8", "save it as UTF-8"],
    ),
    (
        "two DataFrame columns with one name",
        lambda tmp: compute(
            ["average_order_value"],
            sources={"orders": ORDERS.set_axis(["order_id", "order_date", "revenue", "revenue"], axis=1)},
        ),
        DataError,
        ["source 'orders'", "'revenue'", "Rename or drop one"],
    ),
    (
        "text in a numeric column",
        lambda tmp: compute(["average_order_value"], sources={"orders": ORDERS.assign(revenue=["1", "n/a", "2"])}),
        DataError,
        ["source 'orders'", "column 'revenue'", "Convert the column"],
    ),
    (
        "dates in year 9999",
        lambda tmp: compute(
            ["average_order_value"],
            sources={
                "orders": ORDERS.assign(order_date=[pd.Timestamp("2024-01-01"), pd.Timestamp("9999-12-31"), pd.NaT])
            },
        ),
        DataError,
        ["source 'orders'", "'order_date'", "9999", "Fix or remove those rows"],
    ),
    (
        "formula mixing text and numbers",
        lambda tmp: compute(
            [Metric(id="m", name="M", source="orders", expr="sum(coalesce(revenue, 'none'))")],
            sources={"orders": ORDERS},
        ),
        FormulaError,
        ["metric 'm'", "coalesce", "Use values of one kind"],
    ),
    (
        "filter that is not a condition",
        lambda tmp: compute(
            [Metric(id="m", name="M", source="orders", expr="count(*)", where="revenue")], sources={"orders": ORDERS}
        ),
        FormulaError,
        ["metric 'm'", "`where:`", "true/false"],
    ),
    (
        "aggregate of a constant",
        lambda tmp: compute([Metric(id="m", name="M", source="orders", expr="sum(1)")], sources={"orders": ORDERS}),
        FormulaError,
        ["metric 'm'", "sum() aggregates a constant", "count(*)"],
    ),
]


@pytest.mark.parametrize(("what", "do", "kind", "needles"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_user_mistake_gives_a_kpinb_error_with_where_and_fix(
    tmp_path: Path, what: str, do: Callable[[Path], Any], kind: type[KpinbError], needles: list[str]
) -> None:
    with pytest.raises(KpinbError) as err:
        do(tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, kind), f"{type(err.value).__name__}: {msg}"
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    assert "\n" not in msg.strip(), msg


# --- the command line -----------------------------------------------------------------------


def kpinb_cli(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert KPINB.exists(), f"no console script at {KPINB}; install the package into the venv (make install)"
    return subprocess.run(
        [str(KPINB), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def assert_user_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one or two lines on stderr starting `kpinb: error:`, no traceback."""
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert 1 <= len(lines) <= 2, out.stderr
    assert lines[0].startswith("kpinb: error: "), out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, f"{needle!r} not in {out.stderr!r}"


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    (tmp_path / "bad.yml").write_text("name: x\ndepartment: web\nkpis:\n  - metric: bounce_rat\n")
    (tmp_path / "missing_data.yml").write_text(GOOD_PLAN)
    (tmp_path / "sentinel.yml").write_text(f"name: !!python/object/apply:os.system ['touch {tmp_path / 'HACKED'}']\n")
    (tmp_path / "db.yml").write_text(
        f"name: x\ndepartment: web\nsources:\n  web_sessions: {{url: '{URL}', table: web_sessions}}\n"
        "kpis:\n  - metric: bounce_rate\n"
    )
    return tmp_path


@pytest.mark.slow
def test_cli_bad_plan_is_one_line_exit_2_and_debug_shows_the_traceback(plans: Path) -> None:
    out = kpinb_cli("compute", plans / "bad.yml")
    assert_user_error(out, f"{plans / 'bad.yml'}:4: kpis[0].metric: unknown metric 'bounce_rat'", "Did you mean")
    debug = kpinb_cli("--debug", "compute", plans / "bad.yml")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "PlanError" in debug.stderr


@pytest.mark.slow
def test_cli_missing_data_file_names_source_path_and_fix(plans: Path) -> None:
    out = kpinb_cli("compute", plans / "missing_data.yml")
    assert_user_error(out, "source 'web_sessions'", str(plans / "sessions.csv"), "Fix `path:`")


@pytest.mark.slow
def test_cli_yaml_tag_is_refused_and_never_run(plans: Path) -> None:
    assert_user_error(kpinb_cli("compute", plans / "sentinel.yml"), "YAML tags are not allowed")
    assert not (plans / "HACKED").exists()


@pytest.mark.slow
def test_cli_catalog_works() -> None:
    out = kpinb_cli("catalog", "--department", "web")
    assert out.returncode == 0 and out.stderr == ""
    assert any(line.startswith("bounce_rate ") for line in out.stdout.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--start", "garbage"], ["start 'garbage'", "YYYY-MM-DD"]),
        (["--csv", "/proc/kpinb/out.csv"], ["/proc/kpinb/out.csv"]),
    ],
    ids=["start-not-a-date", "csv-not-writable"],
)
def test_cli_bad_arguments_are_user_errors(plans: Path, args: list[str], needles: list[str]) -> None:
    sessions = pd.DataFrame({"session_id": ["s"], "session_start": ["2024-01-01"], "bounced": [True]})
    sessions.to_csv(plans / "sessions.csv", index=False)
    assert_user_error(kpinb_cli("compute", plans / "missing_data.yml", *args), *needles)


@pytest.mark.slow
def test_cli_sample_data_with_no_rows_is_a_user_error(tmp_path: Path) -> None:
    out = kpinb_cli("sample-data", "--rows", "0", "--out", tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]


# --- secrets ----------------------------------------------------------------------------------

URLS = [
    f"postgresql://user:{SECRET}@db.example.com:5432/shop",
    f"postgresql://:{SECRET}@db/x",  # no user name
    f"postgresql://user:{SECRET}@[::1]:5432/x",
    f"postgresql://us%40er:{SECRET}@db/x",
    f"postgresql://user:S3c%40ret%2FPw{SECRET}@db/x",  # percent-encoded @ and /
    f"postgresql://user:p@ss/w:rd{SECRET}@db/x",  # written unencoded
    f"postgresql://db/x?user=u&password={SECRET}",
    f"postgresql://db/x?sslmode=require&sslpassword={SECRET}",
    f"host=db user=u password={SECRET} dbname=x",
    f"cannot connect to 'postgresql://user:{SECRET}@db/x': refused",
]


@pytest.mark.parametrize("redactor", [redact, sources_redact], ids=["errors.redact", "sources.redact"])
@pytest.mark.parametrize("url", URLS)
def test_redact_hides_the_password(redactor: Callable[[str], str], url: str) -> None:
    shown = redactor(url)
    assert SECRET not in shown and "***" in shown, shown


def test_redact_keeps_urls_without_a_password() -> None:
    for url in ["postgresql://db:5432/shop", "postgresql://user@db/shop", "duckdb:///data/shop.duckdb"]:
        assert redact(url) == url


def _connect_error(url: str, env: dict[str, str] | None = None) -> str:
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        started = time.monotonic()
        with pytest.raises(SourceError) as err:
            open_source("web_sessions", Source(url=url, table="web_sessions"))
        assert time.monotonic() - started < 30
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return str(err.value)


@pytest.mark.parametrize(
    ("url", "env"),
    [
        (URL, None),
        (f"postgresql://user:${{KPINB_TEST_PW}}@{CLOSED}/db", {"KPINB_TEST_PW": f"{SECRET}/@:x"}),
        (f"postgresql://:{SECRET}@{CLOSED}/db", None),
        (f"postgresql://user:{SECRET}/x@{CLOSED}/db", None),
        (f"postgresql://{CLOSED}/db?user=u&password={SECRET}", None),
        (f"postgresql://user:{SECRET}@{CLOSED}/db?sslpassword={SECRET}", None),
    ],
    ids=["plain", "env-var", "no-user", "unencoded-slash", "query-password", "sslpassword"],
)
def test_unreachable_database_error_hides_the_password(url: str, env: dict[str, str] | None) -> None:
    pytest.importorskip("psycopg")
    msg = _connect_error(url, env)
    assert SECRET not in msg, msg
    assert msg.startswith("source 'web_sessions': cannot connect to postgresql://") and "Check the URL" in msg, msg


@pytest.mark.slow
def test_cli_unreachable_database_hides_the_password_even_with_debug(plans: Path) -> None:
    pytest.importorskip("psycopg")
    out = kpinb_cli("compute", plans / "db.yml")
    assert_user_error(out, "source 'web_sessions'", "cannot connect")
    assert SECRET not in out.stderr
    debug = kpinb_cli("--debug", "compute", plans / "db.yml")
    assert "Traceback" in debug.stderr and SECRET not in debug.stderr, debug.stderr[-3000:]


def test_plan_with_a_url_in_the_wrong_place_hides_the_password() -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(f"name: a\ndepartment: b\nsources:\n  orders: '{URL}'\n", "p.yml")
    assert SECRET not in str(err.value) and "postgresql://user:***@" in str(err.value)


def test_manifest_inputs_never_hold_the_password(plans: Path) -> None:
    # the batch manifest lists each plan's inputs: a database source shows its URL without the password,
    # and a plan that cannot be loaded shows its error (redacted like every message)
    from kpinb.runs.inputs import plan_inputs

    (plans / "db_bad.yml").write_text(
        f"name: x\ndepartment: web\nsources:\n  web_sessions: {{url: '{URL}', table: web_sessions}}\n"
        f"kpis:\n  - metric: bounce_rat\n    owner: '{URL}'\n"
    )
    good = json.dumps(plan_inputs(plans / "db.yml", None))
    bad = json.dumps(plan_inputs(plans / "db_bad.yml", None))
    assert SECRET not in good and "postgresql://user:***@" in good, good
    assert SECRET not in bad and "bounce_rat" in bad, bad


def test_alerts_command_on_an_unreachable_database_hides_the_password(plans: Path) -> None:
    pytest.importorskip("psycopg")
    from kpinb.cli import main

    for argv in (["alerts", "--plan", str(plans / "db.yml")], ["alerts", "--json", "--plan", str(plans / "db.yml")]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(argv)
        assert code == 2 and SECRET not in err.getvalue() + out.getvalue(), err.getvalue()
        assert err.getvalue().startswith("kpinb: error: source 'web_sessions': cannot connect"), err.getvalue()
