#!/usr/bin/env python3
"""Re-execute the template and example notebooks on the sample data and store their outputs.

``pytest --nbval templates notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg`` re-runs
the notebooks and compares every output with the stored one, so a computed number that
changes fails the suite. When a number changes on purpose (new sample data, a fixed formula),
run this script and review the diff of the notebooks before committing it::

    .venv/bin/python scripts/refresh_notebooks.py                # every notebook
    .venv/bin/python scripts/refresh_notebooks.py templates/kpi_review.ipynb

Notebooks run in their own folder (as nbval runs them) with the sample data of
``make sample`` (200,000 rows, seed 7), the interactive plotly renderer and no widget state
stored. A notebook that fails is left unchanged and the script exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS, SEED = 200_000, 7  # the Makefile's defaults; tests/conftest.py uses the same


def notebooks(paths: list[str]) -> list[Path]:
    """The notebooks to refresh: the ones named, else every template and example."""
    if paths:
        return [Path(p).resolve() for p in paths]
    return sorted((ROOT / "templates").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.ipynb"))


def refresh(path: Path, timeout: int = 600) -> None:
    """Execute ``path`` in its folder and write it back with fresh outputs (atomically)."""
    import nbformat
    from nbclient import NotebookClient

    from kpinb._io import write_atomic

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
    )  # fmt: skip
    client.execute()
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    write_atomic(path, nbformat.writes(nb) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Refresh the notebooks named on the command line (default: all); exit 1 if one failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook paths (default: templates/*.ipynb notebooks/*.ipynb)")
    args = parser.parse_args(argv)

    from kpinb.data.sample import ensure
    from kpinb.views.report import RENDERER_ENV

    ensure(ROOT / "data" / "sample", rows=ROWS, seed=SEED)
    os.environ.pop(RENDERER_ENV, None)  # stored notebooks use the interactive renderer, as nbval's kernels do
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", tempfile.mkdtemp(prefix="kpinb-refresh-"))
    failed = []
    for path in notebooks(args.notebooks):
        print(f"refreshing {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
        try:
            refresh(path)
        except Exception as e:  # keep going: report every notebook that fails
            failed.append(path)
            print(f"  FAILED: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}")
    if failed:
        print(f"{len(failed)} notebook(s) failed and were left unchanged: {', '.join(p.name for p in failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
