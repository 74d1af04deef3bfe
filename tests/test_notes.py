"""Notes next to the plan: read and appended on real files, each bad row one clear error."""

import datetime as dt

import pytest
from insight_support import PLAN, write_shop

import kpinb
from kpinb.checks.lint import check
from kpinb.definitions import notes
from kpinb.definitions.notes import MAX_NOTES_BYTES, Note, add_note, notes_path, read_notes
from kpinb.errors import PlanError


@pytest.fixture
def plan(tmp_path):
    return kpinb.load_plan(write_shop(tmp_path))


def test_notes_live_beside_the_plan_and_round_trip_with_commas_quotes_and_markup(plan, tmp_path):
    assert notes_path(plan) == tmp_path / "plan.notes.csv"
    assert read_notes(plan) == ()  # no file yet: no notes
    first = add_note(plan, "revenue", "2025-08-01", "Ann", 'North "flash sale", 2 days')
    add_note(plan, "visits", dt.date(2025, 7, 15), "", "<script>alert(1)</script>\nsecond line")
    assert first == Note("revenue", dt.date(2025, 8, 1), "Ann", 'North "flash sale", 2 days')
    assert read_notes(plan) == (
        first, Note("visits", dt.date(2025, 7, 15), "", "<script>alert(1)</script>\nsecond line")
    )  # fmt: skip
    text = (tmp_path / "plan.notes.csv").read_text()
    assert text.startswith("kpi,period,author,text\nrevenue,2025-08-01,Ann,")


def test_every_bad_row_is_named_with_its_line_field_and_fix(plan, tmp_path):
    (tmp_path / "plan.notes.csv").write_text(
        "kpi,period,author,text\n"
        "revenue,2025-08-01,Ann,fine\n"
        "revnue,2025-08-01,Ann,typo\n"
        "visits,01/08/2025,Bo,us date\n"
        "visits,2025-08-01,Bo,\n"
        "visits,2025-08-01,Bo,a,b\n"
    )
    with pytest.raises(PlanError) as err:
        read_notes(plan)
    lines = str(err.value).splitlines()
    assert len(lines) == 4 and all(str(tmp_path / "plan.notes.csv") in line for line in lines)
    assert "plan.notes.csv:3: kpi 'revnue' is not a KPI of the plan; use one of: revenue, visits" in lines[0]
    assert "plan.notes.csv:4: period '01/08/2025' is not a date; write it as YYYY-MM-DD" in lines[1]
    assert "plan.notes.csv:5: text is empty" in lines[2]
    assert "plan.notes.csv:6: 5 fields, expected 4" in lines[3]
    with pytest.raises(PlanError, match="the header is"):
        (tmp_path / "plan.notes.csv").write_text("who,when,what\n")
        read_notes(plan)


def test_a_bad_new_note_is_refused_and_the_file_left_as_it_was(plan, tmp_path):
    add_note(plan, "revenue", "2025-08-01", "Ann", "kept")
    before = (tmp_path / "plan.notes.csv").read_bytes()
    for args, message in [
        (("nope", "2025-08-01", "Ann", "x"), "kpi 'nope' is not a KPI"),
        (("revenue", "2025-02-30", "Ann", "x"), "period '2025-02-30' is not a date"),
        (("revenue", "2025-08-01", "Ann", "  "), "text is empty"),
        (("revenue", "2025-08-01", "Ann", "x" * (notes.MAX_TEXT + 1)), "more than 2,000; shorten"),
        (("revenue", "2025-08-01", "Ann", "bell\x07"), "control characters"),
    ]:
        with pytest.raises(PlanError, match=message):
            add_note(plan, *args)
    assert (tmp_path / "plan.notes.csv").read_bytes() == before


def test_a_huge_or_binary_notes_file_is_refused_without_reading_it_all(plan, tmp_path):
    with (tmp_path / "plan.notes.csv").open("wb") as f:
        f.write(b"kpi,period,author,text\n")
        f.truncate(MAX_NOTES_BYTES + 10)
    with pytest.raises(PlanError, match="too large for a notes file"):
        read_notes(plan)
    (tmp_path / "plan.notes.csv").write_bytes(b"kpi,period,author,text\n\xff\xfe\n")
    with pytest.raises(PlanError, match="not UTF-8"):
        read_notes(plan)
    with pytest.raises(PlanError, match="not UTF-8"):
        add_note(plan, "revenue", "2025-08-01", "Ann", "x")


def test_a_plan_built_in_code_has_no_notes_file():
    plan = kpinb.definitions.plan.parse_plan("name: x\ndepartment: y\n")
    with pytest.raises(PlanError, match="not loaded from a file"):
        notes_path(plan)


def test_check_names_a_bad_notes_line_and_a_weight_that_counts_nowhere(tmp_path):
    write_shop(tmp_path, PLAN.replace("    objective: grow\n    owner: Bo", "    weight: 2\n    owner: Bo"))
    (tmp_path / "plan.notes.csv").write_text("kpi,period,author,text\nrevenue,2025-02-31,Ann,x\n")
    issues, code = check(tmp_path / "plan.yml", today=dt.date(2025, 9, 1))
    by_rule = {i.rule: i for i in issues}
    assert code == 1 and by_rule["notes"].level == "error"
    assert "plan.notes.csv:2: period '2025-02-31' is not a date" in by_rule["notes"].message
    assert by_rule["weight"].level == "warning" and by_rule["weight"].kpi == "visits"
    assert "`weight: 2` but no objective" in by_rule["weight"].message
