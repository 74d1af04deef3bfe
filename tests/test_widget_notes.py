"""The "add note" form, driven headlessly with real ipywidgets: fields set, the button clicked."""

import datetime as dt

from insight_support import write_shop

import kpinb
from kpinb.definitions.notes import read_notes

EVIL = "<script>alert('x')</script>"


def test_the_form_appends_a_note_lists_it_escaped_and_tells_listeners(tmp_path):
    from kpinb.widgets.notes import NoteForm

    plan = kpinb.load_plan(write_shop(tmp_path))
    form = NoteForm(tmp_path / "plan.yml", today=dt.date(2025, 9, 1))
    assert form.kpi.options == (("Revenue", "revenue"), ("Visits", "visits")) and form.period.value == "2025-09-01"
    heard = []
    form.on_add(heard.append)
    form.kpi.value = "visits"
    form.author.value = f"Bo {EVIL}"
    form.text.value = f"Store closed {EVIL}"
    form.add_button.click()
    assert "Note added to plan.notes.csv." in form.message.value and form.text.value == ""
    assert [n.text for n in read_notes(plan)] == [f"Store closed {EVIL}"] and heard[0].author == f"Bo {EVIL}"
    listing = form.listing.value
    assert "<script" not in listing and "Store closed &lt;script&gt;alert(&#x27;x&#x27;)" in listing
    assert "Visits" in form.listing.value and "2025-09-01" in form.listing.value


def test_a_mistake_is_shown_escaped_and_nothing_is_written(tmp_path):
    from kpinb.widgets.notes import NoteForm

    write_shop(tmp_path)
    form = NoteForm(tmp_path / "plan.yml")
    form.period.value = f"soon {EVIL}"
    form.text.value = "kept"
    form.add_button.click()
    assert "is not a date; write it as YYYY-MM-DD" in form.message.value and "<script" not in form.message.value
    assert form.text.value == "kept" and not (tmp_path / "plan.notes.csv").exists()
    (tmp_path / "plan.notes.csv").write_text(f"kpi,period,author,text\nnope,2025-01-01,a,{EVIL}\n")
    form.refresh()
    assert "is not a KPI of the plan" in form.listing.value and "<script" not in form.listing.value
