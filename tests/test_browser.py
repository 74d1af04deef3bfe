"""A real browser against a real JupyterLab: click through the wizard, save, filter the dashboard.

Starts JupyterLab on 127.0.0.1 (a free port, a token, every Jupyter/IPython folder in a temporary
directory, no news pop-up), opens a notebook that creates the wizard and the dashboard on the
sample data, and drives Debian's ``/usr/bin/chromium`` with Playwright (no browser download):
it clicks through the wizard and saves, changes a dashboard filter and checks a card's number,
then exports the dashboard and opens the file with the network blocked. Screenshots go to
``reports/screenshots/`` (their paths are printed). With ``CI=true`` the test never skips: a
missing chromium or playwright is a failure; locally it skips saying what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "reports" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 90_000  # generous: a busy 2-core machine (load 6-8) with JupyterLab, a kernel and Chromium on it
FIGURES = ("trend", "breakdown", "benchmark", "drivers")


def _require_browser() -> None:
    ci = os.environ.get("CI", "").lower() == "true"
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (Playwright drives it)."
        if ci:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        message = "the Python package `playwright` is missing: pip install -e '.[test]'"
        if ci:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A JupyterLab server: url, token, notebook folder; stopped (with its kernels) afterwards."""
    _require_browser()
    base = tmp_path_factory.mktemp("lab")
    dirs = {k: base / k for k in ("root", "runtime", "config", "data", "ipython", "settings", "workspaces")}
    for d in dirs.values():
        d.mkdir()
    # the "Would you like to receive official Jupyter news?" toast would cover the notebook
    (dirs["config"] / "labconfig").mkdir()
    (dirs["config"] / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # render every cell: with JupyterLab's default windowing, off-screen outputs are not laid out
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={dirs['root']}", "--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={dirs['settings']}", f"--LabApp.workspaces_dir={dirs['workspaces']}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (base / "jupyter.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}; see {base / 'jupyter.log'}")
            with contextlib.suppress(OSError):
                _get(f"{url}/api/status?token={token}")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer in 60 s; see {base / 'jupyter.log'}")
            time.sleep(0.3)
        yield {"url": url, "token": token, "root": dirs["root"], "log": base / "jupyter.log"}
    finally:
        with contextlib.suppress(OSError, ValueError):  # shut the kernels down through the API first
            kernels = json.loads(_get(f"{url}/api/kernels?token={token}"))
            for k in kernels:
                req = urllib.request.Request(f"{url}/api/kernels/{k['id']}?token={token}", method="DELETE")
                urllib.request.urlopen(req, timeout=10).close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server we started and its kernels, nothing else
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def _notebook(path: Path, cells: list[str]) -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": s}
            for i, s in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def _shot(page, name: str, top: str | None = None) -> Path:
    """A screenshot under reports/screenshots/, with the element ``top`` scrolled to the top first."""
    if top is not None:
        page.eval_on_selector(top, "e => e.scrollIntoView({block: 'start'})")
    # two animation frames: the scroll and any pending widget update are painted
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
    return path


def _run_cell(page, index: int) -> None:
    """Run one notebook cell through JupyterLab's own command (as Shift+Enter on it would)."""
    page.evaluate(
        "i => { const nb = window.jupyterapp.shell.currentWidget; nb.content.activeCellIndex = i;"
        " return window.jupyterapp.commands.execute('notebook:run-cell'); }",
        index,
    )


def _chart(name: str, fresh: bool = False) -> str:
    """The plotly chart of the dashboard's figure ``name``; ``fresh``: one drawn after the charts were marked stale."""
    return f".kpinb-dashboard .kpinb-fig-{name} .js-plotly-plot" + (":not([data-stale])" if fresh else "")


def _card_values(page, selector: str) -> dict[str, str]:
    return page.eval_on_selector_all(
        f"{selector} .kpinb-card",
        "els => Object.fromEntries(els.map(e => [e.dataset.metric, e.querySelector('.kpinb-card-value').textContent]))",
    )


def test_wizard_and_dashboard_in_jupyterlab(lab: dict, sample_data: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    from kpinb.definitions.plan import load_plan

    started = time.monotonic()
    phases: list[str] = []

    def phase(name: str) -> None:
        phases.append(f"{name} {time.monotonic() - started:.1f}s")

    plans = tmp_path / "plans"
    dash_plan = tmp_path / "dash" / "web.yml"
    dash_plan.parent.mkdir()
    template = (ROOT / "templates" / "plans" / "web.yml").read_text()
    dash_plan.write_text(
        template.replace("../../data/sample/", f"{sample_data}/").replace(
            "../../data/benchmarks.csv", str(ROOT / "data" / "benchmarks.csv")
        )
    )
    timings = tmp_path / "timings.json"
    export = tmp_path / "export" / "web.html"
    _notebook(
        lab["root"] / "kpis.ipynb",
        [
            "import datetime as dt\n"
            "from kpinb.widgets import Dashboard, KpiWizard\n"
            f"wizard = KpiWizard(plans_dir={str(plans)!r}, sources={str(sample_data)!r}, today=dt.date(2026, 1, 15))\n"
            "wizard",
            "import json, pathlib, time\n"
            "_t = time.perf_counter()\n"
            f"dashboard = Dashboard({str(dash_plan)!r})\n"
            "_build = time.perf_counter() - _t\n"
            "def _log(change):\n"
            f"    pathlib.Path({str(timings)!r}).write_text(json.dumps([_build, dashboard.timings]))\n"
            "dashboard.dimension_filters['region'].observe(_log, names='value')\n"
            "dashboard",
            f"dashboard.to_html({str(export)!r}).name",
        ],
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"[:300]) if m.type == "error" else None)
            received = [0]  # bytes the page received over websockets (the kernel's channels)
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived",
                    lambda f: received.__setitem__(0, received[0] + len(f.encode() if isinstance(f, str) else f)),
                ),
            )
            page.set_default_timeout(TIMEOUT_MS)
            # overlays that would swallow clicks whenever they show up: the kernel picker (a notebook
            # without a usable kernelspec) and the Jupyter news toast (disabled above, in case it is not)
            page.add_locator_handler(
                page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
                lambda dialog: dialog.locator("button.jp-mod-accept").click(),
            )
            page.add_locator_handler(
                page.locator(".jp-toast-message, .Toastify__toast").filter(has_text="news"),
                lambda toast: toast.get_by_role("button", name="No").click(),
            )
            page.goto(f"{lab['url']}/lab/tree/kpis.ipynb?token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
            )
            phase("kernel ready")
            _run_cell(page, 0)

            # --- the wizard ---------------------------------------------------------------------
            wizard = page.locator(".kpinb-wizard")
            wizard.locator(".kpinb-wizard-statement textarea").wait_for()
            phase("wizard shown")
            wizard.locator(".kpinb-wizard-statement textarea").fill("Turn more visits into sign-ups and purchases")
            wizard.locator(".kpinb-wizard-department select").select_option("Web")
            wizard.locator(".kpinb-wizard-name input").fill("Website KPIs")
            wizard.locator("button.kpinb-wizard-next").click()
            wizard.locator(".kpinb-kpi-conversion_rate input[type=checkbox]").check()
            wizard.locator(".kpinb-kpi-bounce_rate input[type=checkbox]").check()
            page.wait_for_selector('.kpinb-wizard .kpinb-counter[data-count="2"]')
            _shot(page, "wizard-candidates", ".kpinb-wizard")
            wizard.locator("button.kpinb-wizard-next").click()
            fields = {
                "conversion_rate": {
                    "target": "3.2%",
                    "owner": "Web Product Owner",
                    "warning": "2.8%",
                    "critical": "2.5%",
                },
                "bounce_rate": {"target": "42%", "owner": "Web Product Owner", "warning": "46%", "critical": "50%"},
            }
            for metric, values in fields.items():
                for key, value in values.items():
                    wizard.locator(f".kpinb-kpi-{metric}-{key} input").fill(value)
            baseline = wizard.locator(".kpinb-kpi-conversion_rate-baseline input").input_value()
            assert baseline.endswith("%"), baseline  # pre-filled from the data
            _shot(page, "wizard-targets")
            wizard.locator("button.kpinb-wizard-next").click()
            page.wait_for_selector(".kpinb-wizard .kpinb-wizard-review :text('SMART review')")
            _shot(page, "wizard-review")
            wizard.locator("button.kpinb-wizard-save").click()
            page.wait_for_selector(".kpinb-wizard .kpinb-wizard-saved")
            _shot(page, "wizard-saved")
            phase("wizard saved")
            saved = plans / "web.yml"
            assert saved.exists()
            plan = load_plan(saved)
            assert [k.metric for k in plan.kpis] == ["conversion_rate", "bounce_rate"]
            assert plan.kpis[0].target.value == pytest.approx(0.032) and plan.kpis[1].owner == "Web Product Owner"

            # --- the dashboard ------------------------------------------------------------------
            ws_before = received[0]
            _run_cell(page, 1)
            cards = ".kpinb-dashboard .kpinb-cards-widget"
            page.wait_for_selector(f"{cards} .kpinb-card")
            # each chart is an Output widget holding plotly's mimetype, drawn by JupyterLab's plotly extension
            page.locator(".kpinb-dashboard .kpinb-fig-trend").scroll_into_view_if_needed()
            for name in FIGURES:
                page.wait_for_selector(f"{_chart(name)} svg.main-svg", state="visible")
            dashboard_bytes = received[0] - ws_before
            # only the figures' JSON travels, not plotly.js (~5 MB per chart when they were FigureWidgets)
            assert dashboard_bytes < 3_000_000, dashboard_bytes
            assert page.locator(".kpinb-dashboard .kpinb-fig-trend .js-plotly-plot .scatterlayer .trace").count() >= 1
            before = _card_values(page, cards)
            breakdown_title = page.locator(".kpinb-dashboard .kpinb-fig-breakdown .gtitle").first.text_content()
            assert "by region" in breakdown_title
            _shot(page, "dashboard-before", ".kpinb-dashboard")
            phase("dashboard shown")

            # mark the charts on screen: a chart redrawn for the filter is a new plot element without the mark
            page.eval_on_selector_all(
                ".kpinb-dashboard .js-plotly-plot", "els => els.forEach(e => e.dataset.stale = '1')"
            )
            t0 = time.perf_counter()
            page.locator(".kpinb-dashboard .kpinb-filter-region select").select_option("Europe")
            page.wait_for_function(
                "([sel, before]) => [...document.querySelectorAll(sel + ' .kpinb-card')].some("
                "e => e.querySelector('.kpinb-card-value').textContent !== before[e.dataset.metric])",
                arg=[cards, before],
            )
            cards_ms = (time.perf_counter() - t0) * 1000
            # every chart is replaced in its output area, drawn anew; the breakdown is no longer by region (filtered)
            for name in FIGURES:
                page.wait_for_selector(f"{_chart(name, fresh=True)} svg.main-svg", state="visible")
            figures_ms = (time.perf_counter() - t0) * 1000
            for name in FIGURES:  # one chart per output area: the old one is gone, not stacked below the new
                assert page.locator(f".kpinb-dashboard .kpinb-fig-{name} .js-plotly-plot").count() == 1
            breakdown_title = page.locator(".kpinb-dashboard .kpinb-fig-breakdown .gtitle").first.text_content()
            assert "by region" not in breakdown_title and "by " in breakdown_title, breakdown_title
            after = _card_values(page, cards)
            changed = {m: (before[m], after[m]) for m in before if before[m] != after[m]}
            assert changed, (before, after)
            _shot(page, "dashboard-filtered", ".kpinb-dashboard")
            _shot(page, "dashboard-filtered-charts", ".kpinb-dashboard .kpinb-focus")

            # --- the static export, opened with every request but the file itself refused --------
            _run_cell(page, 2)
            page.wait_for_selector(".jp-Notebook .jp-Cell:nth-child(3) .jp-OutputArea-output :text('web.html')")
            offline = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests: list[str] = []
            offline.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith("file:")
                    else (requests.append(route.request.url), route.abort())
                ),
            )
            offline.goto(export.as_uri())
            for name in ("trend", "breakdown", "benchmark", "drivers", "tree"):  # the charts and the metric tree
                offline.wait_for_selector(f".kpinb-fig-{name} .main-svg", state="attached")
            assert _card_values(offline, "body") == after  # the export shows the filtered state
            assert not requests, requests
            _shot(offline, "dashboard-export")
            offline.close()
            phase("export checked")
        except Exception:
            with contextlib.suppress(Exception):
                with contextlib.suppress(Exception):
                    page.locator(".kpinb-dashboard .kpinb-fig-trend").scroll_into_view_if_needed(timeout=2000)
                _shot(page, "failure")
                print(f"JupyterLab log: {lab['log']}")
                print("browser console errors:", *console[-20:], sep="\n  ")
            raise
        finally:
            browser.close()
    build_s, refreshes = json.loads(timings.read_text())
    python_ms = refreshes[-1] * 1000
    print(
        f"Dashboard built in the kernel in {build_s:.1f} s; its widgets and charts reached the page as "
        f"{dashboard_bytes / 1000:.0f} kB over the kernel websocket; "
        f"filter change region=Europe: kernel refresh {python_ms:.0f} ms; in the browser, cards updated after "
        f"{cards_ms:.0f} ms and all four charts redrawn after {figures_ms:.0f} ms; cards changed: {changed}; "
        f"whole test {time.monotonic() - started:.0f} s ({', '.join(phases)})"
    )
