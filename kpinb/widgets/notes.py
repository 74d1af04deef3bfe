"""A small "add note" form: pick a KPI, a date, write who and what; the note is appended to the
plan's notes file (:mod:`kpinb.definitions.notes`), which checks it. State and layout only.

>>> form = NoteForm(kpinb.load_plan("plans/sales.yml"))  # doctest: +SKIP
>>> form  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets

from kpinb.definitions.model import Plan
from kpinb.definitions.notes import Note, add_note, notes_path, read_notes
from kpinb.errors import KpinbError
from kpinb.views.kit import BAD, GOOD, MUTED, NEUTRAL, esc

__all__ = ["NoteForm"]

SHOWN = 5
"""How many of the latest notes the form lists."""


class NoteForm(widgets.VBox):
    """Add a note to a plan's notes file and see the latest ones (every text escaped).

    Parameters
    ----------
    plan : the plan (loaded from its file, or the file's path).
    path : another notes file (default ``<plan>.notes.csv`` beside the plan).
    today : the date the form starts with.

    Attributes
    ----------
    kpi, period, author, text : the fields; ``add_button`` appends the note.
    message : what happened (the error naming the field and the fix, or "Note added").
    notes : the notes read back from the file after the last change.
    """

    def __init__(self, plan: Plan | str | Path, path: str | Path | None = None, today: dt.date | None = None) -> None:
        from kpinb.definitions.plan import load_plan

        self.plan = plan if isinstance(plan, Plan) else load_plan(plan)
        self.path = Path(path) if path is not None else notes_path(self.plan)
        self._listeners: list[Callable[[Note], None]] = []
        self.names = _names(self.plan)
        choices = [(self.names[k.metric], k.metric) for k in self.plan.kpis]
        self.kpi = widgets.Dropdown(options=choices, description="KPI")
        self.period = widgets.Text(value=(today or dt.date.today()).isoformat(), description="Date",
                                   placeholder="YYYY-MM-DD")  # fmt: skip
        self.author = widgets.Text(description="Author", placeholder="your name")
        self.text = widgets.Textarea(description="Note", placeholder="what happened, what was decided")
        self.add_button = widgets.Button(description="Add note", button_style="primary")
        self.message = widgets.HTML()
        self.listing = widgets.HTML()
        self.notes: tuple[Note, ...] = ()
        self.add_button.on_click(lambda _: self.add())
        super().__init__([self.kpi, self.period, self.author, self.text, self.add_button, self.message, self.listing])
        self.refresh()

    def on_add(self, callback: Callable[[Note], None]) -> None:
        """Call ``callback(note)`` after each note is added (e.g. to redraw annotations)."""
        self._listeners.append(callback)

    def add(self) -> Note | None:
        """Append the note in the fields; on a mistake show it and keep the fields as they are."""
        try:
            note = add_note(self.plan, self.kpi.value, self.period.value, self.author.value, self.text.value,
                            path=self.path)  # fmt: skip
        except KpinbError as e:
            self.message.value = f'<span style="color:{BAD}">{esc(str(e))}</span>'
            return None
        self.text.value = ""
        self.message.value = f'<span style="color:{GOOD}">Note added to {esc(self.path.name)}.</span>'
        self.refresh()
        for listener in self._listeners:
            listener(note)
        return note

    def refresh(self) -> None:
        """Read the notes file again and list its latest notes."""
        try:
            self.notes = read_notes(self.plan, self.path)
        except KpinbError as e:
            self.listing.value = f'<span style="color:{BAD}">{esc(str(e))}</span>'
            return
        names = self.names
        rows = "".join(
            f'<li style="border-bottom:1px solid {MUTED}"><b>{esc(names.get(n.kpi, n.kpi))}</b> '
            f'<span style="color:{NEUTRAL}">{esc(n.period.isoformat())}{" · " + esc(n.author) if n.author else ""}'
            f'</span><br><span style="white-space:pre-wrap">{esc(n.text)}</span></li>'
            for n in reversed(self.notes[-SHOWN:])
        )
        self.listing.value = f'<ul class="kpinb-notes" style="list-style:none;padding:0">{rows}</ul>' if rows else ""


def _names(plan: Plan) -> dict[str, str]:
    """Each KPI's name as people read it (its own, else its metric's)."""
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    return {k.metric: k.name or (reg[k.metric].name if k.metric in reg else k.metric) for k in plan.kpis}
