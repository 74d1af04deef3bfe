"""Atomic file writes: a temp file in the same folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kpinb.errors import WriteError

# mkstemp creates files as 0600; outputs get the usual mode (0666 less the umask) so that
# reports stay readable by colleagues and web servers. Read once: os.umask() only sets it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Raises :class:`~kpinb.errors.WriteError` (a kpinb error and an ``OSError``) naming the
    path when the folder cannot be created or the file cannot be written.
    """
    path = Path(path)
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
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise
    return path


def _write_error(path: Path, e: OSError) -> WriteError:
    reason = e.strerror or type(e).__name__
    err = WriteError(
        f"cannot write {path}: {reason}. Check that the folder exists and is writable, or choose another path."
    )
    err.errno = e.errno  # callers may still look at the OSError's errno
    return err
