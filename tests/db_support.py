"""Test support for real engines: a throw-away PostgreSQL server, loading sample data into
it, a local Spark session, and a timing run comparing DuckDB, PostgreSQL and Spark.

Loading data is test set-up, so it uses psycopg's COPY directly; everything under test goes
through kpinb's public API (``compute`` with ``Source(url=..., table=...)``).

Timing (one department's KPIs on each engine, median of 3 after a warm-up)::

    .venv/bin/python tests/db_support.py --rows 200000
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START_SCRIPT = ROOT / "scripts" / "start_postgres.sh"

_PG_TYPES = {
    "string": "text",
    "large_string": "text",
    "double": "double precision",
    "float": "real",
    "int64": "bigint",
    "int32": "integer",
    "bool": "boolean",
    "date32[day]": "date",
    "timestamp[us]": "timestamp",
    "timestamp[ns]": "timestamp",
    "timestamp[ms]": "timestamp",
    "timestamp[us, tz=UTC]": "timestamptz",
}


def postgres_available() -> str | None:
    """Why a local PostgreSQL cannot be started here, or None when it can."""
    if shutil.which("bash") is None:
        return "bash is not installed"
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins and not shutil.which("initdb") and not os.environ.get("PG_BIN"):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            return None  # the script installs it
        return "PostgreSQL server binaries not found (apt-get install -y postgresql)"
    return None


@contextmanager
def local_postgres() -> Iterator[str]:
    """Start a throw-away server with scripts/start_postgres.sh; yield its URL; stop it."""
    # not under pytest's tmp folders: they are private to root, and the server runs as postgres
    data_dir = tempfile.mkdtemp(prefix="kpinb-pg-")
    proc = subprocess.run(
        ["bash", str(START_SCRIPT), data_dir], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise RuntimeError(f"scripts/start_postgres.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    url = proc.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        subprocess.run(["bash", str(START_SCRIPT), "stop", data_dir], capture_output=True, timeout=120, check=False)


def url_parts(url: str) -> dict[str, Any]:
    """user, password, host, port and database of a postgresql:// URL."""
    p = urllib.parse.urlparse(url)
    return {
        "user": urllib.parse.unquote(p.username or ""),
        "password": urllib.parse.unquote(p.password or ""),
        "host": p.hostname or "127.0.0.1",
        "port": p.port or 5432,
        "dbname": p.path.lstrip("/").split("/")[0],
    }


def connect(url: str) -> Any:
    """A psycopg connection (autocommit) for set-up and inspection."""
    import psycopg

    return psycopg.connect(**url_parts(url), autocommit=True)


def load_parquet(url: str, files: Mapping[str, str | Path], schema: str = "public") -> dict[str, int]:
    """Copy each Parquet file into a table ``schema.name`` (replaced); return rows per table."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from psycopg import sql

    counts = {}
    with connect(url) as con:
        con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for name, path in files.items():
            table = pq.read_table(path)
            cols = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_PG_TYPES[str(f.type)])) for f in table.schema
            )
            target = sql.Identifier(schema, name)
            con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            con.execute(sql.SQL("CREATE TABLE {} ({})").format(target, cols))
            buf = io.BytesIO()
            # pyarrow quotes every string (so "" stays an empty string) and leaves nulls bare
            pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
            with con.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)) as cp:
                cp.write(buf.getvalue())
            con.execute(sql.SQL("ANALYZE {}").format(target))
            counts[name] = table.num_rows
    return counts


def spark_session(quick_start: bool = True) -> Any:
    """A small local Spark session: 2 cores, no UI, few shuffle partitions.

    ``quick_start`` trades peak speed for start-up: the JVM compiles with its quick C1
    compiler only and a serial garbage collector, which halves the time a short test
    session spends warming up (small queries never reach the optimised code anyway).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("kpinb-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.adaptive.enabled", "false")
    )
    if quick_start:
        builder = builder.config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


# --- comparing results ------------------------------------------------------------------------


def metrics_with_dimension(dimension: str) -> list[str]:
    """Catalog metric ids whose every underlying source has ``dimension`` (so ``by=`` works)."""
    from kpinb.definitions import catalog
    from kpinb.definitions.analysis import dependencies

    reg, canon = catalog.metrics(), catalog.sources()
    return [
        mid
        for mid in reg
        if all(dimension in canon[reg[d].source].dimensions for d in dependencies([mid], reg) if not reg[d].derived)
    ]


def differences(expected: Any, actual: Any, by: list[str], rtol: float = 1e-9) -> list[str]:
    """Where two ``compute`` results differ: other rows, or numbers beyond ``rtol``.

    Numbers are compared relative to themselves (``rtol``) and, so that sums which cancel to
    nearly zero do not fail on rounding, to the metric's largest absolute value (same ``rtol``).
    """
    import numpy as np

    keys = ["metric", "period_start", *by]
    m = expected.merge(actual, on=keys, how="outer", suffixes=("_expected", "_actual"), indicator=True)
    out = []
    extra = m[m["_merge"] != "both"]
    if len(extra):
        out.append(f"{len(extra)} rows only on one side, e.g.\n{extra[[*keys, '_merge']].head(5).to_string()}")
    m = m[m["_merge"] == "both"]
    for col in ("value", "numerator", "denominator"):
        x = m[f"{col}_expected"].astype("float64")
        y = m[f"{col}_actual"].astype("float64")
        scale = x.abs().groupby(m["metric"]).transform("max").fillna(0.0)
        same = (x.isna() & y.isna()) | np.isclose(x, y, rtol=rtol, atol=0) | ((x - y).abs() <= rtol * scale)
        if not same.all():
            bad = m[~same][[*keys, f"{col}_expected", f"{col}_actual"]]
            per_metric = bad.groupby("metric").size().to_dict()
            out.append(f"{col} differs in {len(bad)} rows {per_metric}, e.g.\n{bad.head(8).to_string()}")
    return out


# --- timing -----------------------------------------------------------------------------------


def timing(
    rows: int = 200_000, seed: int = 7, repeat: int = 3, engines: tuple[str, ...] = ("duckdb", "postgres", "spark")
) -> Any:
    """Wall time of the sales plan's KPIs and supporting metrics (month grain) per engine.

    All engines run in this process; each computes once to warm up (connections, JIT, caches),
    then ``repeat`` times. Returns a DataFrame: engine, median_s, min_s, max_s, source_rows.
    """
    import statistics
    import time

    import pandas as pd
    import pyarrow.parquet as pq

    from kpinb import compute, load_plan
    from kpinb.data import sample as sample_data
    from kpinb.data.sources import close_connections
    from kpinb.definitions.model import Source

    plan = load_plan(ROOT / "templates" / "plans" / "sales.yml")
    out, results = [], {}
    with tempfile.TemporaryDirectory(prefix="kpinb-timing-") as tmp:
        files = {n: p for n, p in sample_data.generate(tmp, rows=rows, seed=seed).items() if n in plan.sources}
        n_rows = sum(pq.read_metadata(p).num_rows for p in files.values())
        with contextlib.ExitStack() as stack:
            for engine in engines:
                if engine == "duckdb":
                    sources: dict[str, Any] = {n: str(p) for n, p in files.items()}
                elif engine == "postgres":
                    url = os.environ.get("KPINB_TEST_PG_URL") or stack.enter_context(local_postgres())
                    schema = f"kpinb_timing_{os.getpid()}"
                    load_parquet(url, files, schema=schema)
                    p = url_parts(url)
                    os.environ["KPINB_TIMING_PG_PASSWORD"] = p["password"]
                    at = f"{p['host']}:{p['port']}/{p['dbname']}/{schema}"
                    sources = {
                        n: Source(url=f"postgresql://{p['user']}:${{KPINB_TIMING_PG_PASSWORD}}@{at}", table=n)
                        for n in files
                    }
                elif engine == "spark":
                    import ibis

                    session = spark_session(quick_start=False)
                    stack.callback(session.stop)
                    con = ibis.pyspark.connect(session)
                    sources = {n: con.read_parquet(str(p), table_name=f"timing_{n}") for n, p in files.items()}
                else:
                    raise ValueError(f"unknown engine {engine!r}: use duckdb, postgres or spark")
                results[engine] = compute(plan, sources=sources)  # warm-up
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    compute(plan, sources=sources)
                    times.append(time.perf_counter() - t0)
                out.append(
                    {"engine": engine, "median_s": statistics.median(times), "min_s": min(times),
                     "max_s": max(times), "source_rows": n_rows}
                )  # fmt: skip
                if engine == "postgres":
                    with connect(url) as c:
                        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            close_connections()
    first = next(iter(results.values()))
    for engine, df in results.items():
        problems = differences(first, df, [])
        if problems:
            raise AssertionError(f"{engine} differs from {engines[0]}:\n" + "\n".join(problems))
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Time the sales plan (month grain) on DuckDB, PostgreSQL and Spark.")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engines", default="duckdb,postgres,spark")
    args = ap.parse_args(argv)
    df = timing(args.rows, args.seed, args.repeat, tuple(args.engines.split(",")))
    print(
        f"sales plan KPIs + supporting metrics, month grain, rows={args.rows}, cores={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat} runs after a warm-up; "
        "the same numbers on every engine"
    )
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
