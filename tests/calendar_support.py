"""Test support: events around period boundaries and their totals per period, computed with pandas.

The instants fall within hours of midnight, of month, quarter and year ends and of every weekday,
so a conversion to the wrong zone, a week starting on the wrong day or a fiscal year cut in the
wrong month moves rows between periods. The expectations use pandas' own time-zone conversion
and period frequencies, never kpinb's calendar, so a bug there cannot sit on both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kpinb.definitions.model import Calendar, Metric

CALENDARS = {
    "standard": Calendar(),
    "new-york-fy-april-sunday": Calendar(timezone="America/New_York", fiscal_year_start=4, week_start="sunday"),
    "kolkata-fy-july-saturday": Calendar(timezone="Asia/Kolkata", fiscal_year_start=7, week_start="saturday"),
    "auckland-fy-february-wednesday": Calendar(
        timezone="Pacific/Auckland", fiscal_year_start=2, week_start="wednesday"
    ),
}

_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def events(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    """Orders at instants (UTC) within ±14 hours of a midnight, across 2024-2025."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", "2025-12-31", freq="D", tz="UTC")
    at = days[rng.integers(0, len(days), n)] + pd.to_timedelta(rng.integers(-14 * 60, 14 * 60, n), unit="min")
    return pd.DataFrame(
        {
            "order_date": at.as_unit("us"),
            "revenue": rng.integers(1, 1000, n).astype("float64"),
            "customer_id": [f"c{i}" for i in rng.integers(0, 300, n)],
        }
    )


def metrics() -> list[Metric]:
    """A sum and an exact distinct count over the ``orders`` source."""
    return [
        Metric(id="total", name="Total", source="orders", expr="sum(revenue)"),
        Metric(id="buyers", name="Buyers", source="orders", expr="count_distinct(customer_id)"),
    ]


def _freq(grain: str, cal: Calendar) -> str:
    if grain == "week":
        return f"W-{_DAYS[(_WEEKDAYS.index(cal.week_start) - 1) % 7]}"
    if grain in ("quarter", "year"):
        end = (cal.fiscal_year_start - 2) % 12 + 1  # the month the fiscal year ends in
        return f"{'Q' if grain == 'quarter' else 'Y'}-{pd.Timestamp(2000, end, 1):%b}".upper()
    return {"day": "D", "month": "M"}[grain]


def expected(df: pd.DataFrame, grain: str, cal: Calendar) -> pd.DataFrame:
    """metric, period_start, value: each period's totals in the calendar's zone and cuts."""
    local = df["order_date"].dt.tz_convert(cal.timezone or "UTC").dt.tz_localize(None)
    period = local.dt.to_period(_freq(grain, cal)).dt.start_time.rename("period_start")
    g = df.groupby(period)
    out = pd.concat(
        [
            g["revenue"].sum().rename("value").reset_index().assign(metric="total"),
            g["customer_id"].nunique().astype("float64").rename("value").reset_index().assign(metric="buyers"),
        ]
    )
    return out[["metric", "period_start", "value"]].reset_index(drop=True)


def mismatches(want: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    """Rows where kpinb's frame differs from the expectation (periods without rows left out)."""
    got = got[got["value"].notna() & ~((got["metric"] == "total") & (got["value"] == 0))]
    a = want.set_index(["metric", "period_start"])["value"]
    b = got.assign(period_start=pd.to_datetime(got["period_start"])).set_index(["metric", "period_start"])["value"]
    out = [f"{k}: expected {a[k]}, got {b.get(k)}" for k in a.index if k not in b.index or abs(a[k] - b[k]) > 1e-9]
    out += [f"{k}: unexpected {b[k]}" for k in b.index if k not in a.index and b[k] != 0]
    return out


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    df.to_parquet(path, index=False)
    return path
