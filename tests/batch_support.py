"""Test support: one real `kpinb run` batch shared by tests/test_runner.py and tests/test_reports.py.

Every notebook costs a kernel start and the imports of the report stack, so the report tests
share one batch (run once per pytest process, two notebooks at a time) instead of starting
three. It is written as a ``runs.yml`` and run through the CLI, and holds:

- ``kpi_dashboard`` for ``email`` and ``social`` (good plans), ``broken`` (a KPI on an unknown
  metric: the run fails), ``secret`` (its data in PostgreSQL on a closed port, the password in
  ``$KPINB_TEST_PW``: the run fails) and ``hostile`` (names such as ``<script>alert(1)</script>``);
- ``benchmark_comparison`` for ``hostile``;
- ``objective_to_kpi`` for ``customer_service`` with an ``objectives`` parameter (writes a plan);
- ``kpi_review`` for ``web`` with ``review_periods: 3``.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "templates" / "plans"
SAMPLE = ROOT / "data" / "sample"
PERIOD_END = "2025-06-30"
HOSTILE = "<script>alert(1)</script>"
PASSWORD = "Kp1nb-T3st/pw@secret"

BROKEN_PLAN = """\
name: Broken
department: broken
sources:
  orders: {path: orders.parquet}
kpis:
  - metric: no_such_metric
    target: {value: 1, by: 2025-12-31}
"""


@dataclass(frozen=True)
class SharedBatch:
    """What the batch left: the CLI's exit code and output, its folders and the manifest."""

    code: int
    stdout: str
    out: Path
    plans: Path
    manifest: dict[str, Any]

    def run(self, department: str, template: str) -> dict[str, Any]:
        """The manifest record of one run."""
        return next(r for r in self.manifest["runs"] if (r["department"], r["template"]) == (department, template))


def _hostile_plan(folder: Path) -> None:
    """The sales plan with a hostile plan name, KPI name and owner, reading the sample data."""
    data = yaml.safe_load((PLANS / "sales.yml").read_text(encoding="utf-8"))
    data["name"] = f"{HOSTILE} & Co"
    data["department"] = "hostile"
    data["kpis"][0]["name"] = HOSTILE
    data["kpis"][0]["owner"] = '"><img src=x onerror=alert(2)>'
    data["benchmarks"] = str(ROOT / "data" / "benchmarks.csv")
    for src in data["sources"].values():
        src["path"] = str(SAMPLE / Path(src["path"]).name)
    (folder / "hostile.yml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _secret_plan(folder: Path) -> None:
    """The email plan reading its campaigns from PostgreSQL on a closed port, password from the environment."""
    data = yaml.safe_load((PLANS / "email.yml").read_text(encoding="utf-8"))
    data["department"] = "secret"
    data["sources"]["email_campaigns"] = {
        "url": "postgresql://user:${KPINB_TEST_PW}@127.0.0.1:1/db", "table": "email_campaigns",
    }  # fmt: skip
    data["benchmarks"] = str(ROOT / "data" / "benchmarks.csv")
    (folder / "secret.yml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@functools.cache
def shared_batch() -> SharedBatch:
    """Run the batch once per process (in a temporary folder removed at exit) and return it."""
    import contextlib
    import io

    from kpinb import cli

    if not (SAMPLE / "orders.parquet").is_file():
        raise RuntimeError("the sample data is missing: run `kpinb sample-data --out data/sample` (make test does)")
    root = Path(tempfile.mkdtemp(prefix="kpinb-test-batch-"))
    atexit.register(shutil.rmtree, root, True)
    plans = root / "plans"
    plans.mkdir()
    for dep in ("email", "social"):
        shutil.copy(PLANS / f"{dep}.yml", plans / f"{dep}.yml")
    (plans / "broken.yml").write_text(BROKEN_PLAN, encoding="utf-8")
    _secret_plan(plans)
    _hostile_plan(plans)
    runs = {
        "parameters": {"period_end": PERIOD_END},
        "runs": [
            {"template": "kpi_dashboard", "department": ["email", "broken", "social", "secret", "hostile"]},
            {"template": "benchmark_comparison", "department": "hostile"},
            {"template": "objective_to_kpi", "plan": str(PLANS / "customer_service.yml"),
             "parameters": {"objectives": ["Improve customer retention"], "max_kpis": 3}},
            {"template": "kpi_review", "plan": str(PLANS / "web.yml"), "parameters": {"review_periods": 3}},
        ],
    }  # fmt: skip
    (root / "runs.yml").write_text(yaml.safe_dump(runs, sort_keys=False), encoding="utf-8")
    out = root / "out"
    (out / "broken").mkdir(parents=True)
    (out / "broken" / "kpi_dashboard.html").write_text("stale report of an earlier batch", encoding="utf-8")
    before = os.environ.get("KPINB_TEST_PW")
    os.environ["KPINB_TEST_PW"] = PASSWORD
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = cli.main([
                "run", "--runs", str(root / "runs.yml"), "--plans-dir", str(plans), "--data-dir", str(SAMPLE),
                "--out", str(out), "--jobs", "2",
            ])  # fmt: skip
    finally:
        if before is None:
            os.environ.pop("KPINB_TEST_PW", None)
        else:
            os.environ["KPINB_TEST_PW"] = before
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return SharedBatch(code, stdout.getvalue(), out, plans, manifest)
