"""Shared fixtures: the bundled sample data the shipped plans and templates read."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_ROWS, SAMPLE_SEED = 200_000, 7  # the Makefile's defaults: stored notebook outputs depend on them


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """data/sample as `make report` creates it (generated once, reused while up to date)."""
    from kpinb.data.sample import ensure

    out = ROOT / "data" / "sample"
    ensure(out, rows=SAMPLE_ROWS, seed=SAMPLE_SEED)
    return out
