"""The wizard in a real JupyterLab and Chromium, clicked through as an analyst would.

Asserts what the page shows, not only what the kernel holds: Next disabled with its reason,
a threshold mistake reported under the field it is about, the view back at the wizard's top
after each step change, dates in ISO whatever the browser's locale, and Save asking before it
replaces a file. Full-page screenshots of every step go to ``tmp/artifacts/`` (``KPINB_ARTIFACTS``
overrides; kept out of git) for a person to look at.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, _notebook, _run_cell, lab  # noqa: F401

pytestmark = pytest.mark.browser

_SCROLLER = (  # the element JupyterLab 4 scrolls a notebook in
    "(document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')"
    " || document.querySelector('.jp-NotebookPanel-notebook'))"
)
ARTIFACTS = Path(os.environ.get("KPINB_ARTIFACTS", ROOT / "tmp" / "artifacts"))
STATEMENT = "Grow monthly sales revenue 20% by the end of 2026 and convert more of the pipeline into customers"
KPIS = ("monthly_sales_revenue", "sales_conversion_rate", "average_order_value", "demos_scheduled")


def _full_shot(page, name: str) -> Path:
    """A screenshot of the whole notebook: JupyterLab scrolls inside its panel, so the viewport is
    made as tall as the notebook's content for the shot, then put back."""
    height = page.evaluate(f"() => {{ const p = {_SCROLLER}; p.scrollTop = 0; return p.scrollHeight; }}")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 200)})
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"wizard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    print(f"screenshot: {path}")
    return path


def _top_in_view(page) -> float:
    """Where the wizard's top is, relative to the notebook panel's visible top (0: at the top)."""
    return page.evaluate(
        "() => document.querySelector('.kpinb-wizard').getBoundingClientRect().top"
        f" - {_SCROLLER}.getBoundingClientRect().top"
    )


_AT_TOP = (  # the wizard's top is at the top of the notebook's visible area
    "() => Math.abs(document.querySelector('.kpinb-wizard').getBoundingClientRect().top"
    f" - {_SCROLLER}.getBoundingClientRect().top) < 40"
)


def _scroll_to_bottom(page) -> None:
    page.evaluate(f"() => {{ const p = {_SCROLLER}; p.scrollTop = p.scrollHeight; }}")


def test_wizard_in_jupyterlab_validates_where_typed_and_asks_before_overwriting(
    lab: dict,  # noqa: F811
    sample_data: Path,
    tmp_path: Path,
):
    from playwright.sync_api import expect, sync_playwright

    from kpinb.definitions.plan import load_plan

    started = time.monotonic()
    plans = tmp_path / "plans"
    plans.mkdir()
    existing = plans / "sales.yml"
    existing.write_text("name: last year's plan\n")
    _notebook(
        lab["root"] / "wizard.ipynb",
        [
            "import datetime as dt\n"
            "from kpinb.widgets import KpiWizard\n"
            f"w = KpiWizard(department='sales', plans_dir={str(plans)!r}, sources={str(sample_data)!r},"
            " today=dt.date(2026, 1, 15))\n"
            "w",
        ],
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # a US locale: the dates must still read YYYY-MM-DD
            page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")
            page.set_default_timeout(int(os.environ.get("KPINB_BROWSER_TIMEOUT_MS", TIMEOUT_MS)))
            page.add_locator_handler(
                page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
                lambda dialog: dialog.locator("button.jp-mod-accept").click(),
            )
            page.goto(f"{lab['url']}/lab/tree/wizard.ipynb?token={lab['token']}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
            )
            _run_cell(page, 0)
            wizard = page.locator(".kpinb-wizard")
            nxt = wizard.locator("button.kpinb-wizard-next")
            blocked = wizard.locator(".kpinb-wizard-blocked")

            # --- step 1: Next is disabled, saying why, until the objective is stated ---------------
            wizard.locator(".kpinb-wizard-statement textarea").wait_for()
            expect(nxt).to_be_disabled()
            expect(blocked).to_contain_text("state the objective")
            wizard.locator(".kpinb-wizard-statement textarea").fill(STATEMENT)
            wizard.locator(".kpinb-wizard-name input").fill("Sales KPIs 2026")
            expect(nxt).to_be_enabled()
            _full_shot(page, "1-objective")
            nxt.click()

            # --- step 2: a ranked few with reasons, the counter on top ----------------------------
            wizard.locator(".kpinb-wizard-recommended .kpinb-reason").first.wait_for()
            reasons = wizard.locator(".kpinb-wizard-recommended .kpinb-reason").all_text_contents()
            assert 5 <= len(reasons) <= 7 and len(set(reasons)) == len(reasons), reasons
            counter_top = wizard.locator(".kpinb-wizard-counter").bounding_box()["y"]
            first_row = wizard.locator(".kpinb-wizard-recommended").bounding_box()["y"]
            assert counter_top < first_row  # the counter sits above the list
            expect(wizard.locator(".kpinb-wizard-more")).to_be_visible()
            descriptions = wizard.locator(".kpinb-wizard-recommended details")
            assert descriptions.count() == len(reasons)
            assert not any(descriptions.evaluate_all("els => els.map(e => e.open)"))  # folded
            # average order value is not among the recommended: open the other metrics (a long step,
            # scrolled to its bottom to reach Next)
            wizard.locator(".kpinb-wizard-more .jupyter-widget-Collapse-header, .kpinb-wizard-more "
                           ".p-Collapse-header, .kpinb-wizard-more .lm-AccordionPanel-title").first.click()  # fmt: skip
            for m in KPIS:
                wizard.locator(f".kpinb-kpi-{m} input[type=checkbox]").check()
            page.wait_for_selector(f'.kpinb-wizard .kpinb-counter[data-count="{len(KPIS)}"]')
            _full_shot(page, "2-candidates")
            nxt.evaluate("e => e.scrollIntoView({block: 'end'})")  # down to Next, as a person scrolls
            assert _top_in_view(page) < -200  # the wizard's top is out of view
            counter_y = page.evaluate(
                "() => document.querySelector('.kpinb-wizard-counter').getBoundingClientRect().top"
                f" - {_SCROLLER}.getBoundingClientRect().top"
            )
            assert 0 <= counter_y < 60, counter_y  # ...but the counter stays in sight, stuck to the top
            page.screenshot(path=str(ARTIFACTS / "wizard-2-candidates-scrolled.png"))
            nxt.click()

            # --- step 3: back at the top; every field validated where it is typed ---------------------
            wizard.locator(".kpinb-kpi-sales_conversion_rate-target input").wait_for()
            page.wait_for_function(_AT_TOP)
            deadline = wizard.locator(".kpinb-kpi-sales_conversion_rate-deadline input")
            assert deadline.input_value() == "2026-12-31"
            baseline = wizard.locator(".kpinb-kpi-monthly_sales_revenue-baseline input").input_value()
            assert "," in baseline and "e" not in baseline, baseline  # 1,434,700 style, as the cards group digits
            expect(nxt).to_be_disabled()
            expect(blocked).to_contain_text("Monthly sales revenue · Target")
            target_msg = wizard.locator(".kpinb-kpi-average_order_value-target-msg")
            expect(target_msg).to_contain_text("Set a target")
            # the example: warning 11% under critical 12% for a higher-is-better rate
            rate = ".kpinb-kpi-sales_conversion_rate"
            page.locator(f"{rate}-target input").fill("13%")
            page.locator(f"{rate}-warning input").fill("11%")
            page.locator(f"{rate}-critical input").fill("12%")
            warning_msg = page.locator(f"{rate}-warning-msg")
            expect(warning_msg).to_contain_text("must be above critical at 12.0%")
            field_box = page.locator(f"{rate}-warning input").bounding_box()
            msg_box = warning_msg.bounding_box()
            assert 0 <= msg_box["y"] - (field_box["y"] + field_box["height"]) < 30  # right under the field
            assert abs(msg_box["x"] - field_box["x"]) < 120
            page.locator(f"{rate}-deadline input").fill("12/31/2026")
            expect(page.locator(f"{rate}-deadline-msg")).to_contain_text("YYYY-MM-DD")
            expect(blocked).to_contain_text("Sales conversion rate · Warning at")
            _full_shot(page, "3-targets-with-mistakes")
            page.locator(f"{rate}-deadline input").fill("2026-12-31")
            page.locator(f"{rate}-warning input").fill("12%")
            page.locator(f"{rate}-critical input").fill("11%")
            expect(warning_msg).to_have_text("")
            values = {
                "monthly_sales_revenue": ("1.7M", "Head of Sales", "1.5M", "1.35M"),
                "sales_conversion_rate": ("13%", "Sales Operations", "12%", "11%"),
                "average_order_value": ("340", "E-commerce Lead", "320", "300"),
                "demos_scheduled": ("330", "SDR Team Lead", "290", "260"),
            }
            for m, (target, owner, warn, crit) in values.items():
                for key, value in (("target", target), ("owner", owner), ("warning", warn), ("critical", crit)):
                    page.locator(f".kpinb-kpi-{m}-{key} input").fill(value)
            expect(nxt).to_be_enabled()
            expect(blocked).to_have_text("")
            _full_shot(page, "3-targets")
            _scroll_to_bottom(page)
            nxt.click()

            # --- step 4: a summary in words; Save asks before replacing last year's file ---------------
            review = wizard.locator(".kpinb-wizard-review")
            expect(review).to_contain_text("SMART review")
            expect(review.locator(".kpinb-review-kpi")).to_have_count(len(KPIS))
            expect(review).to_contain_text("to 1.70M by 2026-12-31")
            expect(review.locator("pre.kpinb-wizard-yaml")).to_be_hidden()  # folded in <details>
            page.wait_for_function(_AT_TOP)
            save = wizard.locator("button.kpinb-wizard-save")
            expect(save).to_be_disabled()
            expect(blocked).to_contain_text("sales.yml exists")
            overwrite = wizard.locator(".kpinb-wizard-overwrite input[type=checkbox]")
            expect(overwrite).to_be_visible()
            _full_shot(page, "4-review")
            overwrite.check()
            expect(save).to_be_enabled()
            save.click()
            page.wait_for_selector(".kpinb-wizard .kpinb-wizard-saved")
            _full_shot(page, "5-saved")
            # JupyterLab's dark theme: the review's text follows it (light on dark), not black on black
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                          " {theme: 'JupyterLab Dark'})")  # fmt: skip
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            page.wait_for_timeout(500)  # the theme's stylesheet is applied
            rgb = page.eval_on_selector(
                ".kpinb-wizard-summary td", "e => getComputedStyle(e).color.match(/\\d+/g).map(Number)"
            )
            assert sum(rgb[:3]) / 3 > 150, rgb
            _full_shot(page, "6-saved-dark-theme")
        finally:
            browser.close()
    plan = load_plan(existing)
    assert sorted(k.metric for k in plan.kpis) == sorted(KPIS)
    rate = plan.kpi("sales_conversion_rate")
    assert (rate.thresholds.warning, rate.thresholds.critical) == (pytest.approx(0.12), pytest.approx(0.11))
    print(f"wizard clicked through in {time.monotonic() - started:.0f} s")
