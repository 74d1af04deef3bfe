"""Sample orders files for the benchmarks: only the orders source, cached by size and seed.

``kpinb.data.sample.generate`` writes every canonical source (10M order lines: ~52 s and
~660 MB); the engine benchmarks read only ``orders``, so this drives the orders generator
alone with the same random stream, which gives the same rows as ``generate`` would.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kpinb.data import sample as sd
from kpinb.data.sample import _common
from kpinb.data.sample.sales import _orders

DATA_DIR = Path(__file__).resolve().parent / "data"  # gitignored


def orders_parquet(rows: int, seed: int = 7, years: int = 3, data_dir: Path | None = None) -> Path:
    """Path of ``orders-<rows>-s<seed>[-<years>y].parquet`` in ``data_dir``, generated if missing.

    The data starts on 2023-01-01 and spans ``years`` years; row groups have
    ``sample_data.ROW_GROUP_SIZE`` rows, as ``kpinb sample-data`` writes them (one row group
    would make DuckDB read single-threaded).
    """
    out = Path(data_dir or DATA_DIR)
    path = out / f"orders-{rows}-s{seed}{'' if years == 3 else f'-{years}y'}.parquet"
    if path.exists():
        return path
    out.mkdir(parents=True, exist_ok=True)
    schema = _common._schemas()["orders"]
    ctx = _common._Ctx(_common._Calendar("2023-01-01", years), rows, rows / 200_000)
    # generate() spawns one stream per generator (+2) and orders is the first generator
    streams = np.random.SeedSequence(seed).spawn(len(sd._GENERATORS) + 2)
    stream = streams[list(sd._GENERATORS).index("orders")]
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    sink = _common._Sink(tmp, schema, sd.ROW_GROUP_SIZE)
    try:
        for cols in _orders(ctx, np.random.default_rng(stream)):
            sink.write(_common._table("orders", schema, cols))
    except BaseException:
        sink.abort()
        raise
    sink.close()
    os.replace(tmp, path)
    return path
