"""Shared harness of the fuzz suites: hypothesis settings, a per-case time box, counted runs.

Each suite runs ``CASES`` derandomized cases per property; :func:`run_cases` counts them,
prints the outcomes and fails if fewer ran, and :func:`time_box` interrupts a hanging case.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CASES = 1000


def fuzz_settings(*more_checks: HealthCheck) -> settings:
    """``CASES`` examples, the same ones every run; the time box, not a deadline, proves no hang."""
    return settings(
        max_examples=CASES,
        deadline=None,  # a case's own time box proves no hang; load must not fail a run
        derandomize=True,  # CI sees the same cases every run
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, *more_checks],
    )


class CaseTimeout(BaseException):
    """A case ran too long. BaseException, so kpinb's `except Exception` cannot turn it into a kpinb error."""


@contextmanager
def time_box(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM), keeping pytest-timeout's own timer."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case still running after {seconds} s")

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if outer and outer < seconds:  # pytest-timeout's deadline comes first: keep it
        signal.setitimer(signal.ITIMER_REAL, outer)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 0.001), interval)


def run_cases(
    strategy: st.SearchStrategy[Any],
    case: Callable[[Any], str],
    name: str,
    seconds: float,
    fuzz: settings | None = None,
    cases: int = CASES,
) -> Counter[str]:
    """Run ``case`` on ``cases`` examples of ``strategy``, each time-boxed; return the outcome counts."""
    outcomes: Counter[str] = Counter()

    @(fuzz or fuzz_settings())
    @given(strategy)
    def prop(example: Any) -> None:
        with time_box(seconds):
            outcomes[case(example)] += 1

    prop()
    total = sum(outcomes.values())
    print(f"\n{name}: {total} cases {dict(outcomes)}")
    assert total >= cases
    return outcomes


# --- command-line arguments ------------------------------------------------------------------------

HOSTILE_VALUES = (
    "", " ", "-1", "0", "1", "nan", "inf", "-inf", "1e309", "1.5", "99999999999999999999", "0x10",
    "2025-02-30", "9999-12-31", "0001-01-01", "2025-06-30", "garbage", "\x1b[2J\x1b]0;t\x07", "a\nb", "\r",
    "../../escape", "/dev/zero", "/dev/null", "{fifo}", "{folder}", "{file}", "{missing}", "é" * 300, "--", "-x",
)  # fmt: skip
"""Values every option is tried with: numbers out of range, NaN, bad dates, control characters,
paths that escape, devices, a FIFO ({fifo}), a folder, a plain file and a missing path."""


def cli_arguments(commands: dict[str, tuple[list[str], dict[str, tuple[str, ...]]]]) -> st.SearchStrategy[list[str]]:
    """Argument lists for ``kpinb``: a command, its fixed arguments, and any of its options, each
    with a hostile value or one of its good ones. ``commands`` maps a command to (fixed arguments,
    option -> good values)."""

    def one(command: str) -> st.SearchStrategy[list[str]]:
        fixed, options = commands[command]
        pairs = [
            st.tuples(st.just(opt), st.sampled_from(HOSTILE_VALUES) | st.sampled_from(good or ("x",)))
            for opt, good in options.items()
        ]
        chosen = st.lists(st.one_of(pairs), max_size=4) if pairs else st.just([])
        return chosen.map(lambda kv: [command, *fixed, *(x for pair in kv for x in pair)])

    return st.sampled_from(sorted(commands)).flatmap(one)
