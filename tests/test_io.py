"""Atomic writes: whole files or none, the usual permissions, a clear error when they cannot be made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kpinb import WriteError
from kpinb._io import write_atomic


def test_a_new_file_gets_the_usual_mode_not_mkstemps_private_one(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "sub" / "report.html", "<html></html>")
    finally:
        os.umask(umask)
    assert path.read_text() == "<html></html>"
    # 0666 less the umask in force when kpinb was imported (the test process's, usually 022)
    from kpinb import _io

    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_io._UMASK
    assert stat.S_IMODE(path.stat().st_mode) & 0o044, "colleagues and web servers must be able to read reports"


def test_replacing_a_file_swaps_it_whole_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")
    with target.open() as reader:  # a reader of the old file keeps reading the old file
        write_atomic(target, b"new" * 1000)
        assert reader.read() == "old"
    assert target.read_bytes() == b"new" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_an_unwritable_place_is_a_write_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(WriteError, match="not_a_folder") as info:
        write_atomic(blocker / "report.html", "x")
    assert isinstance(info.value, OSError) and "choose another path" in str(info.value)
    assert blocker.read_text() == "a file where a folder should be"
