"""The formula language: what parses, and what is rejected with which message."""

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
