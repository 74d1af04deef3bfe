"""`kpinb serve`: the dashboard through Voilà, one page per department, only widget messages pass.

The browser test starts `kpinb serve` on a folder of two plans (127.0.0.1, a free port), opens the
sales page in Debian's /usr/bin/chromium with Playwright, changes the region filter and waits for
the cards' numbers to change. Its full-page screenshots go to ``reports/screenshots/serve-*.png``
(the folder tests/test_browser.py uses; paths are printed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    FIGURES,
    TIMEOUT_MS,
    _card_values,
    _chart,
    _free_port,
    _get,
    _require_browser,
)

from kpinb.cli import main
from kpinb.errors import PlanError, RunError
from kpinb.runs.serve import allowed_message, check_port, dashboard_pages, write_pages

ROOT = Path(__file__).resolve().parents[1]


def _plans(folder: Path, sample: Path, *departments: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for d in departments:
        text = (ROOT / "templates" / "plans" / f"{d}.yml").read_text()
        text = text.replace("../../data/sample/", f"{sample}/").replace(
            "../../data/benchmarks.csv", str(ROOT / "data" / "benchmarks.csv")
        )
        (folder / f"{d}.yml").write_text(text)
    return folder


def _v1(channel: str, msg_type: str) -> bytes:
    """A message in the v1 kernel websocket protocol, as JupyterLab's and Voilà's pages send it."""
    parts = [channel.encode(), json.dumps({"msg_type": msg_type}).encode(), b"{}", b"{}", b"{}"]
    offsets, at = [], 8 * (len(parts) + 1)
    for p in parts:
        offsets.append(at)
        at += len(p)
    head = len(parts).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + b"".join(parts)


@pytest.mark.parametrize("encode", [lambda c, t: json.dumps({"channel": c, "header": {"msg_type": t}}), _v1])
def test_the_page_may_talk_to_its_widgets_and_nothing_else(encode):
    for msg_type in ("comm_msg", "comm_open", "comm_close", "comm_info_request", "kernel_info_request"):
        assert allowed_message(encode("shell", msg_type)), msg_type
    for msg_type in ("execute_request", "inspect_request", "complete_request", "history_request"):
        assert not allowed_message(encode("shell", msg_type)), msg_type
    assert not allowed_message(encode("control", "shutdown_request"))
    assert not allowed_message(encode("stdin", "input_reply"))
    assert not allowed_message(b"\x05garbage") and not allowed_message("{not json")


def test_a_plans_folder_gives_one_page_per_department(tmp_path, sample_data):
    pages = dashboard_pages(_plans(tmp_path / "plans", sample_data, "sales", "web"))
    assert list(pages) == ["sales", "web"]
    written = write_pages(pages, tmp_path / "site")
    nb = json.loads(written["sales"].read_text())
    assert [c["cell_type"] for c in nb["cells"]] == ["code"] and "Dashboard(" in nb["cells"][0]["source"]
    with pytest.raises(PlanError, match="no plan files"):
        dashboard_pages(tmp_path / "site")
    with pytest.raises(PlanError, match="no such plan file or folder"):
        dashboard_pages(tmp_path / "missing.yml")


def test_a_taken_port_is_one_clear_line_and_exit_2(tmp_path, sample_data, capsys):
    plans = _plans(tmp_path / "plans", sample_data, "sales")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RunError, match=f"--port {port}: the port is taken on 127.0.0.1"):
            check_port("127.0.0.1", port)
        assert main(["serve", str(plans), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"choose another port, e.g. --port {port + 1}" in err


def test_serve_binds_this_machine_only_unless_asked():
    from kpinb.cli import parser

    assert parser().parse_args(["serve", "plans"]).host == "127.0.0.1"
    assert parser().parse_args(["serve", "plans", "--public"]).public


def _full_page_shot(page, name: str) -> Path:
    """The whole dashboard: Voilà scrolls an inner panel, so grow the viewport to its content first."""
    height = page.eval_on_selector(".kpinb-dashboard", "e => e.getBoundingClientRect().height + e.offsetTop")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 60, 6000)})
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


@pytest.mark.browser
def test_served_dashboard_filters_in_a_real_browser(tmp_path, sample_data):
    _require_browser()
    from playwright.sync_api import sync_playwright

    plans = _plans(tmp_path / "plans", sample_data, "sales", "web")
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "IPYTHONDIR": str(tmp_path / "ipython"), "JUPYTER_PLATFORM_DIRS": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "kpinb.cli", "serve", str(plans), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kpinb serve exited with {proc.returncode}: {(tmp_path / 'serve.log').read_text()}")
            with contextlib.suppress(OSError):
                _get(f"{url}/")
                break
            assert time.monotonic() - started < 60, "kpinb serve did not answer in 60 s"
            time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)  # the root lists one page per department
            for department in ("sales", "web"):
                page.wait_for_selector(f".jp-DirListing-item[title^='Name: {department}.ipynb']")
            page.goto(f"{url}/voila/render/sales.ipynb")
            cards = ".kpinb-dashboard .kpinb-cards-widget"
            page.wait_for_selector(f"{cards} .kpinb-card")
            assert page.locator(".jp-InputArea, .jp-CodeMirrorEditor, .cm-editor").count() == 0  # no code shown
            for name in FIGURES:  # plotly's mimetype renderer works in Voilà's page too
                page.wait_for_selector(f"{_chart(name)} svg.main-svg", state="visible")
            before = _card_values(page, cards)
            _full_page_shot(page, "serve-before")
            page.eval_on_selector_all(
                ".kpinb-dashboard .js-plotly-plot", "els => els.forEach(e => e.dataset.stale = '1')"
            )
            page.locator(".kpinb-dashboard .kpinb-filter-region select").select_option("Europe")
            page.wait_for_function(
                "([sel, before]) => [...document.querySelectorAll(sel + ' .kpinb-card')].some("
                "e => e.querySelector('.kpinb-card-value').textContent !== before[e.dataset.metric])",
                arg=[cards, before],
            )
            for name in FIGURES:  # every chart redrawn for the filter
                page.wait_for_selector(f"{_chart(name, fresh=True)} svg.main-svg", state="visible")
            after = _card_values(page, cards)
            _full_page_shot(page, "serve-filtered")
            browser.close()
        assert set(after) == set(before) and any(after[m] != before[m] for m in before), (before, after)
        assert not errors, errors
        print(f"served, filtered and checked in {time.monotonic() - started:.0f} s; cards {before} -> {after}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server we started and its kernels, nothing else
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
