"""``kpinb serve``: the live dashboard as a web page through Voilà, one page per department.

Each plan becomes a one-cell notebook that shows :class:`kpinb.widgets.Dashboard`; Voilà runs it
in a kernel of its own per visitor and sends only the widgets, never the code. The server binds
127.0.0.1 unless told otherwise, and its kernel websocket passes only what widgets need (comm
and kernel-info messages): a visitor cannot execute code in the kernel.

>>> serve("plans/sales.yml")             # http://127.0.0.1:8866/voila/render/sales.ipynb  # doctest: +SKIP
>>> serve("plans", port=9000, host="0.0.0.0")   # a page per department, open to the network  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import json
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kpinb._io import write_atomic
from kpinb.errors import PlanError, RunError

__all__ = ["ALLOWED_MESSAGES", "allowed_message", "check_port", "dashboard_pages", "serve", "write_pages"]

DEFAULT_PORT = 8866
LOCAL = "127.0.0.1"

ALLOWED_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close", "comm_info_request", "kernel_info_request"})
"""Kernel messages a dashboard page may send: what ipywidgets needs, nothing that runs code."""


def dashboard_pages(target: str | Path) -> dict[str, Path]:
    """Department (page name) -> plan file, for one plan file or a folder of them.

    Every plan is loaded (and so checked) here, before a server starts.
    """
    from kpinb.definitions.plan import load_plan

    path = Path(target).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.yml")) + sorted(path.glob("*.yaml"))
        if not files:
            raise PlanError(f"{path}: no plan files (*.yml). Give a plan file or a folder of plans.")
    elif path.is_file():
        files = [path]
    else:
        raise PlanError(f"{path}: no such plan file or folder. Give a plan (.yml) or a folder of plans.")
    pages: dict[str, Path] = {}
    for f in files:
        plan = load_plan(f)
        if not plan.kpis:
            raise PlanError(f"{f}: kpis: the plan has no KPIs to show. Add some under `kpis:`.")
        name = plan.department
        if name in pages:
            raise PlanError(
                f"{f}: department {name!r} also comes from {pages[name]}; one page per department. "
                "Give each plan its own department, or serve the plans one at a time."
            )
        pages[name] = f.resolve()
    return pages


def write_pages(pages: Mapping[str, Path], folder: Path, grain: str = "month") -> dict[str, Path]:
    """Write one notebook per department into ``folder``: a single cell showing the Dashboard."""
    written = {}
    for department, plan in pages.items():
        cell = f"from kpinb.widgets import Dashboard\n\nDashboard({str(plan)!r}, grain={grain!r})"
        nb = {
            "cells": [{"cell_type": "code", "execution_count": None, "id": "dashboard", "metadata": {},
                       "outputs": [], "source": cell}],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
                "title": f"{department} KPIs",
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }  # fmt: skip
        written[department] = write_atomic(folder / f"{department}.ipynb", json.dumps(nb, indent=1))
    return written


def check_port(host: str, port: int) -> None:
    """Raise a :class:`RunError` naming the fix when ``host:port`` cannot be listened on."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise RunError(
                f"--port {port}: the port is taken on {host} (another kpinb serve, Jupyter or web server?). "
                f"Stop that program or choose another port, e.g. --port {port + 1}."
            ) from None
        raise RunError(f"--host {host} --port {port}: cannot listen there ({e.strerror}). Choose another.") from None


def _header(ws_msg: str | bytes) -> tuple[str | None, str | None]:
    """(channel, msg_type) of a message a browser sends on the kernel websocket (JSON or v1 binary)."""
    try:
        if isinstance(ws_msg, str):
            msg = json.loads(ws_msg)
            return msg.get("channel"), (msg.get("header") or {}).get("msg_type")
        # v1.kernel.websocket.jupyter.org: n, n offsets, then channel, header, parent header, ...
        n = int.from_bytes(ws_msg[:8], "little")
        if not 3 <= n <= 64 or len(ws_msg) < 8 * (n + 1):  # a garbled count must not make a huge list
            return None, None
        offsets = [int.from_bytes(ws_msg[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
        channel = ws_msg[offsets[0] : offsets[1]].decode("utf-8")
        return channel, json.loads(ws_msg[offsets[1] : offsets[2]]).get("msg_type")
    except (ValueError, IndexError, AttributeError, TypeError):
        return None, None


def allowed_message(ws_msg: str | bytes) -> bool:
    """True for a widget message on the shell channel; False for ``execute_request`` and the rest."""
    channel, msg_type = _header(ws_msg)
    return channel == "shell" and msg_type in ALLOWED_MESSAGES


def _app_class() -> type:
    try:
        from voila.app import Voila
        from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler
    except ImportError:
        raise RunError("kpinb serve needs Voilà: pip install 'kpinb[serve]' (or pip install voila).") from None

    class DashboardOnlyWebsocket(VoilaKernelWebsocketHandler):
        """Voilà's kernel websocket, passing on only widget messages from the page."""

        def on_message(self, ws_msg: Any) -> Any:
            if not allowed_message(ws_msg):
                self.log.warning("kpinb serve: refused a %s message from the page", _header(ws_msg)[1] or "malformed")
                return None
            return super().on_message(ws_msg)

    class DashboardServer(Voila):
        name = "kpinb-serve"

        def init_handlers(self) -> list:
            return [
                (h[0], DashboardOnlyWebsocket, *h[2:]) if h[1] is VoilaKernelWebsocketHandler else h
                for h in super().init_handlers()
            ]

    return DashboardServer


def serve(
    target: str | Path, *, host: str = LOCAL, port: int = DEFAULT_PORT, grain: str = "month", open_browser: bool = False
) -> None:
    """Serve the dashboard of a plan, or of every plan in a folder (one page each), until interrupted.

    Pages: ``http://<host>:<port>/voila/render/<department>.ipynb``; the root lists them.
    """
    pages = dashboard_pages(target)
    check_port(host, port)
    app_class = _app_class()
    with tempfile.TemporaryDirectory(prefix="kpinb-serve-") as tmp:
        folder = Path(tmp)
        write_pages(pages, folder, grain)
        shown = "localhost" if host == LOCAL else host
        for department in pages:
            print(f"{department}: http://{shown}:{port}/voila/render/{department}.ipynb", flush=True)
        if host != LOCAL:
            print(f"listening on {host}: anyone who can reach this machine can open the dashboards", flush=True)
        argv = [
            str(folder), f"--port={port}", f"--Voila.ip={host}", "--Voila.port_retries=0",
            "--no-browser" if not open_browser else "--Voila.open_browser=True",
            "--VoilaConfiguration.strip_sources=True", "--VoilaConfiguration.show_tracebacks=False",
        ]  # fmt: skip
        try:
            app_class.launch_instance(argv=argv)
        finally:
            app_class.clear_instance()
