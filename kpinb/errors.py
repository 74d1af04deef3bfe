"""kpinb's exceptions: one root, a few kinds, each also the matching built-in kind.

Every message names where the problem is (file, field or column) and how to fix it.
"""

from __future__ import annotations

import re


class KpinbError(Exception):
    """Root of every error kpinb raises on purpose."""


class PlanError(KpinbError, ValueError):
    """A plan or catalog definition is malformed or refers to something unknown."""


class FormulaError(KpinbError, ValueError):
    """A metric formula uses something outside the allowed language."""


class DataError(KpinbError, ValueError):
    """The data does not fit the plan: a missing column, a wrong type, no rows."""


class LimitError(DataError):
    """A result or an input is larger than a documented limit (``limits:`` in the plan); the
    message says how to narrow it and how to raise the limit."""


class SourceError(KpinbError, OSError):
    """A source cannot be opened: a missing file, an unreachable database, an unknown table."""


class RunError(KpinbError, RuntimeError):
    """A notebook run or report export failed."""


class WriteError(RunError, OSError):
    """An output file (a report, manifest, plan or CSV) cannot be written; also an OSError."""


class KpinbWarning(UserWarning):
    """Something in the data makes a result doubtful (e.g. a catalog filter value that never
    occurs); the value is still returned, and the message names the fix."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(name: object, limit: int = 40) -> str:
    r"""A name from the data (a column, a table) for a message: control characters escaped, so a
    line break or an ANSI escape in it neither splits the message nor reaches the terminal raw.

    >>> shown("rev\x1b[31m\nue")
    'rev\\x1b[31m\\nue'
    """
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(name))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def where(file: object | None = None, field: str | None = None, line: int | None = None) -> str:
    """Format a location prefix such as ``plans/sales.yml:12: kpis[0].target:``."""
    parts = []
    if file is not None:
        parts.append(f"{file}:{line}" if line else str(file))
    if field:
        parts.append(field)
    return ": ".join(parts) + ": " if parts else ""


# `scheme://user:password@`: the user may be empty and the password may hold unencoded
# : / ? @, so the match runs to the last @ (hiding too much beats showing a password).
# A `${VAR}` reference is no secret and tells the reader which variable to set.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*):(?!\$\{\w+\}@)[^\s'\"]*@")
# `password=...` in a URL query or a key=value connection string, also `sslpassword`, `pwd`, `token`
_PARAM = re.compile(
    r"(?i)((?:^|(?<=[?&;\s]))[\w.\-]*(?:password|passwd|pwd|secret|token)[\w.\-]*\s*=\s*)('[^']*'|[^&;\s'\"]+)"
)


def redact(text: str) -> str:
    """Hide passwords in database URLs and connection strings inside ``text``.

    >>> redact("cannot connect to postgresql://me:S3cret@db:5432/shop?sslpassword=k3y")
    'cannot connect to postgresql://me:***@db:5432/shop?sslpassword=***'
    """
    return _PARAM.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))
