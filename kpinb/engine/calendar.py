"""Periods: the start of the period containing a date, and every period between two dates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpinb.definitions.model import Grain

if TYPE_CHECKING:
    import pandas as pd

_PERIOD_FREQ = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}


def period_start(value: Any, grain: str | Grain) -> pd.Timestamp:
    """The first day of the period containing ``value`` (weeks start on Monday)."""
    import pandas as pd

    g = Grain(grain).value
    return pd.Timestamp(value).to_period(_PERIOD_FREQ[g]).start_time.normalize()


def periods(first: Any, last: Any, grain: str | Grain) -> pd.DatetimeIndex:
    """Every period start from the period of ``first`` to that of ``last``."""
    import pandas as pd

    g = Grain(grain).value
    p = pd.period_range(period_start(first, g), period_start(last, g), freq=_PERIOD_FREQ[g])
    return pd.DatetimeIndex(p.start_time.normalize(), name="period_start")


def period_ends(starts: Any, grain: str | Grain) -> pd.DatetimeIndex:
    """The last day of each period starting on ``starts`` (midnight timestamps)."""
    import pandas as pd

    g = Grain(grain).value
    return pd.DatetimeIndex(pd.DatetimeIndex(starts).to_period(_PERIOD_FREQ[g]).end_time.normalize())
