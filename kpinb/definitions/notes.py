"""Notes and check-ins: a plain CSV next to the plan, one note per row (``kpi, period, author,
text``), read and appended here with every row checked against the plan.

The file is ``<plan name>.notes.csv`` beside the plan file (``plans/sales.yml`` ->
``plans/sales.notes.csv``), so several plans can share a folder and each keeps its own notes;
it is versioned with the plan. Note text is plain text: every surface escapes it where it
lands in HTML.

>>> add_note(plan, "monthly_sales_revenue", "2025-06-01", "Ann", "Price change on June 3")  # doctest: +SKIP
>>> [n.text for n in read_notes(plan)]  # doctest: +SKIP
['Price change on June 3']
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpinb.definitions.model import FIRST_DATE, LAST_DATE, Plan
from kpinb.errors import PlanError

__all__ = ["COLUMNS", "MAX_NOTES_BYTES", "MAX_TEXT", "Note", "add_note", "notes_path", "read_notes"]

COLUMNS = ("kpi", "period", "author", "text")
"""The header of a notes file, in this order."""

MAX_NOTES_BYTES = 5 * 1024 * 1024
"""A notes file larger than this is refused (the limit of plan files)."""

MAX_TEXT, MAX_AUTHOR = 2000, 200
_SHOWN_ERRORS = 10


@dataclass(frozen=True)
class Note:
    """One note: the ``kpi`` (metric id) it is about, the ``period`` (a day in it), its
    ``author`` (may be empty) and its ``text`` (plain text)."""

    kpi: str
    period: dt.date
    author: str
    text: str


def notes_path(plan: Plan) -> Path:
    """Where the plan's notes live: ``<plan file stem>.notes.csv`` beside the plan file."""
    if plan.file is None:
        raise PlanError("the plan was not loaded from a file, so it has no notes file. Load it with kpinb.load_plan.")
    return plan.file.with_name(f"{plan.file.stem}.notes.csv")


def read_notes(plan: Plan, path: str | Path | None = None) -> tuple[Note, ...]:
    """The plan's notes in file order; none when the file does not exist.

    Raises one :class:`PlanError` naming the file, each wrong line and field and the fix (a
    KPI the plan does not have, a date that is not ``YYYY-MM-DD``, empty or overlong text, a
    wrong header), or a file over :data:`MAX_NOTES_BYTES`.
    """
    from kpinb._io import read_limited

    file = Path(path) if path is not None else notes_path(plan)
    if not file.exists():
        return ()
    raw = read_limited(file, MAX_NOTES_BYTES, "notes file", PlanError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PlanError(f"{file}: not UTF-8 text (byte {e.start}). Save the notes file as UTF-8 CSV.") from None
    known = [k.metric for k in plan.kpis]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return ()
        if [h.strip().lower() for h in header] != list(COLUMNS):
            raise PlanError(
                f"{file}:1: the header is {','.join(header)!r}; a notes file starts with the line "
                f"{','.join(COLUMNS)!r}. Fix the first line."
            )
        notes, problems = [], []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            try:
                notes.append(_note(row, known))
            except ValueError as e:
                problems.append(f"{file}:{line}: {e}")
    except csv.Error as e:
        raise PlanError(f"{file}:{reader.line_num}: not a CSV line ({e}). Fix the quoting of that line.") from None
    if problems:
        more = f"\n... and {len(problems) - _SHOWN_ERRORS} more" if len(problems) > _SHOWN_ERRORS else ""
        raise PlanError("\n".join(problems[:_SHOWN_ERRORS]) + more)
    return tuple(notes)


def _note(row: list[str], known: list[str]) -> Note:
    """One row as a Note; ValueError naming the field and the fix."""
    if len(row) != len(COLUMNS):
        raise ValueError(f"{len(row)} fields, expected {len(COLUMNS)} ({', '.join(COLUMNS)}); quote text with commas")
    kpi, period, author, text = (cell.strip() for cell in row)
    return _checked(kpi, period, author, text, known)


def _checked(kpi: str, period: Any, author: str, text: str, known: list[str]) -> Note:
    if kpi not in known:
        raise ValueError(f"kpi {kpi[:80]!r} is not a KPI of the plan; use one of: {', '.join(known) or 'none'}")
    day = _day(period)
    if not text:
        raise ValueError("text is empty; write the note")
    if len(text) > MAX_TEXT:
        raise ValueError(f"text has {len(text):,} characters, more than {MAX_TEXT:,}; shorten the note")
    if len(author) > MAX_AUTHOR:
        raise ValueError(f"author has more than {MAX_AUTHOR} characters; write a name")
    if any(ord(c) < 32 and c not in "\n\t" for c in text + author):
        raise ValueError("text or author holds control characters; write plain text")
    return Note(kpi, day, author, text)


def _day(period: Any) -> dt.date:
    if isinstance(period, dt.datetime):
        period = period.date()
    if isinstance(period, dt.date):
        day = period
    else:
        try:
            day = dt.date.fromisoformat(str(period).strip())
        except ValueError:
            raise ValueError(f"period {str(period)[:40]!r} is not a date; write it as YYYY-MM-DD") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"period {day} is outside {FIRST_DATE.year}-{LAST_DATE.year}; write a real date")
    return day


def add_note(plan: Plan, kpi: str, period: Any, author: str, text: str, path: str | Path | None = None) -> Note:
    """Append one note to the plan's notes file (created with its header when missing).

    The note is checked first (the same rules as :func:`read_notes`; one :class:`PlanError`
    naming the field and the fix), the existing notes must read cleanly, and the file is
    rewritten atomically, so a failure never leaves half a line.
    """
    from kpinb._io import read_limited, write_atomic

    file = Path(path) if path is not None else notes_path(plan)
    try:
        note = _checked(str(kpi).strip(), period, str(author or "").strip(), str(text or "").strip(),
                        [k.metric for k in plan.kpis])  # fmt: skip
    except ValueError as e:
        raise PlanError(f"{file}: the new note: {e}.") from None
    read_notes(plan, file)  # a broken file is reported, not appended to
    before = read_limited(file, MAX_NOTES_BYTES, "notes file", PlanError).decode("utf-8-sig") if file.exists() else ""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    if not before.strip():
        before = ""
        writer.writerow(COLUMNS)
    elif not before.endswith("\n"):
        before += "\n"
    writer.writerow([note.kpi, note.period.isoformat(), note.author, note.text])
    data = before + out.getvalue()
    if len(data.encode("utf-8")) > MAX_NOTES_BYTES:
        raise PlanError(f"{file}: the notes file would grow past {MAX_NOTES_BYTES:,} bytes. Archive old notes first.")
    write_atomic(file, data)
    return note
