"""Analytics over the engine's tidy frame: changes, status, pace, benchmarks, drivers, review."""
