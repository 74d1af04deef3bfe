"""Atomic file writes: a temp file in the same folder, then a rename; and safe file names.

Every file kpinb writes goes through :func:`write_atomic`. Names that come from users
(a plan's ``department:``, a template's name) become file names only through :func:`slug`,
and a path built from them is checked with :func:`inside` to stay in its output folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from kpinb.errors import KpinbError, WriteError

# mkstemp creates files as 0600; outputs get the usual mode (0666 less the umask) so that
# reports stay readable by colleagues and web servers. Read once: os.umask() only sets it.
_UMASK = os.umask(0)
os.umask(_UMASK)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
MAX_NAME = 100  # characters of a slug; file systems allow 255 bytes


def slug(text: object, default: str = "unnamed") -> str:
    """A file name made from user text: letters, digits, ``_ . -`` only, no leading dot.

    Separators, ``..``, spaces and control characters become ``_``, so the result never
    names another folder.

    >>> slug("../../etc/passwd"), slug("Customer Service"), slug("sales")
    ('etc_passwd', 'Customer_Service', 'sales')
    """
    name = _UNSAFE.sub("_", str(text)).strip("._-")
    name = re.sub(r"\.{2,}", ".", name)[:MAX_NAME].rstrip("._-")
    return name or default


def inside(folder: str | Path, path: str | Path) -> Path:
    """``path`` (relative paths resolve against ``folder``) resolved, if it stays in ``folder``.

    Raises :class:`~kpinb.errors.WriteError` when ``..`` or a symlinked folder leads out of it.
    """
    base = Path(folder).expanduser().resolve()
    full = base / Path(path).expanduser()
    # the folders are resolved, the file name is kept: a symlink there is refused by replaceable(), not followed
    target = full.resolve() if full.name in ("", ".", "..") else full.parent.resolve() / full.name
    if target != base and base not in target.parents:
        raise WriteError(
            f"refusing to write {target}: it is outside the output folder {base}. "
            "Use a plain name (letters, digits, _ - .) for departments and templates."
        )
    return target


_KINDS = (
    (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
)  # fmt: skip


def replaceable(path: str | Path) -> Path:
    """``path`` if it is absent or a regular file (which a rename may replace); else a WriteError.

    Renaming over a symlink, a device (``/dev/null``) or a FIFO would silently turn it into a
    regular file, so kpinb refuses and says what is there.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as e:
        raise _write_error(path, e) from None
    if stat.S_ISREG(mode):
        return path
    kind = _kind(mode)
    raise WriteError(
        f"cannot write {path}: it is {kind}, and kpinb only replaces regular files. "
        "Choose the path of a regular file (or remove what is there)."
    )


def write_atomic(
    path: str | Path, data: str | bytes, encoding: str = "utf-8", *, within: str | Path | None = None
) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    With ``within``, ``path`` must stay inside that folder (see :func:`inside`).
    Raises :class:`~kpinb.errors.WriteError` (a kpinb error and an ``OSError``) naming the
    path when the folder cannot be created or the file cannot be written.
    """
    path = inside(within, path) if within is not None else Path(path)
    replaceable(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        replaceable(path)  # again: something may have appeared there while we wrote
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise _write_error(path, e) from None
        raise
    return path


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file(path: str | Path, what: str, error: type[KpinbError]) -> Path:
    """``path`` if it names a regular file (links to one are fine), else ``error`` saying what is there.

    A FIFO blocks its reader forever and ``/dev/zero`` never ends, so kpinb reads regular files only.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such {what}. Check the path.") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e}). Check the path and its permissions.") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: cannot be read: it is {_kind(mode)}, not a {what}. Check the path (a regular file).")
    return path


def read_limited(path: str | Path, limit: int, what: str, error: type[KpinbError]) -> bytes:
    """The bytes of the regular file ``path``, refusing it with ``error`` when larger than ``limit``.

    The file is opened without blocking (a FIFO with no writer would hang ``open``), checked to
    be a regular file, and never read past ``limit + 1`` bytes.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}. Check the path.") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e}). Check the path and its permissions.") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: cannot be read: it is {_kind(mode)}, not a {what}. Check the path (a regular file).")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e}). Check the path and its permissions.") from None
    finally:
        os.close(fd)
    if size > limit:
        raise error(f"{path}: larger than {limit:,} bytes, too large for a {what}. Check that this is the {what}.")
    return b"".join(chunks)


def _write_error(path: Path, e: OSError) -> WriteError:
    reason = e.strerror or type(e).__name__
    err = WriteError(
        f"cannot write {path}: {reason}. Check that the folder exists and is writable, or choose another path."
    )
    err.errno = e.errno  # callers may still look at the OSError's errno
    return err


HASH_LIMIT = 256 * 2**20
"""Files larger than this (bytes) are fingerprinted by size and mtime instead of sha256."""


def fingerprint(path: str | Path, hash_limit: int = HASH_LIMIT) -> dict[str, Any]:
    """``{path, size, mtime, sha256 | None, method}`` of a file (or the files of a folder/glob).

    ``method`` is ``sha256`` up to ``hash_limit`` bytes, ``size+mtime`` above it (reading
    gigabytes at every run would cost more than the report), ``missing`` when absent.
    """
    p = Path(path)
    files = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else [p]
    if len(files) == 1 and files[0].is_dir():
        files = sorted(f for f in files[0].rglob("*") if f.is_file())
    files = [f for f in files if f.is_file()]
    if not files:
        return {"path": str(p), "method": "missing", "size": None, "mtime": None, "sha256": None}
    size = sum(f.stat().st_size for f in files)
    mtime = max(f.stat().st_mtime for f in files)
    out: dict[str, Any] = {
        "path": str(p), "size": size,
        "mtime": dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    if size > hash_limit:
        return {**out, "method": "size+mtime", "sha256": None}
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return {**out, "method": "sha256", "sha256": h.hexdigest()}
