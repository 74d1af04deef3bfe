"""Exported HTML reports: offline, plotly.js embedded once, user text escaped, small, rendering.

The shared batch (tests/batch_support.py) runs the dashboard and the benchmark comparison for a
plan whose names are hostile (``<script>alert(1)</script>``); the tests read the HTML with
:mod:`html.parser` and open it in headless Chromium with the network cut off. Locally the
browser test skips when Chromium is absent; with ``CI=true`` it fails instead, so CI cannot
silently lose it.
"""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from batch_support import HOSTILE, SAMPLE, shared_batch

from kpinb.runs.export import _bundle_needed, export_html
from kpinb.views.report import REPORT_RENDERER, TRACES_ATTRIBUTE

MAX_BYTES = 5 * 2**20
ROOT = Path(__file__).resolve().parents[1]
PLOTLY_BANNER = re.compile(r"\* plotly\.js(?: \(basic - minified\))? v\d")

pytestmark = pytest.mark.timeout(600)


class _Page(HTMLParser):
    """Collects what the tests check: external references, script bodies, visible text, charts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.charts = 0
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href", "data"):
            value = (a.get(key) or "").strip()
            if tag == "a" and key == "href":
                continue  # links are navigation, not resources the page loads
            if re.match(r"^(https?:)?//", value, re.I):
                self.external.append(f"<{tag} {key}={value}>")
        if tag == "link" and a.get("href"):
            self.external.append(f"<link href={a['href']}>")  # any stylesheet or preload would be a fetch
        if "plotly-graph-div" in (a.get("class") or "").split():
            self.charts += 1
        if tag in ("script", "style"):
            self._in.append(tag)
            if tag == "script":
                self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data
        elif not self._in:
            self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def reports() -> list[Path]:
    """The hostile plan's dashboard and benchmark comparison from the shared batch (tests/batch_support.py)."""
    if not (SAMPLE / "orders.parquet").is_file():
        pytest.fail("the sample data is missing: run `kpinb sample-data --out data/sample` (make test does)")
    batch = shared_batch()
    runs = [batch.run("hostile", t) for t in ("kpi_dashboard", "benchmark_comparison")]
    assert all(r["status"] == "ok" for r in runs), [r["error"] for r in runs]
    return [batch.out / r["report"] for r in runs]


@pytest.mark.slow
def test_reports_load_nothing_from_the_network(reports):
    for path in reports:
        page = _parse(path)
        assert page.external == [], f"{path.name} loads {page.external}"
        # outside plotly.js itself (whose code names a topojson URL only geo charts would use)
        rest = path.read_text(encoding="utf-8")
        for bundle in (s for s in page.scripts if PLOTLY_BANNER.search(s)):
            rest = rest.replace(bundle, "")
        for cdn in ("cdn.plot.ly", "cdnjs.cloudflare.com", "unpkg.com", "jsdelivr.net", "require.min.js", "mathjax"):
            assert cdn not in rest.lower(), f"{path.name} mentions {cdn}"


@pytest.mark.slow
def test_plotly_js_is_embedded_exactly_once(reports):
    for path in reports:
        page = _parse(path)
        bundles = [s for s in page.scripts if PLOTLY_BANNER.search(s)]
        assert len(bundles) == 1, f"{path.name}: plotly.js embedded {len(bundles)} times"
        assert len(PLOTLY_BANNER.findall(path.read_text(encoding="utf-8"))) == 1
        assert page.charts >= 3, f"{path.name}: expected charts, found {page.charts}"


@pytest.mark.slow
def test_hostile_names_appear_only_as_text(reports):
    for path in reports:
        body = path.read_text(encoding="utf-8")
        assert HOSTILE not in body, f"{path.name} contains the KPI name as markup"
        assert "<img src=x" not in body
        page = _parse(path)
        for script in page.scripts:
            assert "alert(1)</script>" not in script and "<script>alert" not in script
        visible = "".join(page.text)
        assert HOSTILE in visible, f"{path.name}: the hostile KPI name should be shown as text"
    dashboard = next(p for p in reports if p.stem == "kpi_dashboard")
    assert html.escape(HOSTILE, quote=False) in dashboard.read_text(encoding="utf-8")


@pytest.mark.slow
def test_reports_are_small(reports):
    for path in reports:
        size = path.stat().st_size
        assert size <= MAX_BYTES, f"{path.name} is {size / 2**20:.2f} MB"
        # every figure, the metric tree too, uses plotly.js's basic traces: the ~1.2 MB bundle, not the ~4.8 MB one
        assert "(basic - minified)" in path.read_text(encoding="utf-8"), f"{path.name} embeds the full plotly.js"


@pytest.mark.slow
def test_code_is_hidden_by_default(reports):
    body = next(p for p in reports if p.stem == "kpi_dashboard").read_text(encoding="utf-8")
    assert "report.load(" not in body
    assert not re.search(r'class="[^"]*jp-InputArea-editor', body)  # code inputs (markdown keeps its own)


CHROMIUM = Path("/usr/bin/chromium")


def _require_browser() -> None:
    """Skip locally without Chromium or Playwright; under ``CI=true`` fail instead."""
    problem = None
    if not CHROMIUM.is_file():
        problem = f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the Python package playwright is missing: pip install -e '.[test]'"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: the browser test must run, but {problem}")
        pytest.skip(problem)


@pytest.mark.slow
@pytest.mark.browser
def test_charts_render_offline_in_chromium(reports):
    """Each report opened from disk in headless Chromium with the network cut off draws an SVG
    in every plotly chart, raises no script error, and runs no script from the hostile name."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(offline=True, java_script_enabled=True)
            requested: list[str] = []

            def block(route) -> None:  # anything not on disk is a network fetch: refuse it
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    requested.append(route.request.url)
                    route.abort()

            context.route("**/*", block)
            for path in reports:
                expected = _parse(path).charts
                page = context.new_page()
                errors: list[str] = []
                dialogs: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_function(
                    "n => document.querySelectorAll('.plotly-graph-div .main-svg').length >= n", arg=expected,
                    timeout=60_000,
                )  # fmt: skip
                per_chart = page.eval_on_selector_all(
                    ".plotly-graph-div", "divs => divs.map(d => d.querySelectorAll('svg.main-svg').length)"
                )
                assert len(per_chart) == expected >= 3, f"{path.name}: {per_chart}"
                assert all(n >= 1 for n in per_chart), f"{path.name}: charts without an SVG: {per_chart}"
                assert page.get_by_text(HOSTILE, exact=False).count() >= 1, f"{path.name}: hostile name not shown"
                assert errors == [], f"{path.name}: script errors {errors}"
                assert dialogs == [], f"{path.name}: a script from user text ran: {dialogs}"
                page.close()
            assert requested == [], f"the reports tried to fetch {requested}"
        finally:
            browser.close()


# --- the exporter on hand-made notebooks (no kernel) --------------------------------------------


def _figure_output(trace_type: str) -> dict:
    import plotly.graph_objects as go
    import plotly.io as pio

    from kpinb.views import report

    report.setup(REPORT_RENDERER)
    try:
        fig = go.Figure(go.Bar(x=["a"], y=[1])) if trace_type == "bar" else go.Figure(go.Indicator(value=3))
        bundle = pio.renderers[REPORT_RENDERER].to_mimebundle(fig.to_dict())
    finally:
        report.setup("plotly_mimetype")
    return nbformat.v4.new_output("display_data", data=bundle)


def _notebook(*outputs: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    cell.outputs = list(outputs)
    nb.cells = [nbformat.v4.new_markdown_cell("# Report"), cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_exporter_embeds_the_basic_bundle_for_scatter_and_bar():
    nb = _notebook(_figure_output("bar"), _figure_output("bar"))
    assert _bundle_needed(nb) == "basic"
    body = export_html(nb)
    assert len(PLOTLY_BANNER.findall(body)) == 1
    assert "(basic - minified)" in body
    assert body.count("Plotly.newPlot(") == 2
    assert f'{TRACES_ATTRIBUTE}="bar"' in body
    assert len(body.encode()) < 2 * 2**20


def test_exporter_falls_back_to_the_full_bundle_for_other_traces():
    nb = _notebook(_figure_output("bar"), _figure_output("indicator"))
    assert _bundle_needed(nb) == "full"
    body = export_html(nb)
    assert len(PLOTLY_BANNER.findall(body)) == 1
    assert "(basic - minified)" not in body


def test_exporter_embeds_no_plotly_without_figures():
    nb = _notebook(nbformat.v4.new_output("stream", name="stdout", text=f"{HOSTILE}\n"))
    body = export_html(nb)
    assert not PLOTLY_BANNER.search(body)
    assert "<script src=" not in body
    assert HOSTILE not in body  # printed text is escaped too


def test_exporter_keeps_code_only_when_asked():
    nb = _notebook(nbformat.v4.new_output("stream", name="stdout", text="hello\n"))
    nb.cells[1].source = "print('visible code')"
    assert "visible code" not in export_html(nb)
    shown = export_html(nb, show_code=True)
    assert re.search(r'class="[^"]*jp-InputArea-editor', shown)
    assert "visible code" in html.unescape(re.sub(r"<[^>]+>", "", shown))


def test_exporter_drops_report_remove_cells_and_the_summary_output():
    from kpinb.views.report import SUMMARY_MIMETYPE

    nb = _notebook(nbformat.v4.new_output("display_data", data={SUMMARY_MIMETYPE: {"kpis": []}}))
    widget = nbformat.v4.new_code_cell("KpiWizard()")
    widget.metadata["tags"] = ["report-remove"]
    widget.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "KpiWizard(children=...)"})]
    nb.cells.append(widget)
    body = export_html(nb)
    assert "KpiWizard" not in body
    assert SUMMARY_MIMETYPE not in body


def test_report_values_are_steady_to_twelve_significant_digits():
    """Parallel float sums may differ in the last bit between runs; reports must not."""
    import numpy as np
    import pandas as pd

    from kpinb.views.report._load import _steady

    a = 1234567.891234567
    b = np.nextafter(a, np.inf)  # one ulp apart, as two DuckDB runs can be
    frame = pd.DataFrame({
        "metric": ["m", "m", "m", "m"], "value": [a, b, np.nan, 0.0],
        "numerator": pd.array([1 / 3, None, 2.5, -7e-9], dtype="Float64"),
    })  # fmt: skip
    out = _steady(frame)
    assert out["value"][0] == out["value"][1] == 1234567.89123
    assert np.isnan(out["value"][2]) and out["value"][3] == 0.0
    assert out["numerator"].dtype == "Float64" and out["numerator"][1] is pd.NA
    assert out["numerator"][0] == 0.333333333333 and out["numerator"][3] == -7e-9
    assert frame["value"][1] == b, "the input frame is left as it was"


# --- what a reader sees: no notes to the analyst, the data's age on top, contents, print -------


@pytest.mark.slow
def test_report_page_is_written_for_its_reader(reports):
    """The dashboard report drops the template's notes to the analyst ("Run it for every department
    with kpinb run ..."), says how old its data is above the first section, lists its sections,
    folds the tables that repeat a chart, labels periods for people and paginates on paper."""
    page = reports[0].read_text(encoding="utf-8")
    text = " ".join(_parse(reports[0]).text)
    assert "kpinb run --template" not in page and "run all cells" not in text
    assert "Run it for every department" not in text
    toc = re.search(r'<nav class="kpinb-toc"[^>]*>(.*?)</nav>', page, re.S)
    assert toc, "no table of contents"
    assert re.findall(r'href="#([^"]+)"', toc.group(1))[:4] == ["Objectives", "KPIs", "Pace-to-target", "Alerts"]
    first_section = page.index('<h2 id="Objectives"')
    assert page.index('class="kpinb-age') < page.index('<nav class="kpinb-toc"') < first_section
    assert page.index("<h1>") < page.index('class="kpinb-age')  # the title, then the data's age
    # one visual per idea: the status table behind the cards, the pace table behind the trends
    folded = re.findall(r'<details class="kpinb-details"><summary>([^<]*)</summary>', page)
    assert len(folded) >= 3 and any("statuses" in f for f in folded), folded
    assert re.search(r"KPIs judged on (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}", text)
    assert "@media print" in page and "break-inside: avoid" in page
    assert page.count('class="kpinb-cards"') == 1 and "auto-fit" in page


def test_data_age_warns_when_the_newest_data_is_two_periods_old():
    """The newest day the KPIs' sources cover, from the engine's coverage; a warning past two
    periods of the report's grain (months here), none within them, none for a report that
    deliberately looks back at a past period_end."""
    import datetime as dt

    from kpinb import report

    r = report.load(ROOT / "templates" / "plans" / "sales.yml", data_dir=SAMPLE)
    newest = report.age_of(r).newest
    assert newest is not None and newest == max(c["through"] for c in r.frame.attrs["coverage"].values())
    late = newest.date() + dt.timedelta(days=305)
    old = report.data_age(r, today=late).data
    assert "kpinb-age-stale" in old and "The newest data is 10 months old" in old
    assert f"{newest.day} {newest:%b %Y}" in old
    fresh = report.data_age(r, today=newest.date() + dt.timedelta(days=20)).data
    assert "kpinb-age-stale" not in fresh and "(2 weeks old)" in fresh
    back = report.load(ROOT / "templates" / "plans" / "sales.yml", data_dir=SAMPLE, period_end="2025-06-30")
    assert "kpinb-age-stale" not in report.data_age(back, today=late).data


def test_index_counts_reports_in_words(tmp_path):
    from kpinb.runs.index import index_page
    from kpinb.runs.specs import RunResult, RunSpec

    def run(dep: str) -> RunResult:
        spec = RunSpec("kpi_dashboard", dep, tmp_path / f"{dep}.yml")
        return RunResult(spec, "ok", None, tmp_path / dep / "kpi_dashboard.html", {}, 1.0)

    assert "<p>1 report, 0 failed;" in index_page([run("sales")], tmp_path, {"grain": "month"})
    assert "<p>2 reports, 0 failed;" in index_page([run("sales"), run("web")], tmp_path, {"grain": "month"})


def test_report_trend_draws_the_forecast_path_not_a_straight_wedge():
    """The report's trend shows the forecast period by period (as the dashboard does), ending at the
    pace table's forecast for the deadline; a quarter's total is titled for the quarter."""
    import pandas as pd

    from kpinb import report

    r = report.load(ROOT / "templates" / "plans" / "sales.yml", data_dir=SAMPLE, period_end="2025-06-30")
    pace = report.pace(r)
    figs = {f.layout.title.text: f for f in report.trend_figures(r, pace)}
    fig = figs["Monthly sales revenue"]
    (line,) = [t for t in fig.data if t.name == "forecast"]
    months = pd.to_datetime(list(line.x))
    assert len(months) == 7  # Jun (the latest value) then one point per month to December
    at_deadline = pace.set_index("metric").loc["monthly_sales_revenue", "forecast_at_deadline"]
    assert line.y[-1] == pytest.approx(at_deadline, rel=1e-3)
    k = r.plan.kpi("monthly_sales_revenue")
    zones = {z.name: z.y0 for z in fig.layout.shapes}
    assert zones == {"warning zone": k.thresholds.warning, "critical zone": k.thresholds.critical}
    by_quarter = report.load(ROOT / "templates" / "plans" / "sales.yml", data_dir=SAMPLE, grain="quarter")
    quarterly = {f.layout.title.text: f for f in report.trend_figures(by_quarter)}
    assert "Quarterly sales revenue" in quarterly and "Monthly recurring revenue (MRR)" in quarterly
    assert not quarterly["Quarterly sales revenue"].layout.shapes  # a total is not judged by quarter
    assert quarterly["Average order value"].layout.shapes  # an average is


def test_every_section_shows_a_late_settling_kpi_on_its_judged_period():
    """The sales conversion rate matures 60 days after a month ends, so the scorecard judges it on
    an earlier month than the others. Its external benchmark, peers, history, breakdown and drivers
    read that month too, not the immature latest one (which showed 3.0% beside a judged 10.9%)."""
    from kpinb import report

    r = report.load(ROOT / "templates" / "plans" / "sales.yml", data_dir=SAMPLE)
    rate = r.scorecard.get("sales_conversion_rate")
    assert rate.period_start < r.judged  # the premise: judged on an earlier, complete month
    label = f"{rate.period_start:%b %Y}"
    ext = report.external(r).set_index("metric")
    assert ext.loc["sales_conversion_rate", "value"] == pytest.approx(rate.value)
    hist = report.history(r).set_index("metric")
    assert hist.loc["sales_conversion_rate", "value"] == pytest.approx(rate.value)
    frames = report.breakdowns(r)
    titles = [f.layout.title.text for f in report.breakdown_figures(r, frames)]
    assert f"Sales conversion rate by region, {label}" in titles
    drivers = [f.layout.title.text.replace("<br>", " ") for f in report.driver_figures(r, frames)]
    assert any(t.startswith("What moved Sales conversion rate") and t.endswith(label) for t in drivers), drivers
    peers = report.peers(r, frames)
    assert peers[peers["metric"] == "sales_conversion_rate"]["value"].notna().all()


def test_mrr_is_explained_member_by_member_and_aov_by_rate_and_mix():
    """Issue 15 item 5: MRR (mrr summed per snapshot day: its regions add up to the whole) was split
    into rate and mix effects as if each region's snapshot day were a separate denominator, and the
    bars added up to a quarter of nothing. It is explained by each region's change, which adds up to
    MRR's change; the average order value, whose regions do not add up, keeps rate and mix."""
    from kpinb import report

    r = report.load(ROOT / "templates" / "plans" / "sales.yml", data_dir=SAMPLE)
    figs = {f.layout.title.text.split(" by ")[0]: f for f in report.driver_figures(r, report.breakdowns(r))}
    (mrr,) = figs["What moved Monthly recurring revenue (MRR)"].data
    assert not any(" · " in str(y) for y in mrr.y)  # members, not "Europe · rate"
    e = r.scorecard.get("monthly_recurring_revenue")
    assert sum(mrr.x) == pytest.approx(e.value - e.previous, rel=1e-6)
    (aov,) = figs["What moved Average order value"].data
    assert any(str(y).endswith(" · rate") for y in aov.y) and any(str(y).endswith(" · mix") for y in aov.y)
