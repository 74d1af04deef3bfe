"""Periods: the start of the period containing a date, and every period between two dates, in the
plan's calendar (its week start and fiscal year; DESIGN.md: fiscal years are named by the calendar
year they end in, weeks by their first day). The same cuts are compiled into SQL by
:func:`truncate`, so pandas and every backend agree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpinb.definitions.model import WEEKDAYS, Calendar, Grain

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STANDARD", "calendar_of", "fiscal_label", "freq", "period_ends", "period_start", "periods", "truncate"]

STANDARD = Calendar()
"""Weeks from Monday, years from January, timestamps with an offset in UTC."""

_MONTHS = ("DEC", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV")
_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def freq(grain: str | Grain, cal: Calendar | None = None) -> str:
    """The pandas period frequency of ``grain`` in ``cal`` (``Q-MAR``: quarters of a fiscal year
    starting in April; ``W-SAT``: weeks starting on Sunday)."""
    cal = cal or STANDARD
    g = Grain(grain).value
    if g == "week":
        return f"W-{_DAYS[(WEEKDAYS.index(cal.week_start) - 1) % 7]}"
    if g in ("quarter", "year"):
        return f"{'Q' if g == 'quarter' else 'Y'}-{_MONTHS[(cal.fiscal_year_start - 1) % 12]}"
    return {"day": "D", "month": "M"}[g]


def period_start(value: Any, grain: str | Grain, cal: Calendar | None = None) -> pd.Timestamp:
    """The first day of the period containing ``value``."""
    import pandas as pd

    return pd.Timestamp(value).to_period(freq(grain, cal)).start_time.normalize()


def periods(first: Any, last: Any, grain: str | Grain, cal: Calendar | None = None) -> pd.DatetimeIndex:
    """Every period start from the period of ``first`` to that of ``last``."""
    import pandas as pd

    f = freq(grain, cal)
    p = pd.period_range(pd.Timestamp(first).to_period(f), pd.Timestamp(last).to_period(f), freq=f)
    return pd.DatetimeIndex(p.start_time.normalize(), name="period_start")


def period_ends(starts: Any, grain: str | Grain, cal: Calendar | None = None) -> pd.DatetimeIndex:
    """The last day of each period starting on ``starts`` (midnight timestamps)."""
    import pandas as pd

    return pd.DatetimeIndex(pd.DatetimeIndex(starts).to_period(freq(grain, cal)).end_time.normalize())


def fiscal_label(start: Any, grain: str | Grain, cal: Calendar | None = None) -> str | None:
    """``FY2026`` / ``Q1 FY2026`` for a year or quarter of a fiscal year not starting in January;
    None otherwise (calendar years and quarters keep their usual names)."""
    import pandas as pd

    g = Grain(grain).value
    if cal is None or cal.fiscal_year_start == 1 or g not in ("quarter", "year"):
        return None
    p = pd.Timestamp(start).to_period(freq(g, cal))
    return f"FY{p.qyear}" if g == "year" else f"Q{p.quarter} FY{p.qyear}"


def truncate(column: Any, grain: str | Grain, cal: Calendar | None = None) -> Any:
    """The ibis expression of the period start of each (naive, local) timestamp in ``column``:
    ``date_trunc`` shifted by the week start or the fiscal year's first month, so it compiles to
    plain SQL on DuckDB, PostgreSQL and Spark alike."""
    import ibis

    cal = cal or STANDARD
    g = Grain(grain).value
    unit = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}[g]
    if g == "week" and cal.week_start != "monday":
        shift = ibis.interval(days=(7 - WEEKDAYS.index(cal.week_start)) % 7)
        return (column + shift).truncate("W") - shift
    if g in ("quarter", "year") and cal.fiscal_year_start != 1:
        shift = ibis.interval(months=cal.fiscal_year_start - 1)
        return (column - shift).truncate(unit) + shift
    return column.truncate(unit)


def calendar_of(df: Any) -> Calendar | None:
    """The calendar the engine's frame was computed in (``compute`` records it), if any."""
    cal = getattr(df, "attrs", {}).get("calendar")
    return cal if isinstance(cal, Calendar) else None
