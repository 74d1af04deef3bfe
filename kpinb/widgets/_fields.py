"""Where the wizard shows what the plan checks found: each finding next to the form field it is about.

The rules are the plan checks' own (:func:`kpinb.checks.lint.lint` on the draft plan); this
module only decides which field of step 3 (or which step) a finding belongs to and words it
for someone filling in a form: field names and formatted numbers, not YAML keys and metric ids.
No widgets here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kpinb.views.kit import display_unit, format_value

if TYPE_CHECKING:
    from kpinb.checks.rules import Issue
    from kpinb.definitions.model import Metric
    from kpinb.widgets._draft import KpiDraft

Level = Literal["error", "warning", "info"]

FIELDS = ("baseline", "target", "deadline", "owner", "warning", "critical")
LABELS = {
    "baseline": "Baseline",
    "target": "Target",
    "deadline": "By (date)",
    "owner": "Owner",
    "warning": "Warning at",
    "critical": "Critical at",
}
_STEP_OF_FIELD = 3


@dataclass(frozen=True)
class Note:
    """One finding as the wizard shows it: the KPI (None: the plan), the field (None: the KPI or
    plan as a whole), ``level``, ``text`` (what is wrong, next to the field) and ``fix`` (what to
    do, pointing at the step and field, for the review)."""

    metric: str | None
    field: str | None
    level: Level
    text: str
    fix: str

    @property
    def blocking(self) -> bool:
        return self.level == "error"


def parse_note(metric: Metric, field: str, error: ValueError) -> Note:
    """A value that could not be read (``lots`` as a target, ``12/31/2026`` as a date)."""
    return Note(
        metric.id,
        field,
        "error",
        f"{_sentence(str(error))}.",
        f"Correct {LABELS[field].lower()} in step {_STEP_OF_FIELD} for {metric.name}.",
    )


def unconnected_note(metric: Metric) -> Note:
    """A KPI whose data is not connected: saved with a placeholder source to point at the data."""
    return Note(
        metric.id,
        None,
        "warning",
        "Its data is not connected: the plan gets a placeholder source for you to point at your file.",
        f"Connect its data in step 1, or point the placeholder at your file after saving ({metric.name}).",
    )


def notes(issues: Iterable[Issue], drafts: Mapping[str, KpiDraft], registry: Mapping[str, Metric]) -> list[Note]:
    """The plan checks' issues as notes on the form; ``drafts`` are the KPIs as entered."""
    out: list[Note] = []
    for issue in issues:
        k = drafts.get(issue.kpi) if issue.kpi else None
        m = registry.get(issue.kpi) if issue.kpi else None
        if k is None or m is None:
            out.append(_plan_note(issue, registry))
            continue
        out.append(_kpi_note(issue, k, m))
    return out


def _kpi_note(issue: Issue, k: KpiDraft, m: Metric) -> Note:
    name, unit = m.name, display_unit(m, None)
    step = f"in step {_STEP_OF_FIELD} for {name}"
    if issue.rule == "time_bound":
        if k.target is None:
            return Note(m.id, "target", "error", "Set a target: the value this KPI should reach.",
                        f"Set a target {step}.")  # fmt: skip
        return Note(m.id, "deadline", "error", "Set the date the target should be reached by (YYYY-MM-DD).",
                    f"Set the target's date {step}.")  # fmt: skip
    if issue.rule == "thresholds":
        higher = m.direction.value == "higher_is_better"
        side, falls = ("above", "falls") if higher else ("below", "rises")
        text = (
            f"Warning at {format_value(k.warning, unit)} must be {side} critical at {format_value(k.critical, unit)}: "
            f"{'higher' if higher else 'lower'} is better, so the warning should sound first as the value {falls}. "
            "Swap the two levels."
        )
        return Note(m.id, "warning", "error", text, f"Swap the warning and critical levels {step}.")
    if issue.rule == "owner":
        return Note(m.id, "owner", issue.level, "Name the person or role who answers for this number.",
                    f"Name an owner {step}.")  # fmt: skip
    if issue.rule == "deadline_passed":
        return Note(m.id, "deadline", issue.level, "This date has already passed: pick one ahead.",
                    f"Pick a later date {step}.")  # fmt: skip
    if issue.rule == "achievable":
        if issue.level == "info":
            text = "The latest value already meets this target: raise it if it should still stretch the team."
        else:
            text = _without_id(issue.message, m.id)
        return Note(m.id, "target", issue.level, text, f"Review the target {step}.")
    if issue.rule == "vanity_kpi":
        return Note(m.id, None, issue.level,
                    "A vanity metric: it looks impressive but rarely changes a decision.",
                    f"Untick {name} in step 2, or keep it and add the outcome it should lead to.")  # fmt: skip
    if issue.rule == "measurable":
        return Note(m.id, None, issue.level, _without_id(issue.message, m.id),
                    f"Connect its data in step 1, or untick {name} in step 2.")  # fmt: skip
    return Note(m.id, None, issue.level, _without_id(issue.message, m.id), _without_yaml(issue.fix))


def _plan_note(issue: Issue, registry: Mapping[str, Metric]) -> Note:
    fixes = {
        "kpi_count": "Untick some KPIs in step 2: keep the 5–7 that matter most.",
        "indicator_balance": "Tick a KPI of the other kind in step 2 (the badges say leading or lagging).",
    }
    message = issue.message
    for mid in re.findall(r"'([a-z0-9_]+)'", message):
        if mid in registry:
            message = message.replace(f"'{mid}'", registry[mid].name)
    return Note(None, None, issue.level, message, fixes.get(issue.rule, _without_yaml(issue.fix)))


def _without_id(message: str, metric: str) -> str:
    """``KPI 'x': the target ...`` -> ``The target ...`` (the field sits under the KPI's name)."""
    text = re.sub(rf"^KPI '{re.escape(metric)}'(:\s*|\s+)", "", message)
    return _sentence(text) if text != message else message


def _without_yaml(fix: str) -> str:
    """A fix without YAML snippets: the wizard fills the file, people fill the form."""
    return re.sub(r"\s*`[^`]*`", "", fix).strip() or fix


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
