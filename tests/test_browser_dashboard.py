"""The dashboard and a report as an analyst sees them in a real JupyterLab and Chromium (issues 15, 17).

Uses the JupyterLab server of ``tests/test_browser.py`` (same fixture, same isolation). Clicks a
card and a node of the metric tree (the charts focus on its KPI) and a bar of the breakdown (the
dashboard filters to that member), switches JupyterLab to its dark theme (cards and tables stay
readable, no white blocks), and opens an exported report (screen and print). Full-page screenshots go to
``reports/screenshots/`` (git-ignored; their paths are printed) for a person to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _notebook, _run_cell, lab  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "reports" / "screenshots"


def _full_shot(page, name: str, selector: str | None = None) -> Path:
    """A screenshot of the whole of ``selector`` (the viewport grown to its height), else the page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"ux15-{name}.png"
    if selector is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        height = page.eval_on_selector(selector, "e => e.getBoundingClientRect().height")
        page.set_viewport_size({"width": 1400, "height": int(height) + 420})
        page.eval_on_selector(selector, "e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(700)  # charts re-laid out for the taller window
        page.locator(selector).screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def _luminance(css: str) -> float:
    """Relative luminance (0 black .. 1 white) of a computed ``rgb()`` / ``rgba()`` colour."""
    parts = [float(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    r, g, b = ((c / 255) ** 2.2 for c in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _sales_plan(folder: Path, sample_data: Path) -> Path:
    text = (ROOT / "templates" / "plans" / "sales.yml").read_text()
    text = text.replace("../../data/sample/", f"{sample_data}/").replace(
        "../../data/benchmarks.csv", str(ROOT / "data" / "benchmarks.csv")
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sales.yml").write_text(text)
    return folder / "sales.yml"


def test_dashboard_clicks_dark_theme_and_a_report(lab: dict, sample_data: Path, tmp_path: Path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    plan = _sales_plan(tmp_path / "plans", sample_data)
    _notebook(
        lab["root"] / "ux15.ipynb",
        [
            f"from kpinb.widgets import Dashboard\ndashboard = Dashboard({str(plan)!r}, grain='month')\ndashboard",
        ],
    )
    out = tmp_path / "reports"
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from kpinb.cli import main; sys.exit(main())", "run", "--template",
         "kpi_dashboard", "--department", "sales", "--plans-dir", str(plan.parent), "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = out / "sales" / "kpi_dashboard.html"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.add_locator_handler(
                page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
                lambda dialog: dialog.locator("button.jp-mod-accept").click(),
            )
            page.goto(f"{lab['url']}/lab/tree/ux15.ipynb?token={lab['token']}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
            )
            _run_cell(page, 0)
            dash = ".kpinb-dashboard"
            page.wait_for_selector(f"{dash} .kpinb-card")
            for name in ("trend", "breakdown"):
                page.wait_for_selector(f"{dash} .kpinb-fig-{name} .js-plotly-plot svg.main-svg", state="visible")

            # only filters a KPI has, with their whole names; tight lines
            labels = page.eval_on_selector_all(
                f"{dash} .kpinb-filters .widget-dropdown label", "ls => ls.map(l => l.textContent)"
            )
            assert "Region" in labels and not any("_" in t or "…" in t for t in labels), labels
            reason = page.locator(f"{dash} .kpinb-card-reason").first
            line = reason.evaluate(
                "e => parseFloat(getComputedStyle(e).lineHeight) / parseFloat(getComputedStyle(e).fontSize)"
            )
            assert line < 1.6, line  # not JupyterLab's 28 px widget line height
            _full_shot(page, "dashboard-light", dash)

            # by quarter: the cards are judged on the quarter, the total's chart is titled for it
            page.locator(f"{dash} .kpinb-filter-grain select").select_option("quarter")
            page.wait_for_function(
                "sel => [...document.querySelectorAll(sel)].some(t => t.textContent.startsWith('Quarterly sales'))",
                arg=f"{dash} .kpinb-fig-trend .gtitle",
            )
            page.wait_for_selector(f"{dash} .kpinb-card-meta:text-matches('^Q[1-4] 20')")
            _full_shot(page, "dashboard-quarter", dash)
            page.locator(f"{dash} .kpinb-filter-grain select").select_option("month")
            page.wait_for_selector(f"{dash} .kpinb-card-meta:text-matches('^[A-Z][a-z]{{2}} 20')")

            # a click on a card focuses the charts on its KPI
            page.locator(f'{dash} .kpinb-card[data-metric="average_order_value"]').click()
            page.wait_for_function(
                "sel => [...document.querySelectorAll(sel)].some(t => t.textContent.startsWith('Average order value'))",
                arg=f"{dash} .kpinb-fig-trend .gtitle",
            )
            assert page.locator(f"{dash} .kpinb-focus select").input_value() == "Average order value"

            # the objectives' roll-up and the insights on top; a click on a KPI node of the metric tree
            # focuses the charts on it, as a card click does (issue 17)
            assert page.locator(f"{dash} .kpinb-dashboard-objectives .kpinb-objective").count() == 3
            assert page.locator(f"{dash} .kpinb-dashboard-insights li").count() >= 1
            node = page.locator(f"{dash} .kpinb-fig-tree .bars .point").filter(
                has=page.locator("text.bartext", has_text="Monthly recurring revenue")
            )
            node.first.scroll_into_view_if_needed()
            box = node.first.locator("path").bounding_box()
            x, y = box["x"] + 60, box["y"] + box["height"] / 2  # on the box's words
            page.mouse.move(x, y)
            page.wait_for_timeout(300)
            page.mouse.click(x, y)
            page.wait_for_function(
                "sel => [...document.querySelectorAll(sel)].some(t => t.textContent.startsWith('Monthly recurring'))",
                arg=f"{dash} .kpinb-fig-trend .gtitle",
            )
            assert page.locator(f"{dash} .kpinb-focus select").input_value().startswith("Monthly recurring revenue")
            # the tree stays whole (a node focuses, the tree is left as it was): another KPI is still there
            page.wait_for_timeout(800)
            assert page.locator(f"{dash} .kpinb-fig-tree text.bartext", has_text="Sales conversion rate").count()

            # a note added through the form: written beside the plan, a marker on the focused KPI's
            # trend with its text (escaped: shown as typed) on hover
            form = f"{dash} .kpinb-note-form"
            page.locator(f"{form} .widget-text input").nth(0).fill("2025-06-14")
            page.locator(f"{form} .widget-text input").nth(1).fill("Ann")
            page.locator(f"{form} textarea").fill("Price change <b>x</b>")
            page.locator(f"{form} button", has_text="Add note").click()
            page.wait_for_selector(f"{form} :text('Note added to sales.notes.csv')")
            page.wait_for_selector(f"{dash} .kpinb-fig-trend .legendtext:text-is('note')")
            assert "Price change <b>x</b>" in (plan.parent / "sales.notes.csv").read_text()
            marker = page.locator(f"{dash} .kpinb-fig-trend .scatterlayer .trace").last.locator("path.point").first
            box = marker.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_selector(f"{dash} .kpinb-fig-trend .hoverlayer :text('Ann: Price change <b>x</b>')")
            _full_shot(page, "dashboard-tree", dash)
            page.locator(f'{dash} .kpinb-card[data-metric="average_order_value"]').click()
            page.wait_for_function(
                "sel => [...document.querySelectorAll(sel)].some(t => t.textContent.startsWith('Average order value'))",
                arg=f"{dash} .kpinb-fig-trend .gtitle",
            )

            # a click on a bar of the breakdown filters the dashboard to that member
            bar = page.locator(f"{dash} .kpinb-fig-breakdown .bars .point path").first
            bar.wait_for(state="visible")
            box = bar.bounding_box()
            member = page.eval_on_selector_all(
                f"{dash} .kpinb-fig-breakdown .ytick text", "ts => ts.map(t => t.textContent)"
            )
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.wait_for_timeout(300)
            page.mouse.click(x, y)
            page.wait_for_function(
                "sel => document.querySelector(sel).value !== 'All'", arg=f"{dash} .kpinb-filter-region select"
            )
            chosen = page.locator(f"{dash} .kpinb-filter-region select option:checked").text_content()
            chosen = chosen.replace("\xa0", " ")  # ipywidgets writes option labels with no-break spaces
            assert chosen in member, (chosen, member)
            page.wait_for_selector(f"{dash} .kpinb-dashboard-notes :text('Filtered: Region = {chosen}')")
            _full_shot(page, "dashboard-clicked", dash)

            # dark theme: cards and tables take the theme's surface, text stays readable
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            page.wait_for_timeout(800)
            card = page.locator(f"{dash} .kpinb-card").first
            background = card.evaluate("e => getComputedStyle(e).backgroundColor")
            text = card.evaluate("e => getComputedStyle(e).color")
            assert _luminance(background) < 0.1 and _luminance(text) > 0.4, (background, text)
            paper = page.eval_on_selector(
                f"{dash} .kpinb-fig-trend .main-svg", "e => getComputedStyle(e).backgroundColor"
            )
            assert paper in ("rgba(0, 0, 0, 0)", "transparent"), paper  # no white block behind a chart
            _full_shot(page, "dashboard-dark", dash)
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
            )

            # the exported report: screen, then print (nothing wider than the paper)
            rep = browser.new_page(viewport={"width": 1400, "height": 1000})
            rep.goto(report.as_uri())
            rep.wait_for_selector(".kpinb-plotly .main-svg", state="attached")
            height = rep.evaluate("document.documentElement.scrollHeight")
            rep.set_viewport_size({"width": 1400, "height": height})
            rep.wait_for_timeout(1500)
            assert rep.locator(".kpinb-toc a").count() >= 4 and rep.locator(".kpinb-age").count() == 1
            _full_shot(rep, "report")
            assert height < 6000, height  # two charts a row, tables folded: not an 8,100 px column
            rep.emulate_media(media="print")
            rep.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
            rep.wait_for_timeout(800)
            wide = rep.evaluate(
                "() => [...document.querySelectorAll('.kpinb-card, .kpinb-plotly, table')]"
                ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 2).length"
            )
            assert wide == 0, f"{wide} blocks run past the paper's edge"
            pdf = tmp_path / "report.pdf"
            rep.pdf(path=str(pdf), format="A4", print_background=True)
            pages = pdf.read_bytes().count(b"/Type /Page\n") or pdf.read_bytes().count(b"/Type /Page")
            print(f"report printed to {pages} A4 pages: {pdf}")
            assert 1 < pages < 20, pages
            rep.close()
        finally:
            browser.close()
    print(json.dumps({"artifacts": str(ARTIFACTS)}))
