"""One batch per output folder: the lock a batch holds while it writes there (see :func:`batch_lock`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kpinb.errors import RunError, WriteError

LOCK_NAME = ".kpinb-run.lock"
"""The lock file a batch holds in its output folder (never deleted; its content says who holds it)."""

# what write_atomic and _execute_one leave behind when killed, and nothing else (--out may be any folder)
_LEFTOVERS = (".manifest.json.*.tmp", ".index.html.*.tmp", "*/.*.html.*.tmp", "*/.*.ipynb.*.tmp",
              "*/.*.running.ipynb")  # fmt: skip


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


@contextmanager
def batch_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold ``out_dir/.kpinb-run.lock`` for the duration of a batch, or raise :class:`RunError`.

    The lock is an OS file lock (``flock``), so it dies with its process: a batch that was
    killed leaves a file naming a dead pid, which the next batch takes over (and then removes
    the half-written temp files the killed batch left). Two batches on one folder never
    interleave: the second one refuses at once and names the first.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "a file is there" if out.exists() and not out.is_dir() else (e.strerror or type(e).__name__)
        raise WriteError(
            f"--out {out}: cannot create the output folder ({what}). Choose a folder you can write."
        ) from None
    path = out / LOCK_NAME
    # never through a symlink (it would truncate its target), never a FIFO or device (open could block)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        import errno

        if e.errno == errno.ELOOP or path.is_symlink():
            raise RunError(
                f"{path}: the batch lock is a symbolic link; kpinb does not follow it (it would overwrite the "
                "file it points to). Remove the link, or write to another folder with --out."
            ) from None
        raise WriteError(
            f"{path}: cannot create the batch lock ({e.strerror or e}). Check that --out {out} is writable."
        ) from None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{path}: the batch lock is not a regular file. Remove it, or write to another folder.")
        os.set_blocking(fd, True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: a pid file with a liveness check
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise RunError(_locked_message(path)) from None
        else:  # pragma: no cover
            holder = _lock_holder(path)
            if holder.get("pid") not in (None, os.getpid()) and _pid_alive(int(holder["pid"])):
                raise RunError(_locked_message(path))
        previous = _lock_holder(path)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            print(
                f"kpinb run: taking over the lock of a batch that is no longer running (pid {previous['pid']}, "
                f"started {previous.get('started', '?')}) in {out}",
                file=sys.stderr,
            )
        me = {"pid": os.getpid(), "host": os.uname().nodename if hasattr(os, "uname") else "",
              "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(me) + "\n").encode())
        # what a killed batch half-wrote: nobody else writes here while we hold the lock
        for pattern in _LEFTOVERS:
            for leftover in out.glob(pattern):
                leftover.unlink(missing_ok=True)
        yield path
        os.ftruncate(fd, 0)  # released: no holder named
    finally:
        os.close(fd)  # releases the flock


def _lock_holder(path: Path) -> dict[str, Any]:
    try:  # a small JSON file; never through a link, never more than 4 kB
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            data = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _locked_message(path: Path) -> str:
    h = _lock_holder(path)
    who = f"pid {h['pid']} on {h.get('host') or '?'}, started {h.get('started', '?')}" if h.get("pid") else "?"
    return (
        f"{path.parent}: another `kpinb run` is writing reports to this folder ({who}; lock {path.name}). "
        "Wait for it to finish, or write to another folder with --out."
    )
