"""Input fingerprints and versions: what a run read (sha256 of each file, or size + mtime above
:data:`HASH_LIMIT`; database sources by their URL without credentials) and the package versions
a report depends on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kpinb._io import HASH_LIMIT, fingerprint

__all__ = ["HASH_LIMIT", "fingerprint", "plan_inputs", "versions"]

_VERSIONED = ("kpinb", "pandas", "numpy", "pyarrow", "duckdb", "ibis-framework", "sqlglot", "pydantic", "plotly",
              "statsmodels", "papermill", "nbclient", "nbconvert", "ipykernel", "jupyter_client")  # fmt: skip


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
        if src.snapshots:
            out += [fp(plan.resolve(snap.path), f"source:{name}") for snap in src.snapshots]
        elif src.path:
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
