"""`kpinb run` under faults: two batches on one folder, a batch killed with SIGKILL. Real processes,
real kernels, real files. (A database password in a failing plan: tests/test_runner.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from kpinb.runs.lock import LOCK_NAME, batch_lock

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "templates" / "plans"
SAMPLE = ROOT / "data" / "sample"
PERIOD_END = "2025-06-30"

pytestmark = pytest.mark.timeout(600)


def _plans(folder: Path, *departments: str) -> Path:
    """Copies of shipped plans pointing at the sample data by absolute paths."""
    folder.mkdir(parents=True, exist_ok=True)
    for dep in departments:
        data = yaml.safe_load((PLANS / f"{dep}.yml").read_text(encoding="utf-8"))
        for src in data["sources"].values():
            src["path"] = str(SAMPLE / Path(src["path"]).name)
        data["benchmarks"] = str(ROOT / "data" / "benchmarks.csv")
        (folder / f"{dep}.yml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def _tiny_template(folder: Path) -> Path:
    """A small real template (parameters cell, a plan load, an HTML table): the faults tested here
    are the runner's, so a notebook that runs in a second keeps the tests quick. With
    ``$KPINB_TEST_PAUSE`` set, the ``social`` run sleeps that long (a window to kill it in)."""
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
            "import os, time\n\nimport kpinb\n\np = kpinb.load_plan(plan)\n"
            'if department == "social":\n    time.sleep(float(os.environ.get("KPINB_TEST_PAUSE", "0")))\n'
            "from IPython.display import HTML\n"
            "HTML('<table>' + ''.join(f'<tr><td>{k.metric}</td></tr>' for k in p.kpis) + '</table>')"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def _kpinb(*args: str) -> list[str]:
    return [sys.executable, "-m", "kpinb.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("html", "body"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("html", "body") and tag in self.open:
            self.open.remove(tag)


def _assert_complete(out: Path) -> list[Path]:
    """Every output file (not a hidden temp file) is whole: HTML closed, JSON and notebooks load."""
    outputs = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    for p in outputs:
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".html":
            assert text.rstrip().endswith("</html>"), f"{p} is truncated"
            checker = _Checker()
            checker.feed(text)
            checker.close()
            assert checker.open == [], f"{p}: unclosed {checker.open}"
        elif p.suffix == ".json":
            json.loads(text)
        elif p.suffix == ".ipynb":
            nbformat.validate(nbformat.reads(text, as_version=4))
        else:
            pytest.fail(f"unexpected output file {p}")
    return outputs


# --- one batch per folder -------------------------------------------------------------------------


def test_lock_refuses_a_second_holder_and_is_taken_over_when_its_process_died(tmp_path):
    with batch_lock(tmp_path):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid()
        # another process (a real one: flock is per open file, not per thread)
        probe = subprocess.run(
            [sys.executable, "-c",
             f"from kpinb.runs.lock import batch_lock\nwith batch_lock({str(tmp_path)!r}): pass"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert probe.returncode != 0
        assert "RunError" in probe.stderr and f"pid {os.getpid()}" in probe.stderr and "--out" in probe.stderr
    # a lock file naming a process that no longer exists is stale
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "started": "earlier"}))
    (tmp_path / ".manifest.json.abc123.tmp").write_text('{"half')
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / ".kpi_dashboard.1.2.running.ipynb").write_text("{")
    (tmp_path / "sales" / "notes.tmp").write_text("not ours")
    with batch_lock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert not (tmp_path / ".manifest.json.abc123.tmp").exists()
        assert not (tmp_path / "sales" / ".kpi_dashboard.1.2.running.ipynb").exists()
        assert (tmp_path / "sales" / "notes.tmp").exists(), "only kpinb's own temp files are cleaned up"


@pytest.mark.slow
def test_two_concurrent_batches_on_one_folder_never_interleave(tmp_path):
    plans = _plans(tmp_path / "plans", "social")
    out = tmp_path / "out"
    args = _kpinb("run", "--department", "social", "--template", str(_tiny_template(tmp_path)), "--plans-dir",
                  str(plans), "--out", str(out), "--jobs", "1")  # fmt: skip
    env = {**_env(), "KPINB_TEST_PAUSE": "3"}  # the batch outlasts the other process's start-up
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]  # fmt: skip
    done = [p.communicate(timeout=400) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], f"{codes}: {done}"
    loser = next(err for p, (_, err) in zip(procs, done, strict=True) if p.returncode == 2)
    assert "another `kpinb run` is writing reports to this folder" in loser and "--out" in loser
    outputs = _assert_complete(out)
    assert sorted(p.relative_to(out).as_posix() for p in outputs) == [
        "index.html", "manifest.json", "social/tiny.html", "social/tiny.ipynb",
    ]  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and [r["status"] for r in manifest["runs"]] == ["ok"]


# --- SIGKILL part-way -----------------------------------------------------------------------------


def _first_recorded_second_running(out: Path) -> bool:
    """The email report is in the manifest and in the index (the batch writes them one after the
    other when a run ends) and the social notebook is being written."""
    manifest, index = out / "manifest.json", out / "index.html"
    if not (manifest.is_file() and index.is_file()):
        return False
    runs = json.loads(manifest.read_text(encoding="utf-8"))["runs"]
    return (
        [r["department"] for r in runs] == ["email"]
        and "email/tiny.html" in index.read_text(encoding="utf-8")
        and any((out / "social").glob(".*.running.ipynb"))
    )


@pytest.mark.slow
def test_a_killed_batch_leaves_only_whole_files_and_a_rerun_finishes_it(tmp_path):
    plans = _plans(tmp_path / "plans", "email", "social")
    out = tmp_path / "out"
    args = _kpinb("run", "--all", "--template", str(_tiny_template(tmp_path)), "--plans-dir", str(plans),
                  "--period-end", PERIOD_END, "--out", str(out), "--jobs", "1")  # fmt: skip
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**_env(), "KPINB_TEST_PAUSE": "60"}
    )
    deadline = time.monotonic() + 300
    try:
        # Kill once the first report is recorded and the second notebook is being written. The
        # second starts while the first is still being recorded, so wait for both records, not
        # only the manifest: a kill between the manifest and the index left no index.html.
        while not _first_recorded_second_running(out):
            assert proc.poll() is None, "the batch finished before it could be killed"
            assert time.monotonic() < deadline, "the first report was not recorded within 300 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    outputs = _assert_complete(out)
    names = {p.relative_to(out).as_posix() for p in outputs}
    assert names == {"email/tiny.html", "email/tiny.ipynb", "index.html", "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False and [r["department"] for r in manifest["runs"]] == ["email"]
    index = (out / "index.html").read_text()
    assert "email/tiny.html" in index and "social" not in index  # lists what exists, no temp file
    kept = (out / "email" / "tiny.html").stat().st_mtime_ns

    rerun = subprocess.run([*args, "--skip-up-to-date"], capture_output=True, text=True, timeout=400, env=_env())
    assert rerun.returncode == 0, rerun.stderr
    assert "taking over the lock of a batch that is no longer running" in rerun.stderr
    assert "kept    email" in rerun.stdout and "ok      social" in rerun.stdout
    assert (out / "email" / "tiny.html").stat().st_mtime_ns == kept, "an up-to-date report was redone"
    outputs = _assert_complete(out)
    assert {p.relative_to(out).as_posix() for p in outputs} >= {"social/tiny.html", "email/tiny.html"}
    assert not [p for p in out.rglob(".*") if p.name != LOCK_NAME], "temp files of the killed batch were left"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["ok"]
    assert [(r["department"], r["reused"]) for r in manifest["runs"]] == [("email", True), ("social", False)]
