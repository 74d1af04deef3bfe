"""The same plan on PostgreSQL and on Apache Spark gives the same numbers as on DuckDB/Parquet.

The sample data (~20,000 order lines) is written as Parquet, loaded into a PostgreSQL schema
of its own and registered as Spark tables; every catalog metric is then computed through
the engine on each engine and compared with DuckDB on the Parquet files (rtol 1e-9). Every
aggregate, with and without ``where:``, is also compared with values computed by hand in pandas
(tests/aggregate_support.py), so a bug in kpinb's DuckDB path cannot hide on both sides.

PostgreSQL: ``KPINB_TEST_PG_URL`` (postgresql://user:password@host:port/db) if set, else a
throw-away server started with scripts/start_postgres.sh. Spark: pyspark in local mode
(needs Java 17), one session for the whole test session; deselect with ``-m "not spark"``.
With CI=true nothing here skips: a missing server, Java or driver is a failure.

Medians: DuckDB (quantile_cont), PostgreSQL (percentile_cont) and Spark (percentile) all
interpolate between the two middle values, so medians are equal too, and asserted so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aggregate_support
import calendar_support
import db_support
import numpy as np
import pandas as pd
import pytest
import yaml

from kpinb import KpinbError, SourceError, compute, load_plan
from kpinb.data.sources import close_connections
from kpinb.definitions import catalog
from kpinb.definitions.model import Metric, Source
from kpinb.engine.query import queries

# pyspark's toPandas on pandas 3 (not ours)
pytestmark = pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")

ROWS = 20_000
SEED = 7
ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD_VAR = "KPINB_TEST_PG_PASSWORD"

# Constructs the catalog does not use (or uses little) that backends tend to differ on.
EXTRA_METRICS = [
    Metric(id="median_completed_revenue", name="m", source="orders", expr="median(revenue)",
           where="status = 'completed'"),
    Metric(id="median_quantity", name="m", source="orders", expr="median(quantity)"),
    Metric(id="new_customer_share", name="m", source="orders", expr="sum(is_new_customer) / count(*)"),
    Metric(id="new_customers_distinct", name="m", source="orders",
           expr="count_distinct(case when is_new_customer then customer_id end)", where="status != 'cancelled'"),
    Metric(id="win_rate_closed", name="m", source="opportunities", expr="avg(is_won)", where="closed_date is not null"),
    Metric(id="deal_spread", name="m", source="opportunities", expr="min(deal_value) / max(deal_value)",
           where="is_won and deal_value > 1000"),
    Metric(id="won_value_per_lead", name="m", source="opportunities",
           expr="sum(case when is_won then deal_value else 0 end) / nullif(count(*), 0)"),
    Metric(id="median_engagement_stayers", name="m", source="employees", expr="median(engagement_score)",
           where="not left"),
    Metric(id="any_won", name="m", source="opportunities", expr="max(is_won)"),
]  # fmt: skip


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where these tests must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the database tests must run, not skip)")
    pytest.skip(reason)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample data as Parquet files, one per canonical source."""
    from kpinb.data import sample as sample_data

    return sample_data.generate(tmp_path_factory.mktemp("db-sample"), rows=ROWS, seed=SEED)


@pytest.fixture(scope="session")
def expected(sample: dict[str, Path]) -> Any:
    """DuckDB on the Parquet files: the reference every other engine is compared with."""
    cache: dict[Any, Any] = {}

    def get(ids: tuple[str, ...] | tuple[Metric, ...], grain: str = "month", by: tuple[str, ...] = ()) -> Any:
        key = (ids, grain, by)
        if key not in cache:
            cache[key] = compute(list(ids), sources={n: str(p) for n, p in sample.items()}, grain=grain, by=list(by))
        return cache[key]

    return get


@dataclass
class Postgres:
    """A PostgreSQL schema holding the sample data; URLs name the password only as ${VAR}."""

    user: str
    password: str
    host: str
    port: int
    dbname: str
    schema: str
    server_url: str  # with the password: for set-up only, never given to kpinb
    rows: dict[str, int] = field(default_factory=dict)

    def url(self, password: str = f"${{{PASSWORD_VAR}}}", schema: bool = True, **params: str) -> str:
        auth = f"{self.user}:{password}" if password else self.user
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        return (
            f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}" + (f"/{self.schema}" if schema else "") + query
        )

    def source(self, table: str, **params: str) -> Source:
        return Source(url=self.url(**params), table=table)

    def connect(self) -> Any:
        return db_support.connect(self.server_url)


@pytest.fixture(scope="session")
def pg_server() -> Any:
    """The URL of a PostgreSQL server: KPINB_TEST_PG_URL, or a throw-away local one."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed: pip install -e '.[test]'")
    if os.environ.get("KPINB_TEST_PG_URL"):
        yield os.environ["KPINB_TEST_PG_URL"]
        return
    why = db_support.postgres_available()
    if why:
        unavailable(why)
    with db_support.local_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def pg(pg_server: str, sample: dict[str, Path]) -> Any:
    """The sample data in a schema of its own (several sessions may share one server)."""
    parts = db_support.url_parts(pg_server)
    schema = f"kpinb_test_{os.getpid()}_{secrets.token_hex(3)}"
    db = Postgres(parts["user"], parts["password"], parts["host"], parts["port"], parts["dbname"], schema, pg_server)
    db.rows = db_support.load_parquet(pg_server, sample, schema=schema)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_VAR, db.password)
        yield db
        close_connections()
        with db.connect() as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def spark(sample: dict[str, Path]) -> Any:
    """A local Spark session (2 cores, no UI) with every sample table registered."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        unavailable("Java is not installed (Spark needs Java 17: apt-get install -y openjdk-17-jre-headless)")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        unavailable("pyspark is not installed: pip install -e '.[test]'")
    import ibis

    session = db_support.spark_session()
    con = ibis.pyspark.connect(session)
    tables = {name: con.read_parquet(str(path), table_name=name) for name, path in sample.items()}
    yield SimpleNamespace(session=session, con=con, tables=tables)
    close_connections()
    session.stop()


ENGINES = [pytest.param("postgres", id="postgres"), pytest.param("spark", id="spark", marks=pytest.mark.spark)]


@pytest.fixture(params=ENGINES)
def engine_sources(request: pytest.FixtureRequest, sample: dict[str, Path]) -> dict[str, Any]:
    """Every canonical source on the engine under test: PostgreSQL tables or Spark tables."""
    if request.param == "postgres":
        db = request.getfixturevalue("pg")
        return {name: db.source(name) for name in sample}
    return dict(request.getfixturevalue("spark").tables)


# --- the same numbers on every engine ---------------------------------------------------------


@pytest.mark.parametrize("by", [(), ("region",)], ids=["month", "month-by-region"])
def test_every_catalog_metric_gives_the_same_numbers(engine_sources: dict[str, Any], expected: Any, by: tuple) -> None:
    ids = tuple(catalog.metrics()) if not by else tuple(db_support.metrics_with_dimension("region"))
    if not by:
        assert len(ids) == len(catalog.metrics())
    else:
        assert len(ids) >= 50  # every metric whose sources have a region
    want = expected(ids, "month", by)
    got = compute(list(ids), sources=engine_sources, grain="month", by=list(by))
    assert set(got["metric"]) == set(ids)
    assert got["value"].notna().mean() > 0.9  # real numbers, not a frame of NaN
    problems = db_support.differences(want, got, list(by))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("grain", ["week", "quarter"])
def test_medians_booleans_and_filters_give_the_same_numbers(
    engine_sources: dict[str, Any], expected: Any, grain: str
) -> None:
    want = expected(tuple(EXTRA_METRICS), grain)
    got = compute(EXTRA_METRICS, sources=engine_sources, grain=grain)
    assert got.groupby("metric")["value"].count().min() > 0
    problems = db_support.differences(want, got, [])
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def small_orders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """tests/aggregate_support.py's order lines and their Parquet file."""
    df = aggregate_support.orders()
    return df, aggregate_support.write_parquet(df, tmp_path_factory.mktemp("small-orders") / "orders.parquet")


@pytest.mark.parametrize("by", [(), ("region",)], ids=["month", "month-by-region"])
@pytest.mark.parametrize("engine", ENGINES)
def test_each_aggregate_with_where_matches_pandas(
    request: pytest.FixtureRequest, engine: str, by: tuple, small_orders: tuple[Any, Path]
) -> None:
    """Every aggregate, with and without `where:`, against values computed by hand in pandas
    (not against DuckDB, which would hide a bug shared by both engines)."""
    df, path = small_orders
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, {"small_orders": path}, schema=db.schema)
        source: Any = db.source("small_orders")
    else:
        source = request.getfixturevalue("spark").con.read_parquet(str(path), table_name="small_orders")
    ms = aggregate_support.metrics() + aggregate_support.metrics(where=None)
    got = compute(ms, sources={"orders": source}, grain="month", by=list(by))
    want = pd.concat(
        [aggregate_support.expected(df, where=True, by=by), aggregate_support.expected(df, where=False, by=by)]
    )
    assert len(want) == len(ms) * 6 * (2 if by else 1)
    problems = aggregate_support.mismatches(want, got, by)
    assert not problems, "\n".join(problems)


def test_an_ibis_table_is_a_source_and_the_query_runs_on_its_backend(sample: dict[str, Path], expected: Any) -> None:
    import ibis

    con = ibis.duckdb.connect()
    tables = {name: con.read_parquet(str(path), table_name=name) for name, path in sample.items()}
    ids = tuple(catalog.metrics())
    problems = db_support.differences(expected(ids), compute(list(ids), sources=tables), [])
    assert not problems, "\n".join(problems)


def test_an_environment_password_with_url_characters_is_encoded_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import unquote_plus, urlsplit

    from kpinb.data.sources import _expand_env, redact

    secret = "p@ss/w:rd+%?#"
    monkeypatch.setenv("KPINB_TEST_SECRET", secret)
    monkeypatch.setenv("KPINB_TEST_HOST", "db.example.com")
    url, values = _expand_env("postgresql://ana:${KPINB_TEST_SECRET}@${KPINB_TEST_HOST}:5433/sales", "orders")
    parts = urlsplit(url)
    assert unquote_plus(parts.password or "") == secret  # what ibis hands to the driver
    assert (parts.hostname, parts.port, parts.path) == ("db.example.com", 5433, "/sales")
    assert secret in values
    assert secret not in redact(url) and "ana:***@db.example.com" in redact(url)
    assert redact("postgresql://ana@h/db?sslmode=require&password=hunter2") == (
        "postgresql://ana@h/db?sslmode=require&password=***"
    )
    assert redact("postgresql://ana:${PGPASS}@h/db") == "postgresql://ana:${PGPASS}@h/db"  # a name, not a secret
    monkeypatch.delenv("KPINB_TEST_SECRET")
    with pytest.raises(SourceError, match=r"\$\{KPINB_TEST_SECRET\}, which is not set"):
        _expand_env("postgresql://ana:${KPINB_TEST_SECRET}@h/db", "orders")


# --- PostgreSQL: plans, credentials, errors, push-down ----------------------------------------


def _sales_plan_on(tmp_path: Path, sources: dict[str, dict[str, str]]) -> Path:
    """templates/plans/sales.yml with its sources replaced (and no benchmark file)."""
    plan = yaml.safe_load((ROOT / "templates" / "plans" / "sales.yml").read_text(encoding="utf-8"))
    plan["sources"] = sources
    plan.pop("benchmarks", None)
    path = tmp_path / "sales.yml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def _sales_on_parquet(sample: dict[str, Path]) -> Any:
    plan = load_plan(ROOT / "templates" / "plans" / "sales.yml")
    return compute(plan, sources={n: str(p) for n, p in sample.items() if n in plan.sources})


def test_a_plan_file_runs_on_postgres_with_the_password_from_the_environment(
    pg: Postgres, sample: dict[str, Path], tmp_path: Path
) -> None:
    sources = {
        name: {"url": pg.url(), "table": name} for name in ("subscriptions", "opportunities", "sales_activities")
    }
    sources["orders"] = {"url": pg.url(), "query": "SELECT * FROM orders WHERE order_id IS NOT NULL"}
    path = _sales_plan_on(tmp_path, sources)
    text = path.read_text(encoding="utf-8")
    assert f"${{{PASSWORD_VAR}}}" in text and pg.password not in text

    plan = load_plan(path)
    got = compute(plan)
    problems = db_support.differences(_sales_on_parquet(sample), got, [])
    assert not problems, "\n".join(problems)
    sql = "\n".join(queries(plan).values())
    assert "GROUP BY" in sql and pg.password not in sql
    assert pg.password not in repr(plan) and pg.password not in got.to_csv()


def test_libpq_environment_supplies_a_password_the_url_leaves_out(
    pg: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", pg.password)
    got = compute(["orders_count"], sources={"orders": Source(url=pg.url(password=""), table="orders")})
    want = compute(["orders_count"], sources={"orders": pg.source("orders")})
    assert not db_support.differences(want, got, [])


def test_a_wrong_password_is_a_source_error_that_does_not_show_it(
    pg: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"not-the-password-{secrets.token_hex(4)}"
    monkeypatch.setenv(PASSWORD_VAR, wrong)
    with pytest.raises(SourceError) as e:
        compute(["orders_count"], sources={"orders": pg.source("orders")})
    msg = str(e.value)
    assert "source 'orders'" in msg and "cannot connect" in msg and "password authentication failed" in msg
    assert f"${{{PASSWORD_VAR}}}" in msg  # names the variable to fix, not its value
    assert wrong not in msg and pg.password not in msg


def test_an_unreachable_server_is_a_source_error(pg: Postgres) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = Source(url=pg.url().replace(f":{pg.port}/", f":{port}/"), table="orders")
    with pytest.raises(SourceError) as e:
        compute(["orders_count"], sources={"orders": spec})
    msg = str(e.value)
    assert "source 'orders'" in msg and "cannot connect" in msg and f":{port}/" in msg
    assert pg.password not in msg


def test_a_missing_table_is_a_source_error_listing_the_tables_there(pg: Postgres) -> None:
    with pytest.raises(SourceError) as e:
        compute(["orders_count"], sources={"orders": pg.source("order_lines")})
    msg = str(e.value)
    assert "source 'orders'" in msg and "no table 'order_lines'" in msg and "orders" in msg.split("Tables there:")[1]
    assert pg.password not in msg


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM orders; DROP TABLE keep_me",
        "WITH gone AS (DELETE FROM keep_me RETURNING *) SELECT * FROM orders",
        "SELECT * INTO keep_me_copy FROM keep_me",
    ],
    ids=["second-statement", "writing-with", "select-into"],
)
def test_a_query_that_writes_is_refused_before_it_reaches_the_database(pg: Postgres, query: str) -> None:
    with pg.connect() as con:
        con.execute(f'CREATE TABLE IF NOT EXISTS "{pg.schema}".keep_me AS SELECT 1 AS x')
        with pytest.raises(SourceError, match="single read-only SELECT"):
            compute(["orders_count"], sources={"orders": Source(url=pg.url(), query=query)})
        assert con.execute(f'SELECT count(*) FROM "{pg.schema}".keep_me').fetchone()[0] == 1
        tables = con.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg.schema,)).fetchall()
        assert ("keep_me_copy",) not in tables
    ok = compute(["orders_count"], sources={"orders": Source(url=pg.url(), query="select * from orders;")})
    assert ok["value"].sum() > 0


def test_a_select_calling_a_function_that_writes_fails_in_a_read_only_session(pg: Postgres) -> None:
    """The syntax check cannot see what a function does: the session itself is read-only."""
    with pg.connect() as con:
        con.execute(f'CREATE TABLE IF NOT EXISTS "{pg.schema}".side_effects (at timestamptz)')
        con.execute(
            f'CREATE OR REPLACE FUNCTION "{pg.schema}".bump() RETURNS int LANGUAGE sql VOLATILE AS '
            f'$$ INSERT INTO "{pg.schema}".side_effects VALUES (now()); SELECT 1 $$'
        )
        con.commit()
        query = f'SELECT o.*, "{pg.schema}".bump() AS b FROM orders o'
        with pytest.raises(KpinbError, match="read-only"):
            compute(["orders_count"], sources={"orders": Source(url=pg.url(), query=query)})
        assert con.execute(f'SELECT count(*) FROM "{pg.schema}".side_effects').fetchone()[0] == 0
        # and a session cannot be switched back to writing from inside a query
        flip = "SELECT o.*, set_config('default_transaction_read_only', 'off', false) AS f FROM orders o"
        with pytest.raises(SourceError, match="single read-only SELECT"):
            compute(["orders_count"], sources={"orders": Source(url=pg.url(), query=flip)})


def test_a_plans_statement_timeout_cancels_a_slow_query(pg: Postgres, tmp_path: Path) -> None:
    plan = tmp_path / "slow.yml"
    plan.write_text(
        "name: Slow\ndepartment: sales\nlimits: {statement_timeout_s: 1}\nsources:\n  orders:\n"
        f"    url: {pg.url()}\n    query: SELECT o.* FROM orders o, pg_sleep(5) AS s\n"
        "kpis:\n  - {metric: orders_count, owner: Me}\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    with pytest.raises(KpinbError, match="statement_timeout_s"):
        compute(load_plan(plan), grain="month")
    assert time.monotonic() - started < 4.5


def test_one_connection_serves_every_metric_and_source(pg: Postgres) -> None:
    app = f"kpinb_reuse_{secrets.token_hex(4)}"
    specs = {name: pg.source(name, application_name=app) for name in ("orders", "subscriptions", "opportunities")}
    ids = ["orders_count", "average_order_value", "monthly_recurring_revenue", "sales_conversion_rate"]
    for _ in range(3):
        compute(ids, sources=specs)
        compute(ids, sources=specs, by=["region"])
    with pg.connect() as con:
        n = con.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0]
    assert n == 1


def _statements(con: Any) -> dict[int, tuple[int, int, str]]:
    rows = con.execute(
        "SELECT queryid, calls, rows, query FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_aggregates_run_in_postgres_and_only_aggregates_come_back(pg: Postgres) -> None:
    """pg_stat_statements counts the rows each statement returned: the grouped result, never
    the order lines (scripts/start_postgres.sh loads the extension)."""
    with pg.connect() as con:
        has = con.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()[0]
        if not has:
            unavailable("pg_stat_statements is not installed in the test database (see scripts/start_postgres.sh)")
        before = _statements(con)
        ids = [mid for mid, m in catalog.metrics().items() if m.source == "orders"]
        got = compute(ids, sources={"orders": pg.source("orders")}, by=["region"])
        time.sleep(0.2)  # statistics are flushed when each statement ends; be generous
        after = _statements(con)

    ran = {}
    for qid, (calls, rows, text) in after.items():
        c0, r0, _ = before.get(qid, (0, 0, text))
        if calls > c0 and '"orders"' in text:
            ran[text] = (calls - c0, rows - r0)
    assert ran, "no statement on the orders table was recorded"
    groups = got[["period_start", "region"]].drop_duplicates()
    for text, (calls, rows) in ran.items():
        assert calls == 1
        if "GROUP BY" not in text.upper():  # the size estimate (max_result_rows) or the value check: one row
            assert rows == 1 and any(f in text.upper() for f in ("MIN(", "BOOL_OR(", "COUNT(DISTINCT")), text[:500]
            continue
        assert rows <= len(groups)  # one row per month and region
    assert sum(rows for _, rows in ran.values()) < pg.rows["orders"] / 100


# --- Spark through a plan file ----------------------------------------------------------------


@pytest.mark.spark
def test_a_plan_file_runs_on_spark(spark: Any, sample: dict[str, Path], tmp_path: Path) -> None:
    """`url: pyspark://` is the running Spark session; `table:` names a table in its catalog
    and `query:` may read files in place (Spark SQL's parquet.`path`)."""
    sources = {
        name: {"url": "pyspark://", "table": name} for name in ("subscriptions", "opportunities", "sales_activities")
    }
    sources["orders"] = {"url": "pyspark://", "query": f"SELECT * FROM parquet.`{sample['orders']}`"}
    got = compute(load_plan(_sales_plan_on(tmp_path, sources)))
    problems = db_support.differences(_sales_on_parquet(sample), got, [])
    assert not problems, "\n".join(problems)


# --- the plan's calendar: time zone, week start, fiscal year ------------------------------------


@pytest.fixture(scope="session")
def calendar_orders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """tests/calendar_support.py's instants (a UTC timestamp column) and their Parquet file."""
    df = calendar_support.events()
    return df, calendar_support.write_parquet(df, tmp_path_factory.mktemp("calendar") / "orders.parquet")


@pytest.mark.parametrize("grain", ["day", "week", "quarter", "year"])
@pytest.mark.parametrize("engine", ENGINES)
def test_time_zones_weeks_and_fiscal_years_give_the_same_periods(
    request: pytest.FixtureRequest, engine: str, grain: str, calendar_orders: tuple[Any, Path]
) -> None:
    """Each calendar of tests/calendar_support.py against pandas' own conversion and periods."""
    df, path = calendar_orders
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, {"calendar_orders": path}, schema=db.schema)
        source: Any = db.source("calendar_orders")
    else:
        source = request.getfixturevalue("spark").con.read_parquet(str(path), table_name="calendar_orders")
    for name, cal in calendar_support.CALENDARS.items():
        got = compute(calendar_support.metrics(), sources={"orders": source}, grain=grain, calendar=cal)
        problems = calendar_support.mismatches(calendar_support.expected(df, grain, cal), got)
        assert not problems, f"{name}:\n" + "\n".join(problems[:10])


# --- computed columns (`derive:`) ----------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_derived_columns_give_the_same_numbers_as_pandas(
    request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """tests/test_derive.py's housing export (year and month, no date) on PostgreSQL and Spark."""
    import test_derive

    df = test_derive.houses()
    path = tmp_path_factory.mktemp("houses") / "houses.parquet"
    df.to_parquet(path, index=False)
    declared = {"time": "sold_month", "row_covers": "month", "derive": test_derive.DERIVE}
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, {"houses": path}, schema=db.schema)
        source = Source(url=db.url(), table="houses", **declared)
    else:
        request.getfixturevalue("spark").con.read_parquet(str(path), table_name="houses")
        source = Source(url="pyspark://", table="houses", **declared)
    got = compute(test_derive.METRICS, sources={"houses": source}, grain="quarter", by=["area"])
    pd.testing.assert_series_equal(
        test_derive._got(got), test_derive.expected(df, "quarter"), check_names=False, rtol=1e-9
    )


# --- windows: trailing, cumulative, to-date ------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_windows_give_the_rows_of_each_window_on_every_engine(
    request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """tests/window_support.py's windows (exact distinct counts, medians) on PostgreSQL and Spark."""
    import window_support

    df = window_support.orders()
    path = tmp_path_factory.mktemp("window-orders") / "orders.parquet"
    df.to_parquet(path, index=False)
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, {"window_orders": path}, schema=db.schema)
        source: Any = db.source("window_orders")
    else:
        source = request.getfixturevalue("spark").con.read_parquet(str(path), table_name="window_orders")
    got = compute(window_support.METRICS, sources={"orders": source}, by=["region"])
    months = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
    pd.testing.assert_series_equal(
        window_support.got(got, "region"), window_support.expected(df, months, "region"), check_names=False, rtol=1e-9
    )


# --- joins to lookups ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_joins_give_the_same_numbers_on_every_engine(
    request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """tests/test_joins.py's orders and customers, joined on PostgreSQL and Spark."""
    import test_joins

    folder = tmp_path_factory.mktemp("joins")
    files = {"join_orders": folder / "orders.parquet", "join_customers": folder / "customers.parquet"}
    test_joins.orders().to_parquet(files["join_orders"], index=False)
    test_joins.customers().to_parquet(files["join_customers"], index=False)
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, files, schema=db.schema)
        url = db.url()
    else:
        con = request.getfixturevalue("spark").con
        for name, path in files.items():
            con.read_parquet(str(path), table_name=name)
        url = "pyspark://"
    sources = {
        "orders": Source(url=url, table="join_orders", time="order_date", join={"customers": "customer_id"}),
        "customers": Source(url=url, table="join_customers"),
    }
    metric = Metric(id="revenue", name="Revenue", source="orders", expr="sum(revenue)")
    got = compute([metric], sources=sources, by=["segment"]).dropna(subset=["value"])
    values = got.set_index(["period_start", "segment"])["value"].sort_index()
    want = test_joins.orders().merge(test_joins.customers()[["customer_id", "segment"]], how="left")
    want = want.groupby([want["order_date"].dt.to_period("M").dt.start_time.rename("period_start"), "segment"],
                        dropna=False)
    pd.testing.assert_series_equal(values, want["revenue"].sum().sort_index(), check_names=False)


# --- snapshots -----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_a_table_without_dates_is_a_snapshot_on_every_engine(
    request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """tests/test_snapshots.py's HR export as a database table read `as_of:` a date."""
    import test_snapshots

    df = test_snapshots.staff(2)
    path = tmp_path_factory.mktemp("staff") / "staff.parquet"
    df.to_parquet(path, index=False)
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, {"snap_staff": path}, schema=db.schema)
        url = db.url()
    else:
        request.getfixturevalue("spark").con.read_parquet(str(path), table_name="snap_staff")
        url = "pyspark://"
    source = Source(url=url, table="snap_staff", as_of="2025-06-30", dimensions=("department",))
    got = compute(test_snapshots.METRICS, sources={"staff": source}, grain="quarter", by=["department"])
    pd.testing.assert_series_equal(
        test_snapshots.got(got, "department"), test_snapshots.expected({"2025-06-30": df}, "department"),
        check_names=False, rtol=1e-12,
    )  # fmt: skip


# --- first events and conversions ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_first_events_and_conversions_give_the_same_numbers_on_every_engine(
    request: pytest.FixtureRequest, engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """tests/test_cohorts.py's new customers (a window per customer) and 30-day conversions."""
    import test_cohorts

    folder = tmp_path_factory.mktemp("cohorts")
    leads, customers = test_cohorts.leads_and_customers()
    files = {"co_orders": folder / "o.parquet", "co_leads": folder / "l.parquet", "co_customers": folder / "c.parquet"}
    orders = test_cohorts.orders()
    for frame, name in ((orders, "co_orders"), (leads, "co_leads"), (customers, "co_customers")):
        frame.to_parquet(files[name], index=False)
    if engine == "postgres":
        db = request.getfixturevalue("pg")
        db_support.load_parquet(db.server_url, files, schema=db.schema)
        url = db.url()
    else:
        con = request.getfixturevalue("spark").con
        for name, path in files.items():
            con.read_parquet(str(path), table_name=name)
        url = "pyspark://"
    sources = {
        "orders": Source(url=url, table="co_orders", time="order_date", derive=test_cohorts.FIRST),
        "leads": Source(url=url, table="co_leads", time="created_at", join={"customers": "email"},
                        derive=test_cohorts.CONVERTED),
        "customers": Source(url=url, table="co_customers"),
    }  # fmt: skip
    cohorts = compute(test_cohorts.COHORT_METRICS, sources=sources)
    pd.testing.assert_series_equal(
        test_cohorts.got(cohorts), test_cohorts.expected_cohorts(orders), check_names=False, rtol=1e-9
    )
    conversion = compute([test_cohorts.CONVERSION], sources=sources).set_index("period_start")["value"]
    want = test_cohorts.expected_conversion(leads, customers)
    assert np.allclose(conversion.to_numpy(dtype=float), want.to_numpy(), rtol=1e-9)
