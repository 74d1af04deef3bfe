"""Benchmarks: the external table (checked, honest), peers within a dimension, own history."""

import math
from pathlib import Path

import pandas as pd
import pytest

from kpinb import DataError
from kpinb.analytics.benchmark import (
    BENCHMARK_COLUMNS,
    external,
    history,
    load_benchmarks,
    peers,
    percentile_position,
)
from kpinb.definitions import catalog
from kpinb.engine.query import compute

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "benchmarks.csv"


def sessions(month: str, region: str, n: int, converted: int, bounced: int) -> list[dict]:
    return [
        {"session_start": pd.Timestamp(f"{month}-{i % 28 + 1:02d}"), "session_id": f"{month}-{region}-{i}",
         "region": region, "converted": i < converted, "bounced": i >= n - bounced}
        for i in range(n)
    ]  # fmt: skip


# January: 10 sessions, 2 converted, 5 bounced. February: 10 sessions, 3 converted (0.3), 4 bounced (0.4);
# by region in February: north 2/4 converted, 1/4 bounced; south 1/4, 2/4; west 0/2, 1/2.
WEB = pd.DataFrame(
    sessions("2025-01", "north", 10, 2, 5)
    + sessions("2025-02", "north", 4, 2, 1) + sessions("2025-02", "south", 4, 1, 2)
    + sessions("2025-02", "west", 2, 0, 1)
)  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bench.csv"
    p.write_text(text, encoding="utf-8")
    return p


HEADER = "metric,industry,segment,p25,p50,p75,unit,source,year,note\n"


# --- the table -------------------------------------------------------------------------------


def test_shipped_table_is_valid_and_honestly_labelled_illustrative():
    table = load_benchmarks(SHIPPED)
    known = catalog.metrics()
    assert 15 <= len(table) <= 25
    assert set(table["metric"]) <= set(known)
    for row in table.itertuples():
        assert row.unit == known[row.metric].unit.value
        assert row.p25 <= row.p50 <= row.p75
        # no figure may pose as industry data: every row is a labelled placeholder
        assert row.source == "illustrative"
        assert "illustrative placeholder" in row.note and "replace" in row.note
    lower = {m for m in table["metric"] if known[m].direction.value == "lower_is_better"}
    assert {"bounce_rate", "customer_churn_rate", "first_response_time"} <= lower


def test_load_benchmarks_types_and_optional_columns(tmp_path):
    path = write(tmp_path, "metric,industry,segment,p25,p50,p75,unit,source,year\n"
                           "bounce_rate,retail,all,0.3,0.45,0.6,percent,Some Survey 2024,2024\n")  # fmt: skip
    table = load_benchmarks(path)
    assert [c for c in table.columns] == [*BENCHMARK_COLUMNS, "note"]
    assert table.loc[0, "p50"] == 0.45 and table.loc[0, "year"] == 2024 and table.loc[0, "note"] == ""
    assert str(table["year"].dtype) == "Int64" and table.attrs["path"] == str(path)


def test_missing_columns_name_the_file_and_the_columns(tmp_path):
    path = write(tmp_path, "metric,industry,p25,p50,p75,unit,source\nbounce_rate,all,0.3,0.4,0.5,percent,x\n")
    with pytest.raises(DataError) as err:
        load_benchmarks(path)
    assert str(err.value).startswith(f"{path}:1: missing column(s) segment, year.")


def test_every_bad_row_is_reported_at_once_with_file_line_and_column(tmp_path):
    path = write(tmp_path, HEADER
                 + "bounce_rate,all,all,0.3,abc,0.6,percent,illustrative,,\n"        # line 2
                 + "conversion_rate,all,all,0.3,0.2,0.4,percent,illustrative,,\n"    # line 3
                 + "email_open_rate,all,all,15,22,30,percent,illustrative,,\n"       # line 4
                 + "unsubscribe_rate,all,all,0.001,0.002,0.005,percent,,20x4,\n"     # line 5
                 + "time_to_hire,all,all,30,42,60,percentage,illustrative,,\n")      # line 6  # fmt: skip
    with pytest.raises(DataError) as err:
        load_benchmarks(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(f"{path}:2: column p50: 'abc' is not a number.")
    assert lines[1].startswith(f"{path}:3: column p25: percentiles out of order (p25=0.3, p50=0.2, p75=0.4).")
    assert "p25 <= p50 <= p75, also for lower-is-better metrics" in lines[1]
    assert lines[2].startswith(f"{path}:4: column unit: percent values look like percentage points")
    assert lines[3].startswith(f"{path}:5: column source: is empty.")
    assert lines[4].startswith(f"{path}:5: column year: '20x4' is not a year.")
    assert lines[5].startswith(f"{path}:6: column unit: 'percentage' is not a unit.")


def test_unit_must_match_the_catalog(tmp_path):
    path = write(tmp_path, HEADER + "net_promoter_score,all,all,0,0.3,0.5,percent,illustrative,,\n")
    with pytest.raises(DataError, match=r":2: column unit: 'percent' differs from the catalog's 'score'"):
        load_benchmarks(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such benchmark file"):
        load_benchmarks(tmp_path / "nope.csv")


# --- external --------------------------------------------------------------------------------


def test_percentile_position_interpolates_and_clips_the_tails():
    assert percentile_position(0.3, 0.2, 0.4, 0.5) == 37.5
    assert percentile_position(0.45, 0.2, 0.4, 0.5) == pytest.approx(62.5)
    assert percentile_position(0.4, 0.2, 0.4, 0.5) == 50.0
    assert percentile_position(0.1, 0.2, 0.4, 0.5) == pytest.approx(12.5)  # below p25: slope of p25..p50
    assert percentile_position(0.55, 0.2, 0.4, 0.5) == pytest.approx(87.5)  # above p75: slope of p50..p75
    assert percentile_position(-5.0, 0.2, 0.4, 0.5) == 0.0
    assert percentile_position(9.0, 0.2, 0.4, 0.5) == 100.0
    assert percentile_position(0.2, 0.2, 0.2, 0.5) == 37.5  # tied quartiles: their mean position
    assert math.isnan(percentile_position(math.nan, 0.2, 0.4, 0.5))


def test_external_compares_the_latest_value_direction_aware(tmp_path):
    path = write(tmp_path, HEADER
                 + "conversion_rate,retail,all,0.1,0.2,0.4,percent,Survey A,2024,\n"
                 + "conversion_rate,saas,all,0.01,0.02,0.03,percent,Survey B,2024,\n"
                 + "bounce_rate,retail,all,0.2,0.4,0.5,percent,old,2023,\n"
                 + "bounce_rate,retail,all,0.3,0.5,0.6,percent,illustrative,2024,placeholder\n"
                 + "email_open_rate,retail,all,0.15,0.22,0.3,percent,illustrative,,\n")  # fmt: skip
    values = compute(["conversion_rate", "bounce_rate"], sources={"web_sessions": WEB})
    out = external(values, path, industry="Retail").set_index("metric")
    assert list(out.index) == ["conversion_rate", "bounce_rate"]  # metrics without a value are left out
    conv, bounce = out.loc["conversion_rate"], out.loc["bounce_rate"]
    assert conv.period_start == pd.Timestamp("2025-02-01") and conv.value == pytest.approx(0.3)
    # higher is better: 0.3 is halfway from p50 0.2 to p75 0.4; the top quartile is p75
    assert conv.percentile == pytest.approx(62.5) and conv.better_than_pct == pytest.approx(62.5)
    assert conv.gap_to_median == pytest.approx(0.1) and conv.gap_to_top_quartile == pytest.approx(-0.1)
    assert (conv.source, conv.year, conv.illustrative) == ("Survey A", 2024, False)
    # lower is better (the 2024 row wins over 2023): 0.4 sits at the 37.5th percentile by value, so it
    # beats 62.5 %; 0.1 under the median is +0.1; the top quartile is p25 = 0.3, 0.1 away: -0.1
    assert bounce.p50 == 0.5 and bounce.direction == "lower_is_better"
    assert bounce.percentile == pytest.approx(37.5) and bounce.better_than_pct == pytest.approx(62.5)
    assert bounce.gap_to_median == pytest.approx(0.1) and bounce.gap_to_top_quartile == pytest.approx(-0.1)
    assert bounce.illustrative and bounce.note == "placeholder"


def test_external_asks_to_choose_when_several_industries_match(tmp_path):
    path = write(tmp_path, HEADER
                 + "conversion_rate,retail,all,0.1,0.2,0.4,percent,A,2024,\n"
                 + "conversion_rate,saas,all,0.01,0.02,0.03,percent,B,2024,\n")  # fmt: skip
    values = compute(["conversion_rate"], sources={"web_sessions": WEB})
    with pytest.raises(DataError, match=r"'conversion_rate' \(industry/segment: retail/all, saas/all\)"):
        external(values, path)
    assert external(values, path, industry="saas")["p50"].tolist() == [0.02]


def test_external_works_with_the_shipped_table():
    values = compute(["conversion_rate", "bounce_rate"], sources={"web_sessions": WEB})
    out = external(values, SHIPPED)
    assert out["illustrative"].all() and set(out["metric"]) == {"conversion_rate", "bounce_rate"}


# --- peers -----------------------------------------------------------------------------------


def test_peers_rank_a_lower_is_better_metric_and_compare_with_the_overall():
    by_region = compute(["bounce_rate"], sources={"web_sessions": WEB}, by=["region"])
    overall = compute(["bounce_rate"], sources={"web_sessions": WEB})
    out = peers(by_region, "region", overall=overall)
    # February: north 0.25, south 0.5, west 0.5 (lower is better); overall 4 / 10 = 0.4
    assert out["region"].tolist() == ["north", "south", "west"]
    assert out["rank"].tolist() == [1, 2, 2] and (out["n_peers"] == 3).all()
    assert out["percentile"].tolist() == [100.0, 25.0, 25.0]  # beats both; beats none, ties one
    assert (out["best"] == 0.25).all() and (out["median"] == 0.5).all()
    assert out["gap_to_best"].tolist() == [0.0, -0.25, -0.25]
    assert out["gap_to_median"].tolist() == [0.25, 0.0, 0.0]
    assert out["gap_to_overall"].tolist() == pytest.approx([0.15, -0.1, -0.1])
    assert (out["overall_kind"] == "given").all()
    assert (out["period_start"] == pd.Timestamp("2025-02-01")).all()


def test_peers_default_overall_is_the_median_and_members_without_data_have_no_rank():
    by_region = compute(["conversion_rate"], sources={"web_sessions": WEB}, by=["region"])
    out = peers(by_region, "region", period="2025-01-20")
    # January has only north (2 / 10); south and west have no sessions then
    assert out["region"].tolist() == ["north", "south", "west"]
    assert out["rank"].tolist()[0] == 1 and out["rank"].isna().tolist() == [False, True, True]
    assert math.isnan(out["percentile"].iloc[0])  # no one to compare with
    assert out["overall"].iloc[0] == pytest.approx(0.2) and out["overall_kind"].iloc[0] == "median_of_members"


def test_peers_needs_the_frame_broken_down_by_that_dimension():
    with pytest.raises(DataError, match=r"Compute it with by=\['region'\]"):
        peers(compute(["bounce_rate"], sources={"web_sessions": WEB}), "region")


# --- own history -----------------------------------------------------------------------------

# 20 sessions a month; bounced: 2024-01 12, 2024-02 10, 2024-06 6, 2025-01 9, 2025-02 8
BOUNCED = {"2024-01": 12, "2024-02": 10, "2024-06": 6, "2025-01": 9, "2025-02": 8}
HISTORY = pd.DataFrame([row for month, b in BOUNCED.items() for row in sessions(month, "north", 20, 0, b)])


def test_history_against_last_year_and_the_best_period_lower_is_better():
    out = history(compute(["bounce_rate"], sources={"web_sessions": HISTORY}))
    row = out.iloc[0]
    assert row.period_start == pd.Timestamp("2025-02-01") and row.value == pytest.approx(0.4)
    assert row.last_year_period == pd.Timestamp("2024-02-01") and row.last_year_value == pytest.approx(0.5)
    assert row.gap_to_last_year == pytest.approx(0.1) and row.gap_to_last_year_pct == pytest.approx(20.0)
    assert row.best_period == pd.Timestamp("2024-06-01") and row.best_value == pytest.approx(0.3)
    assert row.gap_to_best == pytest.approx(-0.1)


def test_history_of_a_given_period_and_a_higher_is_better_metric():
    df = compute(["bounce_rate", "conversion_rate"], sources={"web_sessions": HISTORY})
    out = history(df, period="2025-01-31", directions={"bounce_rate": "higher_is_better"}).set_index("metric")
    jan = out.loc["bounce_rate"]
    # read as higher-is-better on purpose: 0.45 vs 0.6 a year ago is worse; the best before is 0.6
    assert jan.value == pytest.approx(0.45) and jan.last_year_value == pytest.approx(0.6)
    assert jan.gap_to_last_year == pytest.approx(-0.15) and jan.gap_to_last_year_pct == pytest.approx(-25.0)
    assert jan.best_value == pytest.approx(0.6) and jan.best_period == pd.Timestamp("2024-01-01")
    conv = out.loc["conversion_rate"]
    assert conv.value == 0.0 and math.isnan(conv.gap_to_last_year_pct)  # last year 0: no percent


def test_unknown_metric_direction_must_be_given():
    from kpinb.definitions.model import Metric

    m = Metric(id="sessions_n", name="Sessions", source="web_sessions", expr="count(*)")
    df = compute([m], sources={"web_sessions": HISTORY})
    with pytest.raises(DataError, match=r"no direction is known for metric 'sessions_n'"):
        history(df)
    assert history(df, directions={"sessions_n": "higher_is_better"})["value"].tolist() == [20.0]
