"""The wizard and the dashboard, driven headlessly: widget values set and buttons clicked in Python.

Numbers on the cards are checked against pandas computations written here from the sample
data (not through kpinb's engine).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import kpinb
from kpinb.data.sample import generate
from kpinb.definitions.plan import load_plan
from kpinb.views.kit import format_value
from kpinb.widgets._dashboard import FIGURES
from kpinb.widgets._dashboard import MIMETYPE as PLOTLY_MIME

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TODAY = dt.date(2026, 1, 15)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small synthetic sample data (2023-2025), generated once for this module."""
    out = tmp_path_factory.mktemp("sample")
    generate(out, rows=20_000, seed=7)
    return out


@pytest.fixture
def data_dir(sample: Path, tmp_path: Path) -> Path:
    """A data folder beside the plans folder holding only the web sessions."""
    out = tmp_path / "data"
    out.mkdir()
    shutil.copy(sample / "web_sessions.parquet", out)
    return out


def sessions(data: Path) -> pd.DataFrame:
    df = pd.read_parquet(data / "web_sessions.parquet")
    df["month"] = df["session_start"].dt.to_period("M").dt.start_time
    return df


def find(widget, cls: str) -> list:
    """Widgets below ``widget`` carrying the CSS class ``cls``, as a browser would find them."""
    out = [widget] if cls in getattr(widget, "_dom_classes", ()) else []
    for child in getattr(widget, "children", ()):
        out.extend(find(child, cls))
    return out


def one(widget, cls: str):
    (hit,) = find(widget, cls)
    return hit


# --- import laziness -------------------------------------------------------------------------------


def test_importing_kpinb_and_kpinb_widgets_loads_no_widget_or_plot_library():
    code = (
        "import sys, kpinb, kpinb.widgets\n"
        "heavy = [m for m in ('ipywidgets', 'plotly', 'anywidget', 'pandas', 'ibis') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "kpinb.widgets.KpiWizard\n"
        "assert 'ipywidgets' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the wizard ------------------------------------------------------------------------------------


def fill(wizard, metric: str, **values: str) -> None:
    for key, value in values.items():
        one(wizard, f"kpinb-kpi-{metric}-{key}").value = value


def test_wizard_end_to_end_writes_the_plan(data_dir: Path, tmp_path: Path):
    from kpinb.widgets import KpiWizard

    plans = tmp_path / "plans"
    plans.mkdir()
    path = plans / "web.yml"
    path.write_text("name: an older plan\n")
    old = path.open()  # a reader of the old file while Save replaces it
    wizard = KpiWizard(plans_dir=plans, sources=str(data_dir), today=TODAY)
    nxt, save = one(wizard, "kpinb-wizard-next"), one(wizard, "kpinb-wizard-save")
    assert wizard.step == 1 and save.layout.display == "none"

    assert nxt.disabled and "state the objective" in one(wizard, "kpinb-wizard-blocked").value
    nxt.click()  # nothing entered yet: stays, says what is missing
    assert wizard.step == 1 and "State the objective" in wizard.message.value and "department" in wizard.message.value
    one(wizard, "kpinb-wizard-statement").value = "Turn more visits into sign-ups and purchases"
    one(wizard, "kpinb-wizard-department").value = "web"
    one(wizard, "kpinb-wizard-name").value = "Website KPIs"
    assert not nxt.disabled and one(wizard, "kpinb-wizard-blocked").value == ""
    nxt.click()
    assert wizard.step == 2
    assert wizard.candidates[0].id == "conversion_rate"  # matches the objective: ranked first
    # a ranked few are recommended, each with its own reason; the rest wait in a closed section
    recommended = one(wizard, "kpinb-wizard-recommended")
    assert 5 <= len(recommended.children) <= 7 and wizard.recommended[0] == "conversion_rate"
    reasons = [wizard.reason(wizard._registry[m]) for m in wizard.recommended]
    assert len(set(reasons)) > 1  # not the same badge on every row
    assert reasons[0].startswith("Serves “Acquire more customers”")  # "sign-ups" in the objective
    assert "Explains Conversion rate" in wizard.reason(wizard._registry["bounce_rate"])
    more = one(wizard, "kpinb-wizard-more")
    assert more.selected_index is None and "page_views" not in wizard.recommended
    assert "serves" not in wizard.reason(wizard._registry["page_views"])  # it does not fit this objective
    assert "Vanity metric" in str(wizard.children)  # page views carries the warning
    # the counter sits above the list, not only at the bottom
    body = find(wizard, "kpinb-wizard-step-2")[0].children
    assert body.index(wizard.counter) < body.index(recommended)
    assert nxt.disabled and "tick at least one KPI" in one(wizard, "kpinb-wizard-blocked").value
    nxt.click()
    assert wizard.step == 2 and "Tick at least one KPI" in wizard.message.value
    one(wizard, "kpinb-kpi-conversion_rate").value = True
    one(wizard, "kpinb-kpi-bounce_rate").value = True
    assert 'data-count="2"' in one(wizard, "kpinb-wizard-counter").value and not nxt.disabled
    nxt.click()
    assert wizard.step == 3

    web = sessions(data_dir)
    year = web[(web["month"] >= "2025-01-01") & (web["month"] <= "2025-12-01")]
    monthly = year.groupby("month").agg(conv=("converted", "mean"), bounce=("bounced", "mean"))
    conv, bounce = monthly["conv"].mean(), monthly["bounce"].mean()  # mean of the last 12 complete months
    assert one(wizard, "kpinb-kpi-conversion_rate-baseline").value == f"{conv * 100:.5g}%"
    assert one(wizard, "kpinb-kpi-bounce_rate-baseline").value == f"{bounce * 100:.5g}%"
    assert one(wizard, "kpinb-kpi-bounce_rate-deadline").value == "2026-12-31"  # ISO, whatever the browser's locale
    # no target yet: Next is blocked, saying for which KPI, and the message sits under the target field
    assert nxt.disabled
    assert "Conversion rate · Target" in one(wizard, "kpinb-wizard-blocked").value
    assert "Set a target" in one(wizard, "kpinb-kpi-conversion_rate-target-msg").value
    fill(wizard, "conversion_rate", target="3.2%", owner="Web Product Owner", warning="2.8%", critical="2.5%")
    assert one(wizard, "kpinb-kpi-conversion_rate-target-msg").value == ""
    assert nxt.disabled and "Bounce rate · Target" in one(wizard, "kpinb-wizard-blocked").value
    fill(wizard, "bounce_rate", target="42", owner="Web Product Owner", warning="0.46", critical="50%")
    assert not nxt.disabled and one(wizard, "kpinb-wizard-blocked").value == ""

    # Back and Next keep everything entered
    one(wizard, "kpinb-wizard-back").click()
    one(wizard, "kpinb-wizard-back").click()
    assert wizard.step == 1 and one(wizard, "kpinb-wizard-statement").value.startswith("Turn more visits")
    nxt.click()
    nxt.click()
    assert wizard.step == 3 and one(wizard, "kpinb-kpi-conversion_rate-target").value == "3.2%"

    nxt.click()
    assert wizard.step == 4 and save.layout.display is None and nxt.layout.display == "none"
    rules = {i.rule for i in wizard.issues}
    assert "indicator_balance" in rules  # two leading indicators, no lagging one
    review = one(wizard, "kpinb-wizard-review").value
    assert "SMART review" in review and f"from {format_value(conv, 'percent')} to 3.2% by 2026-12-31" in review
    assert "warning at 2.8%, critical at 2.5%" in review and "Web Product Owner" in review
    assert "<details" in review  # the YAML is there, folded away
    # the file exists: Save asks before replacing it
    assert save.disabled and "web.yml exists" in one(wizard, "kpinb-wizard-blocked").value
    assert wizard.save() is None and "Not saved" in wizard.message.value
    assert path.read_text() == "name: an older plan\n"
    one(wizard, "kpinb-wizard-overwrite").value = True
    assert not save.disabled
    save.click()

    # atomic: the new file was renamed over the old one, which a reader still sees whole; no temp file left
    assert old.read() == "name: an older plan\n" and os.fstat(old.fileno()).st_ino != path.stat().st_ino
    old.close()
    assert sorted(p.name for p in plans.iterdir()) == ["web.yml"]
    b1 = f"{float(f'{conv * 100:.5g}') / 100:.12g}"
    b2 = f"{float(f'{bounce * 100:.5g}') / 100:.12g}"
    assert (
        path.read_text()
        == f"""\
# KPI plan written by the kpinb wizard. Edit freely; `kpinb check` reviews it.
name: Website KPIs
department: web
objectives:
  - id: turn-more-visits-into-sign
    statement: Turn more visits into sign-ups and purchases
sources:
  web_sessions:
    path: ../data/web_sessions.parquet
kpis:
  - metric: conversion_rate
    objective: turn-more-visits-into-sign
    owner: Web Product Owner
    grain: month
    baseline: {{value: {b1}}}
    target: {{value: 0.032, by: 2026-12-31}}
    thresholds: {{warning: 0.028, critical: 0.025}}
    supporting: [bounce_rate, average_session_duration, website_traffic]
  - metric: bounce_rate
    objective: turn-more-visits-into-sign
    owner: Web Product Owner
    grain: month
    baseline: {{value: {b2}}}
    target: {{value: 0.42, by: 2026-12-31}}
    thresholds: {{warning: 0.46, critical: 0.5}}
review: {{every: quarter, last: 2026-01-15}}
"""
    )
    plan = kpinb.load_plan(path)
    assert wizard.plan == plan and wizard.path == path
    assert [k.metric for k in plan.kpis] == ["conversion_rate", "bounce_rate"]
    conversion, bounce_kpi = plan.kpis
    assert conversion.baseline.value == pytest.approx(conv, rel=1e-4)
    assert bounce_kpi.baseline.value == pytest.approx(bounce, rel=1e-4)
    assert (conversion.target.value, conversion.target.by) == (pytest.approx(0.032), dt.date(2026, 12, 31))
    assert (bounce_kpi.target.value, bounce_kpi.target.by) == (pytest.approx(0.42), dt.date(2026, 12, 31))
    assert conversion.owner == bounce_kpi.owner == "Web Product Owner"
    assert (conversion.thresholds.warning, conversion.thresholds.critical) == (
        pytest.approx(0.028),
        pytest.approx(0.025),
    )
    assert (bounce_kpi.thresholds.warning, bounce_kpi.thresholds.critical) == (pytest.approx(0.46), pytest.approx(0.5))
    assert plan.objectives[0].statement == "Turn more visits into sign-ups and purchases"
    assert plan.resolve(plan.sources["web_sessions"].path).samefile(data_dir / "web_sessions.parquet")
    assert "kpinb-wizard-saved" in wizard.message.value


def test_wizard_counter_warns_above_seven(data_dir: Path, tmp_path: Path):
    from kpinb.widgets import KpiWizard

    wizard = KpiWizard(department="web", plans_dir=tmp_path, sources=str(data_dir), today=TODAY)
    wizard.statement.value = "Keep visitors engaged"
    wizard.next()
    for box in wizard.checkboxes.values():
        box.value = True
    counter = wizard.counter.value
    assert f'data-count="{len(wizard.checkboxes)}"' in counter and len(wizard.checkboxes) > 7
    assert "More than 7 KPIs" in counter and "color:#b3261e" in counter
    assert wizard.checkboxes["page_views"].value and "A vanity metric is chosen as a KPI" in counter
    wizard.checkboxes["page_views"].value = False
    assert "A vanity metric" not in wizard.counter.value


def test_wizard_without_data_writes_placeholder_sources_and_rejects_bad_numbers(tmp_path: Path):
    from kpinb.widgets import KpiWizard

    wizard = KpiWizard(department="sales", plans_dir=tmp_path, today=TODAY)
    wizard.statement.value = "Grow revenue 20% in 2026"
    wizard.next()
    wizard.checkboxes["monthly_sales_revenue"].value = True
    wizard.next()
    assert wizard.fields["monthly_sales_revenue"]["baseline"].value == ""  # nothing connected, nothing computed
    wizard.fields["monthly_sales_revenue"]["target"].value = "lots"
    wizard.next()
    assert wizard.step == 3 and "&#x27;lots&#x27; is not a number" in wizard.message.value
    wizard.fields["monthly_sales_revenue"]["target"].value = "1.5M"
    wizard.next()
    path = wizard.save()
    text = path.read_text()
    assert "# not connected yet" in text and "path: data/orders.parquet" in text
    assert "target: {value: 1500000, by: 2026-12-31}" in text
    plan = load_plan(path)
    assert set(plan.sources) == {"orders"} and plan.kpis[0].supporting


def test_wizard_escapes_user_text_and_keeps_it_exactly_in_the_yaml(data_dir: Path, tmp_path: Path):
    from kpinb.widgets import KpiWizard

    wizard = KpiWizard(department="web", plans_dir=tmp_path, sources=str(data_dir), today=TODAY)
    wizard.statement.value = f"Convert: {EVIL} # not a comment"
    wizard.name.value = EVIL
    wizard.next()
    wizard.checkboxes["conversion_rate"].value = True
    wizard.next()
    wizard.fields["conversion_rate"]["owner"].value = f"{EVIL}: 'quoted' \"twice\""
    wizard.fields["conversion_rate"]["target"].value = "nope"
    wizard.next()
    assert ESCAPED in wizard.message.value or "nope" in wizard.message.value
    wizard.fields["conversion_rate"]["target"].value = "3%"
    wizard.next()
    review = wizard.review.value
    assert "<script" not in review and ESCAPED in review
    wizard.save()
    assert "<script" not in wizard.message.value
    plan = load_plan(wizard.path)
    assert plan.name == EVIL and plan.objectives[0].statement == f"Convert: {EVIL} # not a comment"
    assert plan.kpis[0].owner == f"{EVIL}: 'quoted' \"twice\""


def _at_targets(tmp_path: Path, data_dir: Path | None, department: str, statement: str, *metrics: str):
    from kpinb.widgets import KpiWizard

    wizard = KpiWizard(
        department=department, plans_dir=tmp_path / "plans", sources=str(data_dir) if data_dir else None, today=TODAY
    )
    wizard.statement.value = statement
    wizard.next()
    for m in metrics:
        wizard.checkboxes[m].value = True
    wizard.next()
    assert wizard.step == 3
    return wizard


@pytest.mark.parametrize(
    ("metric", "warning", "critical"),
    [("conversion_rate", "11%", "12%"), ("bounce_rate", "50%", "46%")],
    ids=["higher is better, warning below critical", "lower is better, warning above critical"],
)
def test_wizard_catches_thresholds_in_the_wrong_order_next_to_the_field(
    data_dir: Path, tmp_path: Path, metric: str, warning: str, critical: str
):
    wizard = _at_targets(tmp_path, data_dir, "web", "Turn more visits into sign-ups", metric)
    fill(wizard, metric, target="40%", owner="Web lead", warning=warning, critical=critical)
    msg = one(wizard, f"kpinb-kpi-{metric}-warning-msg").value
    assert "Swap the two levels" in msg and f"Warning at {float(warning[:-1]):.1f}%" in msg
    assert "kpinb-invalid" in one(wizard, f"kpinb-kpi-{metric}-warning")._dom_classes
    assert "kpinb-invalid" in one(wizard, f"kpinb-kpi-{metric}-critical")._dom_classes
    nxt = one(wizard, "kpinb-wizard-next")
    assert nxt.disabled and "Warning at" in one(wizard, "kpinb-wizard-blocked").value
    # the same rule as `kpinb check`: the plan checks' own thresholds issue is behind the message
    assert [i.rule for i in wizard.issues if i.level == "error"] == ["thresholds"]
    nxt.click()
    assert wizard.step == 3
    assert wizard.save() is None and not (tmp_path / "plans").exists()  # nothing written
    fill(wizard, metric, warning=critical, critical=warning)  # swapped: fine
    assert one(wizard, f"kpinb-kpi-{metric}-warning-msg").value == "" and not nxt.disabled
    assert "kpinb-invalid" not in one(wizard, f"kpinb-kpi-{metric}-warning")._dom_classes


def test_wizard_reads_dates_as_iso_and_says_what_is_wrong_under_the_field(tmp_path: Path):
    wizard = _at_targets(tmp_path, None, "sales", "Grow revenue 20% in 2026", "monthly_sales_revenue")
    f = wizard.fields["monthly_sales_revenue"]
    assert f["deadline"].value == "2026-12-31" and f["deadline"].placeholder == "YYYY-MM-DD"
    fill(wizard, "monthly_sales_revenue", target="1.5M", deadline="12/31/2026", owner="Head of Sales")
    msg = one(wizard, "kpinb-kpi-monthly_sales_revenue-deadline-msg").value
    assert "is not a date; write it as YYYY-MM-DD" in msg
    assert one(wizard, "kpinb-kpi-monthly_sales_revenue-target-msg").value == ""  # said once, where it is wrong
    assert wizard.next_button.disabled
    fill(wizard, "monthly_sales_revenue", deadline="2026-02-30")
    assert "not a day of the calendar" in one(wizard, "kpinb-kpi-monthly_sales_revenue-deadline-msg").value
    fill(wizard, "monthly_sales_revenue", deadline="2025-06-30")  # passed: a warning, not a block
    assert "already passed" in one(wizard, "kpinb-kpi-monthly_sales_revenue-deadline-msg").value
    assert not wizard.next_button.disabled
    fill(wizard, "monthly_sales_revenue", deadline="")
    assert "Set the date" in one(wizard, "kpinb-kpi-monthly_sales_revenue-deadline-msg").value
    assert wizard.next_button.disabled
    fill(wizard, "monthly_sales_revenue", deadline="2026-12-31", owner="")
    assert "Name the person" in one(wizard, "kpinb-kpi-monthly_sales_revenue-owner-msg").value
    assert not wizard.next_button.disabled  # no owner is a warning of the checks, not an error


def test_wizard_checks_the_data_field_when_it_is_left(data_dir: Path, tmp_path: Path):
    from kpinb.widgets import KpiWizard

    wizard = KpiWizard(department="web", plans_dir=tmp_path, today=TODAY)
    wizard.statement.value = "Turn more visits into sign-ups"
    assert not wizard.next_button.disabled
    wizard.sources.value = str(tmp_path / "no-such-folder")
    msg = one(wizard, "kpinb-wizard-sources-msg").value
    assert "no such folder or plan file" in msg and wizard.next_button.disabled
    assert "cannot be read" in wizard.blocked.value
    wizard.sources.value = str(data_dir)
    assert "Connected: web_sessions" in one(wizard, "kpinb-wizard-sources-msg").value
    assert not wizard.next_button.disabled


def test_wizard_lets_a_kpi_without_connected_data_through_with_a_placeholder(data_dir: Path, tmp_path: Path):
    """Data connected for the web only: a sales KPI is not computed, so no "no values" error blocks
    it; it says its data is not connected and is saved with a placeholder source."""
    wizard = _at_targets(tmp_path, data_dir, "sales", "Grow revenue 20% in 2026", "monthly_sales_revenue")
    fill(wizard, "monthly_sales_revenue", target="1.5M", owner="Head of Sales")
    assert not wizard.next_button.disabled
    assert "data is not connected" in one(wizard, "kpinb-kpi-monthly_sales_revenue-msg").value
    wizard.next()
    path = wizard.save()
    assert "# not connected yet" in path.read_text() and load_plan(path).kpis[0].target.value == 1_500_000


def test_wizard_saves_under_a_new_name_and_never_replaces_a_file_unasked(data_dir: Path, tmp_path: Path):
    wizard = _at_targets(tmp_path, data_dir, "web", "Turn more visits into sign-ups", "conversion_rate")
    fill(wizard, "conversion_rate", target="3%", owner="Web lead")
    wizard.next()
    first = wizard.save()
    assert first == tmp_path / "plans" / "web.yml" and first.exists()
    before = first.read_text()
    assert wizard.save_button.disabled and "saved as web.yml; tick Overwrite" in wizard.blocked.value
    assert not wizard.overwrite.layout.display  # the Overwrite box shows once the file exists
    wizard.back()
    fill(wizard, "conversion_rate", target="4%")
    wizard.next()
    assert wizard.save() is None and first.read_text() == before
    wizard.file.value = "../outside.yml"
    assert wizard.save_button.disabled and "plain name" in wizard.blocked.value
    wizard.file.value = "web-2026.yml"
    assert not wizard.save_button.disabled
    second = wizard.save()
    assert second == tmp_path / "plans" / "web-2026.yml" and first.read_text() == before
    assert load_plan(second).kpis[0].target.value == pytest.approx(0.04)
    assert sorted(p.name for p in (tmp_path / "plans").iterdir()) == ["web-2026.yml", "web.yml"]


def test_wizard_review_is_a_summary_whose_fixes_point_at_the_form(tmp_path: Path):
    wizard = _at_targets(tmp_path, None, "sales", "Grow revenue 20% in 2026", "monthly_sales_revenue",
                         "average_order_value")  # fmt: skip
    fill(wizard, "monthly_sales_revenue", baseline="1,434,700")
    # the numbers a proposal would set, offered as examples (+10% target, warning at the baseline)
    examples = {k: wizard.fields["monthly_sales_revenue"][k].placeholder for k in ("target", "warning", "critical")}
    assert examples == {"target": "e.g. 1,580,000", "warning": "e.g. 1,430,000", "critical": "e.g. 1,290,000"}
    fill(wizard, "monthly_sales_revenue", target="1.7M", warning="1.5M", critical="1.35M")
    wizard.next()
    assert wizard.step == 3  # average order value has no target
    assert "Set a target" in one(wizard, "kpinb-kpi-average_order_value-target-msg").value
    fill(wizard, "average_order_value", target="340", owner="E-commerce lead")
    wizard.next()
    review = wizard.review.value
    assert "from 1.43M to 1.70M by 2026-12-31" in review and "warning at 1.50M, critical at 1.35M" in review
    assert "Name an owner in step 3 for Monthly sales revenue" in review
    assert "Tick a KPI of the other kind in step 2" in review  # both are lagging
    summary = review.split("<details")[0]
    assert "monthly_sales_revenue" not in summary.replace('data-metric="monthly_sales_revenue"', "")
    assert "`" not in summary and "target: {" not in summary  # no YAML outside the folded plan file


@pytest.mark.parametrize("as_object", [False, True], ids=["plan file", "Plan"])
def test_wizard_reuses_a_plans_sources(tmp_path: Path, data_dir: Path, as_object: bool):
    from kpinb.widgets import KpiWizard

    other = tmp_path / "other.yml"
    other.write_text(
        "name: Other\ndepartment: web\nsources:\n  web_sessions:\n    path: data/web_sessions.parquet\nkpis: []\n"
    )
    source = load_plan(other) if as_object else str(other)
    wizard = KpiWizard(department="web", plans_dir=tmp_path / "plans", sources=source, today=TODAY)
    wizard.statement.value = "Turn more visits into sign-ups"
    wizard.next()
    wizard.checkboxes["conversion_rate"].value = True
    wizard.next()
    assert wizard.fields["conversion_rate"]["baseline"].value.endswith("%")


def test_wizard_keeps_a_column_mapping_through_save_load_and_compute(sample: Path, tmp_path: Path):
    """A source whose columns have the user's names (`columns: {canonical: user_column}`) goes
    into the saved plan the same way round: the plan loads and computes on the user's file."""
    from kpinb.widgets import KpiWizard

    mapping = {"session_start": "started_at", "converted": "did_convert", "bounced": "was_bounce"}
    (tmp_path / "data").mkdir()
    mine = pd.read_parquet(sample / "web_sessions.parquet").rename(columns=mapping)
    mine.to_parquet(tmp_path / "data" / "visits.parquet")
    theirs = tmp_path / "mine.yml"
    theirs.write_text(
        "name: Mine\ndepartment: web\nsources:\n  web_sessions:\n    path: data/visits.parquet\n"
        "    columns: {session_start: started_at, converted: did_convert, bounced: was_bounce}\nkpis: []\n"
    )
    wizard = KpiWizard(department="web", plans_dir=tmp_path / "plans", sources=str(theirs), today=TODAY)
    wizard.statement.value = "Turn more visits into sign-ups"
    wizard.next()
    wizard.checkboxes["conversion_rate"].value = True
    wizard.checkboxes["bounce_rate"].value = True
    wizard.next()
    assert wizard.step == 3 and wizard.fields["conversion_rate"]["baseline"].value.endswith("%")
    for mid in ("conversion_rate", "bounce_rate"):
        wizard.fields[mid]["target"].value = "50%"
    wizard.next()
    assert wizard.draft().sources["web_sessions"].columns == mapping
    path = wizard.save()
    assert path is not None, wizard.message.value  # the saved text must load as a plan

    text = path.read_text()
    assert "    columns: {bounced: was_bounce, converted: did_convert, session_start: started_at}\n" in text
    plan = load_plan(path)
    assert plan.sources["web_sessions"].columns == mapping
    got = kpinb.compute(plan, metrics=["conversion_rate", "bounce_rate"], grain="month")
    month = mine["started_at"].dt.to_period("M").dt.start_time
    want = {"conversion_rate": mine.groupby(month)["did_convert"].mean(),
            "bounce_rate": mine.groupby(month)["was_bounce"].mean()}  # fmt: skip
    for mid, series in want.items():
        values = got[got["metric"] == mid].set_index("period_start")["value"]
        assert list(values.index) == list(series.index)
        assert np.allclose(values, series.astype(float), rtol=1e-12), mid


# --- the dashboard ---------------------------------------------------------------------------------

PLAN = """\
name: {name}
department: web
objectives:
  - id: convert
    statement: Turn more visits into sign-ups
sources:
  web_sessions:
    path: ../data/web_sessions.parquet
kpis:
  - metric: conversion_rate
    objective: convert
    owner: {owner}
    baseline: {{value: 0.025}}
    target: {{value: 0.032, by: 2025-12-31}}
    thresholds: {{warning: 0.028, critical: 0.025}}
    supporting: [website_traffic]
  - metric: average_session_duration
    objective: convert
    owner: Content Lead
    baseline: {{from: 2024-01-01, to: 2024-12-31}}
    target: {{value: 210, by: 2025-12-31}}
  - metric: website_traffic
    objective: convert
    owner: Web
    baseline: {{value: 800}}
    target: {{value: 900, by: 2025-12-31}}
review: {{every: quarter, last: 2025-10-15}}
"""


@pytest.fixture
def web_plan(data_dir: Path) -> Path:
    plans = data_dir.parent / "plans"
    plans.mkdir()
    path = plans / "web.yml"
    path.write_text(PLAN.format(name="Website", owner="Web Product Owner"))
    return path


def card_values(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([^"]+)".*?class="kpinb-card-value"[^>]*>([^<]*)<', html))


def card_statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-metric="([^"]+)" data-status="([^"]+)"', html))


def shown(dash, name: str) -> dict:
    """The plotly figure JSON the browser receives for chart ``name``: its Output widget's only output."""
    (output,) = dash.views[name].outputs
    assert output["output_type"] == "display_data"
    return output["data"][PLOTLY_MIME]


def decoded(values) -> list:
    """An array from plotly's JSON: a list, or a typed array (``{"dtype": "f8", "bdata": base64}``) decoded."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def walk(widget) -> list:
    return [widget, *(w for child in getattr(widget, "children", ()) for w in walk(child))]


def test_dashboard_filter_changes_the_cards_in_place(web_plan: Path, data_dir: Path):
    import ipywidgets as widgets

    from kpinb.widgets import Dashboard

    dash = Dashboard(web_plan)
    web = sessions(data_dir)
    dec = web[web["month"] == "2025-12-01"]
    before = card_values(dash.cards.value)
    assert before["conversion_rate"] == format_value(dec["converted"].mean(), "percent")
    assert before["website_traffic"] == format_value(len(dec), "count")
    trend = dash.views["trend"]
    assert dash.cube.wait(timeout=60)  # the background precompute of one-dimension filters
    done = {c[1][0] for c in dash.cube.background_calls if c[0] == "month" and len(c[1]) == 1}
    assert "region" in done or {f"region={m}" for m in dash.cube.members()["region"]} <= done  # by region, or each
    calls = len(dash.cube.calls)
    # light for the browser: core widgets only (no anywidget FigureWidget and its ~5 MB of JavaScript); the
    # charts travel as plotly's mimetype, drawn by JupyterLab's plotly extension
    tree = walk(dash)
    modules = {w._model_module for w in tree}  # the JavaScript each widget needs in the browser
    assert modules == {"@jupyter-widgets/controls", "@jupyter-widgets/output", "anywidget"}, modules
    # the one anywidget is the click bridge: a few lines of JavaScript, no plotly.js
    (bridge,) = [w for w in tree if w._model_module == "anywidget"]
    assert type(bridge).__name__ == "ClickBridge" and len(json.dumps(bridge.get_state())) < 5_000
    state = sum(len(json.dumps(w.get_state())) for w in tree)
    assert state < 500_000, state
    print(f"\nwidget state sent to the browser: {state / 1000:.0f} kB")
    assert isinstance(trend, widgets.Output)
    for name in FIGURES:
        fig = dash.figures[name]
        assert isinstance(fig, go.Figure) and not isinstance(fig, go.FigureWidget)
        assert shown(dash, name)["data"] == json.loads(fig.to_json())["data"]
    all_regions = list(dash.figures["trend"].data[0].y)
    all_regions_breakdown = shown(dash, "breakdown")["layout"]["title"]["text"]
    assert "by region" in all_regions_breakdown

    one(dash, "kpinb-filter-region").value = "Europe"
    eu = dec[dec["region"] == "Europe"]
    after = card_values(dash.cards.value)
    assert after["conversion_rate"] == format_value(eu["converted"].mean(), "percent")
    assert after["average_session_duration"] == format_value(eu["duration_seconds"].mean(), "s")
    assert after["website_traffic"] == format_value(len(eu), "count") != before["website_traffic"]
    statuses = card_statuses(dash.cards.value)
    # a slice is judged only against a target of its own: a region's traffic and its conversion rate
    # alike are not judged against the company's targets (MRR "Off track" for Europe was the bug)
    assert statuses["website_traffic"] == statuses["conversion_rate"] == "not_judged"
    assert "Showing region = Europe only" in dash.cards.value
    assert "Filtered: Region = Europe." in dash.notes.value  # the dimension named for people
    print(f"\nfilter change in Python: {dash.last_update_seconds * 1000:.0f} ms (first time for this dimension)")

    # the figures are replaced in place, in the same Output widgets: one output each, Europe's numbers
    assert dash.views["trend"] is trend
    monthly = web[(web["region"] == "Europe") & (web["month"] >= "2023-01-01")].groupby("month")["converted"].mean()
    trend_y = list(dash.figures["trend"].data[0].y)
    # figure data carries display precision (5 significant digits)
    assert trend_y == pytest.approx(list(monthly.astype("float64")), rel=1e-4) and trend_y != all_regions
    assert decoded(shown(dash, "trend")["data"][0]["y"]) == pytest.approx(trend_y, rel=1e-12, nan_ok=True)
    assert dash.breakdown.value != "region"  # breaking down by the filtered dimension would show one bar
    assert "by region" not in shown(dash, "breakdown")["layout"]["title"]["text"]
    for name in FIGURES:
        assert shown(dash, name)["data"] == json.loads(dash.figures[name].to_json())["data"]

    # the first filter on region and another member of it: precomputed by region, no engine query
    one(dash, "kpinb-filter-region").value = "North America"
    assert len(dash.cube.calls) == calls and not dash.cube.precompute_errors
    na = dec[dec["region"] == "North America"]
    assert card_values(dash.cards.value)["conversion_rate"] == format_value(na["converted"].mean(), "percent")
    print(f"filter change in Python: {dash.last_update_seconds * 1000:.0f} ms (cached)")

    one(dash, "kpinb-filter-region").value = ""
    assert card_values(dash.cards.value) == before


def test_cube_matches_pandas_for_every_kind_of_metric(web_plan: Path, data_dir: Path):
    from kpinb.engine.cube import Cube

    cube = Cube(load_plan(web_plan))
    assert cube.kinds == {
        "conversion_rate": "ratio", "website_traffic": "sum", "average_session_duration": "exact",
    }  # fmt: skip
    got = cube.frame("quarter", {"device": "mobile"}, by=["channel"])
    web = sessions(data_dir)
    web = web[web["device"] == "mobile"]
    web["quarter"] = web["session_start"].dt.to_period("Q").dt.start_time
    want = web.groupby(["quarter", "channel"]).agg(
        conversion_rate=("converted", "mean"), website_traffic=("session_id", "size"),
        average_session_duration=("duration_seconds", "mean"),
    )  # fmt: skip
    for metric in want.columns:
        rows = got[got["metric"] == metric].set_index(["period_start", "channel"])["value"].dropna()
        expected = want[metric].astype("float64").rename_axis(["period_start", "channel"])
        pd.testing.assert_series_equal(rows.sort_index(), expected.sort_index(), check_names=False, rtol=1e-9)


DISTINCT_PLAN = """\
name: Visitors
department: web
objectives: [{id: reach, statement: Reach more visitors}]
sources: {web_sessions: {path: ../data/web_sessions.parquet}}
metrics:
  - {id: distinct_visitors, name: Distinct visitors, source: web_sessions, expr: 'count_distinct(visitor_id)'}
  - {id: median_duration, name: Median session duration, source: web_sessions, unit: duration,
     expr: 'median(duration_seconds)'}
  - {id: pages_per_visitor, name: Pages per visitor, source: web_sessions, unit: ratio,
     expr: 'sum(pageviews) / count_distinct(visitor_id)'}
kpis:
  - {metric: distinct_visitors, objective: reach, owner: Web, target: {value: 500, by: 2025-12-31}}
  - {metric: median_duration, objective: reach, owner: Web, target: {value: 200, by: 2025-12-31}}
  - {metric: pages_per_visitor, objective: reach, owner: Web, target: {value: 3, by: 2025-12-31}}
"""


def test_first_one_dimension_filter_is_precomputed_and_exact(data_dir: Path):
    """Non-additive metrics of one region, looked up in the background's by-region result, equal the
    engine's result on that region's rows only; and the filter change itself queries nothing."""
    from kpinb.engine.query import compute
    from kpinb.widgets import Dashboard

    plans = data_dir.parent / "plans"
    plans.mkdir()
    path = plans / "visitors.yml"
    path.write_text(DISTINCT_PLAN)
    dash = Dashboard(path)
    cube = dash.cube
    ids = ["distinct_visitors", "median_duration", "pages_per_visitor"]
    assert all(cube.kinds[m] == "exact" for m in ids)
    assert cube.wait(timeout=60) and not cube.precompute_errors
    # each dimension by itself: by one query at first load (the breakdown chart's) or in the background, or
    # member by member in the background (those frames together are the breakdown); members first
    queried = [c[1][0] for c in [*cube.calls, *cube.background_calls] if len(c[1]) == 1]
    wholes = [q for q in queried if "=" not in q]
    assert len(wholes) == len(set(wholes))
    members = cube.members()
    for d in cube.dimensions:
        assert d in wholes or {f"{d}={m}" for m in members[d]} <= set(queried), d
    kinds = ["=" in c[1][0] for c in cube.background_calls if len(c[1]) == 1]
    assert any(kinds) and kinds == sorted(kinds, reverse=True)
    calls = len(cube.calls)
    one(dash, "kpinb-filter-region").value = "Europe"
    assert len(cube.calls) == calls  # served from the precomputed member (or by-region result)
    got = cube.frame("month", {"region": "Europe"}, metrics=ids)
    assert len(cube.calls) == calls

    web = pd.read_parquet(data_dir / "web_sessions.parquet")
    europe = web[web["region"] == "Europe"].reset_index(drop=True)
    want = compute(load_plan(path), metrics=ids, grain="month", sources={"web_sessions": europe})
    key = ["metric", "period_start"]
    got = got.set_index(key)["value"].astype("float64").sort_index()
    want = want.set_index(key)["value"].astype("float64").sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False, rtol=1e-12)
    last = pd.Timestamp("2025-12-01")
    dec = europe[europe["session_start"].dt.to_period("M").dt.start_time == last]
    assert got[("distinct_visitors", last)] == dec["visitor_id"].nunique()
    assert got[("median_duration", last)] == pytest.approx(dec["duration_seconds"].median(), rel=1e-12)
    assert card_values(dash.cards.value)["distinct_visitors"] == format_value(dec["visitor_id"].nunique(), "count")

    # two dimensions at once: the engine by both, once, then cached
    one(dash, "kpinb-filter-device").value = "mobile"
    assert len(cube.calls) > calls
    calls = len(cube.calls)
    one(dash, "kpinb-filter-device").value = "desktop"
    assert len(cube.calls) == calls


def test_dashboard_to_html_is_offline_and_escaped(data_dir: Path, tmp_path: Path):
    from kpinb.widgets import Dashboard

    plans = data_dir.parent / "plans"
    plans.mkdir()
    path = plans / "evil.yml"
    path.write_text(PLAN.format(name=f'"{EVIL}"', owner=f'"{EVIL}"'))
    target = tmp_path / "report" / "web.html"
    target.parent.mkdir()
    target.write_text("old report")
    reader = target.open()
    dash = Dashboard(path)
    assert "<script" not in dash.cards.value and ESCAPED in dash.cards.value
    assert "<script" not in dash.header.value and ESCAPED in dash.header.value
    out = dash.to_html(target)
    # written atomically: renamed over the old file (a reader keeps the old one whole), no temp file left
    assert out == target and reader.read() == "old report" and os.fstat(reader.fileno()).st_ino != out.stat().st_ino
    reader.close()
    assert [p.name for p in target.parent.iterdir()] == ["web.html"]
    html = out.read_text()
    assert not re.search(r"<script[^>]*\bsrc\s*=", html)  # nothing loaded from anywhere
    assert "cdn." not in html.split("* plotly.js (basic - minified) v")[0]
    # the small plotly.js bundle shipped in kpinb/static (the charts use scatter and bar only), inlined once
    assert html.count("* plotly.js (basic - minified) v4.1.1") == 1 and "* plotly.js v" not in html
    assert 1_100_000 < len(html.encode()) < 1_600_000
    assert html.count("Plotly.newPlot(") == 5  # the four charts and the metric tree, as in the notebook
    assert dash.tree is not None and '<div class="kpinb-fig-tree">' in html
    assert EVIL not in html and ESCAPED in html
    assert 'class="kpinb-card ' in html


def test_dashboard_focus_and_grain_change_the_charts(web_plan: Path):
    from kpinb.widgets import Dashboard

    dash = Dashboard(web_plan, grain="month")
    months = len(dash.figures["trend"].data[0].x)
    dash.grain.value = "quarter"
    assert len(dash.figures["trend"].data[0].x) == months // 3
    dash.focus.value = "average_session_duration"
    assert dash.figures["trend"].layout.title.text == "Average session duration"
    assert "cannot be split" in dash.figures["drivers"].layout.annotations[0].text  # an average
    dash.focus.value = "conversion_rate"
    assert [t.type for t in dash.figures["drivers"].data] == ["bar"]
    dash.range.index = (12, 23)  # 2024 only
    assert pd.Timestamp(dash.figures["trend"].data[0].x[-1]) == pd.Timestamp("2024-10-01")
    assert card_values(dash.cards.value)  # cards judge the last month of the range
    assert "Q4 2024" in dash.cards.value  # at quarter grain the cards judge the last quarter of the range
