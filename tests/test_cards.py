"""KPI cards, gauges and the notebook display of plans, statuses and alerts (kpinb.views.cards, kpinb.views.display).

The HTML must be self-contained (no script), carry the numbers in the KPI's unit, colour changes
by the KPI's direction, and show every user text only escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import yaml

import kpinb
from kpinb.analytics.status import evaluate
from kpinb.definitions import catalog
from kpinb.definitions.model import Plan, to_dict
from kpinb.definitions.plan import registry
from kpinb.outputs.alerts import Alert
from kpinb.views.cards import KpiCards, gauge, kpi_card, kpi_cards
from kpinb.views.display import AlertTable, PlanView, StatusTable, alerts_html, plan_html, status_html
from kpinb.views.kit import duration_unit, format_value

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def assert_only_escaped(html: str) -> None:
    assert "<script" not in html.lower()
    assert ESCAPED in html


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (0.1234, "percent", "12.3%"),
        (0.0005, "percent", "0.1%"),
        (1.0, "percent", "100.0%"),
        (1_234_567, "currency", "1.23M"),
        (-1_234_567, "currency", "-1.23M"),
        (2_500_000_000, "currency", "2.50B"),
        (12_345.4, "currency", "12,345"),
        (312.456, "currency", "312.46"),
        (1500, "count", "1,500"),
        (45.26, "count", "45.3"),
        (2_500_000, "count", "2.50M"),
        (3.456, "ratio", "3.46"),
        (41.04, "score", "41.0"),
        (210.04, "s", "210 s"),
        (210.04, "seconds", "210 s"),
        (4.56, "min", "4.6 min"),
        (38.2, "days", "38.2 days"),
        (12.34, "duration", "12.3"),
        (float("nan"), "count", "–"),
        (None, "percent", "–"),
        ("n/a", "currency", "–"),
        (float("inf"), "count", "–"),
    ],
)
def test_format_value(value, unit, expected):
    assert format_value(value, unit) == expected


def test_format_value_accepts_the_unit_enum():
    assert format_value(0.5, catalog.get("bounce_rate").unit) == "50.0%"


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("average_session_duration", "s"),
        ("first_response_time", "min"),
        ("time_to_hire", "days"),
        ("bounce_rate", None),
    ],
)
def test_duration_unit_is_read_from_the_formula(metric, expected):
    assert duration_unit(catalog.get(metric)) == expected


def row(**over):
    base = {
        "metric": "conversion_rate",
        "name": "Conversion rate",
        "owner": "Web lead",
        "period_start": pd.Timestamp("2025-06-01"),
        "value": 0.031,
        "previous": 0.029,
        "change_pct": (0.031 - 0.029) / 0.029 * 100,
        "baseline": 0.025,
        "target": 0.035,
        "target_now": 0.035,
        "deadline": pd.Timestamp("2025-12-31"),
        "progress": 0.6,
        "gap": -0.004,
        "status": "at_risk",
        "rule": "percent_of_target",
        "reason": "0.031 reaches 89% of the target.",
        "unit": "percent",
        "direction": "higher_is_better",
    }
    base.update(over)
    return base


def value_of(card: str) -> str:
    return re.search(r'class="kpinb-card-value"[^>]*>([^<]*)<', card).group(1)


def test_card_shows_value_status_changes_and_progress():
    history = pd.Series(
        np.linspace(0.02, 0.031, 18), index=pd.date_range("2024-01-01", periods=18, freq="MS")
    )  # 2024-06 (a year before) is 0.02 + 5 * step
    card = kpi_card(row(), history)
    assert value_of(card) == "3.1%"
    assert 'data-metric="conversion_rate"' in card and 'data-status="at_risk"' in card
    assert "At risk" in card and "owner: Web lead" in card
    assert "▲ 0.2 pp vs previous" in card  # percent KPIs change in percentage points
    year_ago = history[pd.Timestamp("2024-06-01")]
    assert f"▲ {(0.031 - year_ago) * 100:.1f} pp vs last year" in card
    assert "60% of the way from 2.5% to 3.5% by 2025-12-31" in card
    assert 'aria-valuenow="60"' in card
    assert "<svg" in card and "<polyline" in card
    assert "<script" not in card and "javascript:" not in card


def test_card_colours_changes_by_direction():
    up_good = kpi_card(row(direction="higher_is_better"))
    up_bad = kpi_card(row(direction="lower_is_better"))
    assert re.search(r'color:#1b7f3b">▲ 0.2 pp vs previous', up_good)
    assert re.search(r'color:#b3261e">▲ 0.2 pp vs previous', up_bad)


def test_card_relative_change_for_non_percent_units_and_missing_parts():
    card = kpi_card(
        row(unit="currency", value=1_200_000, previous=1_000_000, change_pct=20.0, target=float("nan"), progress=None),
        None,
    )
    assert value_of(card) == "1.20M"
    assert "▲ 20.0% vs previous" in card
    assert "– vs last year" in card  # no history, no last_year
    assert "kpinb-card-progress" not in card and "<svg" not in card


def test_card_progress_texts_at_the_edges():
    """Beyond the target or below the baseline the bar is full or empty and the text says so in
    words: a -331 % or 297 % bar means nothing to a reader."""

    def bar_width(card: str) -> str:
        return card.split('role="progressbar" aria-valuenow="')[1].split('"')[0]

    past, behind = kpi_card(row(progress=2.97)), kpi_card(row(progress=-3.31))
    assert "Past the target 3.5% by 2025-12-31" in past and bar_width(past) == "100"
    assert "Target 3.5% by 2025-12-31 reached" in kpi_card(row(progress=1.0))
    assert "Behind the baseline 2.5%; target 3.5%" in behind and bar_width(behind) == "0"
    assert "297" not in past and "331" not in behind
    assert "Target 3.5% by 2025-12-31" in kpi_card(row(progress=float("nan")))


def test_progress_text_is_words_outside_the_path():
    from kpinb.views.kit import progress_text

    assert [progress_text(p) for p in (0.474, 1.0, 2.97, -3.31, float("nan"), None)] == [
        "47%", "target reached", "past target", "behind baseline", "", "",
    ]  # fmt: skip


def test_cards_sit_in_even_rows():
    """6 cards make two rows of 3 (no lone card on a second row of 4 + 2), 7 make 4 + 3, 3 one row."""
    from kpinb.views.cards import grid_style

    def columns(n: int) -> str:
        return grid_style(n).split("/ ")[1].split(")")[0]

    assert [columns(n) for n in (1, 3, 4, 5, 6, 7, 8, 9)] == ["1", "3", "4", "3", "3", "4", "4", "3"]
    html_ = kpi_cards(
        pd.DataFrame([row(metric=f"m{i}") for i in range(6)]), None, {}
    )
    assert "(100% - 24px) / 3" in html_ and "auto-fit" in html_


def test_amounts_carry_the_plans_currency():
    from kpinb.views.kit import format_value

    assert format_value(2221673, "EUR") == "€2.22M"
    assert format_value(2221673, "EUR", compact=False) == "€2,221,673"
    assert format_value(320.314, "USD") == "$320.31" and format_value(-1200, "GBP") == "-£1,200"
    assert format_value(2221673, "CHF") == "CHF 2.22M" and format_value(2221673, "currency") == "2.22M"
    card = kpi_cards(
        pd.DataFrame([row(metric="monthly_sales_revenue", unit="currency", value=2221673.0, target=1.5e6,
                          baseline=1.2e6, progress=1.5)]),
        None, None, currency="EUR",
    )  # fmt: skip
    assert value_of(card) == "€2.22M" and "Past the target €1.50M" in card


def test_card_unit_and_direction_default_to_the_row():
    assert value_of(kpi_card(row())) == "3.1%"
    assert value_of(kpi_card(row(), unit="ratio")) == "0.03"


def test_card_with_no_data():
    card = kpi_card({"metric": "nps", "status": "no_data", "value": None})
    assert value_of(card) == "–" and "No data" in card


def test_every_field_is_escaped():
    evil = row(
        metric=EVIL, name=EVIL, owner=EVIL, reason=EVIL, status=EVIL, period_label=EVIL, rule=EVIL,
        unit=EVIL, direction=EVIL,
    )  # fmt: skip
    assert_only_escaped(kpi_card(evil, pd.Series([1.0, 2.0], index=pd.date_range("2025-01-01", periods=2))))
    status = pd.DataFrame([evil])
    assert_only_escaped(kpi_cards(status, None, {}))
    assert_only_escaped(status_html(status))
    alert = Alert(EVIL, EVIL, dt.date(2025, 6, 1), 1.0, 2.0, "below", "critical", EVIL)  # type: ignore[arg-type]
    assert_only_escaped(alerts_html([alert]))
    assert "<script" not in gauge(1, 2, 0, EVIL, EVIL)


def test_plan_html_escapes_everything_and_lists_the_kpis():
    plan = Plan.model_validate({
        "name": EVIL,
        "department": EVIL,
        "objectives": [{"id": "grow", "statement": EVIL}],
        "sources": {"orders": {"url": "postgresql://me:secret@db/shop", "table": EVIL, "columns": {"revenue": EVIL},
                               "dimensions": [EVIL]}},
        "kpis": [{"metric": "monthly_sales_revenue", "name": EVIL, "objective": "grow", "owner": EVIL,
                  "baseline": {"value": 1_000_000}, "target": {"value": 1_500_000, "by": "2026-12-31"},
                  "thresholds": {"warning": 1_300_000, "critical": 1_100_000, "change_pct": 20}}],
        "review": {"every": "quarter", "last": "2026-01-15"},
    })  # fmt: skip
    out = plan_html(plan)
    assert_only_escaped(out)
    assert "secret" not in out  # database passwords are redacted
    assert "1.00M" in out and "1.50M by 2026-12-31" in out and "warning 1.30M, critical 1.10M, change &gt; 20%" in out
    assert PlanView(plan)._repr_html_() == out


def sources_table(html: str) -> dict[str, dict[str, str]]:
    """The plan display's sources table: source name -> {column header: cell text}."""
    (table,) = re.findall(r'<table class="kpinb-plan-sources".*?</table>', html, flags=re.S)
    root = ET.fromstring(table)
    headers = ["".join(th.itertext()) for th in root.iter("th")]
    rows = [["".join(td.itertext()) for td in tr.iter("td")] for tr in root.find("tbody")]
    return {row[0]: dict(zip(headers, row, strict=True)) for row in rows}


def test_plan_html_shows_each_column_mapping_from_canonical_name_to_the_users_column():
    """`columns: {canonical: user_column}`: the canonical name the metrics use comes first and
    the user's column it is read from second (`revenue ← amount_usd`), never the other way."""
    plan = Plan.model_validate({
        "name": "Mapped", "department": "sales",
        "sources": {
            "orders": {"path": "mine.csv", "time": "placed",
                       "columns": {"revenue": "amount_usd", "order_date": "placed", "customer_id": "buyer"}},
            "subscriptions": {"path": "subs.parquet"},
        },
        "kpis": [{"metric": "monthly_sales_revenue"}],
    })  # fmt: skip
    table = sources_table(plan_html(plan))
    assert set(table) == {"orders", "subscriptions"}
    assert table["orders"]["columns"] == "revenue ← amount_usd, order_date ← placed, customer_id ← buyer"
    assert table["subscriptions"]["columns"] == ""
    assert (table["orders"]["location"], table["orders"]["time"]) == ("mine.csv", "placed")


def monthly_frame(values: dict[str, list[float]], start: str = "2024-01-01") -> pd.DataFrame:
    parts = []
    for metric, vals in values.items():
        parts.append(pd.DataFrame({
            "metric": metric, "period_start": pd.date_range(start, periods=len(vals), freq="MS"),
            "value": vals, "numerator": np.nan, "denominator": np.nan,
        }))  # fmt: skip
    df = pd.concat(parts, ignore_index=True)
    df.attrs.update(grain="month", by=())
    return df


PLAN = Plan.model_validate({
    "name": "Web",
    "department": "web",
    "sources": {"web_sessions": {"path": "web_sessions.parquet"}},
    "kpis": [
        {"metric": "bounce_rate", "owner": "Web", "baseline": {"value": 0.5},
         "target": {"value": 0.4, "by": "2025-12-31"}},
        {"metric": "average_session_duration", "owner": "Content", "baseline": {"value": 180},
         "target": {"value": 210, "by": "2025-12-31"}, "thresholds": {"warning": 190, "critical": 180}},
    ],
})  # fmt: skip


def test_kpi_cards_grid_from_evaluate():
    df = monthly_frame({
        "bounce_rate": [0.5 - 0.005 * i for i in range(18)],
        "average_session_duration": [170.0 + 2 * i for i in range(18)],
    })  # fmt: skip
    status = evaluate(PLAN, df, as_of="2025-06-30")
    out = kpi_cards(status, df, registry(PLAN))
    assert out.startswith('<div class="kpinb-cards"') and out.count('class="kpinb-card ') == 2
    cards = dict(re.findall(r'data-metric="([^"]+)".*?class="kpinb-card-value"[^>]*>([^<]*)<', out))
    assert cards == {"bounce_rate": "41.5%", "average_session_duration": "204 s"}
    assert "Jun 2025 · owner: Web" in out  # the period as people read it
    # 2025-06 against 2024-06: bounce 0.415 vs 0.475 is better (lower is better): green, down
    assert re.search(r'color:#1b7f3b">▼ 6.0 pp vs last year', out)
    assert KpiCards(status, df, registry(PLAN))._repr_html_() == out
    assert StatusTable(status)._repr_html_().count("<tr>") == 3


def test_kpi_cards_without_kpis():
    assert "No KPI to show" in kpi_cards(pd.DataFrame(columns=["metric"]), None, {})


def svg(text: str) -> ET.Element:
    return ET.fromstring(text)


@pytest.mark.parametrize(
    ("value", "target", "baseline", "direction", "colour"),
    [
        (0.04, 0.035, 0.025, "higher_is_better", "#1b7f3b"),  # met
        (0.03, 0.035, 0.025, "higher_is_better", "#e8a317"),  # better than baseline, short of target
        (0.02, 0.035, 0.025, "higher_is_better", "#b3261e"),  # worse than baseline
        (0.38, 0.40, 0.50, "lower_is_better", "#1b7f3b"),
        (0.55, 0.40, 0.50, "lower_is_better", "#b3261e"),
    ],
)
def test_gauge_is_svg_coloured_by_direction(value, target, baseline, direction, colour):
    out = gauge(value, target, baseline, direction, "percent")
    root = svg(out)
    arcs = [p.get("stroke") for p in root.iter("{http://www.w3.org/2000/svg}path")]
    assert arcs == ["#dadce0", colour]
    assert len(list(root.iter("{http://www.w3.org/2000/svg}line"))) == 2  # baseline and target ticks
    assert format_value(value, "percent") in out and "<script" not in out


def test_gauge_without_numbers():
    root = svg(gauge(float("nan"), None, None))
    assert [p.get("stroke") for p in root.iter("{http://www.w3.org/2000/svg}path")] == ["#dadce0"]
    assert "no target" in gauge(5, None)


def test_alerts_table_orders_critical_first_and_says_when_none():
    alerts = [
        Alert("a", "A", dt.date(2025, 6, 1), 1.0, 2.0, "below", "warning", "warn"),
        Alert("b", "B", dt.date(2025, 6, 1), 0.5, 1.0, "below", "critical", "crit"),
    ]
    out = AlertTable(alerts)._repr_html_()
    assert out.index("crit") < out.index("warn")
    assert "No alerts" in alerts_html([])


def test_a_bare_plan_or_alert_displays_as_html_in_a_real_kernel(tmp_path):
    """The last expression of a cell, in a real IPython kernel: no register() call, no _repr_html_
    on the models (the definitions do not import the views)."""
    import nbformat
    from nbclient import NotebookClient

    plan_file = tmp_path / "plan.yml"
    plan_file.write_text(yaml.safe_dump(to_dict(PLAN)), encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"import kpinb\nplan = kpinb.load_plan({str(plan_file)!r})\nplan"),
        nbformat.v4.new_code_cell(
            "from kpinb.outputs.alerts import Alert\n"
            f"Alert('x', {'X ' + EVIL!r}, None, None, None, 'missing', 'warning', 'no value')"
        ),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    plan_out, alert_out = (c.outputs[-1]["data"] for c in nb.cells)
    assert plan_out["text/html"] == plan_html(kpinb.load_plan(plan_file))
    alert = Alert("x", f"X {EVIL}", None, None, None, "missing", "warning", "no value")
    assert alert_out["text/html"] == alerts_html([alert]) and ESCAPED in alert_out["text/html"]


@pytest.mark.parametrize("period_end", ["2025-03-31", "2025-06-30", "2025-09-30", None])
def test_a_card_never_contradicts_its_status(sample_data, period_end):
    """Issue 15 item 5: "On track" beside "Worse than the baseline" and an empty bar. Each card's
    sentence is the scorecard's reason, and an on-track card is never behind its baseline."""
    import html as html_
    from pathlib import Path

    from kpinb import report

    plan = Path(__file__).resolve().parents[1] / "templates" / "plans" / "sales.yml"
    r = report.load(plan, data_dir=sample_data, period_end=period_end)
    cards = report.cards(r).data
    for e in r.scorecard:
        card = cards.split(f'data-metric="{e.metric}"')[1].split('<div class="kpinb-card ')[0]
        assert f'data-status="{e.status}"' in card
        reason = re.search(r'class="kpinb-card-reason"[^>]*>(.*?)</div>', card, re.S)
        assert reason and html_.unescape(reason.group(1)) == e.reason
        if e.status == "on_track":
            assert "Behind the baseline" not in card and "Worse than" not in card, (period_end, e.metric)


def test_plan_status_and_alert_tables_show_the_plans_currency(sample_data):
    """Every table that shows amounts of a plan with ``currency: USD`` writes them as $1.50M, and
    alert levels in the KPI's unit (not 0.02955 for a rate)."""
    from pathlib import Path

    from kpinb import report
    from kpinb.definitions.plan import load_plan
    from kpinb.views.display import plan_html

    plan = Path(__file__).resolve().parents[1] / "templates" / "plans" / "sales.yml"
    assert load_plan(plan).currency == "USD"
    assert "$1.50M by 2025-12-31" in plan_html(load_plan(plan))
    r = report.load(plan, data_dir=sample_data)
    table = report.status_table(r).data
    assert re.search(r">\$2\.\d\dM<", table) and ">Dec 2025<" in table
    found = report.alerts(r)
    alerts = report.alerts_table(found, r).data
    for a in found:
        assert html.escape(a.message) in alerts
        if a.kpi == "sales_conversion_rate" and a.value is not None:
            assert f">{a.value * 100:.1f}%<" in alerts
