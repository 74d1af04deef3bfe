"""Plotly figures of engine results (kpinb.views.charts): the right numbers, scatter and bar traces only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from kpinb.analytics import benchmark, drivers
from kpinb.analytics.forecast import forecast
from kpinb.views import charts

MONTHS = pd.date_range("2024-01-01", periods=18, freq="MS")


def tidy(values: dict[str, list[float]], by: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """An engine-like frame: metric x period (x members), value only."""
    parts = []
    members = list(zip(*by.values(), strict=True)) if by else [()]
    for metric, vals in values.items():
        for i, combo in enumerate(members):
            frame = pd.DataFrame({"metric": metric, "period_start": MONTHS[: len(vals)]})
            for name, member in zip(by or {}, combo, strict=True):
                frame[name] = member
            frame["value"] = np.asarray(vals, dtype="float64") * (i + 1)
            frame["numerator"] = np.nan
            frame["denominator"] = np.nan
            parts.append(frame)
    df = pd.concat(parts, ignore_index=True)
    df.attrs.update(grain="month", by=tuple(by or ()))
    return df


def ratio_by_region() -> pd.DataFrame:
    rows = []
    for region, (n, d) in {"east": (10, 100), "west": (30, 200)}.items():
        for i, p in enumerate(MONTHS[:2]):
            num, den = n + 5 * i, d + 10 * i
            rows.append({"metric": "conversion_rate", "period_start": p, "region": region, "value": num / den,
                         "numerator": float(num), "denominator": float(den)})  # fmt: skip
    df = pd.DataFrame(rows)
    df.attrs.update(grain="month", by=("region",))
    return df


def ratio_total() -> pd.DataFrame:
    df = ratio_by_region().groupby(["metric", "period_start"], as_index=False)[["numerator", "denominator"]].sum()
    df["value"] = df["numerator"] / df["denominator"]
    df.attrs.update(grain="month", by=())
    return df


def trace_types(fig: go.Figure) -> set[str]:
    return {t.type for t in fig.data}


def no_hovertemplate(fig: go.Figure) -> bool:
    return all(getattr(t, "hovertemplate", None) is None for t in fig.data)


def test_trend_values_target_and_forecast_band():
    values = [100.0 + 3 * i for i in range(18)]
    df = tidy({"orders_count": values})
    series = pd.Series(values, index=MONTHS)
    fc = forecast(series, "month", until="2025-12-31")
    fig = charts.trend(df, "orders_count", target=200, forecast=fc, title="Orders")
    assert fig.layout.title.text == "Orders"
    main, upper, lower, mean, target = fig.data
    assert list(main.y) == values and list(pd.to_datetime(main.x)) == list(MONTHS)
    # the forecast and its band at 3 significant digits: a fit's further digits vary by CPU
    assert lower.fill == "tonexty" and list(upper.y) == [float(f"{u:.3g}") for u in fc.points["upper"]]
    assert mean.line.dash == "dot" and mean.y[0] == values[-1]  # the forecast starts at the last value
    assert list(target.y) == [200.0, 200.0] and pd.Timestamp(target.x[-1]) == fc.points["period_start"].max()
    assert trace_types(fig) == {"scatter"} and no_hovertemplate(fig)


def test_trend_default_title_unit_and_target_path():
    df = tidy({"bounce_rate": [0.5] * 6})
    path = pd.Series([0.48, 0.45], index=pd.to_datetime(["2024-03-01", "2024-06-01"]))
    fig = charts.trend(df, "bounce_rate", target=path)
    assert fig.layout.title.text == "Bounce rate"  # catalog name
    assert fig.layout.yaxis.tickformat == ".2~%"
    assert fig.data[-1].line.shape == "hv" and list(fig.data[-1].y) == [0.48, 0.45]


def test_trend_one_line_per_member_when_broken_down():
    df = tidy({"orders_count": [1.0, 2.0, 3.0]}, by={"region": ["east", "west"]})
    fig = charts.trend(df, "orders_count")
    assert [t.name for t in fig.data] == ["east", "west"]
    assert list(fig.data[1].y) == [2.0, 4.0, 6.0]


def test_trend_without_data_says_so():
    df = tidy({"orders_count": [np.nan, np.nan]})
    fig = charts.trend(df, "orders_count")
    assert not fig.data and fig.layout.annotations[0].text == "No data for this selection"


def test_breakdown_latest_period_sorted():
    df = tidy({"orders_count": [1.0, 2.0, 3.0]}, by={"region": ["east", "west", "north"]})
    fig = charts.breakdown(df, "orders_count", "region")
    (bar,) = fig.data
    assert bar.type == "bar" and bar.orientation == "h"
    assert list(bar.y) == ["east", "west", "north"] and list(bar.x) == [3.0, 6.0, 9.0]  # largest on top
    assert fig.layout.title.text == "Orders by region, Mar 2024"  # the period as people read it
    first = charts.breakdown(df, "orders_count", "region", period="2024-01-15")
    assert list(first.data[0].x) == [1.0, 2.0, 3.0] and first.layout.title.text.endswith("Jan 2024")
    named = tidy({"orders_count": [1.0, 2.0, 3.0]}, by={"product_category": ["a", "b", "c"]})
    assert "by product category" in charts.breakdown(named, "orders_count", "product_category").layout.title.text


def test_breakdown_without_the_dimension():
    fig = charts.breakdown(tidy({"orders_count": [1.0]}), "orders_count", "region")
    assert not fig.data and "Not broken down by region" in fig.layout.annotations[0].text


def test_benchmark_position_external_on_a_common_percentile_scale(tmp_path):
    table = tmp_path / "bench.csv"
    table.write_text(
        "metric,industry,segment,p25,p50,p75,unit,source,year\n"
        "bounce_rate,,,0.3,0.4,0.5,percent,Survey,2024\n"
        "average_session_duration,,,100,150,200,duration,Survey,2024\n"
    )
    values = tidy({"bounce_rate": [0.45], "average_session_duration": [175.0]})
    ext = benchmark.external(values, table)
    fig = charts.benchmark_position(ext)
    band, median, value = fig.data
    assert (band.type, median.type, value.type) == ("bar", "scatter", "scatter")
    assert list(value.x) == list(ext["percentile"]) and list(median.x) == [50, 50]
    assert value.marker.color == ("#b3261e", "#1b7f3b")  # bounce above median is worse; duration above is better
    assert "45.0% (median 40.0%)" in value.text[0]


def test_benchmark_position_peers_and_history():
    df = ratio_by_region()
    peers = benchmark.peers(df, "region")
    fig = charts.benchmark_position(peers)
    assert trace_types(fig) == {"bar"} and sorted(fig.data[0].y) == ["east", "west"]
    assert fig.layout.shapes[0].x0 == pytest.approx(peers["median"].iloc[0], rel=1e-4)  # display precision
    hist = benchmark.history(tidy({"orders_count": [float(i) for i in range(1, 14)]}))
    fig = charts.benchmark_position(hist)
    assert [t.name for t in fig.data] == ["best before", "last year", "latest"]
    assert list(fig.data[2].x) == [13.0] and list(fig.data[1].x) == [1.0]


def test_benchmark_position_refuses_other_frames():
    with pytest.raises(ValueError, match=r"needs a frame from kpinb\.benchmark"):
        charts.benchmark_position(pd.DataFrame({"x": [1]}))


def test_drivers_bars_add_up_to_the_change_and_colour_by_direction():
    frame = drivers.dimension_contributions(ratio_by_region(), "conversion_rate", "2024-01", "2024-02")
    fig = charts.drivers(frame)
    (bar,) = fig.data
    # a rate's effects are drawn in percentage points, like their labels and the axis
    assert bar.type == "bar" and sum(bar.x) == pytest.approx(frame.attrs["change"] * 100, rel=1e-4)
    assert fig.layout.xaxis.ticksuffix == " pp" and "%" not in (fig.layout.xaxis.tickformat or "")
    assert all(t.endswith(" pp") for t in bar.text)
    assert all(" · " in label for label in bar.y)  # rate and mix per member
    colours = dict(zip(bar.x, bar.marker.color, strict=True))
    assert all((c == "#1b7f3b") == (x >= 0) for x, c in colours.items())
    lower = charts.drivers(frame, direction="lower_is_better")
    assert all((c == "#1b7f3b") == (x < 0) for x, c in zip(lower.data[0].x, lower.data[0].marker.color, strict=True))
    assert "2024-01-01 → 2024-02-01" in fig.layout.title.text and "pp" in fig.layout.title.text


def test_money_and_count_axes_never_show_milli_units():
    """d3's "~s" writes 0.5 as "500m": small amounts and counts get plain ticks, big ones 20k / 2M,
    amounts the plan's currency symbol, and every value axis a title naming its unit."""
    small = charts.trend(tidy({"orders_count": [0.2, 0.5, 1.4]}), "orders_count", unit="count")
    assert small.layout.yaxis.tickformat != "~s" and small.layout.yaxis.title.text == "count"
    big = charts.trend(tidy({"monthly_sales_revenue": [1.9e6, 2.1e6, 2.2e6]}), "monthly_sales_revenue", unit="EUR")
    assert big.layout.yaxis.tickformat == "~s" and big.layout.yaxis.tickprefix == "€"
    assert big.layout.yaxis.title.text == "EUR"
    # plotly puts a prefix before the sign ("$-5"): below zero the title alone names the currency
    loss = charts.trend(tidy({"net_profit": [-5.0, 3.0, 8.0]}), "net_profit", unit="USD")
    assert loss.layout.yaxis.tickprefix in (None, "") and loss.layout.yaxis.title.text == "USD"
    rate = charts.trend(tidy({"bounce_rate": [0.4, 0.5, 0.45]}), "bounce_rate", unit="percent")
    assert "%" in rate.layout.yaxis.tickformat and rate.layout.yaxis.title.text == "%"


def test_drivers_with_nothing_to_split_shows_the_note():
    frame = pd.DataFrame({"driver": ["a"], "effect": [np.nan], "note": ["the overall denominator is 0"]})
    fig = charts.drivers(frame)
    assert not fig.data and fig.layout.annotations[0].text == "the overall denominator is 0"


def test_sparkline_marks_the_last_value():
    fig = charts.sparkline(pd.Series([1.0, 3.0, np.nan, 2.0]))
    _line, dot = fig.data
    assert list(dot.y) == [2.0] and fig.layout.xaxis.visible is False and fig.layout.height == 60


@pytest.mark.parametrize(
    "make",
    [
        lambda: charts.trend(tidy({"orders_count": [1.0, 2.0]}), "orders_count", target=3),
        lambda: charts.breakdown(tidy({"orders_count": [1.0]}, by={"region": ["a", "b"]}), "orders_count", "region"),
        lambda: charts.benchmark_position(benchmark.peers(ratio_by_region(), "region")),
        lambda: charts.drivers(drivers.ratio_effects(ratio_total(), "conversion_rate", "2024-01", "2024-02")),
        lambda: charts.sparkline(pd.Series([1.0, 2.0])),
        lambda: charts.empty_figure("t", "m"),
    ],
)
def test_only_scatter_and_bar_traces_and_no_hover_templates(make):
    fig = make()
    assert trace_types(fig) <= {"scatter", "bar"}
    assert no_hovertemplate(fig)
    assert isinstance(fig, go.Figure) and not isinstance(fig, go.FigureWidget)


def test_figure_html_inlines_plotly_js_only_when_asked():
    fig = charts.sparkline(pd.Series([1.0, 2.0]))
    assert "plotly.js v" in charts.figure_html(fig, include_plotlyjs=True)
    fragment = charts.figure_html(fig)
    assert "plotly.js v" not in fragment and "<script src=" not in fragment


def test_text_from_data_is_escaped_in_html_output():
    evil = "<script>alert(1)</script>"
    df = tidy({"orders_count": [1.0]}, by={"region": [evil]})
    html = charts.figure_html(charts.breakdown(df, "orders_count", "region", title=evil))
    assert evil not in html


def test_trend_draws_periods_not_final_yet_apart():
    """A rate that settles late (leads not yet converted) reads as a collapse on a plain line: the
    periods after the last complete one are a grey dotted "not final yet" line, and the forecast
    goes on from the last final value."""
    df = tidy({"conversion_rate": [0.11, 0.12, 0.115, 0.06, 0.03]})
    df["complete"] = [True, True, True, False, False]
    fc = pd.DataFrame({"period_start": MONTHS[5:7], "mean": [0.12, 0.12], "lower": [0.1, 0.1], "upper": [0.14, 0.14]})
    fig = charts.trend(df, "conversion_rate", unit="percent", forecast=fc)
    line, unsettled = fig.data[0], next(t for t in fig.data if t.name == "not final yet")
    assert list(line.y) == [0.11, 0.12, 0.115]
    assert list(unsettled.y) == [0.115, 0.06, 0.03] and unsettled.line.dash == "dot"
    forecast = next(t for t in fig.data if t.name == "forecast")
    assert forecast.y[0] == 0.115  # from the last final value, not from the unsettled 3%
    plain = tidy({"conversion_rate": [0.11, 0.12]})
    assert [t.name for t in charts.trend(plain, "conversion_rate").data] == ["Conversion rate"]


def test_driver_bars_leave_room_for_their_labels_and_a_zero_has_no_sign():
    """A short bar's label sits outside it: the axis reaches a quarter of the span past the longest
    bars on each side, so the label stays inside the chart; an effect that rounds to zero reads
    "0.00 pp", not "−0.00 pp"."""
    frame = pd.DataFrame({"driver": ["paid", "social", "direct"], "component": "rate",
                          "effect": [0.0005, -0.00001, -0.0039]})  # fmt: skip
    frame.attrs.update(metric="conversion_rate")
    fig = charts.drivers(frame, unit="percent")
    assert list(fig.data[0].text) == ["−0.39 pp", "0.00 pp", "+0.05 pp"]
    lo, hi = fig.layout.xaxis.range
    assert lo == pytest.approx(-0.39 - 0.25 * 0.44) and hi == pytest.approx(0.05 + 0.25 * 0.44)
    only_up = charts.drivers(frame.assign(effect=[3.0, 1.0, 2.0]), unit="USD")
    assert list(only_up.layout.xaxis.range) == [0.0, pytest.approx(3.75)]
