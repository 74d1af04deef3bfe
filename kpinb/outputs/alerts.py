"""Threshold alerts for a plan's KPIs, as data, JSON, a frame, or a chat webhook message.

An alert is raised on the latest complete period (as :func:`kpinb.status.evaluate` judges it):

- ``below`` / ``above`` — the value reached a threshold, read with the KPI's direction: for
  higher-is-better a value at or below ``thresholds.warning`` is a warning, at or below
  ``thresholds.critical`` critical (kind ``below``); for lower-is-better at or above (kind
  ``above``). The threshold is the level reached.
- ``change`` (warning) — ``thresholds.change_pct`` is a **percentage number** (``20`` means
  20 %): the absolute period-over-period change, in percent of the previous value, is above it.
- ``missing`` (warning) — the KPI has no value for the period.
- ``anomaly`` (warning, :func:`anomalies`) — the KPI or a metric supporting it has an unusual
  value (:meth:`kpinb.scorecard.Scorecard.anomalies`): an early warning before a threshold trips.

>>> alerts = evaluate(plan, compute(plan, grain="month"))  # doctest: +SKIP
>>> send(alerts, os.environ["KPI_WEBHOOK_URL"])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from kpinb._numbers import display_unit, format_value
from kpinb.analytics.kpis import direction_of
from kpinb.analytics.status import checked_thresholds, threshold_level
from kpinb.definitions.model import Direction, Plan
from kpinb.errors import KpinbError, PlanError

if TYPE_CHECKING:
    from kpinb.scorecard import Scorecard

__all__ = [
    "ALERT_COLUMNS", "Alert", "DeliveryError", "anomalies", "evaluate", "from_scorecard", "post", "send", "summary",
    "to_frame", "to_json",
]  # fmt: skip

log = logging.getLogger(__name__)

Kind = Literal["below", "above", "change", "missing", "anomaly"]
Severity = Literal["warning", "critical"]


class DeliveryError(KpinbError, OSError):
    """Alerts could not be delivered to a webhook (after the retries).

    Attributes: ``attempts`` made and the last HTTP ``status`` (None when no response came).
    """

    def __init__(self, message: str, *, attempts: int, status: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Alert:
    """One alert on one KPI and period.

    ``value`` is None for a ``missing`` alert; ``threshold`` is the level reached (``below`` /
    ``above``), the change limit in percent (``change``), or None (``missing``).
    """

    kpi: str
    name: str
    period_start: dt.date | None
    value: float | None
    threshold: float | None
    kind: Kind
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO date, no NaN."""
        out = dict(zip([f.name for f in fields(self)], astuple(self), strict=True))
        out["period_start"] = self.period_start.isoformat() if self.period_start else None
        for k in ("value", "threshold"):
            out[k] = None if out[k] is None or math.isnan(out[k]) else float(out[k])
        return out


ALERT_COLUMNS = tuple(f.name for f in fields(Alert))
"""Columns of :func:`to_frame`: ``kpi, name, period_start, value, threshold, kind, severity, message``."""


def evaluate(
    plan: Plan,
    df: pd.DataFrame,
    as_of: Any = None,
    *,
    include_partial: bool = False,
    kpis: Sequence[str] | None = None,
) -> list[Alert]:
    """The alerts of the plan's KPIs on the latest complete period.

    Parameters
    ----------
    plan : the plan (each KPI's ``thresholds`` and direction).
    df : the engine's frame for the plan at the KPIs' grain, without ``by`` dimensions.
    as_of, include_partial, kpis : which period and KPIs, as in :func:`kpinb.status.evaluate`.

    Returns
    -------
    Alerts in the plan's KPI order; per KPI the threshold alert (the most severe level
    reached) before the change alert. A KPI with no value gets one ``missing`` warning.

    Examples
    --------
    >>> [a.message for a in evaluate(plan, compute(plan), as_of="2025-06-30")]  # doctest: +SKIP
    """
    from kpinb import scorecard

    card = scorecard.evaluate(plan, df, as_of, kpis=kpis, include_partial=include_partial, pace=False)
    return from_scorecard(card)


def from_scorecard(card: Scorecard) -> list[Alert]:
    """The alerts of a scorecard's KPIs (see :func:`evaluate`); slices, which have no thresholds
    of their own, raise none."""
    out: list[Alert] = []
    for e in card.evaluations:
        if e.filters:
            continue
        kpi = card.plan.kpi(e.metric)
        direction = direction_of(kpi, card.plan)
        th = checked_thresholds(kpi, direction)
        day = e.period_start.date() if e.period_start is not None else None
        label = e.period_label if e.period_start is not None else "any period"
        value, name = e.value, e.name
        unit = display_unit(None, e.unit, card.plan.currency)  # amounts in the plan's currency
        if math.isnan(value):
            out.append(Alert(
                kpi.metric, name, day, None, None, "missing", "warning",
                f"{name} has no value for {label}. Check that its data source is up to date.",
            ))  # fmt: skip
            continue
        level = threshold_level(value, th, direction)
        if level is not None and th is not None:
            limit = th.critical if level == "critical" else th.warning
            higher = direction is Direction.higher_is_better
            kind: Kind = "below" if higher else "above"
            side = "at or below" if higher else "at or above"
            better = "higher is better" if higher else "lower is better"
            out.append(Alert(
                kpi.metric, name, day, value, limit, kind, level,
                f"{name} is {format_value(value, unit)} for {label}, {side} the {level} level "
                f"{format_value(limit, unit)} ({better}).",
            ))  # fmt: skip
        limit_pct = kpi.thresholds.change_pct if kpi.thresholds is not None else None
        change = e.change_pct
        if limit_pct is not None and not math.isnan(change) and abs(change) > limit_pct:
            out.append(Alert(
                kpi.metric, name, day, value, float(limit_pct), "change", "warning",
                f"{name} changed {change:+.1f}% for {label} (from {format_value(e.previous, unit)} to "
                f"{format_value(value, unit)}), more than the {limit_pct:g}% limit.",
            ))  # fmt: skip
    return out


def anomalies(card: Scorecard) -> list[Alert]:
    """Early warnings: one ``anomaly`` alert (severity warning) per unusual value of a KPI or of a
    metric supporting it in the KPI's judged period (:meth:`kpinb.scorecard.Scorecard.anomalies`);
    ``threshold`` is the value that was expected. Kept apart from :func:`from_scorecard` so the
    threshold alerts stay as they were; the digest adds them."""
    out = []
    for a in card.anomalies():
        about = a.name if a.metric == a.kpi else f"{a.name} (supports {a.kpi_name})"
        out.append(Alert(
            a.kpi, a.kpi_name, a.period_start.date(), a.value, a.expected, "anomaly", "warning",
            f"{about} is unusual for {a.period_label}: {format_value(a.value, a.unit)} where about "
            f"{format_value(a.expected, a.unit)} was expected.",
        ))  # fmt: skip
    return out


def to_json(alerts: Sequence[Alert]) -> str:
    """The alerts as a JSON array (fields in :data:`ALERT_COLUMNS` order, ISO dates, null for none).

    >>> to_json([Alert("nps", "NPS", dt.date(2025, 6, 1), None, None, "missing", "warning", "No value.")])
    '[{"kpi": "nps", "name": "NPS", "period_start": "2025-06-01", "value": null, "threshold": null, \
"kind": "missing", "severity": "warning", "message": "No value."}]'
    """
    return json.dumps([a.to_dict() for a in alerts], ensure_ascii=False, allow_nan=False)


def to_frame(alerts: Sequence[Alert]) -> pd.DataFrame:
    """The alerts as a DataFrame with columns :data:`ALERT_COLUMNS` (``period_start`` as datetime)."""
    out = pd.DataFrame([astuple(a) for a in alerts], columns=list(ALERT_COLUMNS))
    out["period_start"] = pd.to_datetime(out["period_start"])
    for c in ("value", "threshold"):
        out[c] = pd.to_numeric(out[c]).astype("float64")
    return out


def summary(alerts: Sequence[Alert], title: str | None = None) -> str:
    """A short text for a chat message: a count line, then one line per alert, critical first.

    >>> print(summary([Alert("nps", "NPS", None, None, None, "missing", "warning", "No value.")]))
    kpinb: 1 KPI alert (1 warning)
    - [warning] No value.
    """
    n_crit = sum(a.severity == "critical" for a in alerts)
    n_warn = len(alerts) - n_crit
    counts = []
    if n_crit:
        counts.append(f"{n_crit} critical")
    if n_warn:
        counts.append(f"{n_warn} warning{'s' * (n_warn != 1)}")
    head = f"{title or 'kpinb'}: {len(alerts)} KPI alert{'s' if len(alerts) != 1 else ''}"
    head += f" ({', '.join(counts)})" if counts else ""
    ordered = sorted(alerts, key=lambda a: a.severity != "critical")
    return "\n".join([head, *(f"- [{a.severity}] {a.message}" for a in ordered)])


def _safe_url(url: str) -> str:
    """Scheme, host and port only: webhook paths, queries and user info carry secrets."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


WEBHOOK_DEADLINE_S = 30.0
"""Seconds :func:`send` may take in all, attempts and waits included (DESIGN.md: 30 s)."""

MAX_RESPONSE_BYTES = 64 * 1024  # a webhook answers "ok"; never read an endless body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib turns a redirected POST into a GET (the alerts are
    lost while the GET succeeds) and would follow to any host or scheme."""

    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


def _opener(sockets: list[Any]) -> urllib.request.OpenerDirector:
    """An opener that follows no redirect and records the sockets it opens (so a watchdog can
    close them at the deadline: a server that sends a byte every second never trips a socket timeout)."""

    def recording(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Recording(base):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                super().connect()
                sockets.append(self.sock)

        return Recording

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(recording(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(recording(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(_NoRedirect, Http, Https)


def _post_once(request: urllib.request.Request, timeout: float, stop_at: float) -> int:
    """One POST; returns the HTTP status or raises (HTTPError, OSError, HTTPException).

    A timer shuts the connection down at ``stop_at`` (time.monotonic()), so the whole attempt,
    not only each socket read, ends by then.
    """
    import socket
    import threading

    sockets: list[Any] = []

    def cut() -> None:
        for s in list(sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    left = stop_at - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline")
    watchdog = threading.Timer(left, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        with _opener(sockets).open(request, timeout=min(timeout, left)) as response:
            response.read(MAX_RESPONSE_BYTES)
            return int(response.status)
    except (OSError, http.client.HTTPException):
        if time.monotonic() >= stop_at - 0.01:
            raise TimeoutError("deadline") from None
        raise
    finally:
        watchdog.cancel()
        cut()


def send(
    alerts: Sequence[Alert],
    url: str,
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
    *,
    title: str | None = None,
    deadline: float = WEBHOOK_DEADLINE_S,
) -> int | None:
    """POST the alerts to a chat incoming webhook as ``{"text": summary, "alerts": [...]}``.

    Parameters
    ----------
    alerts : the alerts; with none, nothing is sent and None is returned.
    url : the webhook URL (http or https). Only its scheme and host ever appear in messages
        and logs: the path, query and user info of webhook URLs are secrets.
    timeout : seconds to wait for each network operation of an attempt.
    retries : how many times to retry after the first attempt (so at most ``retries + 1``
        requests), on connection errors, timeouts, HTTP 429 and 5xx; other HTTP errors fail at once.
    backoff : seconds before the first retry, doubled before each next one.
    title : the summary's first words (default ``kpinb``).
    deadline : seconds the whole delivery may take, every attempt and wait included
        (:data:`WEBHOOK_DEADLINE_S`, 30); a server that answers slowly is cut off then.

    Redirects are not followed (a redirected POST would arrive as a GET, or at another host):
    an HTTP 3xx answer is a :class:`DeliveryError` naming the status; put the final URL in.

    Returns
    -------
    The HTTP status of the accepted request, or None when there was nothing to send.

    Raises DeliveryError (a KpinbError and OSError) when the alerts could not be delivered.

    Examples
    --------
    >>> send(evaluate(plan, df), os.environ["KPI_WEBHOOK_URL"], title="Sales")  # doctest: +SKIP
    200
    """
    _check_delivery(url, timeout, retries, backoff, deadline)
    if not alerts:
        return None
    payload = {"text": summary(alerts, title), "alerts": [a.to_dict() for a in alerts]}
    return post(
        payload, url, timeout, retries, backoff, deadline=deadline, what="alerts", count=f"{len(alerts)} alert(s)"
    )


def _check_delivery(url: str, timeout: float, retries: int, backoff: float, deadline: float) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError("the webhook URL must start with http:// or https:// and name a host. Check the URL.")
    if not (retries >= 0 and timeout > 0 and backoff >= 0 and deadline > 0) or not all(
        math.isfinite(x) for x in (timeout, backoff, deadline)
    ):
        raise PlanError("send() needs finite timeout > 0, deadline > 0, retries >= 0 and backoff >= 0.")


def post(
    payload: Any,
    url: str,
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
    *,
    deadline: float = WEBHOOK_DEADLINE_S,
    what: str = "message",
    count: str | None = None,
) -> int:
    """POST any JSON ``payload`` (a digest, alerts) to a webhook with :func:`send`'s delivery
    rules: retries with backoff on connection errors, timeouts, 429 and 5xx, no redirects, the
    URL's secrets never in messages, and ``deadline`` seconds in all. ``what`` names the payload
    in errors (``the digest``); ``count`` in the final one. Returns the HTTP status; raises
    :class:`DeliveryError`."""
    _check_delivery(url, timeout, retries, backoff, deadline)
    safe = _safe_url(url)
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "kpinb"}
    status: int | None = None
    problem = ""
    stop_at = time.monotonic() + deadline
    attempts = 0
    for attempt in range(1, retries + 2):
        attempts = attempt
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            return _post_once(request, timeout, stop_at)
        except urllib.error.HTTPError as e:
            status = e.code
            e.close()
            problem = f"HTTP {status}"
            if 300 <= status < 400:
                raise DeliveryError(
                    f"webhook {safe} answered with a redirect (HTTP {status}); kpinb does not follow redirects "
                    f"with {what} (the POST would arrive as a GET, or at another host). Put the final address "
                    "of the webhook in the URL.",
                    attempts=attempt,
                    status=status,
                ) from None
            if status != 429 and status < 500:
                raise DeliveryError(
                    f"webhook {safe} refused the {what} with HTTP {status}. Check the URL and the "
                    "webhook's settings (this is not retried).",
                    attempts=attempt,
                    status=status,
                ) from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as e:
            status = None
            reason = getattr(e, "reason", None) or e
            # a type name, not the text: error texts may quote the URL
            problem = "timed out" if isinstance(reason, TimeoutError) else type(reason).__name__
            problem = "URLError" if isinstance(reason, str) else problem
        left = stop_at - time.monotonic()
        if left <= 0:
            problem = f"{problem}; the {deadline:g} s deadline passed"
            break
        if attempt <= retries:
            delay = min(backoff * 2 ** (attempt - 1), left)
            log.warning("webhook %s attempt %d failed (%s); retrying in %.2fs", safe, attempt, problem, delay)
            time.sleep(delay)
    raise DeliveryError(
        f"could not deliver {count or 'the ' + what} to webhook {safe} after {attempts} attempt(s) "
        f"(last: {problem}). Check that the service is reachable, or retry later.",
        attempts=attempts,
        status=status,
    )
