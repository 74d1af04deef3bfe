"""The objective-to-KPI wizard: objective -> candidate KPIs -> baselines and targets -> SMART review -> plan file.

>>> wizard = KpiWizard(department="web", plans_dir="plans", sources="data/sample")  # doctest: +SKIP
>>> wizard   # four steps in the notebook; Save writes plans/web.yml and sets wizard.plan  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets

from kpinb._io import slug, write_atomic
from kpinb.checks.lint import MAX_KPIS
from kpinb.definitions import catalog
from kpinb.definitions.analysis import sources_needed
from kpinb.definitions.model import Source
from kpinb.errors import KpinbError
from kpinb.views.kit import SEVERITY_STYLE, esc
from kpinb.widgets import _fields
from kpinb.widgets._draft import (
    KpiDraft,
    PlanDraft,
    baselines,
    connect,
    number_text,
    parse_date,
    parse_number,
    render_yaml,
)
from kpinb.widgets._fields import FIELDS, LABELS, Note
from kpinb.widgets._review import MUTED_TEXT, TEXT, review_html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Metric, Plan

__all__ = ["KpiWizard"]

STEPS = ("Objective", "Candidate KPIs", "Baselines and targets", "SMART review")
RECOMMENDED = 6
"""How many candidates step 2 recommends (the rest are one click away): a plan keeps 5–7 KPIs."""
_MUTED = f"color:{MUTED_TEXT}"
_UNIT_WORDS = {"currency": "an amount of money", "percent": "a rate", "count": "a count", "ratio": "a ratio",
               "duration": "a duration", "score": "a score"}  # fmt: skip
_CSS = """<style>
/* the counter of step 2 stays in sight while the list scrolls (position: sticky), which needs no
   scrolling box between it and the notebook's scroller: widget boxes and output areas scroll by default */
.kpinb-wizard .kpinb-invalid input { border-color: #b3261e !important; box-shadow: 0 0 0 1px #b3261e; }
.jp-OutputArea:has(.kpinb-wizard), .jp-OutputArea-child:has(.kpinb-wizard),
.jp-OutputArea-output:has(.kpinb-wizard), .kpinb-wizard, .kpinb-wizard .widget-box,
.kpinb-wizard .jupyter-widgets.widget-box { overflow: visible !important; }
.kpinb-wizard .kpinb-wizard-counter { position: sticky; top: 0; z-index: 3;
  background: var(--jp-layout-color1, #fff); padding: 4px 0;
  border-bottom: 1px solid var(--jp-border-color2, #dadce0); }
.kpinb-wizard .widget-html-content { line-height: 1.45; }
.kpinb-wizard .kpinb-field-msg, .kpinb-wizard .kpinb-field-msg .widget-html-content { font-size: 12px;
  line-height: 1.3; min-height: 0; }
.kpinb-wizard .kpinb-note-muted { color: var(--jp-content-font-color2, #5f6368) !important; }
.kpinb-wizard details > summary { cursor: pointer; }
</style>"""


def _classed(widget: widgets.DOMWidget, *classes: str) -> Any:
    for c in classes:
        widget.add_class(c)
    return widget


def _default_deadline(today: dt.date) -> dt.date:
    """The end of this year, or of next year from July on (a deadline needs time to act)."""
    return dt.date(today.year + (1 if today.month > 6 else 0), 12, 31)


class _ScrollToTop(anywidget.AnyWidget):
    """Scrolls the page to the wizard's top whenever ``step`` changes (a short step after a long
    one would otherwise leave the view below it, on a blank screen)."""

    _esm = """
export default {
  render({ model, el }) {
    model.on("change:step", () => {
      const top = el.closest(".kpinb-wizard");
      if (top) top.scrollIntoView({ block: "start" });
    });
  },
};
"""
    step = traitlets.Int(1).tag(sync=True)


def _note_html(note: Note | None, muted: bool = False) -> str:
    if note is None:
        return ""
    mark = {"error": "✕", "warning": "⚠", "info": "ℹ"}[note.level]
    color = MUTED_TEXT if muted else SEVERITY_STYLE.get(note.level, SEVERITY_STYLE["info"])[0]
    if muted and note.level == "error":
        mark = "•"
    classes = f"kpinb-note kpinb-note-{note.level}" + (" kpinb-note-muted" if muted else "")
    return f'<div class="{classes}" style="color:{color}">{mark} {esc(note.text)}</div>'


class KpiWizard(widgets.VBox):
    """Turn an objective into a few KPIs with baselines, targets, owners and thresholds; save a plan.

    Parameters
    ----------
    department : a catalog department (``sales``, ``web``...) to start with, or your own.
    plans_dir : the folder the plan is saved to, as ``<department>.yml`` unless renamed in step 4.
    sources : data to connect: a folder holding files named after the catalog's canonical
        sources (``orders.parquet``...), a plan file whose sources to reuse, or a mapping
        source name -> path / :class:`~kpinb.model.Source`. With data, baselines are pre-filled
        (mean of the last 12 complete months) and the SMART review also checks the targets
        against the history.
    today : the date deadlines, reviews and "complete months" are judged against.

    Attributes
    ----------
    plan : the saved :class:`~kpinb.model.Plan` (None until Save).
    path : where it was saved.
    step : the current step, 1 to 4.
    candidates : the catalog metrics proposed in step 2, best match first; the first
        :data:`RECOMMENDED` are recommended, each with the reason (:meth:`reason`).
    checkboxes : metric id -> its checkbox in step 2.
    fields : metric id -> ``{"baseline", "target", "deadline", "owner", "warning", "critical"}``
        text fields of step 3 (kept when going back and forth); dates are ``YYYY-MM-DD``.
    notes : what the plan checks say about the KPIs as entered (:class:`kpinb.widgets._fields.Note`),
        each shown next to its field; an error blocks Next and Save.
    issues : the plan checks' findings (:class:`kpinb.lint.Issue`) behind :attr:`notes`.

    Every field is checked as it is typed, by the plan checks themselves (:func:`kpinb.lint.lint`
    on the draft): the message sits under the field, and Next (step 3) and Save (step 4) stay
    disabled, saying why, while a field is invalid or a chosen KPI has no target. Save never
    replaces an existing file unless "Overwrite" is ticked.

    The widgets carry stable CSS classes for tests and browser automation:
    ``kpinb-wizard-next``/``-back``/``-save``/``-blocked`` (the reason Next or Save is disabled),
    ``kpinb-wizard-statement``/``-department``/``-name``/``-sources``, ``kpinb-wizard-counter``,
    ``kpinb-wizard-recommended``/``-more``, ``kpinb-kpi-<metric>`` (the candidate's checkbox),
    ``kpinb-kpi-<metric>-<field>`` for baseline, target, deadline, owner, warning and critical and
    ``kpinb-kpi-<metric>-<field>-msg`` for the message under it, ``kpinb-wizard-file`` and
    ``kpinb-wizard-overwrite`` in step 4.
    """

    def __init__(
        self,
        department: str | None = None,
        plans_dir: str | Path = ".",
        sources: Any = None,
        *,
        today: dt.date | None = None,
    ) -> None:
        super().__init__()
        self.add_class("kpinb-wizard")
        self.plans_dir = Path(plans_dir)
        self.today = today or dt.date.today()
        self.plan: Plan | None = None
        self.path: Path | None = None
        self.step = 1
        self.issues: list[Any] = []
        self.notes: list[Note] = []
        self._registry: dict[str, Metric] = catalog.metrics()
        self._sources: dict[str, Source] = {}
        self._sources_spec: Any = sources if sources is not None and not isinstance(sources, (str, Path)) else None
        self.candidates: list[Metric] = []
        self._matched: set[str] = set()
        self._candidates_key: tuple[str, str] | None = None
        self._n_recommended = 0
        self.checkboxes: dict[str, widgets.Checkbox] = {}
        self.fields: dict[str, dict[str, widgets.Text]] = {}
        self._messages: dict[str, dict[str, widgets.HTML]] = {}
        self._kpi_messages: dict[str, widgets.HTML] = {}
        self._touched: set[tuple[str, str]] = set()  # fields typed in: their problems show in full colour
        self._baselines: dict[str, float] = {}
        self._baseline_frames: dict[str, pd.DataFrame] = {}
        self._baseline_label = ""
        self._yaml = ""
        self._file_default = ""

        departments = list(catalog.DEPARTMENTS)
        if department and department not in departments:
            departments.append(department)
        options = [(d.replace("_", " ").capitalize(), d) for d in departments]
        # step 1
        self.statement = _classed(
            widgets.Textarea(
                placeholder="e.g. Improve customer retention: keep more customers month after month",
                layout=widgets.Layout(width="100%", height="60px"),
            ),
            "kpinb-wizard-statement",
        )
        self.department = _classed(
            widgets.Dropdown(options=options, value=department, description="Department"), "kpinb-wizard-department"
        )
        self.name = _classed(
            widgets.Text(
                placeholder="e.g. Sales KPIs 2026", description="Plan name", layout=widgets.Layout(width="60%")
            ),
            "kpinb-wizard-name",
        )
        self.sources = _classed(
            widgets.Text(
                value=str(sources) if isinstance(sources, (str, Path)) else "",
                placeholder="optional: data folder or plan file (.yml)",
                description="Data",
                layout=widgets.Layout(width="80%"),
                continuous_update=False,  # checked when the field is left (a path half typed is no error)
            ),
            "kpinb-wizard-sources",
        )
        self._sources_msg = _classed(widgets.HTML(), "kpinb-wizard-sources-msg", "kpinb-field-msg")
        self._sources_error = ""
        for w in (self.statement, self.department):
            w.observe(lambda _: self._refresh_nav(), names="value")
        self.sources.observe(lambda _: self._check_sources(), names="value")
        # step 2
        self.counter = _classed(widgets.HTML(), "kpinb-wizard-counter")
        self._recommended_box = _classed(widgets.VBox(), "kpinb-wizard-recommended")
        self._more_box = _classed(widgets.Accordion(), "kpinb-wizard-more")
        self._candidates_note = widgets.HTML()
        # step 3
        self._targets_box = widgets.VBox()
        # step 4
        self.review = _classed(widgets.HTML(), "kpinb-wizard-review")
        self.file = _classed(
            widgets.Text(description="Save as", layout=widgets.Layout(width="360px")), "kpinb-wizard-file"
        )
        self.overwrite = _classed(
            widgets.Checkbox(value=False, description="Overwrite the existing file", indent=False),
            "kpinb-wizard-overwrite",
        )
        self._file_note = _classed(widgets.HTML(), "kpinb-wizard-file-msg")
        for w in (self.file, self.overwrite):
            w.observe(lambda _: self._refresh_file(), names="value")
        # navigation
        self.title = _classed(widgets.HTML(), "kpinb-wizard-title")
        self.message = _classed(widgets.HTML(), "kpinb-wizard-message")
        self.blocked = _classed(widgets.HTML(), "kpinb-wizard-blocked")
        self.back_button = _classed(widgets.Button(description="Back", icon="arrow-left"), "kpinb-wizard-back")
        self.next_button = _classed(
            widgets.Button(description="Next", icon="arrow-right", button_style="primary"), "kpinb-wizard-next"
        )
        self.save_button = _classed(
            widgets.Button(description="Save plan", icon="save", button_style="success"), "kpinb-wizard-save"
        )
        self.back_button.on_click(lambda _: self.back())
        self.next_button.on_click(lambda _: self.next())
        self.save_button.on_click(lambda _: self.save())
        self._scroll = _ScrollToTop()
        self._body = widgets.VBox()
        self._nav = widgets.HBox(
            [self.back_button, self.next_button, self.save_button, self.blocked],
            layout=widgets.Layout(align_items="center"),
        )
        self.children = [widgets.HTML(_CSS), self._scroll, self.title, self._body, self.message, self._nav]
        if sources is not None:
            self._check_sources()
        self._show()

    # --- navigation -------------------------------------------------------------------------------

    def next(self) -> None:
        """Check the current step and go to the next one (stays, with a message, when something is missing)."""
        problems = self._check_step()
        if problems:
            self._say(problems, "error")
            return
        if self.step < len(STEPS):
            self.step += 1
            self._show()

    def back(self) -> None:
        """Go to the previous step; everything entered stays."""
        if self.step > 1:
            self.step -= 1
            self._show()

    def _say(self, lines: list[str] | str, level: str = "info") -> None:
        if not lines:
            self.message.value = ""
            return
        items = [lines] if isinstance(lines, str) else lines
        color, background = SEVERITY_STYLE.get(level, SEVERITY_STYLE["info"])
        self.message.value = (
            f'<div style="color:{color};background:{background};padding:6px 10px;border-radius:6px">'
            + "<br>".join(esc(x) for x in items)
            + "</div>"
        )

    def _show(self) -> None:
        self._say([])
        trail = " › ".join(
            f'<span style="font-weight:700;color:{TEXT}">{i}. {esc(name)}</span>'
            if i == self.step
            else f'<span style="color:{MUTED_TEXT}">{"✓ " if i < self.step else ""}{i}. {esc(name)}</span>'
            for i, name in enumerate(STEPS, 1)
        )
        self.title.value = (
            f'<div style="font-size:16px;font-weight:700;color:{TEXT}">KPI wizard · step {self.step} of '
            f'{len(STEPS)}: {esc(STEPS[self.step - 1])}</div><div class="kpinb-wizard-steps" '
            f'style="font-size:12px;margin:2px 0 6px">{trail}</div>'
        )
        builders = {1: self._step_objective, 2: self._step_candidates, 3: self._step_targets, 4: self._step_review}
        self._body.children = builders[self.step]()
        for i in range(1, len(STEPS) + 1):
            self._body.remove_class(f"kpinb-wizard-step-{i}")
        self._body.add_class(f"kpinb-wizard-step-{self.step}")
        self.back_button.disabled = self.step == 1
        self.next_button.layout.display = "none" if self.step == len(STEPS) else None
        self.save_button.layout.display = None if self.step == len(STEPS) else "none"
        self._scroll.step = self.step
        self._refresh_nav()

    def _blockers(self) -> list[str]:
        """Why the current step cannot go on (Next or Save disabled), in a few words each."""
        if self.step == 1:
            out = []
            if not self.statement.value.strip():
                out.append("state the objective")
            if not self.department.value:
                out.append("choose a department")
            if self._sources_error:
                out.append("the data folder or plan file cannot be read")
            return out
        if self.step == 2:
            return [] if self.chosen else ["tick at least one KPI"]
        out = [
            f"{self._name(n.metric)} · {LABELS[n.field]}" if n.field else self._name(n.metric)
            for n in self.notes
            if n.blocking
        ]
        if self.step == 4:
            out.extend(self._file_blockers())
        return out

    def _refresh_nav(self) -> None:
        blockers = self._blockers()
        button = self.save_button if self.step == len(STEPS) else self.next_button
        button.disabled = bool(blockers)
        if not blockers:
            self.blocked.value = ""
            return
        what = "Save" if button is self.save_button else "Next"
        shown = "; ".join(blockers[:4]) + (f"; and {len(blockers) - 4} more" if len(blockers) > 4 else "")
        color = SEVERITY_STYLE["error"][0]
        self.blocked.value = (
            f'<span class="kpinb-blocked-reason" style="color:{color};font-size:12px;margin-left:8px">'
            f"{what} is blocked until this is fixed: {esc(shown)}.</span>"
        )

    def _check_step(self) -> list[str]:
        if self.step == 1:
            problems = []
            if not self.statement.value.strip():
                problems.append("State the objective: what are you trying to achieve?")
            if not self.department.value:
                problems.append("Choose a department.")
            try:
                spec = self._sources_spec if self._sources_spec is not None else self.sources.value
                self._sources = connect(spec)
            except KpinbError as e:
                problems.append(str(e))
            return problems
        if self.step == 2:
            return [] if self.chosen else ["Tick at least one KPI (5–7 at most is a good number)."]
        if self.step == 3:
            self._touched.update((mid, name) for mid in self.chosen for name in FIELDS)
            self.validate()
            return [f"{self._name(n.metric)}: {n.text}" for n in self.notes if n.blocking]
        return []

    def _name(self, mid: str | None) -> str:
        m = self._registry.get(mid or "")
        return m.name if m is not None else (mid or "the plan (see the message above)")

    # --- step 1 ---------------------------------------------------------------------------------

    def _step_objective(self) -> list[widgets.Widget]:
        intro = widgets.HTML(
            f'<div style="{_MUTED}">What are you trying to achieve, and how will you know you are succeeding? '
            "Say it as an outcome (<i>Grow monthly revenue 20% by the end of 2026</i>), not as an activity. "
            "The KPIs will say how well it is going.</div>"
        )
        return [intro, self.statement, self.department, self.name, self.sources, self._sources_msg]

    def _check_sources(self) -> None:
        """Connect the data named in step 1 as soon as the field is left; say under it what was found."""
        spec = self._sources_spec if self._sources_spec is not None else self.sources.value
        try:
            self._sources = connect(spec)
        except KpinbError as e:
            self._sources, self._sources_error = {}, str(e)
            self._sources_msg.value = _note_html(Note(None, "sources", "error", str(e), ""))
        else:
            self._sources_error = ""
            names = ", ".join(sorted(self._sources))
            self._sources_msg.value = (
                f'<div style="{_MUTED}">Connected: {esc(names)}.</div>'
                if names
                else (f'<div style="{_MUTED}">No catalog source found there.</div>' if str(spec).strip() else "")
            )
        self._refresh_nav()

    # --- step 2 ---------------------------------------------------------------------------------

    @property
    def chosen(self) -> list[str]:
        """The ticked candidates' metric ids, in ranking order."""
        return [m.id for m in self.candidates if self.checkboxes.get(m.id) is not None and self.checkboxes[m.id].value]

    @property
    def recommended(self) -> list[str]:
        """The candidates step 2 recommends (shown first, each with its reason)."""
        return [m.id for m in self.candidates[: self._n_recommended]]

    def _rank(self, dept: str, statement: str) -> list[Metric]:
        """The catalog's ranking for the objective. The first :data:`RECOMMENDED` are recommended:
        the metrics that fit the objective, topped up with the department's other metrics (KPI
        candidates first, no vanity ones) when few fit, and with one indicator of the other kind moved in when they
        would all be leading or all lagging."""
        matched = catalog.search(department=dept, objective=statement)
        self._matched = {m.id for m in matched}
        rest = [m for m in catalog.search(department=dept) if m.id not in self._matched]
        supporting = {s for m in matched for s in m.supporting}
        fillers = [m for m in rest if not m.vanity]  # the catalog ranks KPI candidates first
        fillers.sort(key=lambda m: m.id not in supporting)  # then the ones that explain a fitting metric
        pool = [*matched, *fillers] if matched else []
        top = pool[:RECOMMENDED]
        kinds = {m.indicator.value for m in top}
        if len(top) >= 3 and len(kinds) == 1:
            other = next((m for m in pool[len(top) :] if m.indicator.value not in kinds and not m.vanity), None)
            if other is not None:
                top = [*top[:-1], other]
        self._n_recommended = len(top)
        chosen = {m.id for m in top}
        return [*top, *(m for m in [*matched, *rest] if m.id not in chosen)]

    def reason(self, m: Metric) -> str:
        """Why a candidate fits the objective, in one line: the theme it serves, the objective's
        words it measures (or the fitting metric it explains), what kind of number it is and
        whether it moves first (leading) or reports the result (lagging)."""
        statement = self.statement.value.lower()
        parts = []
        if m.id not in self._matched:
            explains = [x.name for x in self.candidates if x.id in self._matched and m.id in x.supporting]
            if explains:
                parts.append(f"explains {explains[0]}, which fits your objective")
            else:
                role = "KPI candidate" if m.role.value == "kpi_candidate" else "metric"
                parts.append(f"a common {role} of the department, not named by your objective")
        else:
            themes = catalog.themes()
            wanted = catalog.match_themes(statement)
            served = [themes[t].name for t in wanted if t in m.objectives and t in themes]
            if served:
                parts.append("serves " + " and ".join(f"“{t}”" for t in served[:2]))
            words = sorted(
                {w.strip(".,;:!?") for w in statement.split() if len(w) > 3}
                & set(f"{m.id.replace('_', ' ')} {m.name}".lower().replace("(", " ").replace(")", " ").split())
            )
            if words:
                parts.append(f"measures “{', '.join(words)}” from your objective")
        what = _UNIT_WORDS.get(m.unit.value, "a number")
        if m.indicator.value == "leading":
            parts.append(f"{what} that moves first, so you can act before the result")
        else:
            parts.append(f"{what} that reports the result")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."

    def _step_candidates(self) -> list[widgets.Widget]:
        key = (self.department.value, self.statement.value.strip())
        if key != self._candidates_key:
            self._candidates_key = key
            self.candidates = self._rank(*key)
            rows = []
            for i, m in enumerate(self.candidates):
                if m.id not in self.checkboxes:
                    box = _classed(widgets.Checkbox(value=False, description=m.name, indent=False), f"kpinb-kpi-{m.id}")
                    box.layout.width = "auto"
                    box.observe(lambda _: self._count(), names="value")
                    self.checkboxes[m.id] = box
                rank = i + 1 if i < self._n_recommended else None
                rows.append(
                    _classed(
                        widgets.VBox([self.checkboxes[m.id], widgets.HTML(self._candidate_html(m, rank))]),
                        f"kpinb-candidate-{m.id}",
                    )
                )
            n = self._n_recommended
            self._recommended_box.children = rows[:n]
            more = rows[n:]
            self._more_box.children = [widgets.VBox(more)] if more else []
            if more:
                what = "Other metrics of the department" if n else "Every metric of the department"
                self._more_box.set_title(0, f"{what} ({len(more)})")
            self._more_box.selected_index = None if n else (0 if more else None)
            self._more_box.layout.display = None if more else "none"
            if not self.candidates:
                note = "The catalog has no metric for this department: define your own in the plan file."
            elif not self._matched:
                note = "No metric matched the objective's words; here is every metric of the department."
            else:
                note = ""
            self._candidates_note.value = f'<div style="color:#9a5b00">{esc(note)}</div>' if note else ""
        self._count()
        intro = widgets.HTML(
            f'<div style="{_MUTED}">Pick the few numbers that tell you whether the objective is being met — ask of '
            "each: <i>what decision will this number help me make?</i> Keep 5–7 at most and mix <b>leading</b> "
            "indicators (they move first and predict) with <b>lagging</b> ones (they report the result).</div>"
        )
        heading = widgets.HTML(
            '<div style="font-weight:600;margin-top:6px">Recommended for your objective, best first</div>'
            if self._n_recommended
            else ""
        )
        return [intro, self.counter, self._candidates_note, heading, self._recommended_box, self._more_box]

    def _candidate_html(self, m: Metric, rank: int | None) -> str:
        connected = not self._sources or sources_needed([m.id], self._registry) <= set(self._sources)
        badges = [
            (f"#{rank}", "#ffffff", "#1b7f3b") if rank else None,
            (m.indicator.value, "#1a73e8", "#e8f0fe"),
            ("KPI candidate" if m.role.value == "kpi_candidate" else "operational metric", "#5f6368", "#f1f3f4"),
            (None if not self._sources else ("data connected", "#1b7f3b", "#e7f4ea"))
            if connected
            else ("no data connected", "#9a5b00", "#fff3df"),
        ]
        chips = "".join(
            f'<span style="color:{c};background:{b};border-radius:8px;padding:0 6px;margin-right:4px;'
            f'font-size:11px">{esc(t)}</span>'
            for t, c, b in (x for x in badges if x)
        )
        vanity = (
            '<div style="color:#b3261e;font-size:12px">⚠ Vanity metric: it looks impressive but rarely drives a '
            "decision. Prefer an outcome it should lead to.</div>"
            if m.vanity
            else ""
        )
        return (
            f'<div style="margin:-4px 0 6px 24px;font-size:12px;line-height:1.4">'
            f'<div>{chips}</div><div class="kpinb-reason" style="color:{TEXT}">{esc(self.reason(m))}</div>'
            f'{vanity}<details><summary style="{_MUTED}">What it measures</summary>'
            f'<div style="{_MUTED}">{esc(m.description)}</div></details></div>'
        )

    def _count(self) -> None:
        chosen = [self._registry[m] for m in self.chosen]
        n = len(chosen)
        leading = sum(1 for m in chosen if m.indicator.value == "leading")
        text = f"<b>{n}</b> chosen ({leading} leading, {n - leading} lagging)"
        warn = []
        if n > MAX_KPIS:
            warn.append(f"More than {MAX_KPIS} KPIs dilutes focus: keep the 5–7 that matter most.")
        if n and leading == 0:
            warn.append("Only lagging indicators: add a leading one that moves before the result does.")
        if n and leading == n:
            warn.append("Only leading indicators: add the lagging result they should drive.")
        if any(m.vanity for m in chosen):
            warn.append("A vanity metric is chosen as a KPI.")
        style = "color:#b3261e" if n > MAX_KPIS else f"color:{TEXT}"
        self.counter.value = f'<div class="kpinb-counter" data-count="{n}" style="{style}">{text}</div>' + "".join(
            f'<div style="color:#9a5b00">⚠ {esc(w)}</div>' for w in warn
        )
        self._refresh_nav()

    # --- step 3 ---------------------------------------------------------------------------------

    def _step_targets(self) -> list[widgets.Widget]:
        chosen = self.chosen
        todo = [m for m in chosen if m not in self._baselines and m not in self._baseline_frames]
        note = ""
        if self._sources and todo:
            try:
                values, frame, label = baselines(todo, self._sources, self._registry, self.today)
            except KpinbError as e:
                values, frame, label = {}, None, ""
                note = f"Could not compute baselines from the data: {e}"
            self._baselines.update(values)
            if frame is not None:
                for mid, rows in frame.groupby("metric", sort=False):
                    self._baseline_frames[str(mid)] = rows
            self._baseline_label = label or self._baseline_label
        boxes = []
        for mid in chosen:
            if mid not in self.fields:
                self.fields[mid] = self._make_fields(mid)
            boxes.append(self._kpi_box(mid))
        self._targets_box.children = boxes
        intro = (
            f'<div style="{_MUTED}">Set where each KPI starts (baseline), where it should be and by when (target), '
            "who owns it, and the levels that should raise an alert. Percent KPIs take <code>12%</code> or "
            "<code>0.12</code>; large numbers take <code>1,500,000</code> or <code>1.5M</code>; dates are "
            "<code>YYYY-MM-DD</code>.</div>"
        )
        if self._baselines:
            intro += f'<div style="{_MUTED}">Baselines pre-filled from the data: {esc(self._baseline_label)}.</div>'
        if note:
            intro += f'<div style="color:#9a5b00">{esc(note)}</div>'
        self.validate()
        return [widgets.HTML(intro), self._targets_box]

    def _make_fields(self, mid: str) -> dict[str, widgets.Text]:
        m = self._registry[mid]
        unit = m.unit.value
        base = self._baselines.get(mid)
        hint = "e.g. 12%" if unit == "percent" else "a number"
        values = {"baseline": number_text(base, unit), "deadline": _default_deadline(self.today).isoformat()}
        placeholders = {"deadline": "YYYY-MM-DD", "owner": "a person or role", "warning": "optional",
                        "critical": "optional"}  # fmt: skip
        out: dict[str, widgets.Text] = {}
        self._messages[mid] = {}
        for name in FIELDS:
            field = _classed(
                widgets.Text(
                    value=values.get(name, ""),
                    description=LABELS[name],
                    placeholder=placeholders.get(name, hint),
                    layout=widgets.Layout(width="260px"),
                    style={"description_width": "80px"},
                ),
                f"kpinb-kpi-{mid}-{name}",
            )
            field.observe(lambda _, key=(mid, name): self._typed(key), names="value")
            out[name] = field
            self._messages[mid][name] = _classed(
                widgets.HTML(layout=widgets.Layout(width="260px", margin="0 0 4px 0")),
                f"kpinb-kpi-{mid}-{name}-msg",
                "kpinb-field-msg",
            )
        self._kpi_messages[mid] = _classed(widgets.HTML(), f"kpinb-kpi-{mid}-msg", "kpinb-field-msg")
        out["baseline"].observe(lambda _: self._suggest(mid, out), names="value")
        self._suggest(mid, out)
        return out

    def _suggest(self, mid: str, fields: Mapping[str, widgets.Text]) -> None:
        """Example target and alert levels in the empty fields, from the baseline as entered (the
        numbers a proposal would set: :func:`kpinb.analytics.proposal.suggested_levels`)."""
        from kpinb.analytics.proposal import suggested_levels

        m = self._registry[mid]
        unit = m.unit.value
        try:
            base = parse_number(fields["baseline"].value, unit)
        except ValueError:
            base = None
        if base is None:
            examples = {"target": "e.g. 12%" if unit == "percent" else "a number", "warning": "optional",
                        "critical": "optional"}  # fmt: skip
        else:
            levels = suggested_levels(base, m)
            examples = {
                k: f"e.g. {number_text(v, unit)}"
                for k, v in zip(("target", "warning", "critical"), levels, strict=True)
            }
        for name, text in examples.items():
            fields[name].placeholder = text

    def _kpi_box(self, mid: str) -> widgets.Widget:
        m = self._registry[mid]
        f, msgs = self.fields[mid], self._messages[mid]
        higher = m.direction.value == "higher_is_better"
        better = "higher is better" if higher else "lower is better"
        order = "the warning level above the critical one" if higher else "the warning level below the critical one"
        head = widgets.HTML(
            f'<div style="font-weight:600;margin-top:10px">{esc(m.name)} '
            f'<span style="{_MUTED};font-weight:400;font-size:12px">({esc(better)}: {esc(order)}; '
            f"{esc(m.indicator.value)})</span></div>"
        )
        cells = [widgets.VBox([f[k], msgs[k]]) for k in FIELDS]
        grid = widgets.GridBox(cells, layout=widgets.Layout(grid_template_columns="repeat(3, 270px)", grid_gap="0 8px"))
        return _classed(widgets.VBox([head, self._kpi_messages[mid], grid]), f"kpinb-kpi-{mid}-box")

    def _kpi(self, mid: str) -> tuple[KpiDraft, list[Note]]:
        """The KPI as entered, and the values that cannot be read (a target of ``lots``...)."""
        m = self._registry[mid]
        if mid not in self.fields:
            self.fields[mid] = self._make_fields(mid)
        f = self.fields[mid]
        unit = m.unit.value
        problems: list[Note] = []
        numbers: dict[str, float | None] = {}
        for key in ("baseline", "target", "warning", "critical"):
            try:
                numbers[key] = parse_number(f[key].value, unit)
            except ValueError as e:
                problems.append(_fields.parse_note(m, key, e))
                numbers[key] = None
        try:
            deadline = parse_date(f["deadline"].value)
        except ValueError as e:
            problems.append(_fields.parse_note(m, "deadline", e))
            deadline = None
        supporting = tuple(s for s in m.supporting if s in self._registry and self._usable(s))
        return (
            KpiDraft(
                metric=mid,
                owner=f["owner"].value.strip() or None,
                baseline=numbers["baseline"],
                target=numbers["target"],
                deadline=deadline,
                warning=numbers["warning"],
                critical=numbers["critical"],
                supporting=supporting,
            ),
            problems,
        )

    def _usable(self, mid: str) -> bool:
        """A supporting metric is kept when its data is connected (or nothing is connected yet)."""
        return not self._sources or sources_needed([mid], self._registry) <= set(self._sources)

    def _typed(self, key: tuple[str, str]) -> None:
        self._touched.add(key)
        self.validate()

    def validate(self) -> list[Note]:
        """Check the KPIs as entered with the plan checks; show each finding under its field.

        Values that cannot be read are reported first; the rest comes from :func:`kpinb.lint.lint`
        on the draft plan (with the data's monthly history when connected), so the wizard and
        ``kpinb check`` judge a plan by the same rules. Returns (and keeps in :attr:`notes`) the notes.
        """
        from kpinb import _yaml
        from kpinb.checks.lint import lint
        from kpinb.definitions.model import Plan
        from kpinb.errors import PlanError

        drafts: dict[str, KpiDraft] = {}
        notes: list[Note] = []
        for mid in self.chosen:
            drafts[mid], unreadable = self._kpi(mid)
            notes.extend(unreadable)
        unreadable_at = {(n.metric, n.field) for n in notes}
        self.issues = []
        if drafts:
            draft = self._draft(tuple(drafts.values()))
            try:
                data, _ = _yaml.read(render_yaml(draft, self.plans_dir), self.target_path)
                plan = Plan.model_validate(data)
            except (PlanError, ValueError) as e:  # pydantic's ValidationError is a ValueError
                notes.append(Note(None, None, "error", f"The plan cannot be written yet: {e}", "Go back and fix it."))
            else:
                try:
                    self.issues = list(lint(plan, data=self._lint_data(), today=self.today))
                except KpinbError:  # the data could not be read: judge without it
                    self.issues = list(lint(plan, today=self.today))
                # a KPI whose data is not connected was not computed: "no values in the data" would
                # be wrong about it; it is saved with a placeholder source, which the note says
                unconnected = {mid for mid in drafts if self._sources and not self._usable(mid)}
                judged = [i for i in self.issues if not (i.rule == "measurable" and i.kpi in unconnected)]
                notes.extend(_fields.unconnected_note(self._registry[mid]) for mid in unconnected)
                # a value that cannot be read is said once, not again as "missing" by the checks
                notes.extend(
                    n
                    for n in _fields.notes(judged, drafts, self._registry)
                    if n.metric is None or (n.metric, n.field) not in unreadable_at
                )
        self.notes = notes
        self._show_notes()
        self._refresh_nav()
        return notes

    def _show_notes(self) -> None:
        rank = {"error": 0, "warning": 1, "info": 2}
        worst: dict[tuple[str | None, str | None], Note] = {}
        for n in self.notes:
            key = (n.metric, n.field)
            if key not in worst or rank[n.level] < rank[worst[key].level]:
                worst[key] = n
        for mid, msgs in self._messages.items():
            for name, html in msgs.items():
                note = worst.get((mid, name))
                if note is None and name == "critical" and (mid, "warning") in worst:
                    w = worst[(mid, "warning")]  # the order of the two levels is about both fields
                    if "Swap" in w.text:
                        note = Note(mid, name, w.level, "See the warning level.", w.fix)
                # a field not typed in yet says what it needs quietly; once typed in (or Next was
                # tried) its problems show in full colour
                loud = (mid, name) in self._touched
                html.value = _note_html(note, muted=not loud)
                field = self.fields[mid][name]
                if note is not None and note.blocking and loud:
                    field.add_class("kpinb-invalid")
                else:
                    field.remove_class("kpinb-invalid")
            kpi_notes = [n for n in self.notes if n.metric == mid and n.field is None]
            self._kpi_messages[mid].value = "".join(_note_html(n) for n in kpi_notes)

    # --- step 4 ---------------------------------------------------------------------------------

    def draft(self) -> PlanDraft:
        """The plan as entered so far."""
        return self._draft(tuple(self._kpi(mid)[0] for mid in self.chosen))

    def _draft(self, kpis: tuple[KpiDraft, ...]) -> PlanDraft:
        needed = sources_needed([i for k in kpis for i in (k.metric, *k.supporting)], self._registry)
        sources = {n: s for n, s in self._sources.items() if n in needed}
        placeholders = tuple(sorted(needed - set(sources)))
        for name in placeholders:
            sources[name] = Source(path=f"data/{name}.parquet")
        dept = self.department.value or "department"
        return PlanDraft(
            name=self.name.value.strip() or f"{dept.replace('_', ' ').capitalize()} KPIs",
            department=dept,
            statement=" ".join(self.statement.value.split()),
            kpis=kpis,
            sources=sources,
            placeholders=placeholders,
            review_every="quarter",
            review_last=self.today,
        )

    @property
    def target_path(self) -> Path:
        """Where Save writes: ``<plans_dir>/<file name of step 4>``, by default ``<department>.yml``
        (the department as a safe file name)."""
        return self.plans_dir / (self.file.value.strip() or self._default_file())

    def _default_file(self) -> str:
        return f"{slug(self.department.value)}.yml"

    def plan_yaml(self) -> str:
        """The plan file's text as it would be saved now."""
        return render_yaml(self.draft(), self.plans_dir)

    def _file_blockers(self) -> list[str]:
        name = self.file.value.strip()
        if name and (slug(name) != name or not name.endswith((".yml", ".yaml"))):
            return ["the file name must be a plain name ending in .yml"]
        if self.path is not None and self.target_path == self.path and not self.overwrite.value:
            return [f"saved as {self.path.name}; tick Overwrite to save changes over it"]
        if self.target_path.exists() and not self.overwrite.value:
            return [f"the file {self.target_path.name} exists: tick Overwrite to replace it, or choose another name"]
        return []

    def _refresh_file(self) -> None:
        path = self.target_path
        exists = path.exists()
        self.overwrite.layout.display = None if exists else "none"
        problems = self._file_blockers()
        if problems:
            color = SEVERITY_STYLE["warning"][0]
            text = esc(problems[0][:1].upper() + problems[0][1:])
            self._file_note.value = f'<div style="color:{color};font-size:12px">⚠ {text}.</div>'
        else:
            what = "replaces the existing file" if exists else "a new file"
            self._file_note.value = f'<div style="{_MUTED};font-size:12px">{esc(str(path))} ({what})</div>'
        if self.step == len(STEPS):
            self._refresh_nav()

    def _step_review(self) -> list[widgets.Widget]:
        from kpinb.definitions.plan import parse_plan

        default = self._default_file()
        if not self.file.value.strip() or self.file.value == self._file_default:
            self.file.value = default
        self._file_default = default
        self.overwrite.value = False
        self.validate()
        self._yaml = self.plan_yaml()
        try:
            parse_plan(self._yaml, self.target_path)  # the checks loading the file applies
        except KpinbError as e:
            self.notes.append(Note(None, None, "error", f"The plan file would not load: {e}", "Go back and fix it."))
        self.review.value = self._review_html()
        self._refresh_file()
        self._refresh_nav()
        return [self.review, widgets.HBox([self.file, self.overwrite]), self._file_note]

    def _lint_data(self) -> pd.DataFrame | None:
        frames = [self._baseline_frames[m] for m in self.chosen if m in self._baseline_frames]
        if not frames:
            return None
        import pandas as pd

        data = pd.concat(frames, ignore_index=True)
        data.attrs.update(grain="month", by=())
        return data

    def _review_html(self) -> str:
        draft = self.draft()
        kpis = [(self._registry[k.metric], k) for k in draft.kpis]
        return review_html(draft, kpis, self.notes, self._yaml)

    # --- save -----------------------------------------------------------------------------------

    def save(self) -> Path | None:
        """Write the plan atomically to :attr:`target_path`, load it back into :attr:`plan`; returns the path.

        Nothing is written while a KPI has an error, or when the file exists and "Overwrite" is not ticked.
        """
        from kpinb.definitions.plan import load_plan, parse_plan

        self.validate()
        blockers = [*(f"{self._name(n.metric)}: {n.text}" for n in self.notes if n.blocking), *self._file_blockers()]
        if blockers:
            self._say(["Not saved:", *blockers], "error")
            return None
        text = self.plan_yaml()
        path = self.target_path
        try:
            parse_plan(text, path)
            write_atomic(path, text, within=self.plans_dir)
        except KpinbError as e:
            self._say(f"Not saved: {e}", "error")
            return None
        self.plan = load_plan(path)
        self.path = path
        self._say(
            [
                f"Saved {path} with {len(self.plan.kpis)} KPI(s).",
                f"Next: Dashboard({str(path)!r}) shows them; `kpinb check {path}` reviews them against the data.",
            ],
            "info",
        )
        self.message.value = self.message.value.replace("<div ", '<div class="kpinb-wizard-saved" ', 1)
        self.overwrite.value = False  # saving again replaces this file only when asked again
        self._refresh_file()
        return path

    def set_sources(self, sources: Mapping[str, Any] | str | Path | None) -> None:
        """Connect data (as the ``sources`` argument) before step 2."""
        self._sources_spec = sources if sources is not None and not isinstance(sources, (str, Path)) else None
        self.sources.value = str(sources) if isinstance(sources, (str, Path)) else ""
