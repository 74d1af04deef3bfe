"""Early warnings: the robust seasonal residual test, the scorecard's anomalies and the
``anomaly`` alerts, on hand-made series and on a shop written here."""

import math

import numpy as np
import pandas as pd
import pytest
from insight_support import write_shop

import kpinb
from kpinb import scorecard
from kpinb.analytics.anomaly import flag
from kpinb.outputs import alerts


def months(values, start="2023-01-01"):
    return pd.Series(values, pd.date_range(start, periods=len(values), freq="MS"), dtype="float64")


def test_a_jump_beyond_the_usual_residuals_is_unusual_and_a_usual_step_is_not():
    steps = [0.0, 3.0, -2.0, 4.0, -1.0, 2.0, -3.0, 1.0]  # residuals: median 0.5, MAD 2
    level = np.cumsum([100.0, *steps])
    usual = flag(months([*level, level[-1] + 4.0]), "month")
    assert usual is not None and not usual.unusual and usual.basis == "previous"
    odd = flag(months([*level, level[-1] + 20.0]), "month")
    assert odd.unusual and odd.expected == pytest.approx(level[-1] + 0.5)
    assert odd.score == pytest.approx((20.0 - 0.5) / (1.4826 * 2.0))


def test_the_season_is_expected_so_a_december_peak_every_year_is_not_unusual():
    year = [100.0] * 11 + [300.0]
    noise = [0.0, 1.0, -1.0, 2.0, -2.0, 1.0, 0.0, -1.0, 2.0, 1.0, -2.0, 0.0]
    values = [v + n * k for k in (1, 2, 3) for v, n in zip(year, noise, strict=True)]
    f = flag(months(values), "month")
    assert f.basis == "seasonal" and not f.unusual  # the third December against the second
    assert flag(months([*values[:-1], 150.0]), "month").unusual  # a December without its peak is


def test_too_little_history_or_a_missing_value_says_nothing():
    assert flag(months([1.0, 2.0, 3.0, 50.0]), "month") is None
    assert flag(months([1.0] * 10 + [math.nan]), "month") is None


def test_the_scorecard_flags_the_kpi_and_its_supporting_metric_and_alerts_warn(tmp_path):
    plan = kpinb.load_plan(write_shop(tmp_path))
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    found = {(a.metric, a.kpi): (a.value, a.expected) for a in card.anomalies()}
    assert found == {("revenue", "revenue"): (790.0, 405.0), ("units", "revenue"): (80.0, 60.0)}
    warned = alerts.anomalies(card)
    assert [(a.kind, a.severity, a.kpi) for a in warned] == [("anomaly", "warning", "revenue")] * 2
    assert warned[1].message == (
        "Units sold (supports Revenue) is unusual for 2025-08: 80 where about 60 was expected."
    )
    assert alerts.to_frame(warned)["threshold"].tolist() == [405.0, 60.0]
    assert all(a.kind != "anomaly" for a in alerts.from_scorecard(card))  # threshold alerts unchanged


def test_kpinb_alerts_adds_the_early_warnings_only_when_asked(tmp_path):
    import json
    import subprocess
    import sys

    plan = write_shop(tmp_path)
    cmd = [sys.executable, "-m", "kpinb.cli", "alerts", "--plan", str(plan), "--json"]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    asked = subprocess.run([*cmd, "--anomalies"], capture_output=True, text=True, timeout=300)
    assert plain.returncode == asked.returncode == 0, plain.stderr + asked.stderr  # warnings fail no job
    assert json.loads(plain.stdout) == []
    assert [(a["kind"], a["kpi"], a["value"]) for a in json.loads(asked.stdout)] == [
        ("anomaly", "revenue", 790.0), ("anomaly", "revenue", 80.0)
    ]  # fmt: skip
