"""Open a plan's sources as ibis tables with canonical column names, and check their schema.

Files are queried in place by an embedded DuckDB (CSV, Parquet) or read once (Excel);
DuckDB/SQLite files and database URLs are opened through their ibis backend, so queries
run where the data is. The engine may open local Parquet files on polars instead
(``engine="polars"``, measured faster by ``perf/engine.py``): whatever polars cannot run
raises :class:`EngineFallback`, and the engine runs that source on DuckDB.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb.data.engines import EngineFallback, backend_of, on_polars, polars_connection
from kpinb.definitions import catalog
from kpinb.definitions.model import DEFAULT_STATEMENT_TIMEOUT_S, SNAPSHOT_TIME, Join, Source
from kpinb.errors import DataError, KpinbError, SourceError, shown
from kpinb.errors import redact as _redact

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

FILE_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel", ".duckdb": "duckdb", ".ddb": "duckdb",
    ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite",
}  # fmt: skip


@dataclass(frozen=True)
class Table:
    """An opened source: an ibis table whose columns carry canonical names."""

    name: str
    expr: ir.Table
    time: str
    dimensions: tuple[str, ...]
    label: str  # where it came from, safe to print (no password)
    path: Path | None = None  # the file, when the source is one (to explain read errors)
    timezone: str | None = None  # the business's zone: instants are read as its wall-clock time (None: UTC)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.expr.columns)


def redact(url: str) -> str:
    """Hide a password in a database URL (``user:password@`` or a ``password=`` parameter).

    The same rules as :func:`kpinb.errors.redact`, which every message goes through.
    """
    return _redact(url)


# One query at a time on the process's connections: a DuckDB connection is not safe to use
# from two threads at once (the dashboard precomputes in a background thread while the
# notebook may compute in the foreground). Reentrant, so a caller may hold it around calls.
QUERY_LOCK = threading.RLock()


@functools.cache
def duckdb_connection() -> Any:
    """The process's embedded DuckDB (ibis backend) that queries files in place."""
    import ibis

    return ibis.duckdb.connect()


def _expand_env(url: str, name: str) -> tuple[str, tuple[str, ...]]:
    """The URL with ``${VAR}`` replaced from the environment, and the values put in.

    Values in the ``user:password@`` part are percent-encoded, so a password may contain
    ``@``, ``/`` or ``:``. The values are returned so error messages can blank them out.
    """
    userinfo = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://([^/@]*@)?", url)
    userinfo_end = userinfo.end(1) if userinfo and userinfo.group(1) else -1
    values: list[str] = []

    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var not in os.environ:
            raise SourceError(
                f"source {name!r}: the URL refers to ${{{var}}}, which is not set. "
                f"Set the environment variable {var} (credentials never go into plans)."
            )
        value = os.environ[var]
        values.append(value)
        return urllib.parse.quote(value, safe="") if m.start() < userinfo_end else value

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, url), tuple(values)


_CONNECTIONS: dict[str, Any] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _connect(url: str, statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> Any:
    """The process's ibis backend for a database URL: one connection per URL (and timeout),
    reused by every source and metric (connecting costs a round trip and a login).

    Sessions are read-only: PostgreSQL sessions get ``default_transaction_read_only`` and the
    ``statement_timeout``, so a function with side effects called from a `query:` fails instead
    of writing; DuckDB and SQLite files are opened read-only, and only when they exist
    (connecting would create an empty one)."""
    import ibis

    key = f"{statement_timeout_s:g}s {url}"
    with _CONNECTIONS_LOCK:
        con = _CONNECTIONS.get(key)
        if con is None:
            file = _database_file(url)
            if file is None:
                con = ibis.connect(url)
            elif url.lower().startswith("duckdb"):
                con = ibis.duckdb.connect(str(file), read_only=True)
            else:
                con = ibis.sqlite.connect(str(file))
                con.raw_sql("PRAGMA query_only = ON").close()
            if getattr(con, "name", "") == "postgres":
                millis = max(1, round(statement_timeout_s * 1000))
                con.raw_sql(
                    f"SET SESSION default_transaction_read_only = on; SET SESSION statement_timeout = {millis}"
                ).close()
                con.con.commit()  # psycopg opened a transaction for the SETs; later ones start read-only
            _CONNECTIONS[key] = con
        return con


def close_connections() -> None:
    """Close the cached database connections (e.g. after the server restarted)."""
    with _CONNECTIONS_LOCK:
        cons = list(_CONNECTIONS.values())
        _CONNECTIONS.clear()
    for con in cons:
        with contextlib.suppress(Exception):  # a connection that is already gone
            con.disconnect()


def _clean(e: BaseException, secrets: tuple[str, ...]) -> str:
    """The first line of an error, safe to show: no password from the URL or environment.

    A secret of 3 characters or more is hidden wherever it occurs; a shorter one (a fragment of
    a password split at / ? # @ :) wherever it stands alone, between non-alphanumerics, so
    that it is hidden without blanking every word that contains it.
    """
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for piece in {secret, urllib.parse.quote(secret, safe="")}:
            if len(piece) >= 3:
                msg = msg.replace(piece, "***")
            else:
                msg = re.sub(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?![A-Za-z0-9])", "***", msg)
    return redact(msg)[:300]


def _database_file(url: str) -> Path | None:
    """The file a ``duckdb://`` or ``sqlite://`` URL names (as ibis reads it), None for other URLs
    and in-memory databases."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("duckdb", "sqlite"):
        return None
    pieces = [p for p in (parts.netloc, parts.path[bool(parts.netloc) :]) if p]
    if not pieces or pieces == [":memory:"] or pieces[0].startswith(("md:", "motherduck:")):
        return None
    return Path(*pieces).absolute()


def _read_file(name: str, path: Path, spec: Source, engine: str = "duckdb") -> ir.Table:
    fmt = spec.format or FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"source {name!r}: cannot tell the format of {path.name}. "
            f"Add `format:` (one of {', '.join(sorted(set(FILE_FORMATS.values())))})."
        )
    if not any(c in str(path) for c in "*?[") and not path.exists():
        raise SourceError(
            f"source {name!r}: file not found: {path}. Fix `path:` (relative paths resolve "
            "against the plan's folder) or create the sample data with `kpinb sample-data`."
        )
    import glob

    from kpinb._io import regular_file

    # a FIFO blocks the engine forever and /dev/zero never ends: regular files only
    globbed = any(c in str(path) for c in "*?[")
    for file in sorted(glob.glob(str(path)))[:10_000] if globbed else [path]:
        try:
            regular_file(file, "data file", SourceError)
        except SourceError as e:
            raise SourceError(f"source {name!r}: {e}") from None
    import ibis

    con = duckdb_connection()
    try:
        if fmt == "csv":
            return con.read_csv(str(path))
        if fmt == "parquet" and engine == "polars":
            try:
                return polars_connection().read_parquet(str(path))
            except Exception as e:  # DuckDB explains an unreadable file
                raise EngineFallback(str(e)) from e
        if fmt == "parquet":
            return con.read_parquet(str(path))
        if fmt == "excel":
            import pandas as pd

            df = pd.read_excel(path, sheet_name=spec.sheet or 0)
            return ibis.memtable(df)
        table = spec.table or name
        if fmt == "duckdb":
            return ibis.duckdb.connect(str(path), read_only=True).table(table)
        if fmt == "sqlite":
            return ibis.sqlite.connect(str(path)).table(table)
    except (SourceError, EngineFallback):
        raise
    except Exception as e:
        if fmt == "csv":
            _check_utf8(name, path)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SourceError(
            f"source {name!r}: cannot read {path} as {fmt}: {first[:300]}. "
            f"Check that the file is a valid {fmt} file (open it in a spreadsheet or set `format:`)."
        ) from None
    raise SourceError(f"source {name!r}: unknown format {fmt!r}. Use csv, parquet, excel, duckdb or sqlite.")


def _read_snapshots(
    name: str, spec: Source, base_dir: Path | None, engine: str = "duckdb"
) -> tuple[ir.Table, str, Path | None]:
    """A snapshot source: each file's rows with its ``as_of`` date as the time column, stacked."""
    import ibis

    files = spec.snapshots
    parts, shape = [], None
    for snap in files:
        path = Path(snap.path).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        part = _read_file(name, path, spec, engine)
        if SNAPSHOT_TIME in part.columns:
            raise DataError(f"source {name!r} ({path}): snapshots get a column {SNAPSHOT_TIME!r}; rename yours.")
        if shape is not None and sorted(part.columns) != sorted(shape[1].names):
            raise DataError(
                f"source {name!r}: snapshot {path} has other columns than {shape[0]} "
                f"({', '.join(part.columns[:20])} vs {', '.join(shape[1].names[:20])}). Export each snapshot alike."
            )
        if shape is not None:  # the same columns; a type read differently from one file (1 vs 1.5) is aligned
            part = part.select(*shape[1].names).cast(shape[1])
        shape = shape or (path, part.schema())
        parts.append(part.mutate(**{SNAPSHOT_TIME: ibis.literal(snap.as_of).cast("timestamp")}))
    label = f"{len(files)} snapshots ({files[0].path} ...)" if len(files) > 1 else str(files[0].path)
    expr = parts[0]
    for more in parts[1:]:
        expr = expr.union(more)  # all rows (UNION ALL): two equal rows of a snapshot are two employees
    return expr, label, None


def _check_utf8(name: str, path: Path) -> None:
    """Raise a SourceError naming the first byte of ``path`` that is not UTF-8, if there is one.

    Only called after a read failed: scanning a large file costs a pass over it.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    # e.object: the undecoded tail of the previous chunk (part of one character) + chunk
                    line += e.object.count(b"\n", 0, e.start)
                    byte = e.object[e.start]
                    break
                line += chunk.count(b"\n")
            else:
                try:
                    decoder.decode(b"", final=True)
                    return
                except UnicodeDecodeError:
                    byte = None  # the file ends in the middle of a character
    except OSError:
        return
    what = f"byte {byte:#04x} on line {line}" if byte is not None else "it ends mid-character"
    raise SourceError(
        f"source {name!r}: {path} is not UTF-8 text ({what}): save it as UTF-8. "
        'Excel and LibreOffice offer "CSV UTF-8" when saving.'
    )


def query_error(table: Table, error: BaseException) -> KpinbError:
    """The kpinb error for a query over ``table`` that failed in the engine (on polars: an
    :class:`EngineFallback` is raised, so that DuckDB runs it)."""
    if on_polars(table.expr):
        raise EngineFallback(str(error)) from error
    msg = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    # DuckDB reads the first rows of a CSV to guess its format; a bad byte further down fails the query
    csv = table.path is not None and table.path.suffix.lower() in (".csv", ".tsv", ".txt")
    if csv and re.search(r"(?i)unicode|utf-?8|encoding|CSV Error", str(error)):
        try:
            _check_utf8(table.name, table.path)  # type: ignore[arg-type]
        except SourceError as e:
            return e
    if re.search(r"(?i)statement timeout|canceling statement due to statement timeout", msg):
        from kpinb.errors import LimitError

        return LimitError(
            f"source {table.name!r} ({table.label}): the query ran longer than statement_timeout_s allows and was "
            "cancelled. Narrow it (a shorter start/end range, a coarser grain), or raise the limit with "
            "`limits: {statement_timeout_s: N}` in the plan (--statement-timeout-s N on the command line)."
        )
    if re.search(r"(?i)read-only transaction|read only transaction", msg):
        return SourceError(
            f"source {table.name!r} ({table.label}): the query tried to write ({_redact(msg)[:200]}); kpinb opens "
            "database sessions read-only. Give a `query:` that only reads (no function that writes)."
        )
    mixed = re.search(r"Conversion failed for column (.+?) with type object", msg)
    if mixed:  # pyarrow, handing a DataFrame to the engine
        col = mixed.group(1)[:60]
        return DataError(
            f"source {table.name!r} ({table.label}): column {col!r} mixes kinds of values (e.g. text and numbers). "
            f"Convert it to one kind, e.g. df[{col!r}] = df[{col!r}].astype(str)."
        )
    return DataError(
        f"source {table.name!r} ({table.label}): the query failed: {_redact(msg)[:300]}. "
        "Check the column types of the data against the metric formulas, and that the "
        "engine supports the functions used."
    )


_SESSION_FUNCTIONS = frozenset({"set_config", "dblink", "dblink_exec", "pg_terminate_backend", "pg_cancel_backend"})


def _func_name(node: Any) -> str:
    return str(getattr(node, "name", "") or node.sql_name()).lower()


def _check_read_only(name: str, query: str, dialect: Any) -> None:
    """Refuse a `query:` that is more than one SELECT.

    The backend runs the text inside statements of its own (PostgreSQL: CREATE TEMP VIEW),
    so ``SELECT ...; DROP TABLE x`` would run the DROP, and writes hidden in a WITH or
    SELECT INTO must not reach the database either.
    """
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError:  # SQL sqlglot does not know: at least one statement only
        statements = None
    writes = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Into,
              exp.Command, exp.TruncateTable, exp.Copy, exp.Set)  # fmt: skip
    if statements is None:
        bad = ";" in query.strip().rstrip(";")
    else:
        bad = (
            len(statements) != 1
            or not isinstance(statements[0], exp.Query)
            or any(isinstance(node, writes) for node in statements[0].walk())
            # the session is read-only; a query must not switch that (or the timeout) off
            or any(
                isinstance(node, (exp.Func, exp.Anonymous)) and _func_name(node) in _SESSION_FUNCTIONS
                for node in statements[0].walk()
            )
        )
    if re.search(r"(?i)\bset_config\b|\bdblink", query):
        bad = True
    if bad:
        raise SourceError(
            f"source {name!r}: `query:` must be a single read-only SELECT (no `;`, no INSERT, "
            "UPDATE, DELETE, CREATE, DROP or SELECT INTO). Give one SELECT, or a `table:`."
        )


def _query_table(con: Any, query: str) -> ir.Table:
    """``con.sql(query)``; on PostgreSQL the schema is found with a temporary view (which names the
    query but never runs it) in the one transaction the read-only session lets write."""
    if getattr(con, "name", "") != "postgres":
        return con.sql(query)
    with QUERY_LOCK, con.con.cursor() as cur:
        cur.execute("SET SESSION default_transaction_read_only = off")
        try:
            schema = con._get_schema_using_query(query)  # what con.sql does, kept out of the read-only session
        finally:
            cur.execute("SET SESSION default_transaction_read_only = on")
            if not con.con.autocommit:
                con.con.commit()
    return con.sql(query, schema=schema)


def _read_url(name: str, spec: Source, statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> ir.Table:
    url, values = _expand_env(spec.url or "", name)
    # libpq reads PGPASSWORD when the URL has none; keep it out of messages too
    secrets = (*values, os.environ.get("PGPASSWORD", ""))
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        password = None
    # an unencoded / or @ in the password confuses urlsplit: the userinfo runs to the last @
    userinfo = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://([^@\s]*)@", url)
    for pw in (password, userinfo.group(1).partition(":")[2] if userinfo else None):
        if pw:
            # and its pieces: a parser that splits at / ? # @ : may quote one alone (as a port, say)
            secrets = (*secrets, pw, urllib.parse.unquote_plus(pw), *re.split(r"[/?#@:]", pw))
    file = _database_file(url)
    if file is not None and not file.is_file():
        what = "no such file" if not file.exists() else "not a regular file"
        raise SourceError(
            f"source {name!r}: the URL {redact(spec.url or '')} names {file}: {what}. Fix the path in the URL "
            "(duckdb:///abs/path.duckdb; kpinb never creates an empty database), or use `path:` relative to the plan."
        )
    try:
        con = _connect(url, statement_timeout_s)
    except Exception as e:
        raise SourceError(
            f"source {name!r}: cannot connect to {redact(spec.url or '')}: {_clean(e, secrets)}. "
            "Check the URL, that the server runs, and the credentials in the environment."
        ) from None
    if spec.query is not None:
        _check_read_only(name, spec.query, getattr(con, "dialect", None))
    try:
        return con.table(spec.table) if spec.table else _query_table(con, spec.query)
    except Exception as e:
        from ibis.common.exceptions import TableNotFound

        if isinstance(e, TableNotFound):
            try:
                names = con.list_tables()
                there = f"Tables there: {', '.join(map(shown, names[:30]))}." if names else "It has no tables."
            except Exception:
                there = ""
            raise SourceError(
                f"source {name!r}: no table {spec.table!r} at {redact(spec.url or '')}. {there} "
                "Fix `table:` (add the schema to the URL path, e.g. /dbname/schema, for another schema)."
            ) from None
        what = f"table {spec.table!r}" if spec.table else "the query"
        raise SourceError(
            f"source {name!r}: cannot open {what} at {redact(spec.url or '')}: {_clean(e, secrets)}. "
            "Check the name (and schema) of the table, and that the user may read it."
        ) from None


def open_source(
    name: str, spec: Source | pd.DataFrame | ir.Table | str | Path, base_dir: Path | None = None,
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S, timezone: str | None = None,
    lookups: Mapping[str, Table] | None = None, engine: str = "duckdb",
) -> Table:  # fmt: skip
    """Open one source and rename its columns to the canonical names the formulas use.

    ``lookups``: the opened sources its ``join:`` names (see :func:`open_planned`).
    ``engine``: ``polars`` opens a local Parquet file on polars (see :class:`EngineFallback`).

    ``timezone`` (the plan's ``timezone:``) is the zone the business's days follow: time values
    that carry an offset (or a zone) are converted to its wall-clock time before any bucketing;
    values without one are taken as its wall-clock time already. None: UTC.

    Database sessions are read-only, and a statement running longer than
    ``statement_timeout_s`` is cancelled (PostgreSQL; a plan sets it with ``limits:``).

    ``spec`` may also be an ibis table expression on any backend (a Spark or Trino table,
    say): the metrics then run on that backend.
    """
    import ibis
    import ibis.expr.types as ir
    import pandas as pd

    if isinstance(spec, (str, Path)):
        spec = Source(path=str(spec))
    file: Path | None = None
    if isinstance(spec, pd.DataFrame):
        if spec.empty:
            raise DataError(f"source {name!r}: the DataFrame has no rows. Pass data with rows.")
        expr, label, spec = _frame(name, spec), f"DataFrame for {name!r}", Source(path="<dataframe>")
    elif isinstance(spec, ir.Table):
        try:
            backend = spec._find_backend(use_default=True).name
        except Exception:  # an expression over several backends fails later, at execution
            backend = "ibis"
        expr, label, spec = spec, f"{backend} table for {name!r}", Source(path="<ibis table>")
    elif spec.url is not None:
        expr, label = _read_url(name, spec, statement_timeout_s), redact(spec.url)
    elif spec.snapshots:
        expr, label, file = _read_snapshots(name, spec, base_dir, engine)
    else:
        path = Path(spec.path or "").expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        expr, label, file = _read_file(name, path, spec, engine), str(path), path
    if spec.as_of is not None:  # one snapshot (a file or a table): its date is its time column
        if SNAPSHOT_TIME in expr.columns:
            raise DataError(f"source {name!r} ({label}): snapshots get a column {SNAPSHOT_TIME!r}; rename yours.")
        expr = expr.mutate(**{SNAPSHOT_TIME: ibis.literal(spec.as_of).cast("timestamp")})
    canon = catalog.sources().get(name)
    mapping = dict(spec.columns)
    missing_user = [u for u in mapping.values() if u not in expr.columns]
    if missing_user:
        raise DataError(
            f"source {name!r} ({label}): `columns:` maps to {missing_user[0]!r}, which the data "
            f"does not have. Columns there: {', '.join(map(shown, expr.columns[:40]))}."
        )
    if mapping:
        clash = [c for c in mapping if c in expr.columns and c not in mapping.values()]
        if clash:
            expr = expr.drop(*clash)
        expr = expr.rename({canonical: user for canonical, user in mapping.items()})
    if spec.values:
        from kpinb.data.values import apply_values

        expr = apply_values(expr, spec.values, f"source {name!r} ({label})")
    if spec.join:
        expr = _join(expr, spec.join, lookups or {}, name, f"source {name!r} ({label})")
    if spec.derive:
        expr = _derive(expr, spec.derive, f"source {name!r} ({label})")
    if spec.as_of is not None or spec.snapshots:
        time, dims = SNAPSHOT_TIME, spec.dimensions or (
            tuple(d for d in canon.dimensions if d in expr.columns) if canon is not None else ()
        )
    elif canon is not None:
        time = canon.time
        if spec.time and spec.time != time and spec.time not in mapping.values():
            if spec.time not in expr.columns:
                raise DataError(
                    f"source {name!r} ({label}): `time: {spec.time}` is not a column. "
                    f"Columns there: {', '.join(map(shown, expr.columns[:40]))}."
                )
            expr = expr.drop(time) if time in expr.columns else expr
            expr = expr.rename({time: spec.time})
        dims = spec.dimensions or tuple(d for d in canon.dimensions if d in expr.columns)
    else:
        time = spec.time or ""
        dims = spec.dimensions or ()
    if canon is not None and canon.derive:  # what the catalog can compute from columns the data has
        from kpinb.definitions.formula import parse

        missing = {
            col: text for col, text in canon.derive.items()
            if col not in expr.columns and parse(text, kind="column").columns <= set(expr.columns)
        }  # fmt: skip
        if missing:
            if time in expr.columns:  # dates stored as text (SQLite) become dates first
                expr = conform(Table(name, expr, time, dims, label, file, timezone), {time: "timestamp"}).expr
            expr = _derive(expr, missing, f"source {name!r} ({label}), catalog column")
    return Table(name, expr, time, dims, label, file, timezone)


def _join(
    expr: ir.Table, joins: Mapping[str, Join], lookups: Mapping[str, Table], source: str, where_: str
) -> ir.Table:
    """``expr`` with each lookup's columns joined on its key (a left join: rows without a match
    keep missing values). A key that repeats in a lookup would count those rows twice: a
    DataError naming the lookup, the key and an example, never a silent double count."""
    for name, join in joins.items():
        if name not in lookups:
            raise DataError(f"{where_}: it joins {name!r}; open it with its plan's sources (open_planned).")
        lk = lookups[name]
        pairs = join.pairs
        for left, right in pairs:
            if left not in expr.columns:
                raise DataError(f"{where_}: `join: {{{name}: ...}}` uses column {left!r}, which the data lacks.")
            if right not in lk.columns:
                raise DataError(
                    f"source {name!r} ({lk.label}): the join key {right!r} is not a column; its columns: "
                    f"{', '.join(map(shown, lk.columns[:40]))}."
                )
        keys = [r for _, r in pairs]
        try:
            repeated = lk.expr.group_by(keys).aggregate(kpinb_n=lk.expr.count()).filter(lambda x: x.kpinb_n > 1)
            example = repeated.limit(1).execute()
        except Exception as e:
            raise query_error(lk, e) from None
        if len(example):
            key = ", ".join(f"{k} = {shown(example[k].iloc[0])}" for k in keys)
            raise DataError(
                f"source {name!r} ({lk.label}) has {int(example['kpinb_n'].iloc[0])} rows for {key}: joining it to "
                f"{source!r} would count those rows more than once. Make {', '.join(keys)} unique in the lookup "
                "(one row per key), or join on more columns."
            )
        added = [c for c in lk.columns if c not in expr.columns and c not in keys]
        right = lk.expr.select(*keys, *added).rename({f"kpinb_key_{i}": k for i, k in enumerate(keys)})
        preds = [expr[left] == right[f"kpinb_key_{i}"] for i, (left, _) in enumerate(pairs)]
        expr = expr.left_join(right, preds).select(*expr.columns, *added)
    return expr


def open_planned(
    name: str, sources: Mapping[str, Any], base_dir: Path | None = None,
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S, timezone: str | None = None,
    engine: str = "duckdb",
) -> Table:  # fmt: skip
    """:func:`open_source` of ``sources[name]`` with the lookups it joins opened from ``sources``."""
    spec = sources[name]
    joins = spec.join if isinstance(spec, Source) else {}
    lookups = {
        other: open_source(other, sources[other], base_dir, statement_timeout_s, timezone, engine=engine)
        for other in joins
        if other in sources
    }
    return open_source(name, spec, base_dir, statement_timeout_s, timezone, lookups, engine)


def _derive(expr: ir.Table, derive: dict[str, str], where_: str) -> ir.Table:
    """``expr`` with the computed columns of ``derive:`` added in order (a later one may read an
    earlier one); each formula is parsed and checked against the columns there, never pasted as SQL."""
    from kpinb.data.expressions import compile_node
    from kpinb.definitions.formula import parse
    from kpinb.errors import FormulaError

    for col, text in derive.items():
        who = f"{where_}: `derive: {{{col}: ...}}`"
        try:
            formula = parse(text, kind="column", columns=expr.columns)
        except FormulaError as e:
            raise FormulaError(f"{who}: {e}") from None
        try:
            value = compile_node(formula.tree, expr, None, who)
            expr = expr.mutate(**{col: value})
        except KpinbError:
            raise
        except Exception as e:  # a combination the checks above missed: still the formula's fault
            raise FormulaError(
                f"{who}: {text!r} cannot be built ({type(e).__name__}). Use values of one kind in each operation."
            ) from None
    return expr


def _frame(name: str, df: pd.DataFrame) -> ir.Table:
    """A DataFrame as an ibis table, refusing what no engine can hold with the fix."""
    import ibis

    where_ = f"source {name!r} (DataFrame for {name!r})"
    for col in df.columns:
        if not isinstance(col, str):
            raise DataError(
                f"{where_}: column name {col!r} is not text. Rename the columns to text, "
                "e.g. df.columns = df.columns.astype(str)."
            )
    dupes = df.columns[df.columns.duplicated()]
    if len(dupes):
        raise DataError(f"{where_}: two columns are named {dupes[0]!r}. Rename or drop one of them.")
    try:
        expr = ibis.memtable(df)
        expr.schema()
    except Exception as e:  # complex numbers, integers past 64 bits, objects of no SQL type
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise DataError(
            f"{where_}: a column holds values no SQL engine can store ({type(e).__name__}: {msg}). "
            "Convert each column to numbers, text or dates (e.g. df[col].astype(str))."
        ) from None
    return expr


_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([zZ]|[+-]\d\d(:?\d\d)?)$"
"""Text ending in a time of day with a UTC offset or ``Z`` (``2025-12-31T23:30:00-05:00``)."""


@functools.cache
def _zone_functions() -> tuple[Any, Any]:
    """The engines' builtins that read an instant as wall-clock time in a zone: ``timezone(zone,
    ts)`` (DuckDB, PostgreSQL) and ``convert_timezone(session zone, zone, ts)`` (Spark)."""
    import ibis
    import ibis.expr.datatypes as dt

    def at_zone(zone, ts):  # type: ignore[no-untyped-def]
        """``timezone(zone, ts)``."""

    def convert(source, target, ts):  # type: ignore[no-untyped-def]
        """``convert_timezone(source, target, ts)``."""

    instant, naive = dt.Timestamp(timezone="UTC"), dt.Timestamp()
    at_zone.__annotations__ = {"zone": dt.string, "ts": instant, "return": naive}
    convert.__annotations__ = {"source": dt.string, "target": dt.string, "ts": naive, "return": naive}
    builtin = ibis.udf.scalar.builtin
    return builtin(at_zone, name="timezone"), builtin(convert, name="convert_timezone")


def is_instant(expr: ir.Table, col: str) -> bool:
    """Whether ``col`` holds instants (timestamps with a zone) rather than wall-clock times. Spark's
    ``TIMESTAMP`` is an instant although ibis types it like a naive one: its schema says."""
    dtype = expr.schema()[col]
    if not dtype.is_timestamp():
        return False
    if dtype.timezone is not None:
        return True
    backend = backend_of(expr)
    if getattr(backend, "name", "") != "pyspark":
        return False
    try:
        field = backend._session.sql(str(backend.compile(expr.select(col)))).schema[0]
    except Exception:
        return False
    return type(field.dataType).__name__ == "TimestampType"


def wall_clock(column: ir.TimestampValue, timezone: str | None) -> ir.TimestampValue:
    """Instants as naive wall-clock times in ``timezone`` (None: UTC), so that periods follow the
    business's days whatever zone the engine's session uses."""
    at_zone, convert = _zone_functions()
    zone = timezone or "UTC"
    backend = backend_of(column)
    if getattr(backend, "name", "") == "pyspark":  # its instants read in the session's zone
        session_zone = backend._session.conf.get("spark.sql.session.timeZone")
        return convert(session_zone, zone, column)
    return at_zone(zone, column)


def _text_to_timestamp(expr: ir.Table, col: str, where_: str, timezone: str | None = None) -> ir.Value:
    """Dates stored as text (SQLite, some CSVs): cast them, refusing text that is not a date. Text
    with a UTC offset is an instant, read as wall-clock time in ``timezone``; text without one is
    wall-clock time already."""
    import ibis.expr.datatypes as dt

    text = expr[col].strip()
    try:
        instant = text.re_search(_OFFSET)
        casted = instant.ifelse(wall_clock(text.try_cast(dt.Timestamp(timezone="UTC")), timezone),
                                text.try_cast("timestamp"))  # fmt: skip
        bad = expr.filter(expr[col].notnull() & casted.isnull()).select(col).limit(1).execute()
    except Exception as e:  # engines without try_cast: plain cast, errors surface at query time
        if on_polars(expr):  # its plain cast reads text otherwise: DuckDB's rules decide
            raise EngineFallback(str(e)) from e
        return expr[col].cast("timestamp")
    if len(bad):
        raise DataError(
            f"{where_}: column {col!r} holds text that is not a date, e.g. {str(bad.iloc[0, 0])[:40]!r}. "
            "Store dates as ISO text (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS) or as a date/timestamp type."
        )
    return casted


_KIND = {
    "number": ("is_numeric",), "integer": ("is_numeric",), "boolean": ("is_boolean",),
    "date": ("is_temporal",), "timestamp": ("is_temporal",), "string": (),
}  # fmt: skip


_NULL_AS = {"number": "float64", "integer": "int64", "boolean": "boolean", "date": "date", "timestamp": "timestamp"}


def conform(table: Table, needed: dict[str, str | None]) -> Table:
    """Check that ``needed`` columns exist with usable types; cast where it is safe.

    ``needed`` maps a column to its expected canonical type (None: any type). Integer
    0/1 columns are accepted as booleans, numbers as strings for dimensions.
    """
    expr = table.expr
    schema = expr.schema()
    where_ = f"source {table.name!r} ({table.label})"
    for col, kind in needed.items():
        if col not in schema:
            import difflib

            close = difflib.get_close_matches(col, list(schema.names), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{where_}: missing column {col!r}.{hint} Add it to the data, or map your "
                f"column to it with `columns: {{{col}: your_column}}` in the plan's source."
            )
        dtype = schema[col]
        if kind is None:
            continue
        if dtype.is_null():  # no value at all (e.g. an empty column of a DataFrame): give it its type
            expr = expr.mutate(**{col: expr[col].cast(_NULL_AS.get(kind, "string"))})
            continue
        if kind == "boolean" and dtype.is_integer():
            expr = expr.mutate(**{col: expr[col] != 0})
            continue
        if kind == "string" and not dtype.is_string():
            expr = expr.mutate(**{col: expr[col].cast("string")})
            continue
        if kind in ("date", "timestamp") and dtype.is_string():
            expr = expr.mutate(**{col: _text_to_timestamp(expr, col, where_, table.timezone)})
            continue
        if kind in ("date", "timestamp") and is_instant(expr, col):
            expr = expr.mutate(**{col: wall_clock(expr[col], table.timezone)})
            continue
        checks = _KIND.get(kind, ())
        if checks and not any(getattr(dtype, c)() for c in checks) and dtype.is_unknown():
            raise DataError(
                f"{where_}: column {col!r} mixes kinds of values (e.g. text and numbers), but the metric "
                f"needs {kind}. Convert the column to one kind, or map another column."
            )
        if checks and not any(getattr(dtype, c)() for c in checks):
            raise DataError(
                f"{where_}: column {col!r} has type {dtype}, but the metric needs {kind}. "
                "Convert the column (e.g. remove text such as 'n/a' from a numeric column) or "
                "map another column."
            )
    return Table(table.name, expr, table.time, table.dimensions, table.label, table.path, table.timezone)
