"""Property-based tests: hostile plan YAML ends in a Plan or one PlanError, never anything else.

Each property runs 1,000 generated cases (derandomized, so CI sees the same ones). A case
must finish with a checked :class:`~kpinb.definitions.model.Plan` or a :class:`~kpinb.errors.PlanError`
whose every line names the file; never another exception, never a hang (each case is
time-boxed), never a constructed YAML tag, never a password in a message.
"""

from __future__ import annotations

import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fuzz_support
import pytest
import yaml
from fuzz_support import CASES, CaseTimeout, fuzz_settings, time_box  # noqa: F401 (CaseTimeout: a YAML tag names it)
from hypothesis import strategies as st

from kpinb._yaml import MAX_CHARS
from kpinb.definitions import catalog
from kpinb.definitions.model import Plan
from kpinb.definitions.plan import MAX_PROBLEMS, load_plan, parse_plan
from kpinb.errors import KpinbError, PlanError

pytestmark = pytest.mark.timeout(600)  # per test; each case is also time-boxed below
CASE_SECONDS = 20  # interrupts a hanging case; a normal one takes milliseconds
SECRET = "S3cretPw"
FILE = "fuzz-plan.yml"

FUZZ = fuzz_settings()


def run_cases(strategy: st.SearchStrategy[Any], case: Callable[[Any], str], name: str) -> Counter[str]:
    """Run ``case`` on CASES examples of ``strategy``, each time-boxed; return the outcome counts."""
    return fuzz_support.run_cases(strategy, case, name, CASE_SECONDS, FUZZ)


GOOD = """\
name: Sales 2025
department: sales
objectives:
  - id: grow-revenue
    statement: Grow revenue 20% in 2025
sources:
  orders:
    path: orders.parquet
    columns: {revenue: amount_usd}
metrics:
  - id: big_orders
    name: Big orders
    source: orders
    expr: count_if(revenue > 1000)
    where: status = 'completed'
    unit: count
kpis:
  - metric: monthly_sales_revenue
    objective: grow-revenue
    owner: Head of Sales
    baseline: {value: 100000}
    target: {value: 120000, by: 2025-12-31}
    thresholds: {warning: 110000, critical: 100000}
    supporting: [average_order_value, big_orders]
review: {every: quarter, last: 2025-01-15}
"""


def check_outcome(run: Callable[[], Any], file: str) -> str:
    """Run one case; return 'ok' or 'PlanError', failing on anything else or a bad message."""
    try:
        plan = run()
    except PlanError as e:
        msg = str(e)
        lines = msg.splitlines()
        assert lines, "empty error message"
        assert len(lines) <= MAX_PROBLEMS + 1, f"{len(lines)} lines"
        for line in lines:
            assert line.startswith(file), f"line does not name the file: {line[:200]!r}"
            assert len(line) < 2000, f"line of {len(line)} characters"
        assert SECRET not in msg, f"password in message: {msg[:500]!r}"
        return "PlanError"
    except KpinbError as e:  # a kpinb error, but not the kind a plan should give
        pytest.fail(f"{type(e).__name__} instead of PlanError: {e}")
    assert isinstance(plan, Plan)
    return "ok"


# --- values -------------------------------------------------------------------------------

METRIC_IDS = sorted(catalog.metrics())
SOURCE_NAMES = sorted(catalog.sources())
ids = st.one_of(
    st.sampled_from(METRIC_IDS),
    st.sampled_from(METRIC_IDS).map(lambda s: s[:-1]),  # near misses
    st.from_regex(r"[a-z][a-z0-9_\-]{0,20}", fullmatch=True),
    st.text(max_size=30),
)
weird_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30) | st.sampled_from(
    ["", " ", "\u202e", "\u200b", "ß", "İ", "🚀", "名前", "\t", "NaN", "null", "~", "yes", "0x1F"]
)
huge_numbers = st.one_of(
    st.sampled_from([400, 4000]).map(lambda n: 10**n),  # built lazily: a 4000-digit repr would flood reports
    st.sampled_from([2**63, -(2**63) - 1, 2**64 + 1, 1e308, -1e308, 5e-324, float("inf"), float("nan")]),
)
numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), huge_numbers)
dates = st.one_of(st.dates(), st.datetimes(), st.sampled_from(["2025-13-01", "2025-02-30", "0000-01-01", "yesterday"]))
urls = st.sampled_from(
    [
        f"postgresql://user:{SECRET}@127.0.0.1:1/db",
        f"postgresql://:{SECRET}@db/x",
        f"postgresql://u:{SECRET}@h@h2/db",
        f"postgresql://db/x?user=u&password={SECRET}",
        f"mysql://root:{SECRET}@localhost/shop",
        "postgresql://db/x",
    ]
)
scalars = st.one_of(st.none(), st.booleans(), numbers, weird_text, dates, ids, urls)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.one_of(weird_text, st.integers()), inner, max_size=3)
    ),
    max_leaves=5,  # small: generating junk is most of a case's cost, and one wrong value suffices
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes junk of any type."""
    return st.one_of(good, good, good, good, junk)


def record(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[Any, Any]]:
    """A mapping with some keys left out and sometimes an unknown key added."""
    base = st.fixed_dictionaries(
        {k: maybe(v) for k, v in required.items()}, optional={k: maybe(v) for k, v in optional.items()}
    )
    extra = st.dictionaries(st.sampled_from(["ownr", "tagret", "id ", "Name", "__class__", "<<"]), junk, max_size=1)
    drop = st.sets(st.sampled_from(sorted(required)), max_size=1) if required else st.just(set())
    return st.tuples(base, extra, drop).map(lambda t: {k: v for k, v in {**t[0], **t[1]}.items() if k not in t[2]})


objective = record({"id": ids, "statement": weird_text}, {"theme": ids})
source = record(
    {},
    {
        "path": st.sampled_from(["orders.parquet", "../x.csv", "", "/dev/null", "C:\\x.csv", "*.csv"]),
        "url": urls,
        "table": weird_text,
        "query": st.sampled_from(["select 1", "drop table x", "with a as (select 1) select * from a"]),
        "columns": st.dictionaries(st.sampled_from(["revenue", "order_id", "revenu", "x"]), weird_text, max_size=3),
        "time": weird_text,
        "dimensions": st.lists(weird_text, max_size=3),
        "format": st.sampled_from(["csv", "parquet", "exe", ""]),
    },
)
metric = record(
    {"id": ids, "name": weird_text, "expr": st.sampled_from(["sum(revenue)", "{a} / {b}", "count(*)", "x;", ""])},
    {
        "source": st.sampled_from(SOURCE_NAMES) | weird_text,
        "where": st.sampled_from(["status = 'completed'", "sum(x) > 1", "__import__('os')"]),
        "unit": st.sampled_from(["count", "currency", "percent", "parsecs"]),
        "direction": st.sampled_from(["higher_is_better", "up"]),
    },
)
target = record({"value": numbers, "by": dates}, {"path": st.sampled_from(["flat", "linear", "zigzag"])})
kpi = record(
    {"metric": ids},
    {
        "objective": ids,
        "owner": weird_text,
        "grain": st.sampled_from(["day", "week", "month", "fortnight"]),
        "baseline": record({}, {"value": numbers, "from": dates, "to": dates}),
        "target": target,
        "thresholds": record({}, {"warning": numbers, "critical": numbers, "change_pct": numbers}),
        "supporting": st.lists(ids, max_size=3),
    },
)
plans = record(
    {"name": weird_text, "department": weird_text},
    {
        "objectives": st.lists(objective, max_size=3),
        "sources": st.dictionaries(st.sampled_from(SOURCE_NAMES) | weird_text, source, max_size=2),
        "metrics": st.lists(metric, max_size=3),
        "kpis": st.lists(kpi, max_size=3),
        "review": record({}, {"every": st.sampled_from(["quarter", "never"]), "last": dates}),
        "benchmarks": weird_text,
    },
)


def dump(data: Any, flow: bool | None) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=flow)


def test_structured_plans_with_wrong_types_missing_keys_and_unknown_ids() -> None:
    outcomes = run_cases(
        st.tuples(plans, st.sampled_from([False, True, None])),
        lambda ex: check_outcome(lambda: parse_plan(dump(*ex), FILE), FILE),
        "structured plans",
    )
    assert outcomes["PlanError"] > 100 and outcomes["ok"] > 0  # both sides of the contract are exercised


# --- textual mutations of a good plan -------------------------------------------------------

_FIRED: list[object] = []


def _fire(*args: object) -> None:
    """Called only if a YAML tag were ever constructed."""
    _FIRED.append(args)


def billion_laughs(levels: int, width: int) -> str:
    lines = [f"lol0: &lol0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def hostile_tags(sentinel: Path) -> list[str]:
    here = sys.modules[__name__].__name__
    return [
        f"!!python/object/apply:os.system ['touch {sentinel}']",
        f"!!python/object/apply:{here}._fire ['boom']",
        f"!!python/object/new:{here}.CaseTimeout ['boom']",
        f"!!python/name:{here}._fire",
        "!!python/module:os",
        f"!!python/object:{here}.CaseTimeout {{a: 1}}",
        f"!!python/object/apply:subprocess.call [['touch', '{sentinel}']]",
        "!!binary /w==",
        "!!set {a, b}",
        "!!omap [a: 1]",
        "!!str 2025-01-01",
        "!!timestamp 2025-01-01",
        "!custom 1",
        "! x",
        "!<tag:yaml.org,2002:python/object/apply:os.system> ['true']",
    ]


def mutations(sentinel: Path) -> st.SearchStrategy[Callable[[list[str]], list[str]]]:
    """Functions that damage a plan's lines in one way each."""
    tags = st.sampled_from(hostile_tags(sentinel))
    specials = st.text(alphabet=":{}[],&*#?|-<>=!%@`'\"\\\t " + string.ascii_letters, min_size=1, max_size=12)
    values = st.one_of(
        tags,
        specials,
        weird_text,
        st.sampled_from(["2025-13-01", "2025-02-30", "9" * 5000, "1e400", "-.inf", ".nan", "0o777", "0x_", "*missing"]),
        st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
        st.integers(1, 3000).map(lambda n: "{a: " * n + "1" + "}" * n),
        st.integers(1, 200).map(lambda n: "- " * n + "x"),
        urls,
    )

    def at(i: int, f: Callable[[list[str], int], list[str]]) -> Callable[[list[str]], list[str]]:
        return lambda lines: f(lines, i % max(len(lines), 1)) if lines else lines

    line_no = st.integers(0, 200)
    return st.one_of(
        line_no.map(lambda i: at(i, lambda ls, j: [*ls[: j + 1], ls[j], *ls[j + 1 :]])),  # duplicate key
        line_no.map(lambda i: at(i, lambda ls, j: ls[:j] + ls[j + 1 :])),  # missing key
        st.tuples(line_no, values).map(
            lambda t: at(t[0], lambda ls, j: [*ls[:j], _replace_value(ls[j], t[1]), *ls[j + 1 :]])
        ),
        st.tuples(line_no, st.integers(-4, 4)).map(
            lambda t: at(t[0], lambda ls, j: [*ls[:j], " " * max(0, t[1]) + ls[j][max(0, -t[1]) :], *ls[j + 1 :]])
        ),
        st.tuples(line_no, weird_text).map(lambda t: at(t[0], lambda ls, j: [*ls[:j], t[1], *ls[j:]])),
        st.tuples(st.integers(1, 12), st.integers(2, 12)).map(
            lambda t: lambda ls: [*ls, *billion_laughs(*t).splitlines(), f"extra: *lol{t[0] - 1}"]
        ),
        st.just(lambda ls: [*ls, "loop: &loop [*loop]"]),
        st.just(lambda ls: [*ls, "loop2: &l2 {a: &l3 [*l2]}"]),
        st.just(lambda ls: [*ls, "m: &m {every: quarter}", "review2: {<<: *m}"]),
        st.just(lambda ls: ["%TAG !e! tag:yaml.org,2002:python/object/apply:", *ls, "x: !e!os.system [true]"]),
        st.just(lambda ls: ["--- a", "--- b", *ls]),  # several documents
        st.just(lambda ls: [ln.replace(":", "\t:") for ln in ls]),
    )


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sentinel") / "HACKED"


def _replace_value(line: str, value: str) -> str:
    head, sep, _ = line.partition(": ")
    return f"{head}{sep}{value}" if sep else f"{line.rstrip()} {value}"


def test_mutated_plan_text_tags_aliases_and_nesting_never_escape(sentinel: Path) -> None:
    _FIRED.clear()
    good_lines = GOOD.splitlines()

    def case(fs: list[Callable[[list[str]], list[str]]]) -> str:
        lines = good_lines
        for f in fs:
            lines = f(lines)
        text = "\n".join(lines) + "\n"
        started = time.monotonic()
        outcome = check_outcome(lambda: parse_plan(text, FILE), FILE)
        assert time.monotonic() - started < 3, f"slow case ({time.monotonic() - started:.1f} s)"
        assert not sentinel.exists() and not _FIRED, "a YAML tag was constructed"
        return outcome

    outcomes = run_cases(st.lists(mutations(sentinel), min_size=1, max_size=4), case, "mutated plan text")
    assert outcomes["PlanError"] > 300 and outcomes["ok"] > 0


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(PlanError, match=r"expands to more than [\d,]+ values"):
        parse_plan(f"name: a\ndepartment: b\n{billion_laughs(12, 10)}kpis: *lol11\n", FILE)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\ndepartment: b\nreview: {last: 2025-02-30}\n", r":3: review\.last: '2025-02-30' is not a valid date"),
        (f"name: a\nkpis: [{{target: {{value: {'9' * 5000}}}}}]\n", r":2: kpis\[0\]\.target\.value: .* fewer digits"),
        ("name: a\nkpis: " + "[" * 5000 + "]" * 5000, "nested more than"),
        ("name: a\nkpis: &a [*a]\n", "recursive alias"),
        ("name: !!binary /w==\n", "YAML tags are not allowed"),
        ("name: a\nx: &m {a: 1}\nreview: {<<: *m}\n", r"merge keys .* not supported"),
        ("name: a\nstage: 1\nstage: 2\n", r"duplicate key 'stage'; keep only one\.$"),
        ("name: a\x00\n", r":1: the character U\+0000 is not allowed"),
        ("name: x\n" * 2 + "# " + "x" * MAX_CHARS, "characters, more than"),
    ],
)
def test_each_yaml_hazard_has_a_located_message(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message) as err:
        parse_plan(text, FILE)
    assert str(err.value).startswith(FILE)


def test_odd_field_names_keep_one_problem_on_one_line() -> None:
    # found by fuzzing: a key holding a line break split one problem over two lines
    with pytest.raises(PlanError) as err:
        parse_plan('name: a\ndepartment: b\nobjectives: [{"\\r": 1, "a b": 2}]\n', FILE)
    lines = str(err.value).splitlines()
    assert all(line.startswith(FILE) for line in lines), lines
    assert any("objectives[0]['\\r']: unknown field '\\r'" in line for line in lines), lines
    assert any("objectives[0]['a b']" in line for line in lines), lines


def test_passwords_in_values_are_hidden_in_messages() -> None:
    text = f"name: a\ndepartment: b\nsources: {{orders: 'postgresql://user:{SECRET}@db.example.com:5432/shop_prod'}}\n"
    with pytest.raises(PlanError) as err:
        parse_plan(text, FILE)
    assert SECRET not in str(err.value) and "postgresql://user:***@" in str(err.value)


def test_thousands_of_problems_are_capped() -> None:
    text = "name: a\ndepartment: b\nkpis:\n" + "".join(f"  - metric: nope_{i}\n" for i in range(5000))
    started = time.monotonic()
    with pytest.raises(PlanError) as err:
        parse_plan(text, FILE)
    assert time.monotonic() - started < 10
    lines = str(err.value).splitlines()
    assert len(lines) == MAX_PROBLEMS + 1 and "more problems" in lines[-1]


# --- bytes on disk through load_plan --------------------------------------------------------

encodings = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-32", "cp1252"])
raw_bytes = st.one_of(
    st.binary(max_size=400),
    st.tuples(st.integers(0, len(GOOD)), st.binary(min_size=1, max_size=8)).map(
        lambda t: GOOD.encode()[: t[0]] + t[1] + GOOD.encode()[t[0] :]
    ),
    st.tuples(encodings, st.sampled_from([GOOD, GOOD.replace("Sales", "Ventes été ☃")])).map(
        lambda t: t[1].encode(t[0], errors="replace")
    ),
    st.integers(1, len(GOOD.encode())).map(lambda n: "ü".join(GOOD.split("a")).encode()[:n]),  # cut mid-character
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\x00" * 10, b"\xff\xfe", b"---\n...\n", b"~", b"[]", b"name: \xc3\x28\n"]),
)


def test_non_utf8_and_random_bytes_via_load_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.yml"

    def case(data: bytes) -> str:
        path.write_bytes(data)
        return check_outcome(lambda: load_plan(path), str(path))

    outcomes = run_cases(raw_bytes, case, "bytes via load_plan")
    assert outcomes["PlanError"] > 300 and outcomes["ok"] > 0


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    with path.open("wb") as f:
        f.truncate(64 * MAX_CHARS)  # sparse: large on paper, nothing on disk
    with pytest.raises(PlanError, match="too large for a plan"):
        load_plan(path)
