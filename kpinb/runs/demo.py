"""The demo's plans, current on any day: the shipped example plans moved by whole years so that
their baselines lie in the sample's past and their deadlines ahead of the day it was made.

The shipped plans (``templates/plans/``) are written for a sample that ends in
:data:`~kpinb.data.sample.PINNED_END` (December 2025): baselines in 2024, targets by the end of
2025, a review in October 2025. A sample made later ends last month; its plans move by the years
from 2025 to the year of the next deadline after that month, dates, names and statements alike
("Sales 2025" becomes "Sales 2026"), and read the sample from the folder they are written next to.
"""

from __future__ import annotations

import calendar
import os
import re
from pathlib import Path

from kpinb._io import write_atomic
from kpinb.runs.discovery import department_plans, shipped_plans_dir

__all__ = ["demo_plan_text", "shift_years", "write_demo_plans"]

_PLAN_YEAR = 2025
"""The year the shipped plans' targets are due (with a sample ending December 2025)."""

_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])")
_YEAR = re.compile(r"(?<![\w.:/-])(20[0-9]{2})(?![\w.:/-])")
_WORDS = re.compile(r"\b(?:name|statement|description):[^\n,}]*")
_DATA = re.compile(r"(path:\s*)\S*/([\w.-]+\.parquet)")


def shift_years(end: str) -> int:
    """Years to move the shipped plans for a sample ending in ``end`` (``YYYY-MM``): their December
    deadline must come after that month, with the year before it as the baseline.

    >>> shift_years("2025-11"), shift_years("2026-10"), shift_years("2026-12")
    (0, 1, 2)
    """
    year, month = (int(x) for x in end.split("-"))
    return year - _PLAN_YEAR + (month == 12)


def demo_plan_text(text: str, years: int, data: str) -> str:
    """``text`` (a shipped plan) with every date and year moved by ``years`` and its sources' files
    read from the folder ``data`` (relative to where the plan is written)."""

    def day(m: re.Match[str]) -> str:
        y, mo, d = int(m[1]) + years, int(m[2]), int(m[3])
        return f"{y:04d}-{mo:02d}-{min(d, calendar.monthrange(y, mo)[1]):02d}"  # 29 February

    text = _DATE.sub(day, text)
    if years:  # years in words (names, statements), never numbers such as `value: 2025`
        text = _WORDS.sub(lambda w: _YEAR.sub(lambda m: str(int(m[1]) + years), w[0]), text)
    return _DATA.sub(lambda m: f"{m[1]}{data}/{m[2]}", text)


def write_demo_plans(sample_dir: str | Path, end: str) -> list[Path]:
    """Write the shipped plans, moved for a sample ending in ``end``, to ``sample_dir/plans/``
    (read by ``make report``: ``kpinb run --all --plans-dir data/sample/plans``)."""
    folder = Path(sample_dir) / "plans"
    folder.mkdir(parents=True, exist_ok=True)
    years = shift_years(end)
    header = (
        f"# Written by `kpinb sample-data` for the sample ending {end}: the shipped example plan "
        f"moved {years} year(s) so that its deadlines lie ahead.\n"
    )
    out = []
    for shipped in department_plans(shipped_plans_dir()):
        text = demo_plan_text(shipped.read_text(encoding="utf-8"), years, "..")
        benchmarks = (shipped.parent / "../../data/benchmarks.csv").resolve()
        if benchmarks.is_file():
            rel = Path(os.path.relpath(benchmarks, folder.resolve())).as_posix()
            text = re.sub(r"(?m)^benchmarks:.*$", f"benchmarks: {rel}", text)
        else:
            text = re.sub(r"(?m)^benchmarks:.*\n", "", text)
        out.append(write_atomic(folder / shipped.name, header + text))
    return out
