"""What a metric needs and how it combines (kpinb.definitions.analysis): one walk of the formulas
for the engine, the plan check, the wizard and proposals; additivity checked against real data."""

import numpy as np
import pytest

from kpinb import FormulaError, PlanError, compute
from kpinb.definitions import catalog
from kpinb.definitions.analysis import additivity, closure, dependencies, sources_needed
from kpinb.definitions.model import Metric


def m(id_: str, expr: str, source: str | None = "orders", where: str | None = None) -> Metric:
    return Metric(id=id_, name=id_, source=source, expr=expr, where=where)


REG = {
    x.id: x
    for x in (
        m("rev", "sum(revenue)"),
        m("n", "count_distinct(order_id)"),
        m("visits", "count(*)", source="web_sessions"),
        m("aov", "{rev} / {n}", source=None),
        m("rev_per_visit", "{aov} * {n} / {visits}", source=None),
    )
}


def test_closure_orders_dependencies_first_and_reaches_through_derived_metrics():
    order, problems = closure(["rev_per_visit"], REG)
    assert problems == []
    assert order.index("rev") < order.index("aov") < order.index("rev_per_visit")
    assert set(order) == {"rev", "n", "visits", "aov", "rev_per_visit"}
    assert dependencies(["rev_per_visit"], REG) == order
    assert sources_needed(["rev_per_visit"], REG) == {"orders", "web_sessions"}
    assert sources_needed(["rev"], REG) == {"orders"}


def test_closure_lists_every_problem_in_one_pass_and_strict_raises_the_first():
    broken = {
        **REG,
        "loop_a": m("loop_a", "{loop_b} + 1", source=None),
        "loop_b": m("loop_b", "{loop_a} * 2", source=None),
        "typo": m("typo", "{revv} / {n}", source=None),
        "filtered": m("filtered", "{rev} / {n}", source=None, where="status = 'x'"),
        "bad_where": m("bad_where", "sum(revenue)", where="status = = 'x'"),
    }
    _, problems = closure(["loop_a", "typo", "filtered", "bad_where"], broken)
    text = "\n".join(problems)
    assert "cycle: loop_a -> loop_b -> loop_a" in text
    assert "unknown metric 'revv' (used by 'typo') (did you mean 'rev'?)" in text
    assert "derived metric 'filtered' has `where:`" in text
    assert "metric 'bad_where' `where`" in text
    assert len(problems) == 4
    assert sources_needed(["typo"], broken) == {"?"}  # no set of connected sources covers it
    with pytest.raises(PlanError, match="cycle"):
        dependencies(["loop_a"], broken)
    with pytest.raises(PlanError, match="unknown metric 'revv'"):
        dependencies(["typo"], broken)
    with pytest.raises(FormulaError):
        dependencies(["x"], {"x": m("x", "{rev} +", source=None)})


@pytest.mark.parametrize(
    ("expr", "derived", "kind"),
    [
        ("sum(revenue)", False, "sum"),
        ("count(*) + count_if(status = 'completed')", False, "sum"),
        ("sum(revenue) - sum(cost)", False, "sum"),
        ("2 * sum(revenue) / 100", False, "sum"),
        ("-sum(revenue)", False, "sum"),
        ("count_distinct(customer_id)", False, "distinct"),
        ("sum(revenue) + count_distinct(customer_id)", False, "distinct"),
        ("sum(revenue) / count(*)", False, "ratio"),
        ("sum(revenue) / count_distinct(order_id)", False, "none"),
        ("avg(revenue)", False, "none"),
        ("median(revenue)", False, "none"),
        ("sum(revenue) * sum(cost)", False, "none"),
        ("{rev} + {rev}", True, "sum"),
        ("{rev} - {n}", True, "distinct"),
        ("{rev} / {n}", True, "none"),
        ("{nope} + {rev}", True, "none"),
    ],
)
def test_additivity_of_each_kind_of_formula(expr, derived, kind):
    metric = m("x", expr, source=None if derived else "orders")
    assert additivity(metric, REG) == kind


def test_additivity_holds_on_the_sample_data_for_every_orders_and_web_metric(sample_data):
    """Members' values add up to the whole for ``sum``; distinct counts add up to at least the
    whole; for ``ratio`` the numerators and denominators add up."""
    reg = catalog.metrics()
    sources = {s: str(sample_data / f"{s}.parquet") for s in ("orders", "web_sessions")}
    ids = [k for k, x in reg.items() if x.source in sources and additivity(x, reg) != "none"]
    assert len(ids) >= 8
    whole = compute(ids, sources=sources, grain="quarter")
    parts = compute(ids, sources=sources, grain="quarter", by=["region"])
    summed = parts.groupby(["metric", "period_start"])[["value", "numerator", "denominator"]].sum(min_count=1)
    joined = whole.set_index(["metric", "period_start"]).join(summed.add_suffix("_members"))
    for mid in ids:
        rows = joined.loc[mid]
        kind = additivity(reg[mid], reg)
        if kind == "sum":
            np.testing.assert_allclose(rows["value_members"], rows["value"], rtol=1e-9, err_msg=mid)
        elif kind == "distinct":
            assert (rows["value_members"] >= rows["value"]).all(), mid
        else:
            assert rows["numerator"].notna().all() and rows["denominator"].notna().all(), mid
            for col in ("numerator", "denominator"):
                np.testing.assert_allclose(rows[f"{col}_members"], rows[col], rtol=1e-9, err_msg=mid)
