"""Alerts: threshold semantics by direction, change limits, missing values, JSON, and webhook delivery."""

import contextlib
import datetime as dt
import json
import logging
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from kpinb.definitions.plan import parse_plan
from kpinb.errors import KpinbError, PlanError
from kpinb.outputs.alerts import ALERT_COLUMNS, Alert, DeliveryError, evaluate, send, summary, to_frame, to_json

PLAN = """\
name: Shop 2025
department: sales
sources:
  orders: {path: orders.parquet}
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(revenue), unit: currency}
  - {id: refund_rate, name: Refund rate, source: orders, expr: avg(refund), direction: lower_is_better}
  - {id: visits, name: Visits, source: orders, expr: count(*)}
  - {id: signups, name: Sign-ups, source: orders, expr: count_distinct(customer_id)}
kpis:
  - metric: revenue
    thresholds: {warning: 120, critical: 100, change_pct: 20}
  - metric: refund_rate
    thresholds: {warning: 0.06, critical: 0.08}
  - metric: visits
    thresholds: {change_pct: 50}
  - metric: signups
    name: New sign-ups
    thresholds: {warning: 10}
"""


def frame(**series) -> pd.DataFrame:
    """Tidy monthly frame from metric -> values for Jan..Jun 2025 (or fewer)."""
    parts = [
        pd.DataFrame({"metric": m, "period_start": pd.date_range("2025-01-01", periods=len(v), freq="MS"),
                      "value": np.asarray(v, dtype=float)})
        for m, v in series.items()
    ]  # fmt: skip
    df = pd.concat(parts, ignore_index=True).assign(numerator=np.nan, denominator=np.nan)
    df.attrs.update(grain="month", by=())
    return df


DATA = {
    "revenue": [150, 150, 150, 150, 150, 110],  # below warning 120, and -26.7% in a month
    "refund_rate": [0.05] * 5 + [0.09],  # lower is better: above critical 0.08
    "visits": [400, 400, 400, 400, 0, 500],  # from 0: no percentage, no change alert
    "signups": [12, 12, 12, 12, 12, math.nan],  # missing
}


def test_alerts_follow_direction_change_limit_and_missing_values():
    alerts = evaluate(parse_plan(PLAN), frame(**DATA))
    june = dt.date(2025, 6, 1)
    assert alerts == [
        Alert("revenue", "Revenue", june, 110.0, 120.0, "below", "warning",
              "Revenue is 110.00 for 2025-06, at or below the warning level 120.00 (higher is better)."),
        Alert("revenue", "Revenue", june, 110.0, 20.0, "change", "warning",
              "Revenue changed -26.7% for 2025-06 (from 150.00 to 110.00), more than the 20% limit."),
        Alert("refund_rate", "Refund rate", june, 0.09, 0.08, "above", "critical",
              "Refund rate is 0.09 for 2025-06, at or above the critical level 0.08 (lower is better)."),
        Alert("signups", "New sign-ups", june, None, None, "missing", "warning",
              "New sign-ups has no value for 2025-06. Check that its data source is up to date."),
    ]  # fmt: skip


def test_no_alert_when_values_are_fine_and_as_of_picks_the_period():
    fine = {**DATA, "revenue": [150, 150, 150, 150, 150, 121], "refund_rate": [0.05] * 6,
            "signups": [12] * 6, "visits": [400] * 5 + [599]}  # fmt: skip
    assert evaluate(parse_plan(PLAN), frame(**fine)) == []
    # the same frame judged at the end of May: visits dropped to 0 (-100%), sign-ups fine
    may = evaluate(parse_plan(PLAN), frame(**DATA), as_of="2025-05-31")
    assert [(a.kpi, a.kind, a.value) for a in may] == [("visits", "change", 0.0)]
    assert may[0].message == "Visits changed -100.0% for 2025-05 (from 400 to 0), more than the 50% limit."
    # lower is better: a rise is bad, a value at the warning level counts
    at_warning = evaluate(parse_plan(PLAN), frame(refund_rate=[0.05, 0.06]), kpis=["refund_rate"])
    assert [(a.kind, a.severity, a.threshold) for a in at_warning] == [("above", "warning", 0.06)]
    assert evaluate(parse_plan(PLAN), frame(refund_rate=[0.05, 0.059]), kpis=["refund_rate"]) == []


def test_json_frame_and_summary_are_stable():
    alerts = evaluate(parse_plan(PLAN), frame(**DATA))
    text = to_json(alerts[2:])
    assert text == (
        '[{"kpi": "refund_rate", "name": "Refund rate", "period_start": "2025-06-01", "value": 0.09, '
        '"threshold": 0.08, "kind": "above", "severity": "critical", "message": "Refund rate is 0.09 for '
        '2025-06, at or above the critical level 0.08 (lower is better)."}, {"kpi": "signups", "name": '
        '"New sign-ups", "period_start": "2025-06-01", "value": null, "threshold": null, "kind": "missing", '
        '"severity": "warning", "message": "New sign-ups has no value for 2025-06. Check that its data '
        'source is up to date."}]'
    )
    assert json.loads(to_json(alerts)) == [a.to_dict() for a in alerts]
    assert to_json([]) == "[]"

    df = to_frame(alerts)
    assert tuple(df.columns) == ALERT_COLUMNS
    assert df["period_start"].tolist() == [pd.Timestamp("2025-06-01")] * 4
    assert df["value"].dtype == "float64" and math.isnan(df["value"].iloc[3])
    assert tuple(to_frame([]).columns) == ALERT_COLUMNS

    lines = summary(alerts, title="Shop 2025").splitlines()
    assert lines[0] == "Shop 2025: 4 KPI alerts (1 critical, 3 warnings)"
    critical_first = (alerts[2], alerts[0], alerts[1], alerts[3])
    assert lines[1:] == [f"- [{a.severity}] {a.message}" for a in critical_first]
    assert summary(alerts[:1]) == f"kpinb: 1 KPI alert (1 warning)\n- [warning] {alerts[0].message}"


# --- webhook delivery against a real local HTTP server ---------------------------------------------

SECRET_PATH = "/hooks/T000/SECRET123?token=s3cr3t"


@contextlib.contextmanager
def webhook(*script):
    """A local server answering POSTs with the given statuses in turn ("hang": never answer)."""
    received: list[dict] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": body})
            action = script[min(len(received), len(script)) - 1]
            if action == "hang":
                release.wait(10)
                return
            self.send_response(action)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}", received
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def alerts():
    return evaluate(parse_plan(PLAN), frame(**DATA))


def test_send_retries_a_server_error_then_delivers(alerts, caplog):
    caplog.set_level(logging.DEBUG, logger="kpinb")
    with webhook(500, 200) as (url, received):
        assert send(alerts, url, timeout=2, retries=3, backoff=0.01, title="Shop 2025") == 200
    assert len(received) == 2
    assert received[0]["body"] == received[1]["body"]
    assert received[1]["path"] == SECRET_PATH and received[1]["type"].startswith("application/json")
    body = json.loads(received[1]["body"])
    assert body["text"] == summary(alerts, title="Shop 2025")
    assert body["alerts"] == json.loads(to_json(alerts))
    assert "attempt 1 failed (HTTP 500)" in caplog.text
    assert "SECRET123" not in caplog.text and "s3cr3t" not in caplog.text


def test_send_gives_up_on_a_server_that_never_answers(alerts, caplog):
    caplog.set_level(logging.DEBUG, logger="kpinb")
    with webhook("hang") as (url, received):
        started = time.monotonic()
        with pytest.raises(DeliveryError) as err:
            send(alerts, url, timeout=0.3, retries=2, backoff=0.05)
        elapsed = time.monotonic() - started
    assert len(received) == 3  # the first attempt and two retries, no more
    assert elapsed < 3
    e = err.value
    assert isinstance(e, KpinbError) and isinstance(e, OSError)
    assert (e.attempts, e.status) == (3, None)
    assert str(e).startswith("could not deliver 4 alert(s) to webhook http://127.0.0.1:")
    assert "after 3 attempt(s) (last: timed out)" in str(e)
    for text in (str(e), caplog.text):
        assert "SECRET123" not in text and "s3cr3t" not in text and "hooks" not in text


def test_send_does_not_retry_a_client_error(alerts):
    with webhook(404, 200) as (url, received), pytest.raises(DeliveryError, match=r"refused .* 404") as err:
        send(alerts, url, timeout=2, retries=3, backoff=0.01)
    assert len(received) == 1
    assert (err.value.attempts, err.value.status) == (1, 404)


def test_send_connection_refused_nothing_to_send_and_bad_url(alerts):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(DeliveryError) as err:
        send(alerts, f"http://127.0.0.1:{port}/x?key=k", timeout=1, retries=1, backoff=0)
    assert err.value.attempts == 2 and "key=k" not in str(err.value)
    with webhook(200) as (url, received):
        assert send([], url) is None
    assert received == []
    with pytest.raises(PlanError, match="http:// or https://"):
        send(alerts, "file:///etc/passwd")
