"""The shipped catalog: complete, consistent, searchable."""

import pytest

from kpinb import PlanError
from kpinb.definitions import catalog
from kpinb.definitions.formula import parse

# Every example the KPI literature this product follows names, by catalog id.
REQUIRED = """
monthly_recurring_revenue sales_growth_rate average_deal_size monthly_sales_revenue customer_acquisition_cost
customer_lifetime_value average_order_value customer_churn_rate customer_retention_rate net_promoter_score
conversion_rate sales_conversion_rate customer_acquisition_rate revenue_by_product_category website_traffic
page_views bounce_rate average_time_on_site average_session_duration new_visitors returning_visitors
new_visitor_share email_open_rate email_click_through_rate unsubscribe_rate leads_generated calls_made_per_day
demos_scheduled first_response_time average_response_time ticket_resolution_rate tickets_received tickets_opened
tickets_closed chat_session_duration gross_profit_margin operating_cash_flow marketing_roi employee_turnover_rate
time_to_hire employee_engagement_score social_likes social_shares social_comments follower_growth_rate
social_engagement_rate on_time_delivery_rate inventory_turnover
""".split()


def test_catalog_has_every_named_example_and_at_least_45_definitions():
    metrics = catalog.metrics()
    assert len(metrics) >= 45
    assert [m for m in REQUIRED if m not in metrics] == []
    assert {m.department for m in metrics.values()} == set(catalog.DEPARTMENTS)


@pytest.mark.parametrize("metric", sorted(catalog.metrics()))
def test_each_definition_is_complete_and_consistent(metric):
    m = catalog.get(metric)
    assert m.name and len(m.description) > 30
    assert m.objectives and set(m.objectives) <= set(catalog.themes())
    assert set(m.supporting) <= set(catalog.metrics()) and metric not in m.supporting
    if m.derived:
        assert parse(m.expr, kind="derived").refs <= set(catalog.metrics())
    else:
        cols = catalog.sources()[m.source].columns
        parse(m.expr, kind="aggregate", columns=cols)
        if m.where:
            parse(m.where, kind="row", columns=cols)


def test_directions_and_vanity_flags_follow_the_domain():
    lower = {"customer_churn_rate", "bounce_rate", "customer_acquisition_cost", "first_response_time",
             "time_to_hire", "unsubscribe_rate", "employee_turnover_rate", "average_delivery_time"}  # fmt: skip
    for mid in lower:
        assert catalog.get(mid).direction.value == "lower_is_better", mid
    for mid in ("page_views", "social_likes", "social_shares", "social_comments"):
        assert catalog.get(mid).vanity, mid
    assert not catalog.get("monthly_sales_revenue").vanity
    assert catalog.get("demos_scheduled").indicator.value == "leading"
    assert catalog.get("monthly_sales_revenue").indicator.value == "lagging"


def test_search_by_department_objective_and_text():
    email = catalog.search(department="email")
    assert email and all(m.department == "email" for m in email)
    retention = [m.id for m in catalog.search(objective="Improve customer retention")]
    assert "customer_churn_rate" in retention[:5] and "customer_retention_rate" in retention[:5]
    assert "page_views" not in retention
    assert catalog.search(text="open rate")[0].id == "email_open_rate"
    kpis = catalog.search(department="web", role="kpi_candidate")
    assert kpis and all(m.role.value == "kpi_candidate" for m in kpis)


def test_search_ranks_kpi_candidates_before_vanity_metrics():
    ranked = [m.id for m in catalog.search(department="social")]
    assert ranked.index("social_engagement_rate") < ranked.index("social_likes")


def test_unknown_id_suggests_close_ones():
    with pytest.raises(PlanError, match=r"unknown metric id 'bounce_rat'\. Did you mean 'bounce_rate'"):
        catalog.get("bounce_rat")
