"""Property-based tests: hostile formulas are rejected with a FormulaError; accepted ones are safe.

Each property runs 1,000 generated cases (derandomized; ``run_cases`` counts them, prints
the outcomes and fails below 1,000), each time-boxed. For every kind (``aggregate``, ``row``,
``derived``) a formula must parse into a tree that only holds whitelisted nodes, or fail with
one :class:`~kpinb.errors.FormulaError` line naming the formula and the fix. Any formula the
parser accepts must then be built by the engine (where types are checked) and compute over
real data (one DuckDB query per batch of formulas) to a result or a kpinb error, never
another exception.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import fuzz_support
import pandas as pd
import pytest
from fuzz_support import CASES, fuzz_settings, time_box
from hypothesis import HealthCheck, assume
from hypothesis import strategies as st

from kpinb import compute
from kpinb.data.sources import duckdb_connection, open_source
from kpinb.definitions.formula import (
    AGGREGATES,
    MAX_LENGTH,
    Agg,
    BinOp,
    Call,
    Case,
    Col,
    Formula,
    InList,
    Kind,
    Lit,
    Prev,
    Ref,
    Unary,
    _unquoted,
    parse,
)
from kpinb.definitions.model import Metric
from kpinb.engine import RESULT_COLUMNS
from kpinb.engine.query import _build
from kpinb.errors import FormulaError, KpinbError

pytestmark = pytest.mark.timeout(600)  # per test; each case is also time-boxed below
CASE_SECONDS = 20  # interrupts a hanging case; a normal one takes milliseconds
KINDS: tuple[Kind, ...] = ("aggregate", "row", "derived")

FUZZ = fuzz_settings(HealthCheck.filter_too_much)


def run_cases(strategy: st.SearchStrategy[Any], case: Callable[[Any], str], name: str) -> Counter[str]:
    """Run ``case`` on CASES examples of ``strategy``, each time-boxed; return the outcome counts."""
    return fuzz_support.run_cases(strategy, case, name, CASE_SECONDS, FUZZ)


# --- what an accepted formula may contain ---------------------------------------------------

_OPS = {"+", "-", "*", "/", "=", "!=", "<", "<=", ">", ">=", "and", "or"}


def assert_whitelisted(f: Formula) -> None:
    """Every node of an accepted tree is one the engine knows, used where it may be."""
    for n in f.tree.walk():
        assert isinstance(n, (Lit, Col, Ref, Prev, Agg, BinOp, Unary, Call, InList, Case)), type(n)
        if isinstance(n, Agg):
            assert n.func in AGGREGATES
        if isinstance(n, Call):
            assert n.func in ("coalesce", "nullif")
        if isinstance(n, BinOp):
            assert n.op in _OPS
        if isinstance(n, Unary):
            assert n.op in ("neg", "not", "isnull", "notnull")
        if isinstance(n, Col):
            assert n.name and not n.name.startswith("__")
        if isinstance(n, Lit):
            assert n.value is None or isinstance(n.value, (bool, int, float, str))
    # outside string literals: inside one, `;` and `--` are plain text (a Lit), never SQL
    code = _unquoted(f.text)
    assert ";" not in code and "--" not in code and "/*" not in code
    has_agg = any(isinstance(n, Agg) for n in f.tree.walk())
    if f.kind == "aggregate":
        assert has_agg and not f.refs
    elif f.kind == "row":
        assert not has_agg and not f.refs
    else:
        assert f.refs and not f.columns and not has_agg


def outcome(text: str, kind: Kind, columns: list[str] | None = None) -> str:
    """Parse; 'ok' (and the tree is checked) or 'FormulaError' (and the message is checked)."""
    try:
        f = parse(text, kind=kind, columns=columns)
    except FormulaError as e:
        msg = str(e)
        assert msg.startswith("formula "), msg[:200]
        assert "\n" not in msg and len(msg) < 1500, f"{len(msg)} characters: {msg[:200]!r}"
        assert ". " in msg, f"no fix in {msg[:200]!r}"  # `problem. Fix`
        return "FormulaError"
    except KpinbError as e:
        pytest.fail(f"{type(e).__name__} instead of FormulaError: {e}")
    assert_whitelisted(f)
    if columns is not None:
        assert f.columns <= set(columns)
    return "ok"


# --- hostile text -------------------------------------------------------------------------

SQL = """select from where union all drop table insert into delete update set exec execute attach detach
copy pragma install load read_csv read_parquet 'file.csv' '/etc/passwd' glob system shell sleep pg_sleep
information_schema sqlite_master getenv current_setting grant revoke truncate returning lateral join on using
group by having order limit offset window over partition rows range interval cast try_cast as is not null
true false case when then else end in between like ilike similar to regexp exists distinct filter within
any some array struct map list lambda -> ->> :: || @ # $1 ? :name % ^ ~ & | << >> <=> == <> != !""".split()
PYTHON = """__import__ import os sys subprocess eval exec compile open getattr setattr globals locals vars
__class__ __bases__ __subclasses__ __globals__ __builtins__ __dict__ __mro__ __init__ __reduce__ lambda yield
await def class return print input breakpoint . .. ... [ ] [0] () : ** // \\ f'' b'' r'' `x` $ pass None
True False nan inf""".split()
ALLOWED = """sum count count_distinct count_if avg min max median coalesce nullif prev ( ) , * + - / = < > <= >=
and or not revenue cost quantity status region order_date is_new_customer {average_order_value} {orders_count}
{x} { } 1 0 -1 2.5 1e10 'completed' 'a''b' "quoted col" null""".split()
QUOTES = ["'", '"', "`", "''", '""', "'''", "\\'", '\\"', "'\"'", '"\'"']
COMMENTS = ["--", "/*", "*/", "#", "//", "-- x\n", "/* x */"]
UNICODE = [
    "é",
    "ß",
    "İ",
    "ǅ",
    "名前",
    "😀",
    "\u200b",
    "\u202e",
    "\u00a0",
    "\ufeff",
    "ﬁ",
    "Ω",
    "𝔰𝔲𝔪",
    "ｓｕｍ",
    "\t",
    "\n",
    "\r",
]
VOCAB = SQL + PYTHON + ALLOWED + QUOTES + COMMENTS + UNICODE

token_soup = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=25).flatmap(
    lambda tokens: st.sampled_from([" ", "", "\n"]).map(lambda sep: sep.join(tokens))
)
identifiers = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "Pc", "Mn", "Sk", "So"]), min_size=1, max_size=12
)
string_literals = st.text(max_size=20).map(lambda s: "'" + s.replace("'", "''") + "'")


def nest(depth: int, core: str, kind: str) -> str:
    wrap = {"paren": ("(", ")"), "not": ("not ", ""), "neg": ("-", ""), "call": ("coalesce(", ", 0)")}[kind]
    return wrap[0] * depth + core + wrap[1] * depth


hostile = st.one_of(
    token_soup,
    st.sampled_from(
        [
            "x.__class__.__bases__[0].__subclasses__()",
            "sum(revenue).__class__",
            "__import__('os').system('touch /tmp/kpinb-pwned')",
            "sum(revenue); drop table orders",
            "sum(revenue) -- ' or 1=1",
            "sum(revenue) /* */ + 1",
            "sum(revenue) union select password from users",
            "count_if(status = '''; drop table x; --')",
            "count_if(status = 'it''s \"quoted\"')",
            'sum("revenue""x")',
            "count_if(status = $$dollar$$)",
            "sum(revenue) filter (where status = 'x')",
            "read_csv('/etc/passwd')",
            "sum((select revenue from orders))",
            "getenv('HOME') = 'x'",
            "sum(revenue::varchar)",
            "{average_order_value}.__dict__",
            "prev({average_order_value}).x",
            "{a}{b}",
            "{}",
            "{ }",
            "{a",
            "__kpinb_ref_0",
            "{a} + __kpinb_ref_1",
            "count(x, y)",
            "sum(1)",
            "count(distinct x, y)",
        ]
    ),
    st.tuples(st.sampled_from(["sum", "count", "avg", "count_if", "coalesce", "prev", "nullif"]), identifiers).map(
        lambda t: f"{t[0]}({t[1]})"
    ),
    st.tuples(identifiers, string_literals).map(lambda t: f"count_if({t[0]} = {t[1]})"),
    st.tuples(
        st.integers(1, 400),
        st.sampled_from(["sum(revenue)", "{a}", "x = 1"]),
        st.sampled_from(["paren", "not", "neg", "call"]),
    ).map(lambda t: nest(*t)),
    st.tuples(
        st.integers(1, 1200),
        st.sampled_from(["sum(revenue)", "{a}", "x", "1"]),
        st.sampled_from([" + ", " and ", " * "]),
    ).map(
        lambda t: t[2].join([t[1]] * t[0])  # up to ~14,000 characters: past MAX_LENGTH
    ),
    st.integers(MAX_LENGTH - 20, MAX_LENGTH + 20).map(lambda n: "sum(" + "r" * (n - 5) + ")"),
    st.text(max_size=80),
)


def test_hostile_text_for_all_three_kinds_with_and_without_known_columns() -> None:
    columns = ["revenue", "cost", "status", "région"]

    def case(example: tuple[str, Kind]) -> str:
        text, kind = example
        results = {k: outcome(text, k) for k in KINDS}
        with_columns = outcome(text, kind, columns)  # the check of the source's columns, as the engine runs it
        assert with_columns == "FormulaError" or results[kind] == "ok"
        return (
            "accepted by " + "+".join(k for k, r in results.items() if r == "ok")
            if "ok" in results.values()
            else "rejected"
        )

    outcomes = run_cases(st.tuples(hostile, st.sampled_from(KINDS)), case, "hostile formulas x 3 kinds")
    assert outcomes["rejected"] > 500


# --- generated formulas over a real source, through the engine ------------------------------

ORDERS = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", None],
        "order_date": pd.to_datetime(
            ["2024-01-05", "2024-01-20", "2024-03-02", "2024-03-31 23:59", "2024-12-31", "2025-01-01", "2025-01-02"],
            format="ISO8601",
        ),
        "customer_id": ["a", "b", "a", "c", "b", "a", "d"],
        "region": ["North", "South", "North", None, "South", "Nörth", "South"],
        "channel": ["online", "retail", "online", "online", "partner", "online", "direct"],
        "quantity": [1, 2, 3, 0, 5, 6, 7],
        "revenue": [10.0, 20.0, None, 40.0, 50.0, -60.0, 70.0],
        "cost": [5.0, 5.0, 5.0, 5.0, 0.0, 5.0, 5.0],
        "status": ["completed", "completed", "returned", "completed", "cancelled", "completed", "it's"],
        "is_new_customer": [True, True, False, True, False, None, True],
    }
)
NUMERIC = ["revenue", "cost", "quantity"]
TEXT = ["order_id", "customer_id", "region", "channel", "status"]
COLUMNS = [*NUMERIC, *TEXT, "is_new_customer", "order_date"]

literals = st.one_of(
    st.integers(-(2**62), 2**62).map(str),
    st.sampled_from(["0", "1", "-1", "2.5", "1e300", "1e-300", "0.0", "4611686018427387904"]),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    string_literals,
    st.sampled_from(["'completed'", "'2024-01-01'", "'North'", "''", "'%'", "'it''s'", "true", "false", "null"]),
)
columns = st.sampled_from(COLUMNS)


def row_exprs(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(columns, columns, literals)
    if depth == 0:
        return leaf
    sub = row_exprs(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "=", "!=", "<", "<=", ">", ">=", "and", "or"]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        sub.map(lambda x: f"not {x}"),
        sub.map(lambda x: f"-{x}"),
        sub.map(lambda x: f"{x} is null"),
        sub.map(lambda x: f"{x} is not null"),
        st.tuples(sub, sub, sub).map(lambda t: f"{t[0]} between {t[1]} and {t[2]}"),
        st.tuples(sub, st.lists(literals, min_size=1, max_size=3)).map(lambda t: f"{t[0]} in ({', '.join(t[1])})"),
        st.tuples(sub, sub, st.none() | sub).map(
            lambda t: f"case when {t[0]} then {t[1]}" + (f" else {t[2]}" if t[2] else "") + " end"
        ),
        st.lists(sub, min_size=1, max_size=3).map(lambda xs: f"coalesce({', '.join(xs)})"),
        st.tuples(sub, sub).map(lambda t: f"nullif({t[0]}, {t[1]})"),
    )


def agg_exprs() -> st.SearchStrategy[str]:
    rows = row_exprs(2)
    one = st.one_of(
        st.tuples(st.sampled_from(["sum", "avg", "min", "max", "median", "count", "count_if"]), rows).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        columns.map(lambda c: f"count_distinct({c})"),
        columns.map(lambda c: f"count(distinct {c})"),
        st.just("count(*)"),
    )
    return st.one_of(
        one,
        st.tuples(one, st.sampled_from(["+", "-", "*", "/", ">", "=", "and"]), one | literals).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        one.map(lambda x: f"-{x}"),
        st.tuples(one, one).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        st.tuples(one, literals).map(lambda t: f"nullif({t[0]}, {t[1]})"),
        st.tuples(one, one, one).map(lambda t: f"case when {t[0]} > 0 then {t[1]} else {t[2]} end"),
    )


@pytest.fixture(scope="module")
def one_engine_thread() -> Iterator[None]:
    """Tiny queries run faster on one DuckDB thread; restore the setting afterwards."""
    con = duckdb_connection()
    before = con.raw_sql("select current_setting('threads')").fetchone()[0]
    con.raw_sql("SET threads = 1")
    compute(["orders_count"], sources={"orders": ORDERS})  # warm up imports before any deadline
    yield
    con.raw_sql(f"SET threads = {int(before)}")


def check_kpinb_error(e: KpinbError) -> str:
    """A kpinb error from the engine: one line, names the metric or source, says the fix."""
    msg = str(e)
    assert msg and len(msg) < 2000 and "\n" not in msg, msg[:300]
    assert "fuzzed" in msg or "'orders'" in msg, f"message names neither metric nor source: {msg[:300]}"
    assert re.search(r"[.;:] [A-Z][a-z]+ ", msg), f"no fix after the problem: {msg[:300]}"
    return type(e).__name__


BATCH = 100  # accepted metrics computed together: one grouped query, as a plan's metrics are


def test_accepted_aggregate_formulas_compute_or_raise_kpinb_errors(one_engine_thread: None) -> None:
    """Every formula the parser accepts is built by the engine (types checked, one case at a time),
    then computed over real data in batches: the engine puts all metrics of a source into one
    query, so a batch runs each formula for real at a fraction of the cost. A batch that fails is
    split in halves until each failure is checked (or reported) on its own formula."""
    table = open_source("orders", ORDERS)
    pending: dict[str, list[Metric]] = {}
    ran: Counter[str] = Counter()

    def run(grain: str, metrics: list[Metric]) -> None:
        try:
            with time_box(CASE_SECONDS * 5):
                df = compute(metrics, sources={"orders": ORDERS}, grain=grain)
        except KpinbError as e:
            if len(metrics) == 1:
                ran[check_kpinb_error(e)] += 1
                return
        except Exception as e:
            if len(metrics) == 1:
                m = metrics[0]
                raise AssertionError(f"expr={m.expr!r} where={m.where!r} grain={grain}: not a kpinb error") from e
        else:
            check_result(df, len(metrics))
            ran["result"] += len(metrics)
            return
        half = len(metrics) // 2  # find the formula(s) at fault
        run(grain, metrics[:half])
        run(grain, metrics[half:])

    def check_result(df: pd.DataFrame, n: int) -> None:
        assert list(df.columns) == list(RESULT_COLUMNS)
        assert df["value"].dtype == "float64" and df["metric"].nunique() == n

    def case(ex: tuple[str, str | None, str]) -> str:
        expr, where, grain = ex
        try:
            parse(expr, kind="aggregate", columns=COLUMNS)
            if where is not None:
                parse(where, kind="row", columns=COLUMNS)
        except FormulaError:
            assume(False)  # the property is about formulas the parser accepts
        n = sum(ran.values()) + sum(map(len, pending.values()))
        metric = Metric(id=f"fuzzed_{n}", name="Fuzzed", source="orders", expr=expr, where=where)
        try:
            _build(table, [metric], grain, [], None, None)  # the engine's compile step: types are checked here
        except KpinbError as e:
            ran[check_kpinb_error(e)] += 1
            return "refused when built"
        batch = pending.setdefault(grain, [])
        batch.append(metric)
        if len(batch) >= BATCH:
            run(grain, pending.pop(grain))
        return "built"

    strategy = st.tuples(agg_exprs(), st.none() | row_exprs(1), st.sampled_from(["month", "quarter", "year"]))
    outcomes = run_cases(strategy, case, "accepted aggregate formulas through the engine")
    for grain, batch in pending.items():
        run(grain, batch)
    print(f"  engine outcomes: {dict(ran)}")
    assert sum(ran.values()) == sum(outcomes.values()) >= CASES  # every accepted formula ran
    assert ran["result"] > 200  # the generator is not all type errors


# --- the bugs the properties found, pinned ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("{a}{b}", "derived", "two values side by side"),  # was Ref('b'): {a} silently dropped
        ("{a}x", "derived", "two values side by side"),  # was ValueError from int('0x')
        ("__kpinb_ref_9 + 1", "derived", "reserved name"),  # was IndexError
        ("{a} + __kpinb_ref_x", "derived", "reserved name"),  # was ValueError
        ('"{a}" + {b}', "derived", "metric reference inside the name '{a}'"),
        ("count(x, y)", "aggregate", "count() takes one argument"),  # y was silently dropped
        ("sum(1)", "aggregate", "sum() aggregates a constant"),  # AttributeError in the engine
        ("count(null)", "aggregate", "count() aggregates a constant"),
        ("avg(true)", "aggregate", "avg() aggregates a constant"),
        ("count_if(1 = 1)", "aggregate", "count_if() aggregates a constant"),
        ("sum(" + "r" * 4990 + ")", "aggregate", "unknown column 'rrrr"),  # the message held all 4990 characters
    ],
)
def test_formula_bugs_found_by_fuzzing(text: str, kind: Kind, message: str) -> None:
    with pytest.raises(FormulaError, match=re.escape(message)) as err:
        parse(text, kind=kind, columns=["revenue"])
    assert len(str(err.value)) < 600


@pytest.mark.parametrize(
    ("expr", "where"),
    [
        ("count_if(revenue)", None),  # SignatureValidationError with the whole DataFrame in its message
        ("count(*)", "revenue"),  # the same, from a filter
        ("count(*)", "status"),
        ("sum(revenue + 'a')", None),  # AttributeError: 'NotImplementedType' object has no attribute 'type'
        ("count(*) + 'a'", None),
        ("sum(-status)", None),  # TypeError: bad operand type for unary -
        ("sum(case when revenue > 1 then 1 else 'x' end)", None),  # IbisTypeError
        ("sum(coalesce(revenue, 'a'))", None),
        ("sum(nullif(revenue, 'a'))", None),
        ("coalesce(sum(revenue), 'a')", None),
        ("nullif(count(*), 'x')", None),
        ("count(*)", "-order_id is null"),  # TypeError: bad operand type for unary -
        ("count_if(status > 1)", None),  # IbisTypeError: Cannot compute precedence for `string` and `int8` types
        ("count_if(order_date > 5)", None),
        ("sum(case when status then 1 else 0 end)", None),  # SignatureValidationError
    ],
)
def test_engine_bugs_found_by_fuzzing_are_formula_errors(one_engine_thread: None, expr: str, where: str | None) -> None:
    metric = Metric(id="fuzzed", name="Fuzzed", source="orders", expr=expr, where=where)
    with pytest.raises(FormulaError, match=r"^metric 'fuzzed'") as err:
        compute([metric], sources={"orders": ORDERS})
    assert len(str(err.value)) < 600 and "InMemoryTable" not in str(err.value)


@pytest.mark.parametrize(
    ("expr", "where"),
    [
        ("sum(revenue)", "-null is null"),  # TypeError: bad operand type for unary -: 'NullScalar'
        ("sum(coalesce(revenue, null))", None),
        ("count(*)", "null"),  # no row passes: counts are 0
    ],
)
def test_null_literals_compute(one_engine_thread: None, expr: str, where: str | None) -> None:
    # a literal null (like a column without any value) takes the type its place needs
    metric = Metric(id="fuzzed", name="Fuzzed", source="orders", expr=expr, where=where)
    df = compute([metric], sources={"orders": ORDERS}, grain="year")
    assert len(df) == 2 and df["value"].dtype == "float64"
