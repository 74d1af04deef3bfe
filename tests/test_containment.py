"""Containment (issue 14): no bad input or fault escapes, crashes the batch, writes outside its
folder or exhausts the machine. Each test works on real components: real files, FIFOs and
symlinks, the real PostgreSQL server, a real local HTTP server, real subprocesses for signals.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kpinb
from kpinb._io import inside, slug, write_atomic
from kpinb.analytics import proposal
from kpinb.errors import RunError, WriteError
from kpinb.runs.specs import load_runs, run_dir

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "templates" / "plans"
SAMPLE = ROOT / "data" / "sample"

pytestmark = pytest.mark.timeout(300)


def _cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m kpinb.cli ...` in a real subprocess (the exit code and the output a user sees)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "kpinb.cli", *args], capture_output=True, text=True, timeout=timeout,
        cwd=cwd or ROOT, env=env, check=False,
    )  # fmt: skip


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The CLI's contract for a user mistake: exit 2, one `kpinb: error:` line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) >= 1 and (lines[-1].startswith("kpinb: error:") or lines[-1].startswith("usage:") or
                                "error:" in lines[-1]), proc.stderr  # fmt: skip
    return proc.stderr


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


# --- 2. writes escaping their folder -------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["../../x", "..", "a/../../b", "/etc/passwd", "x\x00y", "C:\\win", ".hidden", "", "é ü"]
)
def test_slug_never_names_another_folder(tmp_path, text):
    name = slug(text)
    assert name and "/" not in name and "\\" not in name and not name.startswith(".") and ".." not in name
    assert inside(tmp_path, name).parent == tmp_path.resolve()


def test_inside_refuses_dot_dot_and_symlinked_folders(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    for bad in ("../x.yml", "link/x.yml", "/tmp/x.yml"):
        with pytest.raises(WriteError, match="outside the output folder"):
            write_atomic(out / bad, "x", within=out)
    assert not (tmp_path / "x.yml").exists()


def test_a_plans_department_cannot_write_outside_the_folder(tmp_path):
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    plan = kpinb.load_plan(PLANS / "sales.yml")
    before = _files(tmp_path)
    for dep in ("../../x", "../x", "/tmp/kpinb-evil", "a/b"):
        written = proposal.write(plan.model_copy(update={"department": dep}), out)
        assert written is not None and written.parent == out.resolve(), written
    new = _files(tmp_path) - before
    assert new and all(p.parent == out for p in new), new
    assert not (tmp_path / "x.yml").exists() and not Path("/tmp/kpinb-evil.yml").exists()


def test_runs_file_department_and_parameter_names_are_checked(tmp_path):
    plan = tmp_path / "p.yml"
    plan.write_text((PLANS / "sales.yml").read_text(encoding="utf-8"), encoding="utf-8")
    runs = tmp_path / "runs.yml"
    runs.write_text(yaml.safe_dump({"runs": [
        {"template": "kpi_dashboard", "plan": "p.yml", "department": "../../escaped"},
        {"template": "kpi_dashboard", "plan": "p.yml", "parameters": {"x = 1\nimport os; os.system('id')\ny": 1}},
        {"template": "kpi_dashboard", "plan": "p.yml", "parameters": {"class": 1}},
    ]}), encoding="utf-8")  # fmt: skip
    with pytest.raises(RunError) as e:
        load_runs(runs)
    msg = str(e.value)
    assert "runs[0].department" in msg and "no / or .." in msg
    assert "runs[1].parameters" in msg and "Python identifiers" in msg
    assert "runs[2].parameters" in msg
    # and the folder of a run is inside --out whatever its department says
    assert run_dir(tmp_path / "out", "../../x").parent == (tmp_path / "out").resolve()


def test_cli_run_with_an_escaping_runs_department_is_one_line(tmp_path):
    plan = tmp_path / "p.yml"
    plan.write_text((PLANS / "sales.yml").read_text(encoding="utf-8"), encoding="utf-8")
    runs = tmp_path / "runs.yml"
    runs.write_text(
        "runs:\n  - {template: kpi_dashboard, plan: p.yml, department: ../../../escaped}\n", encoding="utf-8"
    )
    proc = _cli("run", "--runs", str(runs), "--out", str(tmp_path / "out"))
    _one_line_error(proc)
    assert not (tmp_path.parent / "escaped").exists() and not list(tmp_path.rglob("escaped*"))


# --- 3. following links and replacing special files -------------------------------------------------


def test_a_symlinked_batch_lock_is_refused_and_its_target_untouched(tmp_path):
    from kpinb.runs.lock import LOCK_NAME, batch_lock

    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(precious)
    with pytest.raises(RunError, match="symbolic link"), batch_lock(out):
        pass
    assert precious.read_text(encoding="utf-8") == "keep me\n"
    proc = _cli("run", "--department", "sales", "--template", "kpi_dashboard", "--out", str(out))
    assert "symbolic link" in _one_line_error(proc)
    assert precious.read_text(encoding="utf-8") == "keep me\n" and (out / LOCK_NAME).is_symlink()


def test_a_fifo_as_batch_lock_is_refused_without_blocking(tmp_path):
    from kpinb.runs.lock import LOCK_NAME, batch_lock

    os.mkfifo(tmp_path / LOCK_NAME)
    with pytest.raises(RunError, match="not a regular file"), batch_lock(tmp_path):
        pass


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "device"])
def test_outputs_replace_only_regular_files(tmp_path, kind):
    target = tmp_path / "target.csv"
    target.write_text("old\n", encoding="utf-8")
    path = tmp_path / "out.csv"
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        if os.geteuid() != 0:
            pytest.skip("creating a device node needs root")
        import stat

        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null
    before = os.lstat(path).st_mode
    with pytest.raises(WriteError, match="only replaces regular files"):
        write_atomic(path, "new\n")
    assert os.lstat(path).st_mode == before and target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "target.csv"]  # no temp file left


def test_compute_csv_onto_a_device_is_refused_and_the_device_stays(tmp_path, sample_data):
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    import stat

    dev = tmp_path / "null"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    proc = _cli("compute", str(PLANS / "sales.yml"), "--csv", str(dev))
    assert "it is a device" in _one_line_error(proc)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


# --- 7. hangs: FIFOs, endless files, oversized files, slow webhooks -----------------------------------


def _plan_with(tmp_path: Path, **changes: object) -> Path:
    """A copy of the shipped web plan with absolute sample paths, edited by ``changes``."""
    data = yaml.safe_load((PLANS / "web.yml").read_text(encoding="utf-8"))
    for src in data["sources"].values():
        src["path"] = str(SAMPLE / Path(src["path"]).name)
    data.pop("benchmarks", None)
    for key, value in changes.items():
        if key.startswith("source_"):
            field, name = key.removeprefix("source_").split(":", 1)
            data["sources"][name][field] = value
        else:
            data[key] = value
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_a_fifo_or_endless_file_is_refused_at_once(tmp_path, sample_data):
    import time

    from kpinb.analytics.benchmark import load_benchmarks
    from kpinb.errors import DataError, PlanError, SourceError

    fifo = tmp_path / "pipe.yml"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it for reading would block forever
    started = time.monotonic()
    with pytest.raises(PlanError, match="named pipe"):
        kpinb.load_plan(fifo)
    with pytest.raises(DataError, match="named pipe"):
        load_benchmarks(fifo)
    with pytest.raises(RunError, match="named pipe"):
        load_runs(fifo)
    source = next(iter(yaml.safe_load((PLANS / "web.yml").read_text(encoding="utf-8"))["sources"]))
    csv_fifo = tmp_path / "events.csv"
    os.mkfifo(csv_fifo)
    for path in (csv_fifo, "/dev/zero"):
        plan = kpinb.load_plan(
            _plan_with(tmp_path, **{f"source_path:{source}": str(path), f"source_format:{source}": "csv"})
        )
        with pytest.raises(SourceError, match="not a data file"):
            kpinb.compute(plan, grain="month")
    assert time.monotonic() - started < 30
    for args in (["compute", str(fifo)], ["check", str(fifo)], ["alerts", "--plan", str(fifo)]):
        assert "named pipe" in _one_line_error(_cli(*args, timeout=60))


def test_check_does_not_read_an_oversized_plan_after_load_plan_refused_it(tmp_path):
    import time

    big = tmp_path / "big.yml"
    with big.open("wb") as f:
        f.truncate(64 * 2**30)  # sparse: 64 GB on paper; reading it would take minutes
    started = time.monotonic()
    assert "too large for a plan" in _one_line_error(_cli("check", str(big), timeout=60))
    assert time.monotonic() - started < 30


def _dribbling_server(pause: float):
    """A real HTTP server whose answer to a POST comes one byte every ``pause`` seconds."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                if stop.wait(pause):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, stop


def test_a_webhook_that_answers_a_byte_every_two_seconds_is_cut_off_at_the_deadline():
    import time

    from kpinb.outputs.alerts import Alert, DeliveryError, send

    alert = Alert("x", "X", datetime.date(2025, 6, 1), 1.0, 2.0, "below", "warning", "X is low.")
    server, stop = _dribbling_server(2.0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="deadline passed"):
            send([alert], url, timeout=5, retries=5, backoff=0.1, deadline=4)
        took = time.monotonic() - started
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert 3.5 < took < 7, took


# --- 6. one line and exit 2 for every CLI mistake; no NaN or infinity in plans -----------------------


def _main(argv: list[str], capsys) -> tuple[int, str]:
    """kpinb.cli.main in this process: (exit code, stderr)."""
    from kpinb.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = int(e.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture
def mistakes(tmp_path):
    """Files for the CLI mistakes: a folder, a file where a folder goes, a non-UTF-8 runs file,
    a plan whose benchmarks are a folder, one with a review in the year 9999."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    (tmp_path / "latin1.yml").write_bytes(b"runs:\n  - {template: kpi_dashboard, department: caf\xe9}\n")
    _plan_with(tmp_path, benchmarks=str(tmp_path / "folder")).rename(tmp_path / "bench_folder.yml")
    data = yaml.safe_load((PLANS / "web.yml").read_text(encoding="utf-8"))
    data["review"] = {"every": "quarter", "last": datetime.date(9999, 12, 31)}
    (tmp_path / "review.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return tmp_path


CLI_MISTAKES = [
    (["alerts", "--plan", "{plans}/web.yml", "--period-end", "garbage"], "is not a date"),
    (["run", "--all", "--period-end", "2025-02-30"], "is not a date"),
    (["compute", "{plans}/web.yml", "--start", "20250101x"], "is not a date"),
    (["check", "{plans}/web.yml", "--today", "9999-12-31"], "outside 1900-2199"),
    (["sample-data", "--seed", "-1", "--out", "{tmp}/s"], "--seed: -1 is not between"),
    (["sample-data", "--rows", "0", "--out", "{tmp}/s"], "--rows: 0 is not between"),
    (["sample-data", "--rows", "1e9", "--out", "{tmp}/s"], "not a whole number"),
    (["sample-data", "--rows", "1000", "--out", "{tmp}/file/sub"], "Not a directory"),
    (["run", "--all", "--jobs", "0"], "--jobs: 0"),
    (["run", "--all", "--timeout", "-5"], "--timeout: -5"),
    (["run", "--all", "--out", "{tmp}/file"], "a file is there"),
    (["run", "--runs", "{tmp}/folder"], "it is a folder"),
    (["run", "--runs", "{tmp}/latin1.yml"], "not UTF-8"),
    (["run", "--runs", "{tmp}/missing.yml"], "no such runs file"),
    (["compute", "{tmp}/review.yml"], "review.last: 9999-12-31 is outside"),
    (["alerts", "--plan", "{tmp}/folder"], "it is a folder"),
    (["compute", "{plans}/web.yml", "--grain", "fortnight"], "invalid choice"),
    (["nonsense"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "says"), CLI_MISTAKES, ids=[" ".join(a)[:50] for a, _ in CLI_MISTAKES])
def test_cli_mistakes_print_one_line_and_exit_2(mistakes, capsys, argv, says):
    argv = [a.format(plans=PLANS, tmp=mistakes) for a in argv]
    code, err = _main(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert says in err, err


def test_benchmarks_pointing_at_a_folder_is_one_check_issue(mistakes, sample_data):
    from kpinb.checks.lint import check

    issues, code = check(mistakes / "bench_folder.yml")
    assert code == 1 and any(i.rule == "benchmarks" and "it is a folder" in i.message for i in issues), issues


@pytest.mark.parametrize("number", [".nan", ".inf", "-.inf", ".NaN"])
@pytest.mark.parametrize("field", ["target: {value: %s, by: 2025-12-31}", "thresholds: {warning: %s}",
                                   "baseline: {value: %s}", "thresholds: {change_pct: %s}"])  # fmt: skip
def test_nan_and_infinity_are_refused_as_targets_thresholds_and_baselines(field, number):
    from kpinb.definitions.plan import parse_plan
    from kpinb.errors import PlanError

    text = (
        "name: X\ndepartment: web\nsources:\n  web_sessions: {path: s.parquet}\n"
        f"kpis:\n  - metric: conversion_rate\n    {field % number}\n"
    )
    with pytest.raises(PlanError, match=r"finite number|greater than 0"):
        parse_plan(text, "x.yml")


# --- 1. unbounded results -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_orders(tmp_path_factory):
    """A real Parquet file: ten years of orders by 100,000 customers (daily x customer = 365M cells)."""
    import numpy as np
    import pandas as pd

    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(14)
    n = 300_000
    pd.DataFrame({
        "order_date": pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3652, n), "D"),
        "customer": rng.integers(0, 100_000, n).astype(str), "region": rng.choice(["EU", "US", "APAC"], n),
        "revenue": rng.random(n) * 100, "order_id": np.arange(n).astype(str),
    }).to_parquet(folder / "orders.parquet")  # fmt: skip
    plan = folder / "plan.yml"
    plan.write_text(
        "name: Wide\ndepartment: sales\nsources:\n  orders:\n    path: orders.parquet\n    time: order_date\n"
        "    dimensions: [customer, region]\n"
        "metrics:\n  - {id: rev, name: Revenue, source: orders, expr: sum(revenue), unit: currency}\n"
        "kpis:\n  - {metric: rev, owner: Me, grain: month, target: {value: 1, by: 2026-12-31}}\n",
        encoding="utf-8",
    )
    return plan


def test_a_runaway_breakdown_is_refused_before_it_runs(wide_orders, capsys):
    import time

    from kpinb.errors import LimitError

    plan = kpinb.load_plan(wide_orders)
    started = time.monotonic()
    with pytest.raises(LimitError) as e:
        kpinb.compute(plan, grain="day", by=["customer"])
    assert time.monotonic() - started < 20
    msg = str(e.value)
    assert "max_result_rows=5,000,000" in msg and re.search(r"3,652 day periods x 9\d,\d{3} customer member", msg), msg
    assert "coarser grain" in msg and "limits: {max_result_rows: N}" in msg and "--max-result-rows" in msg
    # within the limit it runs; a lower limit (argument, plan or CLI flag) refuses smaller results
    assert len(kpinb.compute(plan, grain="year", by=["region"])) == 10 * 3
    with pytest.raises(LimitError):
        kpinb.compute(plan, grain="month", by=["region"], max_result_rows=100)
    limited = wide_orders.with_name("limited.yml")
    limited.write_text(wide_orders.read_text(encoding="utf-8") + "limits: {max_result_rows: 100}\n", encoding="utf-8")
    with pytest.raises(LimitError, match="max_result_rows=100"):
        kpinb.compute(kpinb.load_plan(limited), grain="month", by=["region"])
    code, err = _main(["compute", str(limited), "--grain", "year", "--by", "region", "--max-result-rows", "20"], capsys)
    assert code == 2 and "max_result_rows=20" in err and len(err.strip().splitlines()) == 1
    code, _ = _main(
        ["compute", str(limited), "--grain", "month", "--by", "region", "--max-result-rows", "1000"], capsys
    )
    assert code == 0


def test_the_exact_check_counts_every_cell_completion_would_fill(wide_orders):
    from kpinb.errors import LimitError

    plan = kpinb.load_plan(wide_orders)
    # 10 years of months x 3 regions = 360 rows: one under the limit fails, the limit itself passes
    assert len(kpinb.compute(plan, grain="month", by=["region"], max_result_rows=360)) == 360
    with pytest.raises(LimitError):
        kpinb.compute(plan, grain="month", by=["region"], max_result_rows=359)


# --- 5. one bad input never stops the batch ----------------------------------------------------------


def _tiny_template(folder: Path, pause_env: str = "", extra: str = "") -> Path:
    """A real template that runs in a second: parameters cell, a plan load, an HTML table. With
    ``pause_env`` naming a variable, it sleeps that many seconds (a window); ``extra`` is more code."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'plan = "plan.yml"\ndepartment = "sales"\nperiod_end = None\ngrain = "month"\ndata_dir = None\n'
        "output_dir = None"
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny report"),
        params,
        nbformat.v4.new_code_cell(
            "import os, time\nimport kpinb\np = kpinb.load_plan(plan)\n"
            f"time.sleep(float(os.environ.get({pause_env!r}, '0') if {bool(pause_env)!r} else 0))\n"
            "from IPython.display import HTML\n"
            "HTML('<table>' + ''.join(f'<tr><td>{k.metric}</td></tr>' for k in p.kpis) + '</table>')"
        ),
        nbformat.v4.new_code_cell(extra or "pass"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_bad_plans_folders_and_templates_fail_their_runs_only(tmp_path):
    import json

    from kpinb.runs.execute import run_batch

    plans = tmp_path / "plans"
    plans.mkdir()
    for dep in ("sales", "email"):
        (plans / f"{dep}.yml").write_text((PLANS / f"{dep}.yml").read_text(encoding="utf-8"), encoding="utf-8")
    (plans / "deep.yml").write_text("department: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "email").write_text("a file where the email folder goes\n", encoding="utf-8")
    tiny = _tiny_template(tmp_path)
    broken = tmp_path / "broken.ipynb"
    broken.write_text("this is not a notebook", encoding="utf-8")
    result = run_batch([str(tiny), str(broken)], ["sales", "deep", "email"], None, out, jobs=2, plans_dir=plans,
                       timeout=120, progress=False)  # fmt: skip
    by = {(r.spec.department, r.spec.name): r for r in result.runs}
    assert len(by) == 6 and by["sales", "tiny"].status == "ok", by["sales", "tiny"].error
    assert [k for k, r in by.items() if r.status == "ok"] == [("sales", "tiny")]
    assert "nested more than" in by["deep", "tiny"].error.evalue
    assert "a file is in the way" in by["email", "tiny"].error.evalue and by["email", "tiny"].notebook is None
    assert by["sales", "broken"].error is not None
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] and len(manifest["runs"]) == 6
    assert (out / "index.html").read_text(encoding="utf-8").count("failed</span>") == 5
    assert (out / "email").read_text(encoding="utf-8").startswith("a file")
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".running.ipynb"))]


# --- 8. interrupts and write failures record what finished, never a partial file ------------------


def _two_plans(tmp_path: Path) -> Path:
    plans = tmp_path / "plans"
    plans.mkdir()
    for dep in ("sales", "social"):
        (plans / f"{dep}.yml").write_text((PLANS / f"{dep}.yml").read_text(encoding="utf-8"), encoding="utf-8")
    return plans


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_batch_records_the_runs_that_finished(tmp_path, sig):
    import json
    import signal
    import time

    plans, tiny, out = _two_plans(tmp_path), _tiny_template(tmp_path, "KPINB_TEST_PAUSE"), tmp_path / "out"
    args = [sys.executable, "-m", "kpinb.cli", "run", "--department", "sales", "social", "--template", str(tiny),
            "--plans-dir", str(plans), "--out", str(out), "--jobs", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KPINB_TEST_PAUSE": "6"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*/.*.running.ipynb"))) < 2:  # both notebooks are executing
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        assert not (out / "manifest.json").exists()
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "kpinb: interrupted" in err and "Traceback" not in err, err
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is False
    assert sorted((r["department"], r["status"]) for r in manifest["runs"]) == [("sales", "ok"), ("social", "ok")]
    assert (out / "index.html").is_file() and (out / "sales" / "tiny.html").is_file()
    again = subprocess.run([*args, "--skip-up-to-date"], env={**env, "KPINB_TEST_PAUSE": "0"}, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0 and again.stdout.count("(up to date)") == 2, again.stdout + again.stderr


def test_a_full_disk_leaves_no_partial_notebook_and_the_batch_goes_on(tmp_path):
    import json
    import shutil

    import nbformat

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        plans = _two_plans(tmp_path)
        big = "if department == 'social':\n    print('x' * 3_000_000)"  # outgrows the disk (after sales: --jobs 1)
        tiny = _tiny_template(tmp_path, extra=big)
        proc = _cli("run", "--department", "sales", "social", "--template", str(tiny), "--plans-dir", str(plans),
                    "--out", str(disk / "out"), "--jobs", "1", timeout=300)  # fmt: skip
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        out = disk / "out"
        runs = {r["department"]: r for r in json.loads((out / "manifest.json").read_text())["runs"]}
        assert runs["sales"]["status"] == "ok" and runs["social"]["status"] == "failed"
        assert "No space left" in runs["social"]["error"]["evalue"] or "ENOSPC" in str(runs["social"]["error"])
        for nb in out.rglob("*.ipynb"):  # every notebook left is whole
            nbformat.validate(nbformat.read(str(nb), as_version=4))
        assert not [p for p in out.rglob(".*") if p.name != ".kpinb-run.lock"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# --- 10. smaller holes ------------------------------------------------------------------------------


def test_a_webhook_redirect_is_not_followed_and_not_reported_as_delivered():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from kpinb.outputs.alerts import Alert, DeliveryError, send

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append("POST " + self.path)
            self.send_response(302)
            self.send_header("Location", "/moved" if self.path == "/hook" else "http://example.invalid/x")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            seen.append("GET " + self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    alert = Alert("x", "X", datetime.date(2025, 6, 1), 1.0, 2.0, "below", "warning", "X is low.")
    try:
        for path in ("/hook", "/other-host"):
            with pytest.raises(DeliveryError, match="redirect") as e:
                send([alert], f"http://127.0.0.1:{server.server_address[1]}{path}", timeout=2, retries=2)
            assert e.value.status == 302 and e.value.attempts == 1
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["POST /hook", "POST /other-host"]  # no GET, no second host


@pytest.mark.parametrize("scheme", ["duckdb", "sqlite"])
def test_a_mistyped_database_url_never_creates_an_empty_database(tmp_path, scheme):
    from kpinb.data.sources import open_source
    from kpinb.definitions.model import Source
    from kpinb.errors import SourceError

    missing = tmp_path / "typo" / f"shop.{scheme}"
    (tmp_path / "typo").mkdir()
    with pytest.raises(SourceError, match="no such file") as e:
        open_source("orders", Source(url=f"{scheme}:///{missing}", table="orders"))
    assert "never creates an empty database" in str(e.value)
    assert list((tmp_path / "typo").iterdir()) == []


def test_an_existing_sqlite_database_is_opened_read_only(tmp_path):
    import sqlite3

    from kpinb.data.sources import _connect, open_source
    from kpinb.definitions.model import Source

    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table orders (order_date text, revenue real)")
        con.execute("insert into orders values ('2025-01-01', 1.0)")
    url = f"sqlite:///{db}"
    assert open_source("orders", Source(url=url, table="orders")).columns
    with pytest.raises(Exception, match=r"readonly|read-only|query_only|attempt to write"):
        _connect(url).raw_sql("insert into orders values ('2025-01-02', 2.0)")


def test_secrets_stay_hidden_in_reprs_and_short_password_fragments(tmp_path):
    from kpinb.data.sources import open_source
    from kpinb.definitions.model import Source
    from kpinb.errors import SourceError

    src = Source(url="postgresql://me:S3cret-pw@db.example:5432/shop", table="orders")
    assert "S3cret" not in repr(src) and "***" in repr(src)
    plan = kpinb.load_plan(PLANS / "web.yml").model_copy(update={"sources": {"web_sessions": src}})
    assert "S3cret" not in repr(plan.sources) and "S3cret" not in repr(plan)
    # an unencoded / splits the password; the driver then quotes a 2-character piece as the port
    with pytest.raises(SourceError) as e:
        open_source("orders", Source(url="postgresql://me:zq/w9@127.0.0.1:5/db", table="orders"))
    assert "zq" not in str(e.value) and "w9" not in str(e.value), str(e.value)


def test_control_characters_in_column_names_reach_the_terminal_escaped(tmp_path, capsys):
    import pandas as pd

    evil = "rev\x1b[2J\x1b]0;pwned\x07\nue\r"
    pd.DataFrame({"order_date": pd.to_datetime(["2025-01-01"]), evil: [1.0]}).to_csv(tmp_path / "o.csv", index=False)
    plan = tmp_path / "p.yml"
    plan.write_text(
        "name: X\ndepartment: sales\nsources:\n  orders: {path: o.csv, time: order_date, columns: {revenue: amount}}\n"
        "metrics:\n  - {id: rev, name: Rev, source: orders, expr: sum(revenue)}\n"
        "kpis:\n  - {metric: rev, owner: Me}\n",
        encoding="utf-8",
    )
    code, err = _main(["compute", str(plan)], capsys)
    assert code == 2 and "\x1b" not in err and "\r" not in err and "\x07" not in err
    assert "\\x1b" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("literal", ["'a--b'", "'a;b'", "'x /* y'", "'it''s; fine'"])
def test_comment_and_semicolon_characters_inside_string_literals_are_plain_text(literal):
    import pandas as pd

    df = pd.DataFrame({"order_date": pd.to_datetime(["2025-01-01"] * 3), "status": [literal[1:-1].replace("''", "'"),
                       "other", literal[1:-1].replace("''", "'")]})  # fmt: skip
    from kpinb.definitions.model import Metric

    m = Metric(id="n", name="N", source="orders", expr=f"sum(case when status = {literal} then 1 else 0 end)")
    assert kpinb.compute([m], sources={"orders": df}, grain="month")["value"].tolist() == [2.0]
    from kpinb.definitions.formula import parse
    from kpinb.errors import FormulaError

    for bad in (f"sum(1) -- {literal}", f"sum(1); select {literal}"):
        with pytest.raises(FormulaError):
            parse(bad, kind="aggregate")


# --- 9. process exit with a dashboard's background precompute still running ----------------------


def test_a_script_ending_right_after_a_dashboard_export_exits_cleanly(tmp_path, sample_data):
    """The dashboard precomputes breakdowns in a background thread; a script that ends while it is
    inside DuckDB used to abort ("terminate called without an active exception", exit 134)."""
    script = tmp_path / "export.py"
    script.write_text(
        "import sys\nfrom kpinb.widgets import Dashboard\n"
        "Dashboard(sys.argv[1]).to_html(sys.argv[2])\nprint('written')\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i in range(3):  # the abort depended on timing: it came in most runs
        out = tmp_path / f"d{i}.html"
        proc = subprocess.run([sys.executable, str(script), str(PLANS / "sales.yml"), str(out)], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
        assert "terminate called" not in proc.stderr and "Interrupted" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stdout.strip() == "written" and out.read_text(encoding="utf-8").rstrip().endswith("</html>")


def test_the_statement_timeout_also_interrupts_the_embedded_duckdb(wide_orders, capsys):
    from kpinb.errors import LimitError

    plan = wide_orders.with_name("timeout.yml")
    plan.write_text(
        wide_orders.read_text(encoding="utf-8") + "limits: {statement_timeout_s: 0.001}\n", encoding="utf-8"
    )
    with pytest.raises(LimitError, match=r"statement_timeout_s=0.001 and was interrupted"):
        kpinb.compute(kpinb.load_plan(plan), grain="year", by=["customer"])
    code, err = _main(["compute", str(plan), "--grain", "year", "--by", "customer"], capsys)
    assert code == 2 and "statement_timeout_s" in err
    code, _ = _main(["compute", str(plan), "--grain", "year", "--by", "customer", "--statement-timeout-s", "120",
                     "--csv", str(wide_orders.with_name("out.csv"))], capsys)  # fmt: skip
    assert code == 0  # the flag overrides the plan


def test_sample_data_never_writes_through_a_link_or_over_a_special_file(tmp_path, capsys):
    out = tmp_path / "sample"
    out.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    (out / ".web_sessions.parquet.tmp").symlink_to(precious)  # a planted temp-file link is removed, not followed
    code, err = _main(["sample-data", "--out", str(out), "--rows", "2000"], capsys)
    assert code == 0 and precious.read_text(encoding="utf-8") == "keep me\n", err
    (out / "orders.parquet").unlink()
    os.mkfifo(out / "orders.parquet")  # a FIFO where an output goes is refused
    code, err = _main(["sample-data", "--out", str(out), "--rows", "2000", "--force"], capsys)
    assert code == 2 and "named pipe" in err and len(err.strip().splitlines()) == 1, err
