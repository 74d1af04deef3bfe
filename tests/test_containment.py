"""Containment (issue 14): no bad input or fault escapes, crashes the batch, writes outside its
folder or exhausts the machine. Each test works on real components: real files, FIFOs and
symlinks, the real PostgreSQL server, a real local HTTP server, real subprocesses for signals.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kpinb
from kpinb import proposal
from kpinb._io import inside, slug, write_atomic
from kpinb.errors import RunError, WriteError
from kpinb.runner import load_runs, run_dir

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
