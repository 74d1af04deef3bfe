"""A batch's computations shared across its notebooks: ``kpinb run`` computes each plan's numbers
once per set of inputs, and every template of that department (and the next batch, when nothing
changed) reads them back.

The cache is on only where the batch runner turns it on (:data:`ENV` names a folder); a key is
the sha256 of the plan, every file it reads (content, or size and time above
:data:`kpinb._io.HASH_LIMIT`), the arguments and the kpinb version. A plan reading a database is
never cached: its rows can change without a file changing.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb._io import fingerprint, write_atomic
from kpinb.engine.query import compute

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Plan

__all__ = ["ENV", "cached_compute"]

ENV = "KPINB_CACHE_DIR"


def cached_compute(plan: Plan, **kwargs: Any) -> pd.DataFrame:
    """``compute(plan, **kwargs)``, read back from the cache folder when the inputs are unchanged."""
    folder = os.environ.get(ENV)
    key = _key(plan, kwargs) if folder else None
    if key is None:
        return compute(plan, **kwargs)
    path = Path(folder) / f"{key}.pickle"  # type: ignore[arg-type]
    try:
        with path.open("rb") as f:
            return pickle.load(f)  # written below by this function only, in the batch's own folder
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError):
        pass
    frame = compute(plan, **kwargs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:  # a full disk costs the reuse, never the report
        pass
    return frame


def _key(plan: Plan, kwargs: dict[str, Any]) -> str | None:
    from importlib.metadata import version

    from kpinb.definitions.model import to_dict

    files = []
    for name, src in sorted(plan.sources.items()):
        if src.url is not None:
            return None
        paths = [s.path for s in src.snapshots] or [src.path]
        files += [(name, fingerprint(plan.resolve(str(p)))) for p in paths]
    if any(fp["method"] == "missing" for _, fp in files):
        return None  # the engine reports the missing file
    text = json.dumps(
        {"plan": to_dict(plan), "base": str(plan.base_dir), "files": files, "args": kwargs,
         "kpinb": version("kpinb")},
        sort_keys=True, default=str,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()
