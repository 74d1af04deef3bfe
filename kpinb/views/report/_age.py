"""How old a report's data is: the newest day its KPIs' sources cover, and a warning on top of the
page when that is more than two periods of the report's grain before today."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpinb.views.kit import WARN, esc
from kpinb.views.report._page import _html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.views.report._load import Report

PERIOD_DAYS = {"day": 1, "week": 7, "month": 30.44, "quarter": 91.31, "year": 365.25}
"""Average length of a period of each grain, in days."""

STALE_PERIODS = 2
"""Data older than this many periods of the report's grain is flagged as stale."""


@dataclass(frozen=True)
class DataAge:
    """The newest day the report's KPIs have data for, its age in days on ``today`` and whether
    that is stale (older than :data:`STALE_PERIODS` periods, and not merely the report's own
    ``period_end`` looking back)."""

    newest: pd.Timestamp | None
    today: dt.date
    days: int | None
    stale: bool


def age_of(r: Report, today: dt.date | None = None) -> DataAge:
    """The :class:`DataAge` of ``r``: the latest ``through`` day of the coverage the engine reported
    for the judged KPIs (``frame.attrs["coverage"]``, the same days that decide complete periods)."""
    import pandas as pd

    today = today or dt.date.today()
    cover = r.frame.attrs.get("coverage") or {}
    days = [pd.Timestamp(c["through"]) for m in r.kpi_ids if (c := cover.get(m)) and c.get("through") is not None]
    if not days:
        return DataAge(None, today, None, False)
    newest = max(days)
    age = (pd.Timestamp(today) - newest.normalize()).days
    looking_back = r.period_end is not None and newest >= r.period_end  # a report on a past period, by design
    stale = not looking_back and age > STALE_PERIODS * PERIOD_DAYS.get(r.grain, 30.44)
    return DataAge(newest, today, age, stale)


def _age_text(days: int) -> str:
    """``3 days old``, ``5 weeks old``, ``11 months old``, ``2 years old`` (rounded down).

    >>> _age_text(3), _age_text(40), _age_text(334), _age_text(800), _age_text(0)
    ('3 days old', '5 weeks old', '10 months old', '2 years old', 'from today')
    """
    if days <= 0:
        return "from today"
    if days < 14:
        n, word = days, "day"
    elif days < 60:
        n, word = days // 7, "week"
    elif days < 730:
        n, word = int(days // 30.44), "month"
    else:
        n, word = int(days // 365.25), "year"
    return f"{n} {word}{'' if n == 1 else 's'} old"


def data_age(r: Report, today: dt.date | None = None) -> Any:
    """The data's age for the top of a report: the newest day with data and how old it is, as a
    warning box when it is stale. A report asked for a past ``period_end`` says that date instead
    (so stored template outputs, run with one, do not change with today's date)."""
    a = age_of(r, today)
    if a.newest is None:
        return _html('<div class="kpinb-age kpinb-age-none">No data for these KPIs yet.</div>')
    day = f"{a.newest.day} {a.newest:%b %Y}"
    if r.period_end is not None and a.newest >= r.period_end:  # a look back: its age is not news
        text = f"Data as of {r.period_end.day} {r.period_end:%b %Y}, the end date this report was asked for."
        return _html(f'<div class="kpinb-age">{esc(text)}</div>')
    age = _age_text(int(a.days or 0))
    if not a.stale:
        return _html(f'<div class="kpinb-age">Newest data: <b>{esc(day)}</b> ({esc(age)}).</div>')
    periods = {"day": "days", "week": "weeks", "month": "months", "quarter": "quarters", "year": "years"}
    return _html(
        f'<div class="kpinb-age kpinb-age-stale" role="alert" style="border-left:4px solid {WARN};'
        f"background:var(--jp-warn-color3,#fff3df);color:var(--jp-ui-font-color0,#202124);padding:.5em .8em;"
        f'border-radius:4px"><b style="color:{WARN}">⚠ The newest data is {esc(age)}</b>: '
        f"it ends on {esc(day)}, more than {STALE_PERIODS} {periods.get(r.grain, 'periods')} before "
        f"{a.today.day} {a.today:%b %Y}. The statuses below describe that time, not today: check that the "
        "data is still being loaded.</div>"
    )
