"""`kpinb run` and `kpinb alerts`: batches of template notebooks, failures kept, manifest, index."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import urllib.parse
from pathlib import Path

import nbformat
import pytest
import yaml
from batch_support import HOSTILE, PASSWORD, PERIOD_END, PLANS, ROOT, SAMPLE, SharedBatch, shared_batch

import kpinb
from kpinb import cli
from kpinb.errors import PlanError, RunError
from kpinb.runs.discovery import ALL_TEMPLATES, REPORT_TEMPLATES, department_plans, template_path, templates_dir
from kpinb.runs.inputs import fingerprint
from kpinb.runs.specs import load_runs


def _need_sample() -> None:
    if not (SAMPLE / "orders.parquet").is_file():
        pytest.fail("the sample data is missing: run `kpinb sample-data --out data/sample` (make test does)")


# --- finding templates and plans ------------------------------------------------------------------


def test_templates_are_found_by_name_and_ship_with_the_package():
    folder = templates_dir()
    for name in ALL_TEMPLATES:
        assert (folder / f"{name}.ipynb").is_file()
        assert template_path(name) == folder / f"{name}.ipynb"
    # the package's own folder (a symlink in a checkout, real files in a wheel) comes first
    assert folder == (Path(kpinb.__file__).resolve().parent / "templates").resolve()
    assert set(REPORT_TEMPLATES) < set(ALL_TEMPLATES)


def test_every_template_declares_the_parameters_and_a_kernelspec():
    for name in ALL_TEMPLATES:
        nb = nbformat.read(template_path(name), as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        for p in ("plan", "department", "period_end", "grain", "data_dir", "output_dir"):
            assert f"\n{p} = " in "\n" + tagged[0].source, f"{name} lacks parameter {p}"
    nb = nbformat.read(template_path("objective_to_kpi"), as_version=4)
    assert "\nobjectives = " in "\n" + next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


STORED = sorted((ROOT / "templates").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_are_stored_with_outputs_that_nbval_compares(path):
    """`pytest --nbval` compares stored outputs: every code cell was run in order, and only
    widget outputs (random model ids, no numbers) are exempt from the comparison."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run scripts/refresh_notebooks.py"
    assert any(c.outputs for c in code)
    for c in code:
        assert not any(o.get("output_type") == "error" for o in c.outputs), c.source[:80]
        if "nbval-ignore-output" in c.metadata.get("tags", []):
            mimes = {m for o in c.outputs for m in o.get("data", {})}
            assert "application/vnd.jupyter.widget-view+json" in mimes, f"outputs with numbers are compared: {c.source}"
    assert "widgets" not in nb.metadata, "widget state is not stored (scripts/refresh_notebooks.py drops it)"


def test_unknown_template_and_department_name_the_fix(tmp_path):
    with pytest.raises(RunError, match="unknown template 'dashbord'"):
        template_path("dashbord")
    with pytest.raises(PlanError, match="no plan for department"):
        department_plans(PLANS, ["salse"])
    assert template_path(str(template_path("kpi_review"))) == template_path("kpi_review")


# --- runs.yml -------------------------------------------------------------------------------------


def test_runs_file_expands_departments_and_merges_parameters(tmp_path):
    shutil.copy(PLANS / "sales.yml", tmp_path / "mine.yml")
    runs = tmp_path / "runs.yml"
    runs.write_text(
        "parameters: {period_end: 2025-06-30}\n"
        "runs:\n"
        "  - {template: kpi_dashboard, department: [sales, web]}\n"
        "  - {template: kpi_review, plan: mine.yml, parameters: {review_periods: 3, period_end: 2025-03-31}}\n"
        "  - {template: kpi_dashboard, department: all}\n",
        encoding="utf-8",
    )
    specs = load_runs(runs, PLANS)
    assert [(s.template, s.department) for s in specs[:3]] == [
        ("kpi_dashboard", "sales"), ("kpi_dashboard", "web"), ("kpi_review", "mine")
    ]  # fmt: skip
    assert specs[0].parameters["period_end"] == "2025-06-30"  # YAML dates become ISO text, not 2025-06-30 == 1989
    assert specs[2].parameters["review_periods"] == 3
    assert specs[2].parameters["period_end"] == "2025-03-31"
    assert specs[2].plan == (tmp_path / "mine.yml").resolve()
    assert len(specs) == 3 + len(department_plans(PLANS))


def test_runs_file_reports_every_problem_at_once(tmp_path):
    runs = tmp_path / "runs.yml"
    runs.write_text(
        "runs:\n"
        "  - {templat: kpi_dashboard, department: sales}\n"
        "  - {template: kpi_dashbord, department: sales}\n"
        "  - {template: kpi_dashboard, department: nowhere}\n"
        "  - {template: kpi_dashboard, department: sales, parameters: {plan: other.yml}}\n",
        encoding="utf-8",
    )
    with pytest.raises(RunError) as e:
        load_runs(runs, PLANS)
    text = str(e.value)
    assert "runs[0]: unknown key(s) templat" in text and "runs[0].template: required" in text
    assert "runs[1].template" in text and "kpi_dashbord" in text
    assert "runs[2]" in text and "nowhere" in text
    assert "runs[3].parameters: plan" in text


# --- fingerprints ---------------------------------------------------------------------------------


def test_fingerprint_hashes_small_files_and_dates_big_ones(tmp_path):
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    small = fingerprint(f)
    assert small["method"] == "sha256"
    assert small["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert small["size"] == 8
    big = fingerprint(f, hash_limit=4)
    assert big["method"] == "size+mtime" and big["sha256"] is None and big["mtime"]
    assert fingerprint(tmp_path / "missing.csv")["method"] == "missing"


# --- the shared batch: failures, manifest, index, secrets, runs.yml ----------------------------------


@pytest.fixture(scope="module")
def batch() -> SharedBatch:
    """The batch of tests/batch_support.py (run once per session, through `kpinb run --runs`)."""
    _need_sample()
    return shared_batch()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_one_failing_run_does_not_stop_the_others(batch):
    out = batch.out
    assert batch.code == 1
    for dep in ("email", "social"):
        assert (out / dep / "kpi_dashboard.html").is_file()
        assert (out / dep / "kpi_dashboard.ipynb").is_file()
        assert not (out / dep / "kpi_dashboard.failed.ipynb").exists()
    failed = out / "broken" / "kpi_dashboard.failed.ipynb"
    assert failed.is_file()
    nb = nbformat.read(failed, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "PlanError"
    assert "no_such_metric" in errors[0]["evalue"]
    assert not (out / "broken" / "kpi_dashboard.html").exists(), "a stale report must not survive a failed run"
    assert not list(out.rglob("*.running.ipynb")) and not list(out.rglob(".*.tmp"))
    # reported at the end, with the kept notebook
    assert "FAILED  broken" in batch.stdout and "broken/kpi_dashboard.failed.ipynb" in batch.stdout
    assert "ok      email" in batch.stdout and "2 failed" in batch.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_manifest_records_parameters_inputs_versions_and_statuses(batch):
    manifest = batch.manifest
    assert manifest["ok"] is False and manifest["complete"] is True
    dashboards = {r["department"]: r for r in manifest["runs"] if r["template"] == "kpi_dashboard"}
    assert set(dashboards) == {"email", "broken", "social", "secret", "hostile"}
    assert len(manifest["runs"]) == 8
    bad = dashboards["broken"]
    assert bad["status"] == "failed" and bad["report"] is None
    assert bad["notebook"] == "broken/kpi_dashboard.failed.ipynb"
    assert bad["error"]["ename"] == "PlanError" and isinstance(bad["error"]["cell_index"], int)
    good = dashboards["email"]
    assert good["status"] == "ok" and good["report"] == "email/kpi_dashboard.html"
    assert good["parameters"]["period_end"] == PERIOD_END
    assert good["parameters"]["department"] == "email" and good["parameters"]["grain"] == "month"
    assert good["duration_s"] > 0 and good["report_bytes"] > 0
    assert good["versions"]["kpinb"] == kpinb.__version__ and good["versions"]["python"]
    assert {k["status"] for k in good["kpis"]} <= {"on_track", "at_risk", "off_track", "no_data"}
    assert len(good["kpis"]) == len(yaml.safe_load((PLANS / "email.yml").read_text())["kpis"])
    assert isinstance(good["alerts"], list)
    roles = {i["role"]: i for i in good["inputs"]}
    assert roles["plan"]["method"] == "sha256" and len(roles["plan"]["sha256"]) == 64
    source = next(i for r, i in roles.items() if r.startswith("source:"))
    assert source["path"].startswith(str(SAMPLE)) and source["sha256"]
    assert roles["template"]["sha256"] == fingerprint(template_path("kpi_dashboard"))["sha256"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_index_links_every_report_with_its_statuses(batch):
    index = (batch.out / "index.html").read_text(encoding="utf-8")
    assert 'href="email/kpi_dashboard.html"' in index
    assert 'href="social/kpi_dashboard.html"' in index
    assert 'href="hostile/benchmark_comparison.html"' in index
    assert 'href="broken/kpi_dashboard.failed.ipynb"' in index
    assert "PlanError" in index
    assert "on track" in index.lower() or "at risk" in index.lower()
    assert "<script" not in index and HOSTILE not in index


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_database_password_never_reaches_reports_notebooks_manifest_or_messages(batch, capsys, monkeypatch):
    out = batch.out
    run = batch.run("secret", "kpi_dashboard")
    assert run["status"] == "failed" and run["report"] is None
    assert run["notebook"] == "secret/kpi_dashboard.failed.ipynb"
    assert "127.0.0.1" in run["error"]["evalue"]  # the error still says what failed
    source = next(i for i in run["inputs"] if i["role"] == "source:email_campaigns")
    assert source["url"].startswith("postgresql://user:")
    monkeypatch.setenv("KPINB_TEST_PW", PASSWORD)
    assert cli.main(["alerts", "--plan", str(batch.plans / "secret.yml")]) == 2
    captured = capsys.readouterr()
    texts = {"alerts": captured.out + captured.err, "summary": batch.stdout}
    files = [p for p in out.rglob("*") if p.is_file()]  # the batch's cache entries are binary
    texts |= {p.relative_to(out).as_posix(): p.read_bytes().decode("utf-8", "replace") for p in files}
    assert {"secret/kpi_dashboard.failed.ipynb", "manifest.json", "index.html"} <= set(texts)
    assert "127.0.0.1" in texts["alerts"]
    for secret in {PASSWORD, urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote(PASSWORD)}:
        leaks = [name for name, text in texts.items() if secret in text]
        assert leaks == [], f"the password appears in {leaks}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_runs_file_batch_writes_a_proposed_plan(batch):
    assert batch.run("customer_service", "objective_to_kpi")["status"] == "ok"
    proposed = batch.out / "customer_service" / "customer_service.yml"
    plan = kpinb.load_plan(proposed)
    assert 1 <= len(plan.kpis) <= 3
    assert plan.objectives[0].statement == "Improve customer retention"
    assert all(plan.resolve(s.path).is_file() for s in plan.sources.values())
    review = batch.run("web", "kpi_review")
    assert review["status"] == "ok" and review["parameters"]["review_periods"] == 3 and review["kpis"]
    html = (batch.out / "customer_service" / "objective_to_kpi.html").read_text(encoding="utf-8")
    assert "KpiWizard" not in html  # interactive-only cell left out of the report


# --- alerts for schedulers ------------------------------------------------------------------------


@pytest.mark.slow
def test_alerts_exit_code_is_one_only_on_a_critical_alert(capsys):
    _need_sample()
    assert cli.main(["alerts", "--plan", str(PLANS / "marketing.yml"), "--period-end", "2025-06-30"]) == 0
    text = capsys.readouterr().out
    assert "warning" in text and "critical" not in text.split("\n", 1)[0]
    code = cli.main(["alerts", "--plan", str(PLANS / "sales.yml"), "--json"])
    alerts = json.loads(capsys.readouterr().out)
    assert code == (1 if any(a["severity"] == "critical" for a in alerts) else 0)
    assert all({"kpi", "severity", "message"} <= set(a) for a in alerts)


def test_alerts_on_a_missing_plan_is_a_usage_error(capsys, tmp_path):
    assert cli.main(["alerts", "--plan", str(tmp_path / "nope.yml")]) == 2
    assert "no such plan file" in capsys.readouterr().err


def test_run_needs_departments_all_or_a_runs_file():
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["run", "--template", "kpi_dashboard"])
    args = cli.parser().parse_args(["run", "--all", "--jobs", "3", "--show-code"])
    assert args.all and args.jobs == 3 and args.show_code and args.template is None


def test_the_index_rolls_every_departments_objectives_into_one_company_view(batch):
    run = batch.run("email", "kpi_dashboard")
    assert run["objectives"] and {"id", "statement", "status", "progress", "reason"} <= set(run["objectives"][0])
    index = (batch.out / "index.html").read_text(encoding="utf-8")
    assert "Objectives across departments" in index
    statement = run["objectives"][0]["statement"]
    assert html.escape(statement, quote=True) in index
    assert "<script>alert(1)</script>" not in index
