"""Plotly figures of engine results: trend, breakdown, benchmark position, drivers, sparkline.

Every function takes a result frame (the engine's tidy frame, or a frame from
:mod:`kpinb.benchmark` / :mod:`kpinb.drivers`) and returns a plain :class:`plotly.graph_objects.Figure`.
Only ``scatter`` and ``bar`` traces are used, so a report may embed a partial plotly.js bundle
(``plotly.js-basic-dist-min``). No hover template carries text from the data: hover labels are
built by plotly from numbers, dates and category names, which plotly escapes; the one text
from people, a note on the trend, is escaped here. Numbers in a
figure carry display precision only (:func:`kpinb._numbers.steady`), so a figure stored in a
notebook is the same on every CPU.

>>> fig = trend(kpinb.compute(plan), "monthly_sales_revenue", target=1_500_000)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kpinb.engine import RESULT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from kpinb.analytics.forecast import Forecast

__all__ = [
    "benchmark_position",
    "breakdown",
    "drivers",
    "empty_figure",
    "figure_html",
    "metric_label",
    "plotly_js",
    "sparkline",
    "trend",
]

PALETTE = ("#1a73e8", "#e37400", "#188038", "#a142f4", "#d93025", "#12b5cb", "#f538a0", "#5f6368")
_GOOD, _BAD, _NEUTRAL, _BAND = "#1b7f3b", "#b3261e", "#80868b", "rgba(26,115,232,0.15)"
_BASE = RESULT_COLUMNS
_GRID = {"gridcolor": "#ebf0f8", "linecolor": "#ebf0f8", "zerolinecolor": "#dfe3ea", "automargin": True}
# A small template of our own: a named template such as "plotly_white" costs ~0.1 s per figure to
# validate and copy, which a dashboard redrawing four figures per filter change would feel.
TEMPLATE = {
    "layout": {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": list(PALETTE),
        "font": {"color": "#2a3f5f"},
        "xaxis": _GRID,
        "yaxis": _GRID,
        "hoverlabel": {"align": "left"},
    }
}


def _numeric(values: Any) -> bool:
    import numpy as np

    if values is None or isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        return False
    return np.asarray(values).dtype.kind in "fiu"


def _steady(build: Any) -> Any:
    """Round the numbers of the figure ``build`` returns to display precision (traces' x, y and
    base; shapes, annotations and axis ranges): the digits past it differ between CPUs, not
    between data."""
    from kpinb._numbers import steady

    def at_display_precision(obj: Any, keys: Iterable[str]) -> None:
        for key in keys:
            value = getattr(obj, key, None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(obj, key, float(steady(value)[0]))
            elif _numeric(value):
                setattr(obj, key, steady(value))

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> go.Figure:
        fig = build(*args, **kwargs)
        for trace in fig.data:
            at_display_precision(trace, ("x", "y", "base"))
        for item in (*fig.layout.shapes, *fig.layout.annotations):
            at_display_precision(item, ("x0", "x1", "y0", "y1", "x", "y"))
        at_display_precision(fig.layout.xaxis, ("range",))
        at_display_precision(fig.layout.yaxis, ("range",))
        return fig

    return wrapper


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _meta(metric: str, name: str | None, unit: str | None) -> tuple[str, str]:
    """The metric's display name and unit, from the arguments or else the catalog."""
    if name is not None and unit is not None:
        return name, unit
    from kpinb.definitions import catalog

    m = catalog.metrics().get(metric)
    return (
        name if name is not None else (m.name if m is not None else metric),
        unit if unit is not None else (m.unit.value if m is not None else "count"),
    )


def _axis(unit: str, values: Any = None) -> dict[str, Any]:
    """Tick and hover formats, prefix and title for a value axis in ``unit`` showing ``values``.

    Money and counts get thousands separators, and SI suffixes (20k, 2M) only from 10,000 up:
    d3's ``~s`` would write 0.5 as "500m", which reads as millions. A currency code puts its
    symbol before the ticks (``€``, ``CHF ``), unless the axis reaches below zero (plotly would
    write "$-5"); the axis title names the unit.
    """
    import numpy as np

    from kpinb._numbers import currency_prefix, is_currency

    u = str(getattr(unit, "value", unit))
    if u == "percent":
        return {"tickformat": ".2~%", "hoverformat": ".2%", "title_text": "%"}
    if is_currency(u) or u == "count":
        v = np.asarray([] if values is None else values, dtype="float64").ravel()
        v = v[np.isfinite(v)]
        big = bool(v.size) and float(np.abs(v).max()) >= 10_000
        # plotly writes a prefix before the sign ("$-5"): an axis reaching below zero names the
        # currency in its title only
        prefix = currency_prefix(u) if not (v.size and float(v.min()) < 0) else ""
        out = {"tickformat": "~s" if big else ",~r", "hoverformat": ",.2~f", "tickprefix": prefix}
        out["title_text"] = "count" if u == "count" else u if currency_prefix(u) else "amount"  # a code: "EUR"
        return out
    return {"hoverformat": ",.2~f", "title_text": _unit_title(u)}


def _unit_title(unit: str) -> str:
    """A short axis title for a unit: ``ratio``, ``score``, a duration's time unit."""
    from kpinb._numbers import unit_key

    return {"duration": "duration", "min": "minutes", "h": "hours", "s": "seconds"}.get(unit_key(unit), unit_key(unit))


@functools.cache
def _template() -> Any:
    return _go().layout.Template(TEMPLATE)


def _figure(title: str, height: int = 320, **kw: Any) -> go.Figure:
    """An empty figure with the common layout (built in one go: plotly validates on every update)."""
    title = wrap_title(title)
    lines = title.count("<br>")
    layout = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 14}},
        "template": _template(),
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 44 + 18 * lines, "b": 36},
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
        "annotations": [],
        "shapes": [],
        **kw,
    }
    return _go().Figure(layout=layout)


TITLE_CHARACTERS = 58
"""A title line's length: the width of a dashboard chart (480 px) at the title's font size."""


def wrap_title(text: str, width: int = TITLE_CHARACTERS) -> str:
    """``text`` broken into lines of at most ``width`` characters at spaces (plotly's ``<br>``),
    so a long title is never cut off at the chart's edge.

    >>> wrap_title("What moved Monthly recurring revenue (MRR) by region: Nov 2025 → Dec 2025", 40)
    'What moved Monthly recurring revenue<br>(MRR) by region: Nov 2025 → Dec 2025'
    >>> wrap_title("What moved Sales conversion rate by region: Sep 2025 → Oct 2025", 58)
    'What moved Sales conversion rate by region: Sep 2025 →<br>Oct 2025'
    """
    import re
    import textwrap

    # a period ("Oct 2025", "Q4 2025") stays on one line
    glued = re.sub(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Q[1-4]) (\d{4})\b", "\\1\x00\\2", str(text))
    lines = textwrap.wrap(glued, width, break_long_words=False, break_on_hyphens=False)
    return "<br>".join(lines).replace("\x00", " ") or str(text)


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"color": _NEUTRAL, "size": 13}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure with a title and a centred message instead of data ("No data for this selection")."""
    return _empty(_figure(title), message)


def _dims(df: pd.DataFrame) -> list[str]:
    from pandas.api.types import is_numeric_dtype

    by = df.attrs.get("by")
    if by is None:
        by = [c for c in df.columns if c not in _BASE and not is_numeric_dtype(df[c])]
    return [c for c in by if c in df.columns]


def _period_text(when: Any, grain: str | None) -> str:
    import pandas as pd

    if grain:
        from kpinb.analytics.compare import period_label

        return period_label(when, grain, long=True)
    return f"{pd.Timestamp(when):%Y-%m-%d}"


@_steady
def trend(
    df: pd.DataFrame,
    metric: str,
    *,
    target: float | pd.Series | None = None,
    forecast: Forecast | pd.DataFrame | None = None,
    title: str | None = None,
    name: str | None = None,
    unit: str | None = None,
    thresholds: Mapping[str, Any] | None = None,
    notes: Iterable[tuple[Any, str]] | None = None,
) -> go.Figure:
    """The metric's value per period: one line (one per dimension member when broken down).

    Parameters
    ----------
    df : the engine's tidy frame.
    metric : the metric id to draw.
    target : a number (a flat dashed line) or a Series indexed by date (a step path).
    forecast : a :class:`kpinb.forecast.Forecast` or a frame ``period_start, mean, lower, upper``:
        drawn as a dashed line with its interval as a band.

    Periods after the last complete one (the engine's ``complete`` column: data still arriving,
    a rate that settles late) are drawn as a grey dotted "not final yet" line.
    title : the figure title; default the metric's name.
    name, unit : display name and unit; default from the catalog.
    thresholds : ``{"warning": w, "critical": c, "direction": "higher_is_better"}``: the values
        past the warning level shaded amber and past the critical level red (the KPI's alert zones).
    notes : ``(day, text)`` pairs (the plan's notes on this KPI): a small marker on the line at the
        period holding each day, the text (escaped) on hover; days outside the drawn periods are left out.

    Examples
    --------
    >>> fig = trend(df, "bounce_rate", target=0.42)  # doctest: +SKIP
    """
    import pandas as pd

    go = _go()
    label, u = _meta(metric, name, unit)
    fig = _figure(title if title is not None else label, hovermode="x unified")
    rows = df[df["metric"] == metric].sort_values("period_start")
    if rows["value"].notna().sum() == 0:
        return _empty(fig, "No data for this selection")
    dims = _dims(df)
    groups = list(rows.groupby(dims, sort=True, dropna=False)) if dims else [((label,), rows)]
    unsettled_shown = False
    for i, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        final, unsettled = _settled_split(g)
        fig.add_trace(
            go.Scatter(
                x=final["period_start"],
                y=final["value"],
                mode="lines+markers",
                name=" · ".join(str(k) for k in key),
                line={"color": PALETTE[i % len(PALETTE)], "width": 2},
                marker={"size": 4},
            )
        )
        if len(unsettled):
            fig.add_trace(
                go.Scatter(
                    x=unsettled["period_start"],
                    y=unsettled["value"],
                    mode="lines+markers",
                    name="not final yet",
                    legendgroup="unsettled",
                    showlegend=not unsettled_shown,
                    line={"color": _NEUTRAL, "width": 1.5, "dash": "dot"},
                    marker={"size": 5, "symbol": "circle-open"},
                )
            )
            unsettled_shown = True
    x_first, x_last = rows["period_start"].min(), rows["period_start"].max()
    points = getattr(forecast, "points", forecast)
    if points is not None and len(points):
        from kpinb._numbers import FORECAST_DIGITS, round_significant

        pts = points.sort_values("period_start").copy()
        ahead = pts["period_start"] > x_last  # a cone may start at the latest observed value
        for col in ("mean", "lower", "upper"):  # a fit's 4th digit differs between CPUs
            pts.loc[ahead, col] = round_significant(pts.loc[ahead, col], FORECAST_DIGITS)
        settled = _settled_split(rows.dropna(subset=["value"]))[0]  # the forecast goes on from a final value
        last = settled.iloc[-1] if not dims and len(settled) else None
        xs, ms = list(pts["period_start"]), list(pts["mean"])
        if last is not None and pd.Timestamp(last["period_start"]) < pd.Timestamp(xs[0]):
            xs, ms = [last["period_start"], *xs], [last["value"], *ms]
        fig.add_trace(
            go.Scatter(
                x=pts["period_start"],
                y=pts["upper"],
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                name="upper",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=pts["period_start"],
                y=pts["lower"],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=_BAND,
                name="forecast range",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(x=xs, y=ms, mode="lines", name="forecast", line={"color": PALETTE[0], "dash": "dot", "width": 2})
        )
        x_last = max(x_last, pts["period_start"].max())
    if target is not None:
        if isinstance(target, pd.Series):
            s = target.dropna().sort_index()
            tx, ty, shape = list(s.index), list(s.to_numpy(dtype="float64")), "hv"
        elif math.isfinite(float(target)):
            tx, ty, shape = [x_first, x_last], [float(target)] * 2, "linear"
        else:
            tx, ty, shape = [], [], "linear"
        if tx:
            fig.add_trace(
                go.Scatter(
                    x=tx,
                    y=ty,
                    mode="lines",
                    name="target",
                    line={"color": _GOOD, "dash": "dash", "width": 1.5, "shape": shape},
                )
            )
    if thresholds:
        _threshold_bands(fig, thresholds)
    if notes and not dims:
        _note_markers(fig, rows, notes)
    from kpinb._numbers import is_currency

    ys = [t.y for t in fig.data if t.y is not None]
    flat = [y for ys_ in ys for y in ys_]
    fig.update_yaxes(**_axis(u, flat), rangemode="tozero" if u == "count" or is_currency(u) else "normal")
    return fig


def _note_markers(fig: go.Figure, rows: pd.DataFrame, notes: Iterable[tuple[Any, str]]) -> None:
    """One marker per period with notes, on the line, its notes' texts (escaped) on hover."""
    import pandas as pd

    from kpinb.views.kit import esc

    series = rows.dropna(subset=["value"]).set_index("period_start")["value"].sort_index()
    if series.empty:
        return
    starts = pd.DatetimeIndex(series.index)
    texts: dict[pd.Timestamp, list[str]] = {}
    for day, text in notes:
        at = starts.searchsorted(pd.Timestamp(day), side="right") - 1  # the period holding the day
        if at < 0 or (at == len(starts) - 1 and pd.Timestamp(day) > starts[-1] + (starts[-1] - starts[max(at - 1, 0)])):
            continue
        texts.setdefault(starts[at], []).append(esc(text))
    if not texts:
        return
    xs = sorted(texts)
    fig.add_trace(
        _go().Scatter(
            x=xs, y=[series[x] for x in xs], mode="markers", name="note",
            marker={"symbol": "diamond", "size": 9, "color": "#f9ab00", "line": {"width": 1, "color": "#5f6368"}},
            hovertext=["<br>".join(texts[x]) for x in xs], hoverinfo="text",
        )
    )  # fmt: skip


def _settled_split(g: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows up to the last complete period, and the periods after it that are not complete
    yet (data still arriving, or a rate that settles late) joined to it: drawn apart, so a month
    whose leads have not had time to convert does not read as a collapse."""
    if "complete" not in g.columns or g["complete"].isna().all():
        return g, g.iloc[0:0]
    done = g["complete"].fillna(False).astype(bool).to_numpy()
    if done.all() or not done.any():
        return g, g.iloc[0:0]
    last = int(done.nonzero()[0].max())
    if last == len(g) - 1:
        return g, g.iloc[0:0]
    return g.iloc[: last + 1], g.iloc[last:]


def _threshold_bands(fig: go.Figure, thresholds: Mapping[str, Any]) -> None:
    """Shade the alert zones behind the lines: amber between the warning and critical levels, red
    beyond the critical one (below them for higher-is-better, above for lower-is-better)."""
    from kpinb._numbers import as_float

    warning, critical = as_float(thresholds.get("warning")), as_float(thresholds.get("critical"))
    lower = str(thresholds.get("direction") or "").startswith("lower")
    values = [as_float(v) for t in fig.data for v in (t.y if t.y is not None else ())]
    values = [v for v in values if math.isfinite(v)] + [x for x in (warning, critical) if math.isfinite(x)]
    if not values:
        return
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    edge = hi + pad if lower else (max(lo - pad, 0.0) if lo >= 0 else lo - pad)  # just past the data
    bands = []
    if math.isfinite(warning):
        bands.append((warning, critical if math.isfinite(critical) else edge, "rgba(232,163,23,0.12)", "warning"))
    if math.isfinite(critical):
        bands.append((critical, edge, "rgba(179,38,30,0.10)", "critical"))
    for y0, y1, colour, label in bands:
        if not (math.isfinite(y0) and math.isfinite(y1)):
            continue
        fig.add_shape(
            type="rect", xref="paper", x0=0, x1=1, yref="y", y0=y0, y1=y1, fillcolor=colour, line={"width": 0},
            layer="below", name=f"{label} zone",
        )  # fmt: skip


@_steady
def breakdown(
    df: pd.DataFrame,
    metric: str,
    dimension: str,
    period: Any = None,
    *,
    title: str | None = None,
    name: str | None = None,
    unit: str | None = None,
) -> go.Figure:
    """One horizontal bar per member of ``dimension`` in one period, largest on top.

    Parameters
    ----------
    df : the engine's tidy frame computed with ``by`` including ``dimension``.
    metric : the metric id.
    dimension : the dimension column.
    period : any date in the period to show; default the latest period where a member has a value.
    title, name, unit : as for :func:`trend`.
    """
    import pandas as pd

    go = _go()
    label, u = _meta(metric, name, unit)
    rows = df[df["metric"] == metric]
    grain = df.attrs.get("grain")
    from kpinb.views.kit import human_name

    dim_text = human_name(dimension, capital=False)
    if dimension not in df.columns:
        fig = _figure(title or f"{label} by {dim_text}")
        return _empty(fig, f"Not broken down by {dim_text}")
    if period is None:
        have = rows.loc[rows["value"].notna(), "period_start"]
        when = have.max() if len(have) else None
    else:
        from kpinb.engine.calendar import period_start

        when = period_start(period, grain) if grain else pd.Timestamp(period)
    heading = title or f"{label} by {dim_text}" + (f", {_period_text(when, grain)}" if when is not None else "")
    fig = _figure(heading)
    if when is None:
        return _empty(fig, "No data for this selection")
    here = rows[rows["period_start"] == when]
    here = here.groupby(dimension, dropna=False, sort=False)["value"].sum(min_count=1).dropna().sort_values()
    if here.empty:
        return _empty(fig, "No data for this selection")
    from kpinb.views.kit import format_value

    fig.add_trace(
        go.Bar(
            x=here.to_numpy(),
            y=[str(m) for m in here.index],
            orientation="h",
            marker={"color": PALETTE[0]},
            text=[format_value(v, u) for v in here.to_numpy()],
            textposition="auto",
            name=label,
            showlegend=False,
        )
    )
    fig.update_xaxes(**_axis(u, here.to_numpy()))
    fig.update_yaxes(type="category", automargin=True)
    fig.update_layout(height=max(220, 60 + 28 * len(here)))
    return fig


@_steady
def benchmark_position(frame: pd.DataFrame, *, title: str | None = None, unit: str | None = None) -> go.Figure:
    """Where a value stands against a benchmark.

    Reads any of the frames of :mod:`kpinb.benchmark`:

    - :func:`~kpinb.benchmark.external` (``p25, p50, p75``): per metric, the interquartile range
      as a bar, the median as a tick and the value as a diamond;
    - :func:`~kpinb.benchmark.peers` (``rank`` and a dimension column): one bar per member, the
      best in green, with the median (or the given overall) as a dotted line;
    - :func:`~kpinb.benchmark.history` (``last_year_value, best_value``): the value next to the
      same period last year and the best period before it.
    """
    cols = set(frame.columns)
    fig = _figure(title or "Benchmark position")
    if frame.empty:
        return _empty(fig, "No benchmark for this selection")
    if {"p25", "p50", "p75", "value"} <= cols:
        return _external(fig, frame, unit)
    if {"rank", "value"} <= cols:
        return _peers(fig, frame, unit)
    if {"last_year_value", "best_value", "value"} <= cols:
        return _history(fig, frame, unit)
    raise ValueError(
        "benchmark_position() needs a frame from kpinb.benchmark.external(), peers() or history(); "
        f"this one has columns {', '.join(map(str, frame.columns))}."
    )


def _unit_of(frame: pd.DataFrame, unit: str | None) -> str:
    if unit is not None:
        return unit
    if "unit" in frame.columns and frame["unit"].notna().any():
        return str(frame["unit"].dropna().iloc[0])
    if "metric" in frame.columns and len(frame):
        return _meta(str(frame["metric"].iloc[0]), None, None)[1]
    return "count"


def _external(fig: go.Figure, frame: pd.DataFrame, unit: str | None) -> go.Figure:
    """Metrics of different units share one axis: their position (0-100) in the benchmark's distribution."""
    go = _go()
    from kpinb.views.kit import format_value

    names = [_meta(str(m), None, None)[0] for m in frame["metric"]]
    given = frame["unit"] if "unit" in frame.columns else [None] * len(frame)
    units = [
        unit or (str(u) if isinstance(u, str) and u else _meta(str(m), None, None)[1])
        for m, u in zip(frame["metric"], given, strict=True)
    ]
    fig.add_trace(
        go.Bar(
            y=names,
            x=[50] * len(frame),
            base=[25] * len(frame),
            orientation="h",
            marker={"color": "rgba(128,134,139,0.25)"},
            name="p25–p75",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            y=names,
            x=[50] * len(frame),
            mode="markers",
            name="median (p50)",
            hoverinfo="skip",
            marker={"symbol": "line-ns-open", "size": 22, "color": "#3c4043", "line": {"width": 3}},
        )
    )
    colors, texts = [], []
    for r, u in zip(frame.itertuples(index=False), units, strict=True):
        better = getattr(r, "better_than_pct", math.nan)
        colors.append(_GOOD if better is not None and better >= 50 else _BAD)
        texts.append(f"{format_value(r.value, u)} (median {format_value(r.p50, u)})")
    fig.add_trace(
        go.Scatter(
            y=names,
            x=frame["percentile"],
            mode="markers+text",
            name="value",
            text=texts,
            textposition="top center",
            hoverinfo="x+y",
            marker={"symbol": "diamond", "size": 13, "color": colors},
        )
    )
    fig.update_xaxes(
        range=[-3, 103],
        title_text="position in the benchmark range (percentile by value)",
        tickvals=[0, 25, 50, 75, 100],
    )
    fig.update_yaxes(type="category", automargin=True)
    fig.update_layout(height=max(200, 120 + 48 * len(frame)), barmode="overlay")
    return fig


def _peers(fig: go.Figure, frame: pd.DataFrame, unit: str | None) -> go.Figure:
    go = _go()
    from kpinb.analytics.benchmark import PEER_COLUMNS

    dims = [c for c in frame.columns if c not in PEER_COLUMNS]
    dim = dims[0] if dims else None
    u = _unit_of(frame, unit)
    rows = frame.dropna(subset=["value"]).sort_values("value")
    if rows.empty or dim is None:
        return _empty(fig, "No peers to compare")
    best = rows["rank"].astype("float64") == 1
    fig.add_trace(
        go.Bar(
            x=rows["value"],
            y=[str(m) for m in rows[dim]],
            orientation="h",
            showlegend=False,
            marker={"color": [_GOOD if b else PALETTE[0] for b in best]},
            name="value",
        )
    )
    ref_col = "overall" if "overall" in rows.columns and rows["overall"].notna().any() else "median"
    if ref_col in rows.columns and rows[ref_col].notna().any():
        ref = float(rows[ref_col].dropna().iloc[0])
        kind = str(rows["overall_kind"].iloc[0]) if "overall_kind" in rows.columns else ref_col
        label = "overall" if kind == "given" else "median of members"
        fig.add_shape(type="line", x0=ref, x1=ref, y0=0, y1=1, yref="paper", line={"dash": "dot", "color": "#3c4043"})
        fig.add_annotation(
            x=ref,
            y=1,
            yref="paper",
            text=label,
            showarrow=False,
            yanchor="bottom",
            font={"size": 11, "color": "#3c4043"},
        )
    title = fig.layout.title.text
    if title == "Benchmark position":
        from kpinb.views.kit import human_name

        name = _meta(str(rows["metric"].iloc[0]), None, None)[0]
        fig.update_layout(title_text=f"{name}: {human_name(dim, capital=False)} vs peers")
    fig.update_xaxes(**_axis(u, rows["value"].to_numpy()))
    fig.update_yaxes(type="category", automargin=True)
    fig.update_layout(height=max(220, 70 + 28 * len(rows)))
    return fig


def _history(fig: go.Figure, frame: pd.DataFrame, unit: str | None) -> go.Figure:
    go = _go()
    u = _unit_of(frame, unit)
    names = [_meta(str(m), None, None)[0] for m in frame["metric"]]
    for i, (col, label) in enumerate(
        (("best_value", "best before"), ("last_year_value", "last year"), ("value", "latest"))
    ):
        fig.add_trace(
            go.Bar(
                y=names,
                x=frame[col],
                orientation="h",
                name=label,
                marker={"color": (_NEUTRAL, "#bdc1c6", PALETTE[0])[i]},
            )
        )
    # the ticks carry the unit; an axis title would sit under the legend
    fig.update_xaxes(**{**_axis(u, frame[["best_value", "last_year_value", "value"]].to_numpy()), "title_text": None})
    # one metric: the title names it, a tick label would only repeat it
    fig.update_yaxes(type="category", automargin=True, showticklabels=len(frame) > 1)
    fig.update_layout(barmode="group", height=max(220, 100 + 60 * len(frame)))
    return fig


@_steady
def drivers(
    frame: pd.DataFrame,
    *,
    direction: str | None = None,
    title: str | None = None,
    unit: str | None = None,
    name: str | None = None,
) -> go.Figure:
    """Bars of the effects that add up to a metric's change (a frame of :mod:`kpinb.drivers`).

    Each bar is one driver (``driver``, with ``component`` such as ``rate``/``mix`` when there
    is more than one kind), sorted by effect; green when the effect moves the metric the good
    way for ``direction`` (default the catalog's, else higher is better), red otherwise. The
    title names the periods and the total change from the frame's ``attrs``.
    """

    go = _go()
    metric = frame.attrs.get("metric") or (str(frame["metric"].iloc[0]) if "metric" in frame and len(frame) else "")
    label, u = _meta(metric, name, unit) if metric else (name or "metric", unit or "count")
    if direction is None and metric:
        from kpinb.definitions import catalog

        m = catalog.metrics().get(metric)
        direction = m.direction.value if m is not None else None
    higher = not str(getattr(direction, "value", direction) or "higher").startswith("lower")

    pa, pb, change = frame.attrs.get("period_a"), frame.attrs.get("period_b"), frame.attrs.get("change")
    if title is None:
        title = f"What moved {label}"
        if pa is not None and pb is not None:
            grain = frame.attrs.get("grain")
            title += f": {_period_text(pa, grain)} → {_period_text(pb, grain)}"
        if change is not None and math.isfinite(float(change)):
            title += f" ({_signed(float(change), u)})"
    fig = _figure(title)
    if frame.empty or "effect" not in frame.columns or frame["effect"].notna().sum() == 0:
        note = ""
        if "note" in frame.columns and frame["note"].astype(str).str.len().gt(0).any():
            note = str(frame.loc[frame["note"].astype(str).str.len() > 0, "note"].iloc[0])
        return _empty(fig, note[:120] or "No change to explain")
    rows = frame.dropna(subset=["effect"]).copy()
    kinds = rows["component"].nunique() if "component" in rows.columns else 1
    labels = [
        f"{d} · {c}" if kinds > 1 else str(d)
        for d, c in zip(
            rows["driver"], rows["component"] if "component" in rows.columns else rows["driver"], strict=True
        )
    ]
    rows["_label"] = labels
    rows = rows.sort_values("effect")
    good = [(e >= 0) == higher for e in rows["effect"]]
    # a rate's effects are changes of the rate: percentage points on the axis, as on the labels
    points = str(u) == "percent"
    fig.add_trace(
        go.Bar(
            x=rows["effect"] * 100 if points else rows["effect"],
            y=rows["_label"],
            orientation="h",
            marker={"color": [_GOOD if g else _BAD for g in good]},
            text=[_signed(e, u) for e in rows["effect"]],
            textposition="auto",
            cliponaxis=False,  # a short bar's label outside it stays readable
            showlegend=False,
            name="effect",
        )
    )
    fig.add_shape(type="line", x0=0, x1=0, y0=0, y1=1, yref="paper", line={"color": "#3c4043", "width": 1})
    axis = (
        {"tickformat": ",.2~f", "ticksuffix": " pp", "hoverformat": ",.2f", "title_text": "percentage points"}
        if points
        else {**_axis(u, rows["effect"].to_numpy()), "title_text": f"effect on the change ({_axis(u)['title_text']})"}
    )
    # room beyond the longest bars on each side for a label placed outside a shorter one
    x = rows["effect"].to_numpy(dtype="float64") * (100 if points else 1)
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    pad = 0.25 * ((hi - lo) or 1.0)
    fig.update_xaxes(**axis, zeroline=False, range=[lo - pad if lo < 0 else lo, hi + pad if hi > 0 else hi])
    fig.update_yaxes(type="category", automargin=True)
    fig.update_layout(height=max(220, 70 + 26 * len(rows)))
    return fig


def _signed(x: float, unit: str) -> str:
    """A change with its sign: ``+1.2 pp`` for percent metrics (stored as fractions), else ``−1.23M``;
    none on a change that rounds to zero."""
    from kpinb.views.kit import format_value

    size = f"{abs(x) * 100:.2f} pp" if str(unit) == "percent" else format_value(abs(x), unit)
    if not any(c in "123456789" for c in size):  # rounds to zero: "0.00 pp", not "−0.00 pp"
        return size
    return ("+" if x >= 0 else "−") + size


@_steady
def sparkline(series: pd.Series, *, color: str = PALETTE[0], height: int = 60) -> go.Figure:
    """A tiny line chart without axes: the series and a dot on its last value."""
    import pandas as pd

    go = _go()
    s = pd.Series(series).astype("float64")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=list(s.index),
            y=s.to_numpy(),
            mode="lines",
            line={"color": color, "width": 1.6},
            hoverinfo="x+y",
            showlegend=False,
        )
    )
    valid = s.dropna()
    if len(valid):
        fig.add_trace(
            go.Scatter(
                x=[valid.index[-1]],
                y=[valid.iloc[-1]],
                mode="markers",
                marker={"color": color, "size": 6},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    fig.update_layout(
        template=_template(),
        height=height,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={"visible": False},
        yaxis={"visible": False},
        showlegend=False,
    )
    return fig


#: The partial plotly.js bundle shipped in kpinb/static (see its README) and the trace types it draws.
PLOTLY_BASIC = Path(__file__).resolve().parents[1] / "static" / "plotly-basic-4.1.1.min.js"
BASIC_TRACES = frozenset({"scatter", "bar", "pie"})


def _basic_usable() -> bool:
    """The shipped basic bundle matches the plotly.js version the installed plotly writes figures for."""
    from plotly.offline import get_plotlyjs_version

    return PLOTLY_BASIC.is_file() and PLOTLY_BASIC.name == f"plotly-basic-{get_plotlyjs_version()}.min.js"


@functools.cache
def plotly_js_source(bundle: Literal["basic", "full"]) -> str:
    """plotly.js source to inline in a ``<script>`` element: the shipped basic bundle or the full
    one of the installed plotly (``</script`` neutralised); read once per process."""
    if bundle == "basic":
        text = PLOTLY_BASIC.read_text(encoding="utf-8")
    else:
        from plotly.offline import get_plotlyjs

        text = get_plotlyjs()
    return text.replace("</script", "<\\/script")  # it goes inside a <script> element


def plotly_js(figures: Iterable[go.Figure] = ()) -> str:
    """plotly.js source to inline once in a ``<script>`` element of an offline page.

    The small basic bundle (scatter, bar, pie; ~1.2 MB) when every figure's traces are of
    those types, else the full one from the installed plotly package (~4.8 MB). No CDN.
    """
    types = {str(t.type or "scatter") for fig in figures for t in fig.data}
    return plotly_js_source("basic" if types <= BASIC_TRACES and _basic_usable() else "full")


def figure_html(fig: go.Figure, include_plotlyjs: bool | str = False, div_id: str | None = None) -> str:
    """A figure as an HTML fragment (``<div>`` + script) for a self-contained report.

    ``include_plotlyjs=True`` inlines plotly.js from the installed plotly package (no CDN); pass
    it for the first figure of a page only.
    """
    return fig.to_html(
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def metric_label(metric: str, registry: Mapping[str, Any] | None = None) -> str:
    """The display name of a metric id (from ``registry``, else the catalog, else the id)."""
    if registry is not None and metric in registry:
        return str(registry[metric].name)
    return _meta(metric, None, "count")[0]
