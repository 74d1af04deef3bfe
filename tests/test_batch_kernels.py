"""A batch worker keeps its kernel between notebooks (kpinb.runs.execute._Kernel): each notebook
must still start as in a fresh kernel, and a run that failed must not leave anything behind.

Real kernels, real notebooks, one ``kpinb run`` batch at ``--jobs 1`` (so every run lands on the
same worker, in order)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from kpinb.runs.execute import run_batch

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "templates" / "plans"

WARNER = '''\
import warnings


def go():
    warnings.warn("kpinb-test: shown in every notebook", UserWarning)
'''

FIRST = """\
import os, sys
sys.path.insert(0, HELPERS)
import warner
warner.go()
leftover = 1
os.environ["KPINB_TEST_SEEN"] = "yes"
print("pid", os.getpid(), "cwd", os.getcwd(), "left", "leftover" in globals())
"""

SECOND = """\
import os, sys
sys.path.insert(0, HELPERS)
import warner
warner.go()
print("pid", os.getpid(), "cwd", os.getcwd(), "left", "leftover" in globals())
"""

FAILS = """\
import os
os.environ["KPINB_TEST_DIRTY"] = "1"
print("pid", os.getpid(), "cwd", os.getcwd(), "left", "leftover" in globals())
raise RuntimeError("kpinb-test: this run fails")
"""

AFTER = """\
import os
print("pid", os.getpid(), "cwd", os.getcwd(), "left", "leftover" in globals())
print("dirty", os.environ.get("KPINB_TEST_DIRTY"))
"""

SLOW = """\
import os, time
print("pid", os.getpid(), "cwd", os.getcwd(), "left", "leftover" in globals())
time.sleep(60)
"""

DIES = """\
import os, time
print("pid", os.getpid(), "cwd", os.getcwd(), "left", "leftover" in globals(), flush=True)
time.sleep(1)  # the output goes out on the kernel's IOPub thread: let it leave before the process dies
os._exit(3)
"""


def _template(folder: Path, name: str, code: str, helpers: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'plan = "plan.yml"\ndepartment = "sales"\nperiod_end = None\ngrain = "month"\ndata_dir = None\n'
        "output_dir = None"
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(f"HELPERS = {str(helpers)!r}"), nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _said(nb_path: Path) -> dict[str, str]:
    """What the notebook's last cell printed (``pid``, ``cwd``, ``left``, ``dirty``) and its stderr."""
    nb = nbformat.read(nb_path, as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    said = {}
    for line in text.splitlines():
        words = line.split()
        said.update(zip(words[::2], words[1::2], strict=False))
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    said["stderr"] = "".join(o.get("text", "") for o in outs if o.get("name") == "stderr")
    said["counts"] = json.dumps([c.execution_count for c in nb.cells if c.cell_type == "code"])
    return said


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernels")
    helpers = tmp / "helpers"
    helpers.mkdir()
    (helpers / "warner.py").write_text(WARNER, encoding="utf-8")
    plans = tmp / "plans"
    plans.mkdir()
    for dep in ("sales", "social"):
        (plans / f"{dep}.yml").write_text((PLANS / f"{dep}.yml").read_text(encoding="utf-8"), encoding="utf-8")
    codes = {"first": FIRST, "second": SECOND, "fails": FAILS, "after": AFTER, "slow": SLOW, "after_slow": AFTER,
             "dies": DIES, "after_dies": SECOND}  # fmt: skip
    t = {n: _template(tmp, n, code, helpers) for n, code in codes.items()}
    runs = tmp / "runs.yml"
    runs.write_text(  # sales first, then social's in order (a batch runs each plan's first run first)
        "runs:\n"
        f"  - {{template: {t['first']}, department: sales}}\n"
        + "".join(f"  - {{template: {t[n]}, department: social}}\n" for n in list(codes)[1:]),
        encoding="utf-8",
    )
    os.environ.pop("KPINB_TEST_SEEN", None)
    result = run_batch(runs_file=runs, plans_dir=plans, out_dir=tmp / "out", jobs=1, progress=False, timeout=10)
    return result


def test_the_next_notebook_on_a_kept_kernel_starts_clean(batch):
    first, second = _said(batch.runs[0].notebook), _said(batch.runs[1].notebook)
    assert [r.status for r in batch.runs[:2]] == ["ok", "ok"]
    assert first["pid"] == second["pid"]  # the same kernel served both (else this test shows nothing)
    assert second["left"] == "False"  # the first notebook's variables are gone
    assert first["counts"] == second["counts"] and json.loads(second["counts"])[0] == 1
    # each notebook runs in its own department's folder
    assert Path(first["cwd"]).name == "sales" and Path(second["cwd"]).name == "social"
    # a warning an earlier notebook already showed (the module's registry) is shown again
    assert "kpinb-test: shown in every notebook" in first["stderr"]
    assert "kpinb-test: shown in every notebook" in second["stderr"]


def test_a_failed_run_does_not_hand_its_kernel_on(batch):
    fails, after = batch.runs[2], batch.runs[3]
    assert fails.status == "failed" and "this run fails" in str(fails.error)
    assert after.status == "ok"
    failed_pid = _said(fails.notebook)["pid"]
    said = _said(after.notebook)
    assert failed_pid == _said(batch.runs[1].notebook)["pid"]  # it ran on the kept kernel
    assert said["pid"] != failed_pid and said["dirty"] == "None"  # the next run got a new one


def test_a_run_that_timed_out_or_killed_its_kernel_hands_on_a_new_one(batch):
    slow, after_slow, dies, after_dies = batch.runs[4:8]
    assert [r.spec.name for r in batch.runs[4:8]] == ["slow", "after_slow", "dies", "after_dies"]
    assert slow.status == "failed" and after_slow.status == "ok", (slow.error, after_slow.error)
    assert dies.status == "failed" and after_dies.status == "ok", (dies.error, after_dies.error)
    pids = [_said(r.notebook)["pid"] for r in batch.runs[3:8]]
    # after -> slow on one kernel; after_slow -> dies on a new one; after_dies on a third
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] and pids[4] != pids[0]
    assert _said(after_dies.notebook)["left"] == "False"
    # the kernels given up on are gone, not left running beside the batch
    import psutil

    assert not [p for p in pids[:4] if psutil.pid_exists(int(p)) and psutil.Process(int(p)).status() != "zombie"]
