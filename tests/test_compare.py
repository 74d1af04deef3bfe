"""Period-over-period and year-over-year change: exact values at year/quarter boundaries, gaps, zeros."""

import math

import numpy as np
import pandas as pd
import pytest

from kpinb.analytics.compare import (
    CHANGE_COLUMNS,
    changes,
    latest_complete_period,
    period_end,
    period_label,
    relative_change,
    vs_baseline,
)
from kpinb.definitions.model import Metric
from kpinb.engine.query import compute
from kpinb.errors import DataError


def tidy(values: dict, grain: str, metric: str = "m", **dims) -> pd.DataFrame:
    """A tidy frame like the engine's from {period_start: value}."""
    df = pd.DataFrame({
        "metric": metric,
        "period_start": pd.to_datetime(list(values)),
        **dims,
        "value": [float(v) for v in values.values()],
        "numerator": np.nan,
        "denominator": np.nan,
    })  # fmt: skip
    df.attrs.update(grain=grain, by=tuple(dims))
    return df


def row(df: pd.DataFrame, when: str, **match) -> pd.Series:
    sel = df["period_start"] == pd.Timestamp(when)
    for k, v in match.items():
        sel &= df[k] == v
    assert sel.sum() == 1
    return df[sel].iloc[0]


# 2023-11 .. 2025-02: a year boundary twice, a zero in 2024-06 and a gap in 2024-12.
MONTHLY = {
    "2023-11-01": 80, "2023-12-01": 90, "2024-01-01": 100, "2024-02-01": 110, "2024-03-01": 120,
    "2024-04-01": 130, "2024-05-01": 140, "2024-06-01": 0, "2024-07-01": 160, "2024-08-01": 170,
    "2024-09-01": 180, "2024-10-01": 190, "2024-11-01": 200, "2024-12-01": math.nan,
    "2025-01-01": 125, "2025-02-01": 99,
}  # fmt: skip


def test_monthly_changes_across_year_boundary_gap_and_zero():
    out = changes(tidy(MONTHLY, "month"))
    assert tuple(out.columns[-6:]) == CHANGE_COLUMNS
    jan24 = row(out, "2024-01-01")  # previous is December of the year before
    assert (jan24.previous, jan24.change_abs) == (90.0, 10.0)
    assert jan24.change_pct == pytest.approx(100 / 9)
    assert math.isnan(jan24.last_year) and math.isnan(jan24.yoy_pct)  # 2023-01 is not in the frame

    dec24 = row(out, "2024-12-01")  # the gap itself
    assert dec24.previous == 200.0
    assert math.isnan(dec24.change_abs) and math.isnan(dec24.change_pct)
    assert dec24.last_year == 90.0 and math.isnan(dec24.yoy_abs)

    jan25 = row(out, "2025-01-01")  # after the gap: no previous, but last year is there
    assert math.isnan(jan25.previous) and math.isnan(jan25.change_pct)
    assert (jan25.last_year, jan25.yoy_abs, jan25.yoy_pct) == (100.0, 25.0, 25.0)

    feb25 = row(out, "2025-02-01")
    assert (feb25.previous, feb25.change_abs, feb25.change_pct) == (125.0, -26.0, -20.8)
    assert feb25.yoy_pct == pytest.approx(-10.0)

    jul24 = row(out, "2024-07-01")  # previous is 0: absolute change yes, relative change NaN, never inf
    assert (jul24.previous, jul24.change_abs) == (0.0, 160.0)
    assert math.isnan(jul24.change_pct)
    assert not np.isinf(out[["change_pct", "yoy_pct"]].to_numpy()).any()

    nov23 = row(out, "2023-11-01")  # first period
    assert math.isnan(nov23.previous) and math.isnan(nov23.change_pct)


def test_negative_previous_divides_by_its_absolute_value():
    out = changes(tidy({"2025-01-01": -10, "2025-02-01": -5, "2025-03-01": -15}, "month"))
    assert out["change_pct"].tolist()[1:] == [50.0, -200.0]
    assert relative_change(-5, -10) == 50.0
    assert math.isnan(relative_change(3, 0)) and math.isnan(relative_change(None, 1))


def test_quarter_boundary_with_the_real_engine():
    orders = pd.DataFrame({
        "order_date": pd.to_datetime([
            "2023-12-31 23:59", "2024-01-01 00:00", "2024-03-31 23:59", "2024-04-01 00:00",
            "2024-06-30 12:00", "2024-12-31 22:00", "2025-01-01 01:00", "2025-02-15 00:00",
        ]),
        "revenue": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0],
    })  # fmt: skip
    rev = Metric(id="rev", name="Revenue", source="orders", expr="sum(revenue)", unit="currency")
    df = compute([rev], sources={"orders": orders}, grain="quarter")
    out = changes(df)
    got = out.set_index("period_start")[["value", "previous", "change_pct", "last_year", "yoy_pct"]]
    q = {str(k.date()): v for k, v in got.to_dict("index").items()}
    assert list(q) == ["2023-10-01", "2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01", "2025-01-01"]
    assert q["2024-01-01"]["value"] == 50.0 and q["2024-01-01"]["previous"] == 10.0
    assert q["2024-01-01"]["change_pct"] == 400.0
    assert q["2024-04-01"]["value"] == 90.0 and q["2024-04-01"]["change_pct"] == 80.0
    assert math.isnan(q["2024-07-01"]["value"])  # an empty quarter stays empty, and so does the next change
    assert math.isnan(q["2024-10-01"]["previous"]) and math.isnan(q["2024-10-01"]["change_pct"])
    assert q["2025-01-01"]["value"] == 150.0 and q["2025-01-01"]["previous"] == 60.0
    assert q["2025-01-01"]["last_year"] == 50.0 and q["2025-01-01"]["yoy_pct"] == 200.0
    assert out.attrs["grain"] == "quarter"


def test_week_grain_compares_with_52_weeks_earlier_same_weekday():
    weeks = pd.date_range("2024-01-01", periods=60, freq="W-MON")  # 2024-01-01 is a Monday
    out = changes(tidy({str(w.date()): i for i, w in enumerate(weeks)}, "week"))
    r = row(out, "2025-01-06")
    assert r.previous == r.value - 1
    assert r.last_year == 1.0  # 2025-01-06 - 364 days = 2024-01-08 (the second week, value 1)
    assert pd.Timestamp("2025-01-06") - pd.Timedelta(days=364) == pd.Timestamp("2024-01-08")
    assert r.yoy_abs == 52.0


def test_day_grain_goes_back_364_days():
    days = pd.date_range("2024-01-01", "2025-01-10", freq="D")
    out = changes(tidy({str(d.date()): i for i, d in enumerate(days)}, "day"))
    r = row(out, "2025-01-01")  # a Wednesday, compared with Wednesday 2024-01-03
    assert r.previous == r.value - 1 and r.last_year == 2.0 and r.yoy_abs == 364.0


def test_dimensions_do_not_mix_and_missing_rows_count_as_gaps():
    a = tidy({"2025-01-01": 10, "2025-02-01": 20, "2025-03-01": 30}, "month", region="a")
    b = tidy({"2025-01-01": 1, "2025-03-01": 4}, "month", region="b")  # no February row at all
    df = pd.concat([a, b], ignore_index=True)
    df.attrs.update(grain="month", by=("region",))
    out = changes(df)
    assert row(out, "2025-03-01", region="a").previous == 20.0
    assert math.isnan(row(out, "2025-03-01", region="b").previous)
    assert row(out, "2025-02-01", region="a").change_pct == 100.0
    assert list(out.index) == list(df.index) and out.attrs["by"] == ("region",)


def test_changes_is_idempotent_and_leaves_input_alone():
    df = tidy(MONTHLY, "month")
    before = df.copy()
    once = changes(df)
    twice = changes(once)
    pd.testing.assert_frame_equal(once, twice)
    pd.testing.assert_frame_equal(df, before)


def test_vs_baseline_with_zero_and_per_metric_baselines():
    df = pd.concat(
        [
            tidy({"2025-01-01": 5, "2025-02-01": 15}, "month", metric="a"),
            tidy({"2025-01-01": 2}, "month", metric="b"),
        ],
        ignore_index=True,
    )
    df.attrs.update(grain="month", by=())
    out = vs_baseline(df, {"a": 10.0, "b": 0.0})
    assert out["baseline"].tolist() == [10.0, 10.0, 0.0]
    assert out["vs_baseline_abs"].tolist() == [-5.0, 5.0, 2.0]
    assert out["vs_baseline_pct"].tolist()[:2] == [-50.0, 50.0]
    assert math.isnan(out["vs_baseline_pct"].iloc[2])  # a zero baseline gives no percentage
    assert vs_baseline(df, {"z": 1.0})["baseline"].isna().all()
    assert vs_baseline(df, 4.0)["vs_baseline_pct"].tolist() == [25.0, 275.0, -50.0]
    assert vs_baseline(df, None)["vs_baseline_abs"].isna().all()


def test_frame_problems_are_data_errors_with_the_fix():
    df = tidy(MONTHLY, "month")
    no_grain = df.copy()
    no_grain.attrs.clear()
    with pytest.raises(DataError, match="Pass grain='month'"):
        changes(no_grain)
    assert row(changes(no_grain, grain="month"), "2024-02-01").previous == 100.0
    dup = pd.concat([df, df.iloc[[0]]])
    dup.attrs.update(grain="month", by=())
    with pytest.raises(DataError, match="more than one row"):
        changes(dup)
    with pytest.raises(DataError, match="no column"):
        changes(df.drop(columns="value"))
    with pytest.raises(DataError, match="not one of day"):
        changes(df, grain="fortnight")


def test_period_helpers():
    assert period_end("2024-02-01", "month") == pd.Timestamp("2024-02-29")
    assert period_end("2024-10-01", "quarter") == pd.Timestamp("2024-12-31")
    assert period_end("2024-12-30", "week") == pd.Timestamp("2025-01-05")
    assert [period_label("2025-04-01", g) for g in ("day", "month", "quarter", "year")] == [
        "2025-04-01",
        "2025-04",
        "2025-Q2",
        "2025",
    ]
    assert period_label("2024-12-30", "week") == "week of 2024-12-30"


def test_latest_complete_period():
    df = tidy({"2025-04-01": 1, "2025-05-01": 2, "2025-06-01": 3, "2025-07-01": math.nan}, "month")
    # default: the last period with a value, when it has ended by today
    assert latest_complete_period(df, today=pd.Timestamp("2026-01-01").date()) == pd.Timestamp("2025-06-01")
    # ...but a period still running today is not judged unless asked
    assert latest_complete_period(df, today=pd.Timestamp("2025-06-20").date()) == pd.Timestamp("2025-05-01")
    assert latest_complete_period(df, include_partial=True) == pd.Timestamp("2025-06-01")
    # as_of: the latest period ended by then, data or not
    assert latest_complete_period(df, as_of="2025-06-30") == pd.Timestamp("2025-06-01")
    assert latest_complete_period(df, as_of="2025-06-29") == pd.Timestamp("2025-05-01")
    assert latest_complete_period(df, as_of="2025-07-31") == pd.Timestamp("2025-07-01")
    assert latest_complete_period(df, as_of="2025-07-15", include_partial=True) == pd.Timestamp("2025-07-01")
    q = tidy({"2024-10-01": 1, "2025-01-01": 2}, "quarter")
    assert latest_complete_period(q, as_of="2025-01-15") == pd.Timestamp("2024-10-01")
    assert latest_complete_period(tidy({"2025-01-01": math.nan}, "month")) is None
    with pytest.raises(DataError, match="not a date"):
        latest_complete_period(df, as_of="soon")
