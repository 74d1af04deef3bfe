"""Fuzzing the command line: every option of every command with hostile values (issue 14).

Whatever the arguments, ``kpinb`` ends with exit 0, 1 or 2; a 2 is one ``kpinb: error:`` line;
there is never a traceback, a control character on the terminal, a hang, or a file written
outside the working folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import fuzz_support
import pytest
from fuzz_support import CaseTimeout, cli_arguments
from hypothesis import settings

from kpinb.cli import main

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "templates" / "plans" / "web.yml"
CASES = 150  # each case may run a real query; the pool of values is small
CASE_SECONDS = 60

COMMANDS = {
    "compute": (["{plan}"], {
        "--grain": ("day", "month", "year"), "--by": ("device", "channel"), "--metrics": ("bounce_rate",),
        "--start": ("2025-01-01",), "--end": ("2025-03-31",), "--csv": ("out.csv",),
        "--max-result-rows": ("10", "1000000"), "--statement-timeout-s": ("0.001", "60"),
    }),
    "alerts": (["--plan", "{plan}"], {"--period-end": ("2025-06-30",), "--max-result-rows": ("5",),
                                      "--statement-timeout-s": ("30",), "--data-dir": ("{folder}",)}),
    "check": (["{plan}"], {"--today": ("2025-06-30",)}),
    "run": (["--department", "nowhere"], {"--out": ("out",), "--jobs": ("2",), "--timeout": ("60",),
                                          "--period-end": ("2025-06-30",), "--grain": ("month",)}),
    "sample-data": (["--force"], {"--rows": ("0", "-5"), "--seed": ("-1",), "--out": ("{file}/x",)}),
    "catalog": ([], {"--department": ("sales",), "--text": ("revenue",)}),
}  # fmt: skip
_CONTROL = {chr(c) for c in (*range(0, 9), *range(11, 32), 127)}


@pytest.mark.timeout(1800)
def test_hostile_cli_arguments_never_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "folder").mkdir()
    (work / "file").write_text("x", encoding="utf-8")
    os.mkfifo(work / "fifo")
    monkeypatch.chdir(work)
    paths = {"plan": str(PLAN), "fifo": "fifo", "folder": "folder", "file": "file", "missing": "missing.yml"}
    before = {p for p in tmp_path.rglob("*")}

    def case(argv: list[str]) -> str:
        argv = [a.format(**paths) if "{" in a and "}" in a else a for a in argv]
        try:
            code = main(argv)
        except SystemExit as e:
            code = int(e.code) if isinstance(e.code, int) else 2
        except CaseTimeout:
            raise
        except BaseException as e:  # anything that escapes main is the finding
            pytest.fail(f"kpinb {argv!r} raised {type(e).__name__}: {e}")
        out, err = capsys.readouterr()
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err and not (_CONTROL & set(out + err)), (argv, err[-500:])
        if code == 2 and not (argv[-1] == "--help" or "-h" in argv):
            lines = err.strip().splitlines()
            assert lines and lines[-1].startswith("kpinb: error:"), (argv, err[-1000:])
        return f"exit {code}"

    outcomes = fuzz_support.run_cases(
        cli_arguments(COMMANDS), case, "kpinb CLI arguments", CASE_SECONDS,
        settings(fuzz_support.fuzz_settings(), max_examples=CASES), cases=CASES,
    )  # fmt: skip
    assert outcomes["exit 2"] > 0 and outcomes["exit 0"] > 0
    escaped = {p for p in tmp_path.rglob("*")} - before
    assert all(work in p.parents or p == work for p in escaped), sorted(escaped)[:10]
    assert not [p for p in tmp_path.parent.iterdir() if p.name == "escape"]
