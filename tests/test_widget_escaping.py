"""User text in the HTML of cards, the dashboard (live and exported), the wizard and the notebook display.

A script tag and both kinds of quotes go into the plan (plan name, objective statement, KPI
name, owner) and into the data (a region's name). Every HTML string is parsed with
:mod:`html.parser`: the text must come back exactly as typed, as text, and no ``<script>``
element may appear beyond the exported page's own plotly scripts — none holding the injected code.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kpinb.data.sample import generate
from kpinb.definitions.plan import load_plan

EVIL = "<script>alert(1)</script>"
QUOTED = f"{EVIL} 'single' \"double\" & co"
REGION = f'Europe {EVIL} "quoted"'


class Parsed(HTMLParser):
    """Tags, text (outside script/style) and script bodies of an HTML string."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.chunks: list[str] = []
        self._raw: str | None = None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag in ("script", "style"):
            self._raw = tag
            if tag == "script":
                self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw == "script":
            self.scripts[-1] += data
        elif self._raw is None:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def assert_text_only(markup: str, *expected: str, scripts: int = 0) -> Parsed:
    """``expected`` strings appear as text; exactly ``scripts`` script elements, none with injected code."""
    doc = Parsed(markup)
    for s in expected:
        assert s in doc.text, (s, doc.text[:2000])
    assert len(doc.scripts) == scripts, [s[:200] for s in doc.scripts]
    for body in doc.scripts:
        # inside a figure's JSON the text is JSON-escaped (\u003c), and where plotly reads markup (the
        # metric tree's labels) entity-escaped too: neither can close the script
        safe = body.replace("\\u003cscript\\u003ealert(1)", "").replace("&lt;script&gt;alert(1)", "")
        assert "alert(1)" not in safe, body[:300]
        assert body.strip() != "alert(1)"
    for tag, attrs in doc.tags:
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)
        assert tag != "script" or scripts, tag
    return doc


def html_values(widget) -> list[str]:
    """The ``value`` of every ipywidgets HTML widget below ``widget``."""
    import ipywidgets as widgets

    out = [widget.value] if isinstance(widget, widgets.HTML) else []
    for child in getattr(widget, "children", ()):
        out.extend(html_values(child))
    return out


@pytest.fixture(scope="module")
def evil_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A web plan whose texts and whose data's region names carry markup and quotes."""
    root = tmp_path_factory.mktemp("evil")
    data = root / "data"
    generate(data, rows=4_000, seed=7, start="2024-01-01", years=2)
    sessions = pd.read_parquet(data / "web_sessions.parquet")
    sessions["region"] = sessions["region"].replace({"Europe": REGION})
    sessions.to_parquet(data / "web_sessions.parquet", row_group_size=2_000)
    plan = {
        "name": QUOTED,
        "department": "web",
        "objectives": [{"id": "convert", "statement": QUOTED}],
        "sources": {"web_sessions": {"path": "data/web_sessions.parquet"}},
        "kpis": [
            {
                "metric": "conversion_rate",
                "name": f"Conversion {QUOTED}",
                "objective": "convert",
                "owner": QUOTED,
                "baseline": {"value": 0.025},
                "target": {"value": 0.032, "by": dt.date(2025, 12, 31)},
                "thresholds": {"warning": 0.028, "critical": 0.025},
                "supporting": ["website_traffic"],
            },
            {
                "metric": "website_traffic",
                "name": f"Traffic {QUOTED}",
                "objective": "convert",
                "owner": QUOTED,
                "target": {"value": 900, "by": dt.date(2025, 12, 31)},
            },
        ],
    }
    path = root / "evil.yml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False, allow_unicode=True))
    return path


def test_dashboard_widgets_and_export_show_user_text_only_as_text(evil_plan: Path, tmp_path: Path):
    from kpinb.widgets import Dashboard

    dash = Dashboard(evil_plan)
    assert REGION in dash.cube.members()["region"]
    assert dash.breakdown.value == "region"  # the evil region name is a bar of the breakdown
    assert_text_only(dash.header.value, QUOTED)
    assert_text_only(dash.cards.value, f"Conversion {QUOTED}", f"Traffic {QUOTED}", QUOTED)
    for value in html_values(dash):
        assert_text_only(value)

    for name, view in dash.views.items():  # charts: plotly's JSON and plain text, never HTML or JavaScript outputs
        (output,) = view.outputs
        assert set(output["data"]) == {"application/vnd.plotly.v1+json", "text/plain"}, name
    bars = dash.views["breakdown"].outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"]
    assert REGION in bars  # the evil region is a bar label: data for plotly.js, drawn as SVG text

    dash.dimension_filters["region"].value = REGION
    assert_text_only(dash.notes.value, REGION)  # "Filtered: region = ..."
    assert_text_only(dash.cards.value, REGION)  # the cards' reasons name the filter
    for value in html_values(dash):
        assert_text_only(value)

    dash.dimension_filters["region"].value = ""
    dash.breakdown.value = "region"
    page = dash.to_html(tmp_path / "evil.html").read_text()
    assert EVIL not in page
    # two page scripts (plotly config and bundle) and one per figure and the metric tree, nothing else
    assert dash.tree is not None
    doc = assert_text_only(page, QUOTED, f"Conversion {QUOTED}", scripts=2 + len(dash.figures) + 1)
    as_json = "\\u003cscript\\u003ealert(1)\\u003c\\u002fscript\\u003e"
    assert any(f"Europe {as_json}" in s for s in doc.scripts)  # the region, a bar label in the figure's JSON


def test_wizard_review_and_messages_show_user_text_only_as_text(evil_plan: Path, tmp_path: Path):
    from kpinb.widgets import KpiWizard

    wizard = KpiWizard(department="web", plans_dir=tmp_path, sources=str(evil_plan), today=dt.date(2026, 1, 15))
    wizard.statement.value = QUOTED
    wizard.name.value = QUOTED
    wizard.next()
    wizard.checkboxes["conversion_rate"].value = True
    wizard.next()
    wizard.fields["conversion_rate"]["owner"].value = QUOTED
    wizard.fields["conversion_rate"]["target"].value = EVIL
    wizard.next()  # not a number: the message quotes it
    assert wizard.step == 3
    assert_text_only(wizard.message.value, EVIL)
    wizard.fields["conversion_rate"]["target"].value = "3%"
    wizard.next()
    assert_text_only(wizard.review.value, "SMART review", QUOTED)
    for value in html_values(wizard):
        assert_text_only(value)
    wizard.save()
    for value in html_values(wizard):
        assert_text_only(value)
    plan = load_plan(wizard.path)
    assert plan.name == QUOTED and plan.objectives[0].statement == QUOTED and plan.kpis[0].owner == QUOTED


def test_notebook_display_shows_user_text_only_as_text(evil_plan: Path):
    from kpinb.analytics import status
    from kpinb.definitions.plan import registry
    from kpinb.engine.query import compute
    from kpinb.outputs import alerts
    from kpinb.views.cards import kpi_cards
    from kpinb.views.display import AlertTable, PlanView, StatusTable

    plan = load_plan(evil_plan)
    assert_text_only(PlanView(plan)._repr_html_(), QUOTED, f"Conversion {QUOTED}")
    df = compute(plan, grain="month")
    st = status.evaluate(plan, df)
    assert_text_only(StatusTable(st)._repr_html_(), f"Conversion {QUOTED}", QUOTED)
    assert_text_only(kpi_cards(st, df, registry(plan)), f"Conversion {QUOTED}")
    found = alerts.evaluate(plan, df)
    assert found, "the sample's conversion rate crosses the thresholds at least once"
    assert_text_only(AlertTable(found)._repr_html_(), f"Conversion {QUOTED}")
