"""Input fingerprints and versions: what a run read (sha256 of each file, or size + mtime above
:data:`HASH_LIMIT`; database sources by their URL without credentials) and the package versions
a report depends on."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import Any

HASH_LIMIT = 256 * 2**20
"""Files larger than this (bytes) are fingerprinted by size and mtime instead of sha256."""

_VERSIONED = ("kpinb", "pandas", "numpy", "pyarrow", "duckdb", "ibis-framework", "sqlglot", "pydantic", "plotly",
              "statsmodels", "papermill", "nbclient", "nbconvert", "ipykernel", "jupyter_client")  # fmt: skip


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


def plan_inputs(plan_file: Path, data_dir: str | Path | None, cache: dict[str, dict] | None = None) -> list[dict]:
    """Fingerprints of what a run reads: the plan file, its file sources, its benchmark table."""
    from kpinb.data.sources import redact
    from kpinb.views.report import load_for_report

    cache = {} if cache is None else cache

    def fp(path: Path, role: str) -> dict[str, Any]:
        key = str(path)
        if key not in cache:
            cache[key] = fingerprint(path)
        return {"role": role, **cache[key]}

    out = [fp(plan_file.resolve(), "plan")]
    try:
        plan = load_for_report(plan_file, data_dir)
    except Exception as e:  # the notebook reports the plan's problems; the manifest notes them
        return [*out, {"role": "error", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}]
    for name, src in plan.sources.items():
        if src.path:
            out.append(fp(plan.resolve(src.path), f"source:{name}"))
        else:
            out.append({"role": f"source:{name}", "url": redact(src.url or ""), "table": src.table,
                        "method": "database (not fingerprinted)"})  # fmt: skip
    if plan.benchmarks:
        out.append(fp(plan.resolve(plan.benchmarks), "benchmarks"))
    return out


def versions() -> dict[str, str | None]:
    """Python and the versions of the packages a report depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
