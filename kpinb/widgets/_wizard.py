"""The objective-to-KPI wizard: objective -> candidate KPIs -> baselines and targets -> SMART review -> plan file.

>>> wizard = KpiWizard(department="web", plans_dir="plans", sources="data/sample")  # doctest: +SKIP
>>> wizard   # four steps in the notebook; Save writes plans/web.yml and sets wizard.plan  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from kpinb._io import slug, write_atomic
from kpinb.checks.lint import MAX_KPIS
from kpinb.definitions import catalog
from kpinb.definitions.analysis import sources_needed
from kpinb.definitions.model import Source
from kpinb.errors import KpinbError
from kpinb.views.kit import SEVERITY_STYLE, display_unit, esc, format_value
from kpinb.widgets._draft import KpiDraft, PlanDraft, baselines, connect, number_text, parse_number, render_yaml

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Metric, Plan

__all__ = ["KpiWizard"]

STEPS = ("Objective", "Candidate KPIs", "Baselines and targets", "SMART review")
FIELDS = ("baseline", "target", "deadline", "owner", "warning", "critical")
_MUTED = "color:#5f6368"



def _classed(widget: widgets.DOMWidget, *classes: str) -> Any:
    for c in classes:
        widget.add_class(c)
    return widget


def _default_deadline(today: dt.date) -> dt.date:
    """The end of this year, or of next year from July on (a deadline needs time to act)."""
    return dt.date(today.year + (1 if today.month > 6 else 0), 12, 31)


class KpiWizard(widgets.VBox):
    """Turn an objective into a few KPIs with baselines, targets, owners and thresholds; save a plan.

    Parameters
    ----------
    department : a catalog department (``sales``, ``web``...) to start with, or your own.
    plans_dir : the folder the plan is saved to, as ``<department>.yml``.
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
    candidates : the catalog metrics proposed in step 2, best match first.
    checkboxes : metric id -> its checkbox in step 2.
    fields : metric id -> ``{"baseline", "target", "deadline", "owner", "warning", "critical"}``
        widgets of step 3 (kept when going back and forth).
    issues : the SMART review's findings (:class:`kpinb.lint.Issue`) of step 4.

    The widgets carry stable CSS classes for tests and browser automation:
    ``kpinb-wizard-next``/``-back``/``-save``, ``kpinb-wizard-statement``/``-department``/``-name``/
    ``-sources``, ``kpinb-wizard-counter``, ``kpinb-kpi-<metric>`` (the candidate's checkbox) and
    ``kpinb-kpi-<metric>-<field>`` for baseline, target, deadline, owner, warning and critical.
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
        self._registry: dict[str, Metric] = catalog.metrics()
        self._sources: dict[str, Source] = {}
        self._sources_spec: Any = sources if sources is not None and not isinstance(sources, (str, Path)) else None
        self.candidates: list[Metric] = []
        self._matched: set[str] = set()
        self._candidates_key: tuple[str, str] | None = None
        self.checkboxes: dict[str, widgets.Checkbox] = {}
        self.fields: dict[str, dict[str, widgets.Widget]] = {}
        self._baselines: dict[str, float] = {}
        self._baseline_frames: dict[str, pd.DataFrame] = {}
        self._baseline_label = ""
        self._yaml = ""

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
            ),
            "kpinb-wizard-sources",
        )
        # step 2
        self.counter = _classed(widgets.HTML(), "kpinb-wizard-counter")
        self._candidates_box = widgets.VBox()
        self._candidates_note = widgets.HTML()
        # step 3
        self._targets_box = widgets.VBox()
        # step 4
        self.review = _classed(widgets.HTML(), "kpinb-wizard-review")
        # navigation
        self.title = _classed(widgets.HTML(), "kpinb-wizard-title")
        self.message = _classed(widgets.HTML(), "kpinb-wizard-message")
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
        self._body = widgets.VBox()
        self._nav = widgets.HBox([self.back_button, self.next_button, self.save_button])
        self.children = [self.title, self._body, self.message, self._nav]
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
        self.title.value = (
            f'<div style="font-size:16px;font-weight:700">KPI wizard · step {self.step} of {len(STEPS)}: '
            f"{esc(STEPS[self.step - 1])}</div>"
        )
        builders = {1: self._step_objective, 2: self._step_candidates, 3: self._step_targets, 4: self._step_review}
        self._body.children = builders[self.step]()
        for i in range(1, len(STEPS) + 1):
            self._body.remove_class(f"kpinb-wizard-step-{i}")
        self._body.add_class(f"kpinb-wizard-step-{self.step}")
        self.back_button.disabled = self.step == 1
        self.next_button.layout.display = "none" if self.step == len(STEPS) else None
        self.save_button.layout.display = None if self.step == len(STEPS) else "none"

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
            return [p for mid in self.chosen for p in self._kpi(mid)[1]]
        return []

    # --- step 1 ---------------------------------------------------------------------------------

    def _step_objective(self) -> list[widgets.Widget]:
        intro = widgets.HTML(
            f'<div style="{_MUTED}">What are you trying to achieve, and how will you know you are succeeding? '
            "Say it as an outcome (<i>Grow monthly revenue 20% by the end of 2026</i>), not as an activity. "
            "The KPIs will say how well it is going.</div>"
        )
        return [intro, self.statement, self.department, self.name, self.sources]

    # --- step 2 ---------------------------------------------------------------------------------

    @property
    def chosen(self) -> list[str]:
        """The ticked candidates' metric ids, in ranking order."""
        return [m.id for m in self.candidates if self.checkboxes.get(m.id) is not None and self.checkboxes[m.id].value]

    def _step_candidates(self) -> list[widgets.Widget]:
        key = (self.department.value, self.statement.value.strip())
        if key != self._candidates_key:
            self._candidates_key = key
            dept, statement = key
            matched = catalog.search(department=dept, objective=statement)
            self._matched = {m.id for m in matched}
            rest = [m for m in catalog.search(department=dept) if m.id not in self._matched]
            self.candidates = [*matched, *rest]
            rows = []
            for m in self.candidates:
                if m.id not in self.checkboxes:
                    box = _classed(widgets.Checkbox(value=False, description=m.name, indent=False), f"kpinb-kpi-{m.id}")
                    box.observe(lambda _: self._count(), names="value")
                    self.checkboxes[m.id] = box
                rows.append(widgets.VBox([self.checkboxes[m.id], widgets.HTML(self._candidate_html(m))]))
            self._candidates_box.children = rows
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
        return [intro, self._candidates_note, self._candidates_box, self.counter]

    def _candidate_html(self, m: Metric) -> str:
        unit = display_unit(m, None)
        badges = [
            ("matches your objective", "#1b7f3b", "#e7f4ea") if m.id in self._matched else None,
            (m.indicator.value, "#1a73e8", "#e8f0fe"),
            ("KPI candidate" if m.role.value == "kpi_candidate" else "operational metric", "#5f6368", "#f1f3f4"),
            (f"unit: {unit}", "#5f6368", "#f1f3f4"),
        ]
        if self._sources:
            ok = sources_needed([m.id], self._registry) <= set(self._sources)
            badges.append(
                ("data connected", "#1b7f3b", "#e7f4ea") if ok else ("no data connected", "#9a5b00", "#fff3df")
            )
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
            f'<div style="margin:-4px 0 8px 24px;font-size:12px"><div style="{_MUTED}">{esc(m.description)}</div>'
            f'<div style="margin-top:2px">{chips}</div>{vanity}</div>'
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
        style = "color:#b3261e" if n > MAX_KPIS else "color:#202124"
        self.counter.value = f'<div class="kpinb-counter" data-count="{n}" style="{style}">{text}</div>' + "".join(
            f'<div style="color:#9a5b00">⚠ {esc(w)}</div>' for w in warn
        )

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
            "<code>0.12</code>; large numbers take <code>1.5M</code>.</div>"
        )
        if self._baselines:
            intro += f'<div style="{_MUTED}">Baselines pre-filled from the data: {esc(self._baseline_label)}.</div>'
        if note:
            intro += f'<div style="color:#9a5b00">{esc(note)}</div>'
        return [widgets.HTML(intro), self._targets_box]

    def _make_fields(self, mid: str) -> dict[str, widgets.Widget]:
        m = self._registry[mid]
        unit = m.unit.value
        base = self._baselines.get(mid)

        def text(name: str, label: str, value: str = "", placeholder: str = "") -> widgets.Text:
            return _classed(
                widgets.Text(
                    value=value, description=label, placeholder=placeholder, layout=widgets.Layout(width="260px")
                ),
                f"kpinb-kpi-{mid}-{name}",
            )

        hint = "e.g. 12%" if unit == "percent" else "a number"
        return {
            "baseline": text("baseline", "Baseline", number_text(base, unit), hint),
            "target": text("target", "Target", "", hint),
            "deadline": _classed(
                widgets.DatePicker(
                    value=_default_deadline(self.today), description="By", layout=widgets.Layout(width="260px")
                ),
                f"kpinb-kpi-{mid}-deadline",
            ),
            "owner": text("owner", "Owner", "", "a person or role"),
            "warning": text("warning", "Warning at", "", "optional"),
            "critical": text("critical", "Critical at", "", "optional"),
        }

    def _kpi_box(self, mid: str) -> widgets.Widget:
        m = self._registry[mid]
        f = self.fields[mid]
        better = "higher is better" if m.direction.value == "higher_is_better" else "lower is better"
        order = "the warning level above the critical one" if better.startswith("higher") else "warning below critical"
        base = self._baselines.get(mid)
        seen = f" · last 12 months: {format_value(base, display_unit(m, None))}" if base is not None else ""
        head = widgets.HTML(
            f'<div style="font-weight:600;margin-top:8px">{esc(m.name)} '
            f'<span style="{_MUTED};font-weight:400;font-size:12px">({esc(better)}; {esc(order)}{esc(seen)})'
            "</span></div>"
        )
        grid = widgets.GridBox(
            [f[k] for k in FIELDS],
            layout=widgets.Layout(grid_template_columns="repeat(3, 270px)", grid_gap="2px 8px"),
        )
        return _classed(widgets.VBox([head, grid]), f"kpinb-kpi-{mid}-box")

    def _kpi(self, mid: str) -> tuple[KpiDraft, list[str]]:
        """The KPI as entered, and what is wrong with it (numbers that are not numbers...)."""
        m = self._registry[mid]
        f = self.fields.get(mid) or self._make_fields(mid)
        unit = m.unit.value
        problems: list[str] = []
        numbers: dict[str, float | None] = {}
        for key in ("baseline", "target", "warning", "critical"):
            try:
                numbers[key] = parse_number(f[key].value, unit)
            except ValueError as e:
                problems.append(f"{m.name}: {key}: {e}.")
                numbers[key] = None
        deadline = f["deadline"].value
        if numbers["target"] is not None and deadline is None:
            problems.append(f"{m.name}: a target needs a deadline: pick the date it should be reached by.")
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

    # --- step 4 ---------------------------------------------------------------------------------

    def draft(self) -> PlanDraft:
        """The plan as entered so far."""
        kpis = tuple(self._kpi(mid)[0] for mid in self.chosen)
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
        """Where Save writes: ``<plans_dir>/<department>.yml`` (the department as a safe file name)."""
        return self.plans_dir / f"{slug(self.department.value)}.yml"

    def plan_yaml(self) -> str:
        """The plan file's text as it would be saved now."""
        return render_yaml(self.draft(), self.plans_dir)

    def _step_review(self) -> list[widgets.Widget]:
        from kpinb.checks.lint import lint
        from kpinb.definitions.plan import parse_plan

        self._yaml = self.plan_yaml()
        self.save_button.disabled = False
        try:
            plan = parse_plan(self._yaml, self.target_path)
        except KpinbError as e:
            self.save_button.disabled = True
            self.issues = []
            self.review.value = (
                f'<div style="color:#b3261e">The plan is not valid yet; go back and fix:</div><pre>{esc(e)}</pre>'
            )
            return [self.review]
        data = self._lint_data()
        try:
            self.issues = list(lint(plan, data=data, today=self.today))
        except KpinbError as e:
            self.issues = list(lint(plan, today=self.today))
            self._say(f"The data check was skipped: {e}", "warning")
        self.review.value = self._review_html(self.issues, self._yaml)
        return [self.review]

    def _lint_data(self) -> pd.DataFrame | None:
        frames = [self._baseline_frames[m] for m in self.chosen if m in self._baseline_frames]
        if not frames:
            return None
        import pandas as pd

        data = pd.concat(frames, ignore_index=True)
        data.attrs.update(grain="month", by=())
        return data

    @staticmethod
    def _review_html(issues: list[Any], text: str) -> str:
        if issues:
            level_colour = {k: v[0] for k, v in SEVERITY_STYLE.items()}
            rows = "".join(
                f'<tr><td style="padding:3px 6px"><span style="color:{level_colour.get(i.level, level_colour["info"])};'
                f'font-weight:600">{esc(i.level)}</span></td><td style="padding:3px 6px">{esc(i.rule)}</td>'
                f'<td style="padding:3px 6px">{esc(i.kpi or "plan")}</td>'
                f'<td style="padding:3px 6px">{esc(i.message)}<br><span style="{_MUTED}">Fix: {esc(i.fix)}'
                "</span></td></tr>"
                for i in issues
            )
            table = (
                '<table class="kpinb-wizard-issues" style="border-collapse:collapse;font-size:12px">'
                f"<thead><tr><th>level</th><th>rule</th><th>KPI</th><th>finding</th></tr></thead><tbody>{rows}"
                "</tbody></table>"
            )
        else:
            table = '<div style="color:#1b7f3b">The plan passes the SMART review.</div>'
        errors = sum(1 for i in issues if i.level == "error")
        lead = (
            f'<div style="color:#b3261e">{errors} error(s): the plan can be saved, but fix them before relying on it.'
            "</div>"
            if errors
            else ""
        )
        return (
            f'<div style="font-weight:600">SMART review</div>{lead}{table}'
            '<div style="font-weight:600;margin-top:8px">Plan file</div>'
            f'<pre class="kpinb-wizard-yaml" style="background:#f8f9fa;padding:8px;font-size:12px">{esc(text)}</pre>'
        )

    # --- save -----------------------------------------------------------------------------------

    def save(self) -> Path | None:
        """Write ``<plans_dir>/<department>.yml`` atomically, load it back into :attr:`plan`; returns the path."""
        from kpinb.definitions.plan import load_plan, parse_plan

        text = self.plan_yaml()
        path = self.target_path
        try:
            parse_plan(text, path)
        except KpinbError as e:
            self._say(f"Not saved: {e}", "error")
            return None
        try:
            write_atomic(path, text, within=self.plans_dir)
        except KpinbError as e:
            self._say(f"Not saved: {e}", "error")
            return None
        self.plan = load_plan(path)
        self.path = path
        self._say(f"Saved {path} with {len(self.plan.kpis)} KPI(s).", "info")
        self.message.value = self.message.value.replace("<div ", '<div class="kpinb-wizard-saved" ', 1)
        return path

    def set_sources(self, sources: Mapping[str, Any] | str | Path | None) -> None:
        """Connect data (as the ``sources`` argument) before step 2."""
        self._sources_spec = sources if sources is not None and not isinstance(sources, (str, Path)) else None
        self.sources.value = str(sources) if isinstance(sources, (str, Path)) else ""
