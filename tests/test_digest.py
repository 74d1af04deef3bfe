"""The digest, run as users run it (``kpinb digest`` in a subprocess) on plans and data written
here: an email-safe page with every user string escaped, a valid chat payload, a webhook."""

import dataclasses
import json
import re
import subprocess
import sys

import pytest
from insight_support import PLAN, write_shop
from test_alerts import SECRET_PATH, webhook

import kpinb
from kpinb import scorecard
from kpinb.outputs import digest
from kpinb.views.digest import sparkline

KPINB = [sys.executable, "-m", "kpinb.cli"]
HOSTILE = PLAN.replace("name: Shop <North>", 'name: "Shop <script>alert(1)</script>"').replace(
    "name: Revenue,", "name: \"Revenue <img src=x onerror=alert(2)>\","
).replace('statement: Grow revenue & "visits"', "statement: \"</table><b onclick='x'>Grow</b>\"")


def run(*args, cwd=None):
    return subprocess.run([*KPINB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_the_page_is_email_safe_and_every_user_string_is_escaped(tmp_path):
    plan = write_shop(tmp_path, HOSTILE)
    (tmp_path / "plan.notes.csv").write_text(
        'kpi,period,author,text\nrevenue,2025-08-02,"<i>Ann</i>","Flash sale <script>alert(3)</script> & more"\n'
        "visits,2025-07-01,,Older note\n"
    )
    done = run("digest", "--plan", plan, "--out", tmp_path / "out" / "digest.html", "--json", tmp_path / "d.json")
    assert done.returncode == 0, done.stderr
    assert "digest of 1 department(s) written to" in done.stdout
    page = (tmp_path / "out" / "digest.html").read_text()
    assert "<script" not in page.lower() and "<img" not in page.lower() and "onclick='" not in page
    assert "Shop &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Revenue &lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;/table&gt;&lt;b onclick=&#x27;x&#x27;&gt;Grow&lt;/b&gt;" in page
    assert "Flash sale &lt;script&gt;alert(3)&lt;/script&gt; &amp; more" in page and "&lt;i&gt;Ann&lt;/i&gt;" in page
    assert page.index("Flash sale") < page.index("Older note")  # the latest note first
    assert "<style" not in page and "<link" not in page and not re.search(r"<[^>]*\bsrc=", page)  # inline only
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")
    assert page.count("<svg") == 2  # one sparkline per KPI
    payload = json.loads((tmp_path / "d.json").read_text())
    assert payload["text"].startswith("KPI digest (") and payload["text"].endswith("1 department(s), 2 alert(s)")
    blocks = json.dumps(payload["blocks"])
    assert "<script>" not in blocks and "&lt;script&gt;" in blocks and "&lt;img src=x" in blocks
    assert "Flash sale &lt;script&gt;alert(3)&lt;/script&gt; &amp; more" in blocks
    dept = payload["departments"][0]
    assert dept["notes"][0] == {
        "kpi": "revenue", "period": "2025-08-02", "author": "<i>Ann</i>",
        "text": "Flash sale <script>alert(3)</script> & more",
    }  # fmt: skip
    assert dept["name"] == "Shop <script>alert(1)</script>"  # data stays data; rendering escapes it
    assert [(k["metric"], k["status"], k["value"], k["change"]) for k in dept["kpis"]] == [
        ("revenue", "off_track", "790.00", "+97.5%"), ("visits", "on_track", "95", "-9.5%")
    ]  # fmt: skip
    assert [(a["kind"], a["value"]) for a in dept["alerts"]] == [("anomaly", 790.0), ("anomaly", 80.0)]
    assert dept["insights"][0]["kind"] == "unusual_change" and dept["movers"] == ["revenue", "visits"]
    assert dept["objectives"][0]["status"] == "off_track"


def test_a_plans_folder_digests_every_plan_and_names_the_one_that_could_not_be_evaluated(tmp_path):
    folder = tmp_path / "plans"
    folder.mkdir()
    write_shop(folder)
    (folder / "plan.yml").rename(folder / "shop.yml")
    (folder / "broken.yml").write_text(PLAN.replace("orders.csv", "missing.csv"))
    (folder / "shop.notes.csv").write_text("kpi,period,author,text\nnope,2025-01-01,a,b\n")  # check reports it
    done = run("digest", "--plans-dir", folder, "--out", tmp_path / "digest.html")
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip().endswith("not evaluated: broken.yml")
    page = (tmp_path / "digest.html").read_text()
    assert "Not evaluated: " in page and "missing.csv" in page and "Revenue" in page
    assert page.count("Not evaluated: ") == 1 and "Notes</h3>" not in page


def test_the_webhook_gets_the_payload_and_a_refusal_is_one_clear_error(tmp_path):
    plan = write_shop(tmp_path)
    with webhook(200) as (url, received):
        done = run("digest", "--plan", plan, "--out", tmp_path / "d.html", "--json", tmp_path / "d.json",
                   "--webhook", url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "posted to the webhook (HTTP 200)" in done.stdout
    assert json.loads(received[0]["body"]) == json.loads((tmp_path / "d.json").read_text())
    with webhook(403) as (url, _):
        done = run("digest", "--plan", plan, "--out", tmp_path / "d.html", "--webhook", url)
    assert done.returncode == 2
    assert "refused the digest with HTTP 403" in done.stderr and SECRET_PATH not in done.stderr


def test_no_plan_is_a_usage_error(tmp_path):
    done = run("digest", "--out", tmp_path / "d.html")
    assert done.returncode == 2 and "give --plan PLAN or --plans-dir DIR" in done.stderr
    assert not (tmp_path / "d.html").exists()


def test_the_payload_text_is_capped_and_mrkdwn_escaped(tmp_path):
    plan = kpinb.load_plan(write_shop(tmp_path))
    card = scorecard.evaluate(plan, kpinb.compute(plan, grain="month"), pace=False)
    part = digest.department(plan, [card])
    many = dataclasses.replace(part, kpis=part.kpis * 200)  # far more lines than one Slack section takes
    payload = digest.to_payload(digest.Digest("Weekly & <daily>", "2025-09-01", (many,)))
    assert payload["blocks"][0]["text"]["text"].startswith("Weekly & <daily>")  # plain_text: Slack shows it as is
    texts = [b["text"]["text"] for b in payload["blocks"] if "text" in b]
    assert all(len(t) <= 3000 for t in texts) and texts[2].endswith("…")
    assert sparkline([1.0]) == "" and sparkline([1.0, float("nan"), 3.0]).count(",") == 2


@pytest.mark.parametrize("bad", ["not-a-date", "2025-13-01"])
def test_a_bad_period_end_is_refused_by_the_parser(tmp_path, bad):
    done = run("digest", "--plan", "x.yml", "--out", tmp_path / "d.html", "--period-end", bad)
    assert done.returncode == 2 and "YYYY-MM-DD" in done.stderr
