"""Property-based tests: messy data through the real engine ends in a result or a kpinb error.

1,000 generated cases (derandomized) compute catalog metrics (``average_order_value`` on
orders, ``bounce_rate`` on web sessions) from DataFrames and from CSV files written for real:
nulls, mixed types in a column, text in numeric columns, duplicate rows, timezone-aware and
naive timestamps mixed, dates in year 1 or 9999, empty files, a header only, non-UTF-8
bytes, a BOM. Every case must give the tidy result or a kpinb error naming the source,
never another exception and never a hang.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fuzz_support
import pandas as pd
import pytest
from fuzz_support import fuzz_settings
from hypothesis import strategies as st

from kpinb import compute
from kpinb.data.sources import duckdb_connection
from kpinb.errors import KpinbError

pytestmark = pytest.mark.timeout(600)  # per test; each case is also time-boxed below
CASE_SECONDS = 30  # interrupts a hanging case; a normal one takes a few dozen milliseconds


FUZZ = fuzz_settings()


def run_cases(strategy: st.SearchStrategy[Any], case: Callable[[Any], str], name: str) -> Counter[str]:
    """Run ``case`` on CASES examples of ``strategy``, each time-boxed; return the outcome counts."""
    return fuzz_support.run_cases(strategy, case, name, CASE_SECONDS, FUZZ)


# --- messy values, column by column -----------------------------------------------------------

UTC = dt.UTC
PARIS = dt.timezone(dt.timedelta(hours=1))

naive = st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2025, 12, 31))
aware = st.tuples(naive, st.sampled_from([UTC, PARIS, dt.timezone(dt.timedelta(hours=-5, minutes=-30))])).map(
    lambda t: t[0].replace(tzinfo=t[1])
)
extreme_dates = st.sampled_from(
    [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59), dt.date(1, 1, 1), dt.date(9999, 12, 31)]
)
date_text = st.one_of(
    naive.map(lambda d: d.isoformat(sep=" ")),
    aware.map(lambda d: d.isoformat()),
    naive.map(lambda d: d.strftime("%d/%m/%Y")),
    st.sampled_from(["0001-01-01", "9999-12-31", "10000-01-01", "2024-02-30", "soon", "", "NaT", "2024-13-01"]),
)
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**63), 2**64),
    st.sampled_from([0, -0.0, 1e308, 2**63 - 1, decimal.Decimal("1.5")]),
)
number_text = st.one_of(numbers.map(str), st.sampled_from(["n/a", "1,5", "€3", "1e400", "--1", "", " 7 ", "0x10"]))
booleans_ish = st.sampled_from([True, False, 1, 0, "true", "false", "yes", "no", "1", "0", "t", "", 2])


@dataclass(frozen=True)
class Source:
    """A canonical source, a catalog metric to compute on it, and generators for its columns."""

    name: str
    metric: str

    @property
    def columns(self) -> dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]:
        return COLUMNS[self.name]


ORDERS = Source("orders", "average_order_value")
SESSIONS = Source("web_sessions", "bounce_rate")
# column -> (clean values, messy values)
COLUMNS: dict[str, dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]] = {
    "orders": {
        "order_id": (st.sampled_from(["o1", "o2", "o3", "o4"]), st.one_of(text, st.integers(0, 5))),
        "order_date": (naive, st.one_of(aware, extreme_dates, date_text, st.integers(0, 2**40))),
        "revenue": (
            st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000),
            st.one_of(numbers, number_text, st.booleans()),
        ),
        "status": (st.sampled_from(["completed", "completed", "returned"]), st.one_of(text, st.booleans())),
        "region": (st.sampled_from(["North", "Süd", "东"]), st.one_of(text, st.integers())),
    },
    "web_sessions": {
        "session_id": (st.sampled_from(["s1", "s2", "s3"]), st.one_of(text, st.integers())),
        "session_start": (naive, st.one_of(aware, extreme_dates, date_text)),
        "bounced": (st.booleans(), booleans_ish),
        "region": (st.sampled_from(["North", "South"]), text),
    },
}
NULLS = st.sampled_from([None, float("nan"), pd.NaT])
HAS_FIX = re.compile(r"[.;:] [A-Z][a-z]+ ")  # `problem. Fix it ...`: a sentence after the problem


@st.composite
def tables(draw: st.DrawFn, src: Source) -> list[dict[str, Any]]:
    """Rows of one source: each column clean, messy or a mix of both; nulls and duplicate rows."""
    n = draw(st.integers(0, 8))
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for col, (clean, messy) in src.columns.items():
        style = draw(st.sampled_from(["clean"] * 12 + ["messy"] * 3 + ["mixed"] * 3 + ["missing"]))
        if style == "missing":
            continue
        values = {"clean": clean, "messy": messy, "mixed": st.one_of(clean, messy)}[style]
        for row in rows:
            row[col] = draw(NULLS) if draw(st.integers(0, 9)) == 0 else draw(values)
    if rows and draw(st.booleans()):
        rows += [dict(r) for r in draw(st.lists(st.sampled_from(rows), max_size=3))]  # duplicate rows
    return rows


def to_frame(rows: list[dict[str, Any]], src: Source, infer: bool = True) -> pd.DataFrame:
    """The rows as a DataFrame: dtypes inferred by pandas, or every column `object`."""
    cols = [c for c in src.columns if any(c in r for r in rows)] or list(src.columns)
    return pd.DataFrame([[r.get(c) for c in cols] for r in rows], columns=cols, dtype=None if infer else object)


def _cell(v: Any) -> str:
    if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
        return ""
    return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else str(v)


@dataclass(frozen=True)
class CsvStyle:
    encoding: str
    bom: bool
    delimiter: str
    newline: str
    quoting: int


csv_styles = st.builds(
    CsvStyle,
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "cp1252", "utf-16"]),
    bom=st.booleans(),
    delimiter=st.sampled_from([",", ",", ";", "\t", "|"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
)
special_files = st.one_of(
    st.sampled_from([b"", b"\n", b"\xef\xbb\xbf", b"\x00\x00\x00", b"\xff\xfe\xfd", b'"unterminated\n1,2\n']),
    st.binary(max_size=200),
)


def csv_bytes(rows: list[dict[str, Any]], src: Source, style: CsvStyle) -> bytes:
    frame = to_frame(rows, src)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=style.delimiter, lineterminator=style.newline, quoting=style.quoting)
    writer.writerow(frame.columns)
    for values in frame.itertuples(index=False):
        writer.writerow([_cell(v) for v in values])
    data = out.getvalue().encode(style.encoding, errors="replace")
    return (b"\xef\xbb\xbf" + data) if style.bom and style.encoding == "utf-8" else data


@dataclass(frozen=True)
class Case:
    src: Source
    rows: list[dict[str, Any]]
    infer: bool
    as_csv: CsvStyle | None
    raw: bytes | None
    grain: str
    by_region: bool
    window: tuple[str | None, str | None]

    def __repr__(self) -> str:  # hypothesis prints this for a failing case
        how = f"raw {self.raw!r}" if self.raw is not None else (f"CSV {self.as_csv}" if self.as_csv else "DataFrame")
        args = f"grain={self.grain}, by_region={self.by_region}, window={self.window}"
        return f"Case({self.src.metric}, {how}, {args}, rows={self.rows!r})"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    src = draw(st.sampled_from([ORDERS, SESSIONS]))
    rows = draw(tables(src))
    how = draw(st.sampled_from(["frame", "csv", "csv", "raw"]))
    return Case(
        src,
        rows,
        draw(st.booleans()),
        draw(csv_styles) if how == "csv" else None,
        draw(special_files) if how == "raw" else None,
        draw(st.sampled_from(["day", "week", "month", "quarter", "year"])),
        draw(st.integers(0, 4)) == 0,
        draw(st.sampled_from([(None, None), ("2024-01-01", None), (None, "2024-06-30"), ("2024-03-01", "2024-03-31")])),
    )


@pytest.fixture(scope="module")
def one_engine_thread() -> Iterator[None]:
    """Tiny queries run faster on one DuckDB thread; restore the setting afterwards."""
    con = duckdb_connection()
    before = con.raw_sql("select current_setting('threads')").fetchone()[0]
    con.raw_sql("SET threads = 1")
    warm = {"order_id": ["a"], "order_date": [dt.datetime(2024, 1, 1)], "revenue": [1.0], "status": ["completed"]}
    compute(["average_order_value"], sources={"orders": pd.DataFrame(warm)})  # imports before any deadline
    yield
    con.raw_sql(f"SET threads = {int(before)}")


def test_messy_data_through_the_engine(tmp_path: Path, one_engine_thread: None) -> None:
    counter = iter(range(10**9))

    def case(c: Case) -> str:
        if c.as_csv is None and c.raw is None:
            source: Any = to_frame(c.rows, c.src, c.infer)
        else:
            source = tmp_path / f"{c.src.name}-{next(counter)}.csv"  # a new file: DuckDB may cache by name
            source.write_bytes(c.raw if c.raw is not None else csv_bytes(c.rows, c.src, c.as_csv))  # type: ignore[arg-type]
        start, end = c.window
        try:
            df = compute(
                [c.src.metric],
                sources={c.src.name: source},
                grain=c.grain,
                by=["region"] if c.by_region else [],
                start=start,
                end=end,
            )
        except KpinbError as e:
            msg = str(e)
            assert msg and len(msg) < 2000 and "\n" not in msg, msg[:300]
            assert c.src.name in msg or c.src.metric in msg, f"message names neither source nor metric: {msg[:300]}"
            assert HAS_FIX.search(msg), f"no fix after the problem: {msg[:300]}"
            return f"{type(e).__name__} ({'csv' if c.as_csv or c.raw is not None else 'frame'})"
        by = ["region"] if c.by_region else []
        assert list(df.columns) == ["metric", "period_start", *by, "value", "numerator", "denominator", "complete"]
        assert df["value"].dtype == "float64" and str(df["period_start"].dtype).startswith("datetime64")
        values = df["value"].dropna()
        if c.src.metric == "bounce_rate":
            assert values.between(0, 1).all(), values
        return f"result ({'csv' if c.as_csv else 'frame'})"

    outcomes = run_cases(cases(), case, "messy data through the engine")
    assert sum(n for k, n in outcomes.items() if k.startswith("result")) > 100


# --- the bugs the property found, pinned --------------------------------------------------------

CLEAN = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3"],
        "order_date": pd.to_datetime(["2024-01-05", "2024-02-20", "2024-03-02"]),
        "revenue": [10.0, 20.0, 30.0],
        "status": ["completed"] * 3,
    }
)


def _with_extra_column(name: Any, values: list[Any]) -> pd.DataFrame:
    df = CLEAN.copy()
    df[name] = values
    return df


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        # OutOfBoundsDatetime from the engine's period handling
        (CLEAN.assign(order_date=[dt.datetime(1, 1, 1), dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1)]), "0001"),
        (CLEAN.assign(order_date=[dt.date(9999, 12, 31), dt.date(2024, 1, 1), None]), "9999"),
        # OverflowError from ibis.memtable: an int past 64 bits in an object column
        (CLEAN.assign(order_id=pd.Series(["o1", 2**64, "o3"], dtype=object)), "source 'orders'"),
        # IbisInputError: duplicate column names
        (CLEAN.set_axis(["order_id", "order_date", "revenue", "revenue"], axis=1), "two columns are named 'revenue'"),
        # TypeError: column names must be strings
        (_with_extra_column(0, [1, 2, 3]), "column name 0 is not text"),
        # TypeError: complex128 is not supported
        (_with_extra_column("z", [1j, 2j, 3j]), "source 'orders'"),
    ],
    ids=["year-1", "year-9999", "int-past-64-bits", "duplicate-names", "int-column-name", "complex-column"],
)
def test_data_bugs_found_by_fuzzing_are_data_errors(one_engine_thread: None, frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(KpinbError, match=re.escape(message)) as err:
        compute(["average_order_value"], sources={"orders": frame})
    assert "\n" not in str(err.value) and HAS_FIX.search(str(err.value)), str(err.value)


@pytest.mark.parametrize("dates", [b"0001-01-01", b"9999-12-31"])
def test_csv_with_dates_out_of_pandas_range_is_a_data_error(
    tmp_path: Path, one_engine_thread: None, dates: bytes
) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(b"order_id,order_date,revenue,status\no1,2024-01-01,10,completed\no2," + dates + b",5,completed\n")
    with pytest.raises(KpinbError, match=r"source 'orders' .*'order_date'.*Fix or remove those rows"):
        compute(["average_order_value"], sources={"orders": str(path)})


def test_column_without_any_value_computes(one_engine_thread: None) -> None:
    # was a FormulaError blaming the catalog formula ("sum() needs numbers, but its argument is null")
    df = compute(["average_order_value"], sources={"orders": CLEAN.assign(revenue=[None] * 3)}, grain="year")
    assert df["value"].tolist() == [0.0]
    sessions = pd.DataFrame(
        {"session_id": ["s1", "s2"], "session_start": [dt.datetime(2024, 1, 1)] * 2, "bounced": [None] * 2}
    )
    assert compute(["bounce_rate"], sources={"web_sessions": sessions}, grain="year")["value"].tolist() == [0.0]


def test_csv_that_is_not_utf8_says_so(tmp_path: Path, one_engine_thread: None) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes("order_id,order_date,revenue,status\nö1,2024-01-01,10,completed\n".encode("latin-1"))
    with pytest.raises(KpinbError, match=r"not UTF-8 text \(byte 0xf6 on line 2\): save it as UTF-8"):
        compute(["average_order_value"], sources={"orders": str(path)})


def test_csv_with_a_bad_byte_past_the_sniffed_rows_says_so(tmp_path: Path, one_engine_thread: None) -> None:
    # DuckDB reads the first rows to guess the format: a bad byte further down fails the query itself
    path = tmp_path / "orders.csv"
    rows = b"".join(b"o%d,2024-01-01,10,completed\n" % i for i in range(30_000))
    path.write_bytes(b"order_id,order_date,revenue,status\n" + rows + b"\xf6,2024-01-02,5,completed\n")
    with pytest.raises(KpinbError, match=r"not UTF-8 text \(byte 0xf6 on line 30002\): save it as UTF-8"):
        compute(["average_order_value"], sources={"orders": str(path)})


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("order_id", ["o1", 2, "o3"]),  # was "the query failed: ('Expected bytes, got a 'int' object', ...)"
        ("order_date", [dt.datetime(2024, 1, 1), "2024-01-02", 3]),  # was "has type unknown"
        ("revenue", [1.5, "n/a", True]),
    ],
)
def test_column_mixing_kinds_of_values_is_named(one_engine_thread: None, column: str, values: list[Any]) -> None:
    frame = CLEAN.assign(**{column: pd.Series(values, dtype=object)})
    with pytest.raises(KpinbError, match=rf"source 'orders' .*column '{column}' mixes kinds of values") as err:
        compute(["average_order_value"], sources={"orders": frame})
    assert HAS_FIX.search(str(err.value)), str(err.value)
