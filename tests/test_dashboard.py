"""The dashboard as an analyst reads it (issue 15): only the filters that apply to a KPI, named in
full for people; the grain control judges the cards too; titles follow the grain; the trend keeps
the target line where the scorecard judges the KPI and shades its alert zones; amounts carry the
plan's currency. Real plan, real sample data, real DuckDB; the browser-level clicks are in
``tests/test_browser_dashboard.py``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SALES = ROOT / "templates" / "plans" / "sales.yml"


def card_periods(html: str) -> dict[str, str]:
    """Each card's metric and the period its meta line names."""
    return dict(re.findall(r'data-metric="([^"]+)".*?class="kpinb-card-meta"[^>]*>([^<·]*?) ·', html))


def card_statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([^"]+)" data-status="([^"]+)"', html))


@pytest.fixture(scope="module")
def dash(sample_data: Path):
    from kpinb.widgets import Dashboard

    return Dashboard(SALES, grain="month")


def test_only_filters_that_apply_to_a_kpi_with_their_whole_names(dash):
    from kpinb.views.kit import human_name

    offered = list(dash.dimension_filters)
    assert offered and offered == dash.applicable_dimensions
    for d in offered:
        assert any(d in dash.cube.dims_of[k.metric] for k in dash.plan.kpis), d
        widget = dash.dimension_filters[d]
        assert widget.description == human_name(d) and "_" not in widget.description
        assert widget.style.description_width == "initial"  # never cut to "product c…"
    # dimensions only supporting metrics have are not offered: they would filter no card
    supporting_only = set(dash.cube.dimensions) - set(offered)
    for d in supporting_only:
        assert not any(d in dash.cube.dims_of[k.metric] for k in dash.plan.kpis)


def test_grain_control_judges_the_cards_and_names_the_charts(dash):
    """By month the cards judge Dec 2025; by quarter Q4 2025, through the scorecard's re-graining:
    a rate keeps its status, a quarter's total is not judged against a monthly target. The trend
    of a total is titled for the quarter; the target line stays where the KPI is judged."""
    dash.focus.value = "monthly_sales_revenue"
    assert set(card_periods(dash.cards.value).values()) >= {"Dec 2025"}
    assert dash.figures["trend"].layout.title.text == "Monthly sales revenue"
    assert "target" in [t.name for t in dash.figures["trend"].data]
    dash.grain.value = "quarter"
    try:
        periods, statuses = card_periods(dash.cards.value), card_statuses(dash.cards.value)
        assert periods["monthly_sales_revenue"] == "Q4 2025" and periods["average_order_value"] == "Q4 2025"
        assert statuses["monthly_sales_revenue"] == "not_judged"
        revenue_card = dash.cards.value.split('data-metric="monthly_sales_revenue"')[1].split('class="kpinb-card ')[0]
        assert "Target $1.50M" not in revenue_card and "not judged against it" in revenue_card
        assert statuses["average_order_value"] in ("on_track", "at_risk", "off_track")
        assert dash.status.set_index("metric").loc["average_order_value", "period_start"].quarter == 4
        trend = dash.figures["trend"]
        assert trend.layout.title.text == "Quarterly sales revenue"
        assert "target" not in [t.name for t in trend.data]  # a total is not judged by quarter
        dash.focus.value = "average_order_value"
        trend = dash.figures["trend"]
        assert trend.layout.title.text == "Average order value"
        assert "target" in [t.name for t in trend.data]  # an average keeps its target by quarter
        dash.focus.value = "monthly_recurring_revenue"  # an average over months stays "Monthly ..."
        assert dash.figures["trend"].layout.title.text.startswith("Monthly recurring revenue")
    finally:
        dash.grain.value = "month"


def test_trend_shades_the_kpis_alert_zones_and_uses_the_currency(dash):
    dash.focus.value = "monthly_sales_revenue"
    trend = dash.figures["trend"]
    zones = {s.name: (s.y0, s.y1) for s in trend.layout.shapes if s.name}
    k = dash.plan.kpi("monthly_sales_revenue")
    assert zones["warning zone"][0] == k.thresholds.warning and zones["critical zone"][0] == k.thresholds.critical
    assert zones["critical zone"][1] < zones["critical zone"][0]  # higher is better: the zone is below
    assert trend.layout.yaxis.tickprefix == "$" and trend.layout.yaxis.title.text == "USD"
    values = dict(re.findall(r'data-metric="([^"]+)".*?class="kpinb-card-value"[^>]*>([^<]*)<', dash.cards.value))
    assert values["monthly_sales_revenue"].startswith("$") and values["average_order_value"].startswith("$")
    assert not values["new_customers"].startswith("$") if "new_customers" in values else True


def test_long_titles_wrap_instead_of_being_cut(dash):
    dash.focus.value = "monthly_recurring_revenue"
    for name in ("trend", "breakdown", "benchmark", "drivers"):
        title = dash.figures[name].layout.title.text or ""
        assert all(len(line) <= 58 for line in title.split("<br>")), (name, title)
    assert "product_category" not in " ".join(str(f.layout.title.text) for f in dash.figures.values())


def test_benchmark_chart_does_not_repeat_the_breakdown(dash):
    """Without an external table the third chart is the KPI against its own past, not the members
    against each other again (with an "overall" line no bar could reach)."""
    dash.focus.value = "monthly_sales_revenue"
    bench = dash.figures["benchmark"]
    assert "against its past" in bench.layout.title.text or "benchmark" in bench.layout.title.text
    assert not any((a.text or "") == "overall" for a in bench.layout.annotations)


def test_click_messages_focus_a_card_and_filter_to_a_bar(dash):
    """What the click bridge sends from the page (``tests/test_browser_dashboard.py`` clicks for
    real): a card focuses the charts, a breakdown bar filters to its member, anything else is
    ignored."""
    dash.focus.value = "monthly_sales_revenue"
    dash.clicks._handle_custom_msg({"kind": "card", "metric": "average_order_value"}, [])
    assert dash.focus.value == "average_order_value"
    assert 'data-metric="average_order_value"' in dash._focus_style.value
    dim = dash.breakdown.value
    member = next(v for _, v in dash.dimension_filters[dim].options if v)
    dash.clicks._handle_custom_msg({"kind": "bar", "member": member}, [])
    try:
        assert dash.filters == {dim: member}
        dash.clicks._handle_custom_msg({"kind": "bar", "member": "<not a member>"}, [])
        dash.clicks._handle_custom_msg({"kind": "card", "metric": "no_such_metric"}, [])
        assert dash.filters == {dim: member} and dash.focus.value == "average_order_value"
    finally:
        dash.dimension_filters[dim].value = ""


# --- issue 17: objectives, insights, the metric tree and notes in the dashboard -------------------

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def hostile(sample_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The sales plan in a folder of its own (its notes file lands there), with a hostile objective
    statement and KPI name."""
    from kpinb.widgets import Dashboard

    folder = tmp_path_factory.mktemp("plans")
    text = SALES.read_text().replace("../../data/sample/", f"{sample_data}/")
    text = text.replace("../../data/benchmarks.csv", str(ROOT / "data" / "benchmarks.csv"))
    text = text.replace("statement: Grow monthly sales revenue to 1.5M by the end of 2025", f'statement: "Grow {EVIL}"')
    revenue = "  - metric: monthly_sales_revenue\n"
    text = text.replace(revenue, f'{revenue}    name: "Revenue {EVIL}"\n')
    (folder / "sales.yml").write_text(text)
    return Dashboard(folder / "sales.yml", grain="month")


def test_objectives_and_insights_are_on_top_escaped_and_follow_the_filters(hostile):
    from kpinb.outputs.insights import for_department
    from kpinb.views.decisions import objectives_html

    dash = hostile
    order = list(dash.children)
    assert order.index(dash.objectives) < order.index(dash.insights) < order.index(dash.cards)
    objectives = dash.objectives.value
    assert 'class="kpinb-objectives"' in objectives and objectives.count('class="kpinb-objective"') == 3
    assert "<img" not in objectives and "Grow &lt;img src=x onerror=alert(1)&gt;" in objectives
    assert "Revenue &lt;img src=x onerror=alert(1)&gt;" in objectives  # the KPIs it rolls up, escaped
    insights = dash.insights.value
    assert 'class="kpinb-insights"' in insights and 0 < insights.count("<li") <= 5
    assert "<img" not in insights
    assert [i.text for i in for_department(dash.scorecard, limit=5)]  # the same scorecard as the cards
    assert set(dash.scorecard.status_frame()["metric"]) == set(dash.status["metric"])
    dim = "region"
    member = next(v for _, v in dash.dimension_filters[dim].options if v)
    dash.dimension_filters[dim].value = member
    try:
        assert dict(dash.scorecard.filters) == {dim: member}
        assert objectives_html(dash.scorecard) in dash.objectives.value != objectives
        assert "not_judged" in set(dash.scorecard.status_frame()["status"])  # a region's total is not judged
    finally:
        dash.dimension_filters[dim].value = ""
    assert dash.objectives.value == objectives


def test_the_metric_tree_is_shown_and_a_node_click_focuses_its_metric(hostile):
    from kpinb.views.kit import STATUS_STYLE

    dash = hostile
    (out,) = dash.views["tree"].outputs
    edges, boxes = out["data"]["application/vnd.plotly.v1+json"]["data"]
    nodes = dash.scorecard.tree()
    assert (edges["type"], boxes["type"]) == ("scatter", "bar")  # plotly.js's basic traces
    assert boxes["ids"] == [n.id for n in nodes] and "kpi:average_order_value" in boxes["ids"]
    assert boxes["customdata"] == [n.metric or "" for n in nodes]
    assert {"monthly_sales_revenue", "orders_count"} <= set(boxes["customdata"])
    aov = boxes["ids"].index("kpi:average_order_value")
    assert boxes["marker"]["line"]["color"][aov] == STATUS_STYLE[dash.scorecard.get("average_order_value").status][1]
    assert edges["x"].count(None) == len(nodes) - 1  # a line from each node's parent
    assert not any("<img" in t for t in boxes["text"] + boxes["hovertext"])
    children = list(dash.children)
    grid = next(c for c in children if dash.views["trend"] in getattr(c, "children", ()))
    assert children.index(grid) < children.index(dash.views["tree"])  # under the charts it focuses
    dash.focus.value = "monthly_sales_revenue"
    dash.clicks._handle_custom_msg({"kind": "node", "metric": "orders_count"}, [])  # a supporting metric
    assert dash.focus.value == "orders_count" and dash.figures["trend"].layout.title.text == "Orders"
    dash.clicks._handle_custom_msg({"kind": "node", "metric": "average_order_value"}, [])  # a KPI
    assert dash.focus.value == "average_order_value" and dash.note_form.kpi.value == "average_order_value"
    dash.clicks._handle_custom_msg({"kind": "node", "metric": ""}, [])  # the plan or an objective: no metric
    assert dash.focus.value == "average_order_value"
    assert dash.views["tree"].outputs == (out,)  # a focus change leaves the tree alone


def test_a_note_added_through_the_form_is_written_and_marked_on_the_trend(hostile):
    from kpinb.definitions.notes import read_notes

    dash = hostile
    dash.focus.value = "average_order_value"
    form = dash.note_form
    assert form is not None and form.path == dash.plan.file.with_name("sales.notes.csv") and not form.path.exists()
    assert "note" not in [t.name for t in dash.figures["trend"].data]
    form.kpi.value = "average_order_value"
    form.period.value = "2025-06-14"
    form.author.value = "Ann"
    form.text.value = f"Price change {EVIL}"
    form.add_button.click()
    assert [n.text for n in read_notes(dash.plan, form.path)] == [f"Price change {EVIL}"]
    (marker,) = [t for t in dash.figures["trend"].data if t.name == "note"]
    assert [str(x)[:10] for x in marker.x] == ["2025-06-01"]  # on the month holding the day
    assert marker.hovertext == ("Ann: Price change &lt;img src=x onerror=alert(1)&gt;",)
    trend = dash.views["trend"].outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert any(t.get("name") == "note" for t in trend["data"])  # what the page receives
    dash.focus.value = "monthly_sales_revenue"  # another KPI's trend has none of its notes
    assert "note" not in [t.name for t in dash.figures["trend"].data]


def test_a_plan_without_a_file_has_no_notes_form(hostile):
    from kpinb.widgets import Dashboard

    bare = hostile.plan.model_copy()
    bare._file = None
    dash = Dashboard(bare)
    assert dash.note_form is None and not any(isinstance(c, type(hostile.note_form)) for c in dash.children)
    assert dash.objectives.value and dash.views["tree"].outputs


def test_the_static_copy_has_the_objectives_and_insights_escaped(hostile, tmp_path: Path):
    page = hostile.to_html(tmp_path / "sales.html").read_text()
    assert 'class="kpinb-objectives"' in page and 'class="kpinb-insights"' in page
    assert EVIL not in page and "Grow &lt;img src=x onerror=alert(1)&gt;" in page
    assert page.index('class="kpinb-objectives"') < page.index('class="kpinb-card ')


def test_kpis_of_two_grains_roll_up_together_each_branch_at_its_own_grain(sample_data: Path, tmp_path: Path):
    """A quarterly KPI beside monthly ones: one roll-up over all five, and the quarterly KPI's
    supporting metrics in the tree (and its insights) at the quarter, not at a month."""
    import pandas as pd

    from kpinb.widgets import Dashboard

    text = SALES.read_text().replace("../../data/sample/", f"{sample_data}/")
    head, tail = text.split("  - metric: sales_conversion_rate\n")
    quarterly_kpi = tail.replace("grain: month", "grain: quarter", 1)
    (tmp_path / "sales.yml").write_text(f"{head}  - metric: sales_conversion_rate\n{quarterly_kpi}")
    dash = Dashboard(tmp_path / "sales.yml", grain="month")
    assert dash.card_grain(dash.plan.kpi("sales_conversion_rate")) == "quarter"
    assert set(dash.scorecard.status_frame()["metric"]) == {k.metric for k in dash.plan.kpis}
    assert [o.kpis for o in dash.scorecard.objectives()][2] == ("sales_conversion_rate", "qualified_leads")
    kpi = dash.scorecard.get("sales_conversion_rate")
    nodes = {n.id: n for n in dash.scorecard.tree()}
    quarterly = dash.cube.frame("quarter", metrics=["leads_generated"]).set_index("period_start")["value"]
    assert nodes["kpi:sales_conversion_rate/leads_generated"].value == quarterly[pd.Timestamp(kpi.period_start)]
    monthly = nodes["kpi:qualified_leads/leads_generated"].value
    assert monthly < nodes["kpi:sales_conversion_rate/leads_generated"].value  # a month's, under the monthly KPI
    about = [li for li in dash.insights.value.split("<li")[1:] if li.startswith(' style="margin:3px 0">Sales conv')]
    assert all("per month" not in li for li in about)  # its trend is read per quarter


def test_a_notes_file_with_mistakes_is_named_under_the_cards_and_marks_nothing(sample_data: Path, tmp_path: Path):
    from kpinb.widgets import Dashboard

    (tmp_path / "sales.yml").write_text(SALES.read_text().replace("../../data/sample/", f"{sample_data}/"))
    (tmp_path / "sales.notes.csv").write_text(f"kpi,period,author,text\nno_such_kpi,2025-06-01,,x {EVIL}\n")
    dash = Dashboard(tmp_path / "sales.yml", grain="month")
    assert "sales.notes.csv" in dash.notes.value and "no_such_kpi" in dash.notes.value
    assert EVIL not in dash.notes.value
    assert "note" not in [t.name for t in dash.figures["trend"].data]
