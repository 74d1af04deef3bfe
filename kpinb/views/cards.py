"""KPI cards and gauges as self-contained HTML: value, changes, progress, status, sparkline.

Everything here is plain HTML with inline styles and inline SVG — no JavaScript — so a card
renders the same in a live notebook, in an ipywidgets ``HTML`` widget and in an exported
HTML report. Every piece of user text (KPI names, owners, reasons, dimension values) goes
through :func:`kpinb.views.kit.esc`.

>>> status = kpinb.status.evaluate(plan, df)  # doctest: +SKIP
>>> KpiCards(status, df, kpinb.plan.registry(plan))  # in a notebook: a grid of cards  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpinb._numbers import as_float
from kpinb.views import kit
from kpinb.views.kit import DASH, STATUS_STYLE, display_unit, esc, format_value, unit_key

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Metric

__all__ = ["KpiCards", "gauge", "grid_style", "kpi_card", "kpi_cards"]

def _finite(x: Any) -> bool:
    return math.isfinite(as_float(x))


def _direction_key(direction: Any) -> str:
    d = str(getattr(direction, "value", direction) or "higher_is_better")
    return "lower_is_better" if d.startswith("lower") else "higher_is_better"


def _sparkline_svg(values: Iterable[Any], color: str = "#1a73e8", width: int = 200, height: int = 36) -> str:
    """A polyline per run of consecutive values (gaps stay gaps) and a dot on the last value."""
    ys = [as_float(v) for v in values]
    good = [y for y in ys if math.isfinite(y)]
    if len(good) < 2:
        return ""
    lo, hi = min(good), max(good)
    span = hi - lo or 1.0
    pad = 3.0
    n = len(ys)

    def xy(i: int, y: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)
        return x, pad + (height - 2 * pad) * (1 - (y - lo) / span)

    runs: list[list[tuple[float, float]]] = [[]]
    for i, y in enumerate(ys):
        if math.isfinite(y):
            runs[-1].append(xy(i, y))
        elif runs[-1]:
            runs.append([])
    lines = "".join(
        f'<polyline fill="none" stroke="{color}" stroke-width="1.6" stroke-linejoin="round" '
        f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}"/>'
        for run in runs
        if len(run) >= 2
    )
    last = next((xy(i, y) for i, y in reversed(list(enumerate(ys))) if math.isfinite(y)), None)
    dot = f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2.6" fill="{color}"/>' if last else ""
    return (
        f'<svg class="kpinb-sparkline" xmlns="http://www.w3.org/2000/svg" width="100%" height="{height}" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" aria-label="trend">'
        f"{lines}{dot}</svg>"
    )


def _change_html(new: float, old: float, pct: float, unit: str, direction: str, label: str) -> str:
    """``▲ 4.2% vs previous``, coloured by whether the move is good for the KPI's direction."""
    if not (math.isfinite(new) and math.isfinite(old)) and not math.isfinite(pct):
        return f'<span style="color:{kit.NEUTRAL}">{DASH} {esc(label)}</span>'
    diff = new - old if math.isfinite(new) and math.isfinite(old) else pct
    if unit == "percent" and math.isfinite(new) and math.isfinite(old):
        text = f"{abs(diff) * 100:.1f} pp"
    elif math.isfinite(pct):
        text = f"{abs(pct):.1f}%"
    else:
        return f'<span style="color:{kit.NEUTRAL}">{DASH} {esc(label)}</span>'
    if diff == 0:
        return f'<span style="color:{kit.NEUTRAL}">= {text} {esc(label)}</span>'
    up = diff > 0
    good = up == (direction == "higher_is_better")
    arrow = "▲" if up else "▼"
    return f'<span style="color:{kit.GOOD if good else kit.BAD}">{arrow} {text} {esc(label)}</span>'


def _year_ago(history: pd.Series, when: Any) -> float:
    """The history's value one year before ``when`` (52 weeks back when the calendar date is absent)."""
    import pandas as pd

    if history is None or when is None or len(history) == 0:
        return math.nan
    try:
        t = pd.Timestamp(when)
    except (TypeError, ValueError):
        return math.nan
    if t is pd.NaT:
        return math.nan
    index = pd.DatetimeIndex(history.index)
    for back in (pd.DateOffset(years=1), pd.DateOffset(weeks=52)):
        hit = history[index == t - back]
        if len(hit):
            return as_float(hit.iloc[0])
    return math.nan


def _period_text(row: Mapping[str, Any]) -> str:
    if row.get("period_label"):
        return str(row["period_label"])
    p = row.get("period_start")
    try:
        import pandas as pd

        t = pd.Timestamp(p)
        return "" if t is pd.NaT else (f"{t:%Y-%m}" if t.day == 1 else f"{t:%Y-%m-%d}")
    except (TypeError, ValueError):
        return ""


def _date_text(x: Any) -> str:
    if x is None:
        return ""
    try:
        import pandas as pd

        t = pd.Timestamp(x)
        return "" if t is pd.NaT else f"{t:%Y-%m-%d}"
    except (TypeError, ValueError):
        return ""


# --- the card -----------------------------------------------------------------------------------


def kpi_card(
    row: Mapping[str, Any],
    history: pd.Series | None = None,
    unit: str | None = None,
    direction: str | None = None,
) -> str:
    """One KPI card as self-contained HTML (inline styles and SVG, no JavaScript).

    Parameters
    ----------
    row : a row of :func:`kpinb.status.evaluate` (``metric, name, owner, period_start, value,
        previous, change_pct, baseline, target, deadline, progress, status, reason``...); optional
        ``last_year``/``yoy_pct`` (else read from ``history``) and ``period_label``.
    history : the KPI's values indexed by ``period_start``, for the sparkline and "vs last year".
    unit : how to format numbers (see :func:`format_value`); default the row's ``unit`` or ``count``.
    direction : ``higher_is_better`` / ``lower_is_better``; default the row's, else higher.

    Returns
    -------
    A ``<div class="kpinb-card" data-metric=...>`` string; every text from the row is escaped.

    Examples
    --------
    >>> html_ = kpi_card({"metric": "nps", "name": "NPS", "value": 41.0, "status": "on_track"}, unit="score")
    >>> 'class="kpinb-card-value"' in html_ and "41.0" in html_
    True
    """
    u = unit_key(unit if unit is not None else row.get("unit"))
    d = _direction_key(direction if direction is not None else row.get("direction"))
    status = str(row.get("status") or "no_data")
    unknown = (status.replace("_", " ").capitalize(), kit.NEUTRAL, "#f1f3f4")
    label, accent, background = STATUS_STYLE.get(status, unknown)
    if row.get("rule") == "needs_setup":  # the scorecard found a mistake in the plan, not missing data
        label, accent, background = "Needs setup", kit.WARN, "#fff3df"
    metric = str(row.get("metric") or "")
    name = row.get("name") or metric
    value, previous = as_float(row.get("value")), as_float(row.get("previous"))
    change_pct = as_float(row.get("change_pct"))
    last_year = as_float(row.get("last_year"))
    if not math.isfinite(last_year) and history is not None:
        last_year = _year_ago(history, row.get("period_start"))
    yoy_pct = as_float(row.get("yoy_pct"))
    if not math.isfinite(yoy_pct) and math.isfinite(last_year) and last_year != 0 and math.isfinite(value):
        yoy_pct = (value - last_year) / abs(last_year) * 100.0
    if not math.isfinite(change_pct) and math.isfinite(previous) and previous != 0 and math.isfinite(value):
        change_pct = (value - previous) / abs(previous) * 100.0

    meta = [p for p in (_period_text(row), f"owner: {row['owner']}" if row.get("owner") else "") if p]
    changes = (
        _change_html(value, previous, change_pct, u, d, "vs previous")
        + f'<span style="margin:0 6px;color:{kit.TEXT_MUTED}">·</span>'
        + _change_html(value, last_year, yoy_pct, u, d, "vs last year")
    )
    spark = ""
    if history is not None and len(history) >= 2:
        spark = f'<div style="margin:6px 0 2px">{_sparkline_svg(history.to_numpy(), accent)}</div>'

    target, baseline, prog = as_float(row.get("target")), as_float(row.get("baseline")), as_float(row.get("progress"))
    deadline = _date_text(row.get("deadline"))
    by = f" by {esc(deadline)}" if deadline else ""
    progress_html = ""
    # a total viewed at a coarser grain (a quarter of a monthly KPI) is not judged: its per-period
    # target beside the quarter's total would read as exceeded three times over; the reason says why
    regrained = status == "not_judged" and str(row.get("rule") or "") == "grain"
    if math.isfinite(target) and not regrained:
        if math.isfinite(prog):
            width = max(0.0, min(1.0, prog)) * 100
            goal = f"{esc(format_value(target, u))}{by}"
            if prog >= 1:
                text = f"Past the target {goal}" if prog > 1 else f"Target {goal} reached"
            elif prog < 0:
                text = f"Behind the baseline {esc(format_value(baseline, u))}; target {goal}"
            else:
                text = f"{prog:.0%} of the way from {esc(format_value(baseline, u))} to {goal}"
            bar = (
                f'<div class="kpinb-card-progress" role="progressbar" aria-valuenow="{width:.0f}" '
                f'aria-valuemin="0" aria-valuemax="100" style="height:6px;background:{kit.MUTED};border-radius:3px;'
                f'overflow:hidden;margin-top:6px"><div style="width:{width:.1f}%;height:100%;background:{accent}">'
                "</div></div>"
            )
        else:
            text, bar = f"Target {esc(format_value(target, u))}{by}", ""
        progress_html = f'{bar}<div style="font-size:12px;color:{kit.TEXT_MUTED};margin-top:3px">{text}</div>'

    reason = row.get("reason")
    reason_html = (
        f'<div class="kpinb-card-reason" style="font-size:12px;color:{kit.TEXT_SOFT};margin-top:6px">'
        f"{esc(reason)}</div>"
        if reason
        else ""
    )
    return (
        f'<div class="kpinb-card kpinb-status-{esc(status)}" data-metric="{esc(metric)}" '
        f'data-status="{esc(status)}" style="{kit.FONT};box-sizing:border-box;background:{kit.SURFACE};'
        f"color:{kit.TEXT};line-height:1.4;border:1px solid {kit.RULE};border-top:4px solid {accent};"
        "border-radius:8px;padding:10px 12px;"
        f'min-width:0">'
        f'<div style="display:flex;justify-content:space-between;align-items:flex-start;gap:8px">'
        f'<div class="kpinb-card-name" style="font-weight:600;font-size:14px;line-height:1.3">{esc(name)}</div>'
        f'<div class="kpinb-card-status" style="white-space:nowrap;font-size:12px;font-weight:600;color:{accent};'
        f'background:{background};border-radius:10px;padding:1px 8px">● {esc(label)}</div></div>'
        f'<div class="kpinb-card-value" style="font-size:28px;font-weight:700;margin-top:4px;'
        f'font-variant-numeric:tabular-nums">{esc(format_value(value, u))}</div>'
        f'<div class="kpinb-card-meta" style="font-size:12px;color:{kit.TEXT_MUTED}">{esc(" · ".join(meta))}</div>'
        f'<div class="kpinb-card-changes" style="font-size:12px;margin-top:4px">{changes}</div>'
        f"{spark}{progress_html}{reason_html}</div>"
    )


def kpi_cards(
    status_df: pd.DataFrame,
    history_df: pd.DataFrame | None = None,
    registry: Mapping[str, Metric] | None = None,
    *,
    periods: int = 24,
    currency: str | None = None,
) -> str:
    """A responsive grid of KPI cards, one per row of ``status_df``.

    Parameters
    ----------
    status_df : the frame of :func:`kpinb.status.evaluate`.
    history_df : the engine's tidy frame (without ``by``) the status was judged on; gives the
        sparklines (the last ``periods`` periods up to the judged one), "vs last year" and the
        period labels at its grain.
    registry : metric id -> :class:`~kpinb.model.Metric` (``kpinb.plan.registry(plan)``), for
        units (durations get their time unit) and directions; default the catalog.
    periods : how many periods the sparkline shows.
    currency : the plan's ``currency:`` code: amounts show its symbol (``€2.22M``).

    Returns
    -------
    ``<div class="kpinb-cards">`` with the cards, or a short note when there is no KPI.
    """
    import pandas as pd

    if registry is None:
        from kpinb.definitions import catalog

        registry = catalog.metrics()
    grain = history_df.attrs.get("grain") if history_df is not None else None
    history: dict[str, pd.Series] = {}
    yoy: dict[tuple[str, pd.Timestamp], tuple[float, float]] = {}
    if history_df is not None and len(history_df):
        dims = [c for c in (history_df.attrs.get("by") or ()) if c in history_df.columns]
        frame = history_df if not dims else history_df.iloc[0:0]
        for mid, rows in frame.groupby("metric", sort=False):
            s = pd.Series(rows["value"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(rows["period_start"]))
            history[str(mid)] = s.sort_index()
        if grain and len(frame):
            from kpinb.analytics.compare import changes

            ch = changes(frame)
            for r in ch.itertuples(index=False):
                yoy[(str(r.metric), pd.Timestamp(r.period_start))] = (as_float(r.last_year), as_float(r.yoy_pct))
    cards = []
    for rec in status_df.to_dict("records"):
        mid = str(rec.get("metric"))
        metric = registry.get(mid)
        unit = display_unit(metric, rec.get("unit"), currency)
        direction = rec.get("direction") or (metric.direction if metric is not None else None)
        when = rec.get("period_start")
        hist = history.get(mid)
        if hist is not None and when is not None and not pd.isna(when):
            hist = hist[hist.index <= pd.Timestamp(when)]
            if grain:
                from kpinb.analytics.compare import period_label

                rec["period_label"] = period_label(when, grain, long=True)
            ly = yoy.get((mid, pd.Timestamp(when)))
            if ly is not None and "last_year" not in rec:
                rec["last_year"], rec["yoy_pct"] = ly
        if hist is not None:
            hist = hist.iloc[-periods:]
        cards.append(kpi_card(rec, hist, unit=unit, direction=direction))
    if not cards:
        return f'<div class="kpinb-cards" style="{kit.FONT};color:{kit.NEUTRAL}">No KPI to show.</div>'
    return f'<div class="kpinb-cards" style="{grid_style(len(cards))}">{"".join(cards)}</div>'


def grid_style(n: int, widest: int = 4, min_px: int = 230, gap_px: int = 12) -> str:
    """Inline CSS of a grid of ``n`` cards whose rows are as even as the width allows.

    At most ``columns = ceil(n / rows)`` columns, where ``rows = ceil(n / widest)``: 6 cards sit
    3 + 3 (not 4 + a lone 2), 5 sit 3 + 2, 7 sit 4 + 3. A narrower page wraps to fewer columns
    (each at least ``min_px`` wide), never to more.

    >>> "repeat(auto-fit," in grid_style(6) and "(100% - 24px) / 3" in grid_style(6)
    True
    """
    columns = max(1, math.ceil(n / math.ceil(max(n, 1) / widest)))
    track = f"minmax(max({min_px}px, calc((100% - {(columns - 1) * gap_px}px) / {columns})), 1fr)"
    return f"display:grid;grid-template-columns:repeat(auto-fit,{track});gap:{gap_px}px;align-items:stretch"


def gauge(
    value: Any,
    target: Any,
    baseline: Any = None,
    direction: str | None = "higher_is_better",
    unit: str | None = "count",
) -> str:
    """A semicircle gauge as inline SVG (no JavaScript): the value's arc, target and baseline ticks.

    The scale runs from the lowest to the highest of value, target and baseline, with some room
    on both sides (never below zero for non-negative numbers). The arc is green when the value
    meets the target for the ``direction``, amber when it is better than the baseline, red
    otherwise (grey without a target).

    >>> "<svg" in gauge(0.12, 0.15, 0.10, "higher_is_better", "percent")
    True
    """
    v, t, b = as_float(value), as_float(target), as_float(baseline)
    u, d = unit_key(unit), _direction_key(direction)
    vals = [x for x in (v, t, b) if math.isfinite(x)]
    w, h, r, cx, cy = 200, 120, 80.0, 100.0, 100.0
    if not vals:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = min(vals), max(vals)
        span = (hi - lo) or (abs(hi) or 1.0)
        new_lo, hi = lo - 0.15 * span, hi + 0.15 * span
        lo = 0.0 if lo >= 0 > new_lo else new_lo
        if u == "percent" and hi > 1 >= max(vals):
            hi = 1.0

    def angle(x: float) -> float:
        frac = min(1.0, max(0.0, (x - lo) / (hi - lo)))
        return math.pi * (1 - frac)

    def point(a: float, radius: float = r) -> tuple[float, float]:
        return cx + radius * math.cos(a), cy - radius * math.sin(a)

    def arc(a0: float, a1: float, color: str, stroke: float = 14) -> str:
        (x0, y0), (x1, y1) = point(a0), point(a1)
        return (
            f'<path d="M {x0:.2f} {y0:.2f} A {r} {r} 0 0 1 {x1:.2f} {y1:.2f}" fill="none" '
            f'stroke="{color}" stroke-width="{stroke}" stroke-linecap="butt"/>'
        )

    def tick(x: float, color: str, width: float) -> str:
        a = angle(x)
        (x0, y0), (x1, y1) = point(a, r - 12), point(a, r + 12)
        return (
            f'<line x1="{x0:.2f}" y1="{y0:.2f}" x2="{x1:.2f}" y2="{y1:.2f}" stroke="{color}" stroke-width="{width}"/>'
        )

    higher = d == "higher_is_better"
    if math.isfinite(v) and math.isfinite(t):
        met = v >= t if higher else v <= t
        better = math.isfinite(b) and (v > b if higher else v < b)
        color = kit.GOOD if met else ("#e8a317" if better else kit.BAD)
    else:
        color = kit.NEUTRAL
    parts = [arc(math.pi, 0.0, kit.MUTED)]
    if math.isfinite(v):
        parts.append(arc(math.pi, angle(v), color))
    if math.isfinite(b):
        parts.append(tick(b, "#80868b", 2))
    if math.isfinite(t):
        parts.append(tick(t, "#202124", 3))
    target_text = f"target {format_value(t, u)}" if math.isfinite(t) else "no target"
    if math.isfinite(b):
        target_text += f" · baseline {format_value(b, u)}"
    return (
        f'<svg class="kpinb-gauge" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 16}" '
        f'viewBox="0 0 {w} {h + 16}" role="img" aria-label="{esc(format_value(v, u))} ({esc(target_text)})">'
        f"{''.join(parts)}"
        f'<text x="{cx}" y="{cy - 8}" text-anchor="middle" font-size="22" font-weight="700" fill="#202124" '
        f'font-family="system-ui,sans-serif">{esc(format_value(v, u))}</text>'
        f'<text x="{cx}" y="{cy + 28}" text-anchor="middle" font-size="11" fill="{kit.NEUTRAL}" '
        f'font-family="system-ui,sans-serif">{esc(target_text)}</text></svg>'
    )


@dataclass(frozen=True, eq=False)
class KpiCards:
    """KPI cards for a notebook: displaying the object renders :func:`kpi_cards`.

    >>> KpiCards(kpinb.status.evaluate(plan, df), df, kpinb.plan.registry(plan))  # doctest: +SKIP
    """

    status: pd.DataFrame
    history: pd.DataFrame | None = None
    registry: Mapping[str, Metric] | None = None

    def to_html(self) -> str:
        """The cards' HTML."""
        return kpi_cards(self.status, self.history, self.registry)

    def _repr_html_(self) -> str:
        return self.to_html()
