"""Forecasts to the deadline: method choice, exact linear intervals, probabilities, pace, and a backtest."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from kpinb.analytics.compare import period_end
from kpinb.analytics.forecast import PACE_COLUMNS, Forecast, forecast, pace, probability_to_reach
from kpinb.definitions import catalog
from kpinb.definitions.analysis import dependencies
from kpinb.definitions.model import Direction
from kpinb.definitions.plan import parse_plan
from kpinb.engine.query import compute
from kpinb.errors import DataError, PlanError

NOISY = [101.0, 104.5, 103.0, 109.0, 110.5, 111.0, 116.0, 115.5, 121.0, 122.0]


def monthly(values, start="2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="MS"), dtype=float)


def ols_interval(x, y, x_new, level):
    """The textbook regression prediction interval, from statsmodels OLS (independent of kpinb)."""
    fit = sm.OLS(np.asarray(y, float), sm.add_constant(np.asarray(x, float))).fit()
    new = sm.add_constant(np.asarray(x_new, float), has_constant="add")
    frame = fit.get_prediction(new).summary_frame(alpha=1 - level)
    return frame["mean"].to_numpy(), frame["obs_ci_lower"].to_numpy(), frame["obs_ci_upper"].to_numpy()


def test_linear_trend_matches_the_regression_prediction_interval():
    fc = forecast(monthly(NOISY), "month", until="2025-02-15", level=0.8)  # Oct 2024 -> Feb 2025
    assert fc.method == "linear"
    months = fc.points["period_start"].dt.strftime("%Y-%m").tolist()
    assert months == ["2024-11", "2024-12", "2025-01", "2025-02"]
    mean, lower, upper = ols_interval(range(10), NOISY, range(10, 14), 0.8)
    np.testing.assert_allclose(fc.points["mean"], mean)
    np.testing.assert_allclose(fc.points["lower"], lower)
    np.testing.assert_allclose(fc.points["upper"], upper)
    assert (fc.value_at_deadline, fc.lower, fc.upper) == pytest.approx((mean[-1], lower[-1], upper[-1]))
    assert fc.deadline == pd.Timestamp("2025-02-01") and fc.last_observed == pd.Timestamp("2024-10-01")


def test_linear_trend_fits_observed_values_only_across_a_gap():
    values = NOISY.copy()
    values[4] = math.nan
    fc = forecast(monthly(values), "month", until="2024-12-31", level=0.9)
    x = [0, 1, 2, 3, 5, 6, 7, 8, 9]
    mean, lower, upper = ols_interval(x, [v for v in values if not math.isnan(v)], [10, 11], 0.9)
    np.testing.assert_allclose(fc.points[["mean", "lower", "upper"]].to_numpy().T, [mean, lower, upper])


def test_too_little_history_or_a_past_deadline():
    short = forecast(monthly([5.0, math.nan, 7.0]), "month", until="2024-12-31")
    assert short.method == "insufficient_history" and short.points.empty
    assert math.isnan(short.value_at_deadline)
    assert math.isnan(probability_to_reach(short, 10, Direction.higher_is_better))
    assert forecast(monthly([math.nan] * 4), "month", until="2024-12-31").method == "insufficient_history"

    past = forecast(monthly(NOISY), "month", until="2024-03-20")  # March 2024 is observed
    assert (past.method, past.value_at_deadline, past.lower, past.upper) == ("observed", 103.0, 103.0, 103.0)
    assert probability_to_reach(past, 100, Direction.higher_is_better) == 1.0
    assert probability_to_reach(past, 100, "lower_is_better") == 0.0


def seasonal(n: int, period: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 200 + 1.5 * t + 20 * np.sin(2 * np.pi * t / period) + rng.normal(0, 3, n)


def test_ets_with_two_seasonal_cycles_is_deterministic_and_quiet():
    s = monthly(seasonal(30, 12))  # Jan 2024 .. Jun 2026
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # statsmodels' chatter must not escape
        a = forecast(s, "month", until="2026-12-31", level=0.8)
        b = forecast(s, "month", until="2026-12-31", level=0.8)
    assert a.method == "ets" and len(a.points) == 6
    pd.testing.assert_frame_equal(a.points, b.points)
    assert (a.points["lower"] < a.points["mean"]).all() and (a.points["mean"] < a.points["upper"]).all()
    assert (a.points["upper"] - a.points["lower"]).is_monotonic_increasing  # uncertainty grows
    wider = forecast(s, "month", until="2026-12-31", level=0.95)
    assert wider.upper - wider.lower > a.upper - a.lower
    assert forecast(s.iloc[:23], "month", until="2026-12-31").method == "linear"  # under two cycles


@pytest.mark.parametrize(("grain", "freq", "n", "method"), [
    ("quarter", "QS", 13, "linear"), ("quarter", "QS", 14, "ets"), ("year", "YS", 30, "linear"),
    ("day", "D", 16, "ets"), ("week", "W-MON", 60, "linear"),
])  # fmt: skip
def test_method_follows_the_seasonal_cycle_of_the_grain(grain, freq, n, method):
    s = pd.Series(seasonal(n, 4), index=pd.date_range("2020-01-06", periods=n, freq=freq))
    fc = forecast(s, grain, until=s.index[-1] + pd.Timedelta(days=800))
    assert fc.method == method
    assert np.isfinite(fc.points[["mean", "lower", "upper"]].to_numpy()).all()


def test_probability_from_the_normal_approximation():
    z = 1.2815515655446004  # normal quantile of 0.9: an 80% interval is mean +- z sigma
    fc = Forecast("linear", pd.DataFrame(), 100.0, 100 - 10 * z, 100 + 10 * z, level=0.8)
    assert probability_to_reach(fc, 110, Direction.higher_is_better) == pytest.approx(0.15865525393145707)
    assert probability_to_reach(fc, 110, Direction.lower_is_better) == pytest.approx(0.8413447460685429)
    assert probability_to_reach(fc, 100, Direction.higher_is_better) == pytest.approx(0.5)
    assert math.isnan(probability_to_reach(fc, math.nan, Direction.higher_is_better))
    assert probability_to_reach(fc, 1, "higher_is_better") == pytest.approx(1.0)


def test_bad_input_is_named():
    with pytest.raises(DataError, match="2024-01-15 is not the start of a month"):
        forecast(
            pd.Series([1.0, 2.0, 3.0], index=pd.to_datetime(["2024-01-15", "2024-02-01", "2024-03-01"])),
            "month",
            until="2024-12-31",
        )
    with pytest.raises(PlanError, match="level=80"):
        forecast(monthly(NOISY), "month", until="2024-12-31", level=80)


PLAN = """\
name: Shop 2025
department: sales
sources:
  orders: {path: orders.parquet}
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(revenue), unit: currency}
  - {id: refund_rate, name: Refund rate, source: orders, expr: avg(refund), direction: lower_is_better}
  - {id: visits, name: Visits, source: orders, expr: count(*)}
kpis:
  - metric: revenue
    target: {value: 200, by: 2025-12-31}
  - metric: refund_rate
    target: {value: 0.05, by: 2025-12-31}
  - metric: visits
"""


def test_pace_per_kpi():
    months = pd.date_range("2025-01-01", "2025-06-01", freq="MS")
    df = pd.DataFrame({
        "metric": ["revenue"] * 6 + ["refund_rate"] * 6 + ["visits"] * 6,
        "period_start": list(months) * 3,
        "value": [100.0, 110, 120, 130, 140, 150] + [0.10, 0.11, 0.09, 0.10, 0.08, 0.09] + [1.0] * 6,
        "numerator": np.nan, "denominator": np.nan,
    })  # fmt: skip
    df.attrs.update(grain="month", by=())
    out = pace(parse_plan(PLAN), df)
    assert tuple(out.columns) == PACE_COLUMNS
    rev, refund, visits = (r for _, r in out.iterrows())
    assert (rev["period_start"], rev["value"], rev["deadline"]) == (
        pd.Timestamp("2025-06-01"),
        150.0,
        pd.Timestamp("2025-12-31"),
    )
    assert (rev["periods_left"], rev["method"], rev["target"]) == (6, "linear", 200.0)
    assert rev["forecast_at_deadline"] == pytest.approx(210.0)  # a straight line: +10 a month
    assert rev["upper"] - rev["lower"] == pytest.approx(0.0, abs=1e-6)
    assert rev["probability"] == 1.0
    assert rev["required_per_period"] == pytest.approx(50 / 6)

    mean, lower, upper = ols_interval(range(6), df["value"][6:12], [11], 0.8)
    # people read 3 significant digits of a forecast and whole percents of a probability
    assert (refund["forecast_at_deadline"], refund["lower"], refund["upper"]) == tuple(
        float(f"{x:.3g}") for x in (mean[0], lower[0], upper[0])
    )
    z = 1.2815515655446004
    sigma = (upper[0] - lower[0]) / (2 * z)
    expected = 0.5 * (1 + math.erf((0.05 - mean[0]) / (sigma * math.sqrt(2))))  # P(rate <= 5%)
    assert refund["probability"] == round(expected, 2)
    assert refund["required_per_period"] == pytest.approx((0.05 - 0.09) / 6)

    assert visits["method"] == "no_target"
    assert math.isnan(visits["probability"]) and pd.isna(visits["deadline"])

    after = pace(parse_plan(PLAN), df, as_of="2025-03-31", kpis=["revenue"])
    assert after.iloc[0][["value", "periods_left"]].tolist() == [120.0, 9]
    assert after.iloc[0]["forecast_at_deadline"] == pytest.approx(210)
    april = PLAN.replace("{value: 200, by: 2025-12-31}", "{value: 200, by: 2025-04-30}")
    done = pace(parse_plan(april), df, kpis=["revenue"]).iloc[0]
    assert (done["method"], done["periods_left"], done["forecast_at_deadline"], done["probability"]) == (
        "observed",
        0,
        130.0,
        0.0,
    )
    assert math.isnan(done["required_per_period"])


# --- backtest on the synthetic sample data ---------------------------------------------------------

SOURCES = ("orders", "web_sessions", "support_tickets")
HOLD_OUT = 6


@pytest.fixture(scope="module")
def sample_monthly(tmp_path_factory):
    sample_data = pytest.importorskip("kpinb.data.sample")
    paths = sample_data.generate(tmp_path_factory.mktemp("sample"), rows=20_000, seed=7)
    reg = catalog.metrics()
    ids = [m for m in reg if all(reg[d].derived or reg[d].source in SOURCES for d in dependencies([m], reg))]
    return compute(ids, sources={s: str(paths[s]) for s in SOURCES}, grain="month")


def test_backtest_interval_coverage_is_near_nominal(sample_monthly):
    """Each catalog metric on the orders, web and tickets samples: forecast the last 6 months."""
    covered = total = 0
    methods = set()
    for _, g in sample_monthly.groupby("metric"):
        s = pd.Series(g["value"].to_numpy(), index=pd.DatetimeIndex(g["period_start"])).sort_index()
        train, held = s.iloc[:-HOLD_OUT], s.iloc[-HOLD_OUT:]
        fc = forecast(train, "month", until=period_end(held.index[-1], "month"), level=0.8)
        methods.add(fc.method)
        points = fc.points.set_index("period_start")
        assert list(points.index) == list(held.index)
        seen = held.notna()
        inside = (held >= points["lower"]) & (held <= points["upper"])
        covered += int((inside & seen).sum())
        total += int(seen.sum())
    coverage = covered / total
    print(
        f"backtest: 80% intervals cover {covered}/{total} held-out monthly values = {coverage:.3f} "
        f"({sample_monthly['metric'].nunique()} metrics, methods {sorted(methods)})"
    )
    assert total >= 100
    assert methods == {"ets"}  # 30 months of history: two full yearly cycles
    assert 0.6 <= coverage <= 0.97
