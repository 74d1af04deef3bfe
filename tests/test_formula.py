"""The formula language: what parses, and what is rejected with which message."""

from pathlib import Path

import pytest

from kpinb.definitions.formula import Agg, BinOp, Col, Prev, Ref, parse
from kpinb.errors import FormulaError


def test_ratio_formula_parses_to_tree_with_columns():
    f = parse("sum(revenue) / count_distinct(order_id)")
    assert f.columns == {"revenue", "order_id"}
    num, den = f.ratio
    assert num == Agg("sum", Col("revenue"))
    assert den == Agg("count_distinct", Col("order_id"))


def test_count_distinct_spellings_agree():
    assert parse("count(distinct x)").tree == parse("count_distinct(x)").tree


def test_derived_formula_with_prev():
    f = parse("({rev} - prev({rev})) / prev({rev})", kind="derived")
    assert f.refs == {"rev"}
    assert f.ratio[1] == Prev(Ref("rev"))
    assert isinstance(f.ratio[0], BinOp)


def test_between_and_case_and_in():
    f = parse("count_if(score between 9 and 10) - count_if(channel in ('a', 'b'))")
    assert f.columns == {"score", "channel"}
    parse("avg(case when bounced then 1 else 0 end)")
    parse("status = 'completed' and amount is not null", kind="row")


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("__import__('os')", "aggregate", "unknown function '__import__'"),
        ("sum(x); drop table t", "aggregate", "contains `;`"),
        ("sum(x) -- sneaky", "aggregate", "contains a comment"),
        ("sum(x) /* c */", "aggregate", "contains a comment"),
        ("foo(x)", "aggregate", "unknown function 'foo'"),
        ("sum(t.x)", "aggregate", "qualified name 't.x'"),
        ("sum(x) over ()", "aggregate", "window function"),
        ("sum((select 1))", "aggregate", "subquery"),
        ("sum(x::int)", "aggregate", "unknown function 'cast'"),
        ("revenue", "aggregate", "outside an aggregate"),
        ("sum(revenue) + cost", "aggregate", "column 'cost' outside an aggregate"),
        ("sum(sum(x))", "aggregate", "nests aggregates"),
        ("1 + 2", "aggregate", "has no aggregate"),
        ("sum(x) > 1", "row", "aggregate sum() in a filter"),
        ("{a} / {b}", "aggregate", "Only derived metrics"),
        ("{a} > 1", "derived", "derived metric"),
        ("sum(x)", "derived", "aggregate sum() in a derived metric"),
        ("prev(x)", "derived", "prev() takes a metric reference"),
        ("{a} + x", "derived", "column 'x' in a derived metric"),
        ("sum(x", "aggregate", "cannot be parsed"),
        ("", "aggregate", "is empty"),
        ("sum(x) + " + " + ".join(["1"] * 3000), "aggregate", "longer than"),
        ("(" * 300 + "sum(x)" + ")" * 300, "aggregate", "nested too deeply"),
        ("count_if(1)", "aggregate", "needs a condition"),
        ("sum(x) filter (where y)", "aggregate", "FILTER"),
        ("x in (select 1)", "row", "subquery"),
        ("sum(1e999)", "aggregate", "out of range"),
    ],
)
def test_rejections_name_the_problem(text, kind, message):
    with pytest.raises(FormulaError) as err:
        parse(text, kind=kind)
    assert message in str(err.value)


def test_unknown_column_suggests_the_closest():
    with pytest.raises(FormulaError, match=r"unknown column 'revenu'.*Did you mean 'revenue'"):
        parse("sum(revenu)", columns=["revenue", "cost"])


def test_formula_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        parse("evil()")


# --- every function name a database knows ------------------------------------------------------

# The formula language as the README documents it ("### Formulas"); everything else is refused.
DOCUMENTED_AGGREGATES = ("sum", "count", "count_distinct", "count_if", "avg", "min", "max", "median")
DOCUMENTED_FUNCTIONS = ("coalesce", "nullif", "make_date", "year", "month", "day", "lower", "upper", "abs", "round")

# PostgreSQL table-returning and system functions (file, network, session, server control),
# by name: sqlglot parses them as plain calls, so nothing but the whitelist keeps them out.
POSTGRES_FUNCTIONS = """pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file pg_ls_logdir pg_ls_waldir pg_ls_tmpdir
lo_import lo_export lo_get lo_put lo_from_bytea lo_unlink dblink dblink_exec dblink_connect pg_sleep pg_sleep_for
pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile set_config current_setting pg_backend_pid
version current_user session_user current_database current_schema inet_server_addr txid_current pg_advisory_lock
nextval setval currval generate_series generate_subscripts unnest json_to_recordset jsonb_to_recordset
json_populate_recordset jsonb_each json_each regexp_split_to_table query_to_xml table_to_xml database_to_xml
pg_get_functiondef pg_get_viewdef pg_stat_get_activity pg_logical_emit_message pg_create_restore_point
pg_switch_wal pg_start_backup pg_stop_backup pg_promote pg_import_system_collations copy""".split()

# DuckDB file readers and system functions that a DuckDB build without extensions may not list.
DUCKDB_FUNCTIONS = """read_csv read_csv_auto read_parquet parquet_scan read_json read_json_auto read_ndjson read_text
read_blob read_xlsx glob sniff_csv getenv current_setting query query_table sqlite_scan sqlite_attach postgres_scan
postgres_query postgres_execute mysql_query iceberg_scan delta_scan st_read httpfs_get duckdb_settings
duckdb_secrets load_extension install_extension system shell""".split()


def every_function_name() -> list[str]:
    """Every function name sqlglot knows (any dialect, PostgreSQL and DuckDB parsers), every
    function of the installed DuckDB (tables, pragmas, macros included) and the lists above."""
    import re

    import duckdb
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.dialects.postgres import Postgres

    names: set[str] = set()
    for func in exp.ALL_FUNCTIONS:
        names.update(func.sql_names())
    for parser in (sqlglot.parser.Parser, DuckDB.Parser, Postgres.Parser):
        names.update(parser.FUNCTIONS)
    with duckdb.connect() as con:
        names.update(row[0] for row in con.sql("select distinct function_name from duckdb_functions()").fetchall())
    names.update(POSTGRES_FUNCTIONS + DUCKDB_FUNCTIONS)
    return sorted({n.lower() for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)})


def uses(name: str) -> list[tuple[str, str]]:
    """The places a function could slip in: an aggregate's own call, inside an aggregate, a filter."""
    return [
        (f"{name}(revenue)", "aggregate"),
        (f"{name}(revenue, 0)", "aggregate"),
        (f"sum({name}(revenue))", "aggregate"),
        (f"sum({name}(revenue, 0))", "aggregate"),
        (f"{name}(revenue) > 0", "row"),
        (f"{name}(revenue, 0) > 0", "row"),
    ]


def test_every_function_name_outside_the_documented_list_is_refused():
    """An extra entry in the allowed-function table (say `read_csv`) would let a plan load and
    fail only at compute time; each name sqlglot, DuckDB or PostgreSQL knows must be refused
    when the formula is parsed, with a FormulaError naming the formula."""
    names = every_function_name()
    assert len(names) > 1000 and {"read_csv", "read_parquet", "pg_read_file", "ifnull", "countif"} <= set(names)
    accepted = []
    for name in names:
        if name in DOCUMENTED_AGGREGATES + DOCUMENTED_FUNCTIONS:
            continue
        for text, kind in uses(name):
            try:
                parse(text, kind=kind, columns=["revenue"])
            except FormulaError as e:
                assert str(e).startswith(f"formula {text!r}"), str(e)
            else:
                accepted.append((text, kind))
    assert not accepted, f"{len(accepted)} formulas with undocumented functions were accepted: {accepted[:20]}"


def test_the_documented_functions_are_accepted_where_they_belong():
    """The other half of the test above: the same formulas with documented names do parse."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Formulas", 1)[1].split("\n## ", 1)[0]
    for name in DOCUMENTED_AGGREGATES + DOCUMENTED_FUNCTIONS:
        assert f"`{name}`" in section
    for name in DOCUMENTED_AGGREGATES:
        arg = "revenue > 0" if name == "count_if" else "revenue"
        assert parse(f"{name}({arg})").tree == Agg(name, parse(f"{arg}", kind="row").tree)
    from kpinb.definitions.formula import ROW_FUNCTIONS

    for name in DOCUMENTED_FUNCTIONS:
        args = ", ".join(["revenue", "0", "1"][: ROW_FUNCTIONS.get(name, (2, 2))[1]])
        assert parse(f"sum({name}({args}))").tree.arg.func == name
        assert parse(f"{name}({args}) > 0", kind="row").tree.left.func == name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sum(ifnull(revenue, 0))", "unknown function 'ifnull'. Write coalesce(...) instead"),
        ("sum(nvl(revenue, 0))", "unknown function 'nvl'. Write coalesce(...) instead"),
        ("countif(revenue > 0)", "unknown function 'countif'. Write count_if(...) instead"),
        ("sum(revenue ?? 0)", "uses an operator for coalesce(). Write coalesce(...)"),
        ("read_csv(revenue)", "unknown function 'read_csv'"),
        ("sum(read_parquet(revenue))", "unknown function 'read_parquet'"),
    ],
)
def test_aliases_sqlglot_reads_as_allowed_functions_are_refused_with_the_documented_name(text, message):
    with pytest.raises(FormulaError) as err:
        parse(text)
    assert message in str(err.value)
