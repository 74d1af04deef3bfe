"""Cached aggregates of a plan for interactive filtering (the dashboard's data layer).

What is cached, per grain:

- **additive metrics** — sums and counts (``sum``, ``count``, ``count_if``, and ``+``/``-``/
  scaling by a number of those) and ratios of two such parts — are computed by the engine
  **once per source**, broken down by *all* of the source's dimensions (the finest breakdown any
  filter needs). A filter or a breakdown is then a pandas selection and group-by sum of
  ``value`` (sums) or of ``numerator`` and ``denominator`` (ratios, divided afterwards), which is
  exact: every row falls in exactly one dimension combination.
- **other metrics** — ``count_distinct``, ``avg``, ``median``, ``min``, ``max``, ratios with
  such parts and derived metrics — do not add up over members, so the engine computes them
  broken down by exactly the dimensions that are filtered or broken down by (those their
  sources have). Each such breakdown is cached, so choosing another member of the same
  dimensions, or going back to a selection seen before, costs no query.

A filter on a dimension a metric's source does not have leaves that metric unfiltered; the
result's ``attrs["unfiltered"]`` lists those (metric -> dimensions).

:meth:`Cube.precompute` fills the one-dimension breakdowns of the other metrics (the exact
values of every member of that dimension: each row falls in one member) in a background thread,
so the first filter on one dimension is a pandas lookup too. A running query cannot be stopped
(polars) and two at once share the cores, so the background starts a query only once the
foreground has asked for nothing for :data:`QUIET_S`, and, where it can (see
:meth:`Cube._member_source`, :data:`MEMBER_QUERIES_MAX`), computes each member of a dimension by a
query over that member's rows only (their frames together are the breakdown). A filter that arrives
first runs the query of its member alone (or waits for it if it is running); failing that, it waits
for its dimension's query if it is running, or runs it itself. Engine queries of the cubes are
serialised (the process shares one DuckDB connection) and the foreground's go first.

>>> cube = Cube(kpinb.load_plan("templates/plans/web.yml"))  # doctest: +SKIP
>>> cube.frame("month", {"region": "Europe"})                # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal

from kpinb._shared import Shared
from kpinb.definitions.analysis import additivity
from kpinb.engine import VALUE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Metric, Plan

Kind = Literal["sum", "ratio", "exact"]
Key = tuple[str, tuple[str, ...]]  # (grain, dimensions) of a breakdown
MemberKey = tuple[str, tuple[str, ...], str]  # (grain, (dimension,), member): one member's rows of it
_log = logging.getLogger(__name__)

# One engine query at a time (the process's DuckDB connection is shared); the foreground first.
_ENGINE = threading.Condition()
_engine_state: dict[str, Any] = {"busy": False, "waiting": 0, "active": -math.inf}
QUIET_S = 1.0
"""Seconds after a frame was last asked for before a background query starts: a user changing
filters gets the cores (a running polars query cannot be stopped, and two at once share them)."""
MEMBER_QUERIES_MAX = 10
"""A dimension of more members is precomputed by one query, not member by member (each member's query
reads every row again: about a third to a half of the whole breakdown's time at 10M rows)."""

# Background precompute threads still running, and the flag that tells them to stop. A daemon thread
# still inside DuckDB when the interpreter finalises aborts the process ("terminate called without an
# active exception", exit 134), so at exit they are stopped, their query interrupted, and joined.
_RUNNING: set[threading.Thread] = set()
_STOP = threading.Event()
_EXIT_WAIT_S = 10.0


def _stop_background() -> None:
    """Stop every precompute thread: no new query starts, the running one is interrupted."""
    _STOP.set()
    with _ENGINE:
        threads = list(_RUNNING)
        _ENGINE.notify_all()  # those waiting for their turn stop now
    if not threads:
        return
    with contextlib.suppress(Exception):
        from kpinb.data.sources import duckdb_connection

        duckdb_connection().con.interrupt()
    for thread in threads:
        thread.join(_EXIT_WAIT_S)


atexit.register(_stop_background)


def _active() -> None:
    """The foreground asked for a frame: background queries wait :data:`QUIET_S` from now."""
    with _ENGINE:
        _engine_state["active"] = time.monotonic()


def _wait_turn(background: bool) -> bool:
    """Wait (holding ``_ENGINE``) until the engine is free; a background query also waits while a
    foreground one waits and until the foreground has been quiet for :data:`QUIET_S`. False: a
    background query must not start (the interpreter is exiting)."""
    while not (background and _STOP.is_set()):
        quiet = QUIET_S - (time.monotonic() - _engine_state["active"]) if background else 0.0
        if not (_engine_state["busy"] or (background and (_engine_state["waiting"] or quiet > 0))):
            return True
        _ENGINE.wait(quiet if quiet > 0 else None)
    return False


@contextlib.contextmanager
def _engine_turn(background: bool = False) -> Iterator[None]:
    """Hold the engine for one query (see :func:`_wait_turn`)."""
    with _ENGINE:
        if not background:
            _engine_state["waiting"] += 1
        try:
            if not _wait_turn(background):
                raise RuntimeError("the interpreter is exiting")
        finally:
            if not background:
                _engine_state["waiting"] -= 1
        _engine_state["busy"] = True
    try:
        yield
    finally:
        with _ENGINE:
            _engine_state["busy"] = False
            if not background:
                _engine_state["active"] = time.monotonic()
            _ENGINE.notify_all()


def kind_of(metric: Metric) -> Kind:
    """``sum`` (members add up), ``ratio`` (numerator and denominator add up) or ``exact``
    (recomputed from the rows; derived metrics are combined after their parts)."""
    if metric.derived:
        return "exact"
    kind = additivity(metric)
    return kind if kind in ("sum", "ratio") else "exact"


class Cube:
    """The plan's metrics at any grain, filtered by dimension members, from cached aggregates.

    Parameters
    ----------
    plan : the plan; its KPIs and their supporting metrics are available.
    metrics : restrict to these metric ids (default: the plan's KPIs and supporting metrics).

    Attributes
    ----------
    calls : every engine call made for a frame asked for, as ``(grain, by, metric ids)``, in
        order — what was not served from the cache (nor by the background precompute). A query
        over one member's rows has ``by`` = ``("<dimension>=<member>",)``.
    background_calls : the engine calls the background precompute made, likewise.
    precompute_errors : ``(grain, dimensions, error)`` of background queries that failed; a
        filter needing one of them queries the engine itself.
    """

    def __init__(self, plan: Plan, metrics: Sequence[str] | None = None) -> None:
        from kpinb.definitions.analysis import dependencies
        from kpinb.definitions.catalog import sources as canonical
        from kpinb.definitions.plan import registry

        self.plan = plan
        self.registry: dict[str, Metric] = registry(plan)
        if metrics is None:
            ids: list[str] = []
            for k in plan.kpis:
                ids.extend([k.metric, *k.supporting])
            metrics = list(dict.fromkeys(ids))
        self.metrics = list(metrics)
        self.kinds: dict[str, Kind] = {}
        self.sources_of: dict[str, set[str]] = {}
        for mid in self.metrics:
            closure = dependencies([mid], self.registry)
            self.sources_of[mid] = {s for d in closure if (s := self.registry[d].source) is not None}
            self.kinds[mid] = kind_of(self.registry[mid])
        canon = canonical()
        self.source_dims: dict[str, tuple[str, ...]] = {}
        for name in sorted(set().union(*self.sources_of.values()) if self.sources_of else set()):
            spec = plan.sources.get(name)
            dims = spec.dimensions if spec is not None and spec.dimensions is not None else None
            if dims is None:
                dims = canon[name].dimensions if name in canon else ()
            self.source_dims[name] = tuple(dims)
        self.dims_of: dict[str, tuple[str, ...]] = {}
        for mid, srcs in self.sources_of.items():
            common = [
                d
                for d in _union(self.source_dims[s] for s in sorted(srcs))
                if all(d in self.source_dims[s] for s in srcs)
            ]
            self.dims_of[mid] = tuple(common)
        self.calls: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        self._additive: dict[tuple[str, str], pd.DataFrame] = {}
        self._exact: dict[Key | MemberKey, pd.DataFrame] = {}
        self._members: dict[str, list[str]] | None = None
        self._with_missing: set[str] = set()  # dimensions with a missing value in some row
        self._lock = threading.Lock()  # guards the caches, the futures and the lists above
        self._futures: dict[Key | MemberKey, Future[pd.DataFrame | None]] = {}
        self.background_calls: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        self.precompute_errors: list[tuple[str, tuple[str, ...], str]] = []

    # --- what there is --------------------------------------------------------------------------

    @property
    def dimensions(self) -> list[str]:
        """Every dimension of the metrics' sources, in the order the plan's sources name them."""
        return _union(self.source_dims.values())

    def members(self) -> dict[str, list[str]]:
        """Dimension -> its members (sorted, without missing values), read from the sources."""
        if self._members is None:
            from kpinb.data.sources import open_planned

            found: dict[str, set[str]] = {d: set() for d in self.dimensions}
            for name, dims in self.source_dims.items():
                if not dims:
                    continue
                with _engine_turn():
                    table = open_planned(name, self.plan.sources, self.plan.base_dir,
                                         self.plan.limits.statement_timeout_s, self.plan.timezone)  # fmt: skip
                    have = [d for d in dims if d in table.columns]
                    for d in have:
                        values = table.expr.select(table.expr[d].cast("string").name(d)).distinct().execute()[d]
                        found[d].update(str(v) for v in values if v is not None and v == v)
                        if any(v is None or v != v for v in values):
                            self._with_missing.add(d)
            self._members = {d: sorted(v) for d, v in found.items()}
        return self._members

    # --- background precompute ------------------------------------------------------------------

    def precompute(self, groups: Iterable[tuple[str, Sequence[str]]]) -> threading.Thread | None:
        """Start computing breakdowns of the non-additive metrics in a daemon thread, in order.

        ``groups`` holds ``(grain, dimensions)``: typically each filterable dimension alone at the
        grains shown (what a first filter on it needs, the same cache entry). Those cached or
        already started, and those without such metrics, are skipped. A dimension alone whose
        members are known (:meth:`members`) and that :meth:`_member_source` allows is first
        computed member by member (all such groups' members before any whole breakdown): a filter
        arriving meanwhile waits at most for one short query. Returns the thread (None when there
        is nothing to compute). A failed query is logged and kept in ``precompute_errors``; a
        filter that needs it queries the engine itself.
        """
        _active()  # asked for once something was shown: the user may act on it now
        keys: list[Key | MemberKey] = []
        wholes: list[Key] = []
        with self._lock:
            known = self._members or {}
            for g, dims in groups:
                key = (g, self._ordered(dims))
                if key in self._exact or key in self._futures or not self._exact_metrics(key[1]):
                    continue
                self._futures[key] = Future()
                wholes.append(key)
                if self._member_source(key[1]) is None or len(known.get(key[1][0], [])) > MEMBER_QUERIES_MAX:
                    continue
                for member in known[key[1][0]]:
                    mkey = (*key, member)
                    if mkey not in self._exact and mkey not in self._futures:
                        self._futures[mkey] = Future()
                        keys.append(mkey)
            keys.extend(wholes)
        if not keys:
            return None
        thread = threading.Thread(target=self._precompute, args=(keys,), name="kpinb-cube-precompute", daemon=True)
        with _ENGINE:
            _RUNNING.add(thread)
        thread.start()
        return thread

    def _ordered(self, dims: Iterable[str]) -> tuple[str, ...]:
        """A set of dimensions as a cache key: in the order of :attr:`dimensions`."""
        want = set(dims)
        return tuple(d for d in self.dimensions if d in want)

    def _precompute(self, keys: list[Key | MemberKey]) -> None:
        try:
            for key in keys:
                if _STOP.is_set():  # the interpreter is exiting
                    break
                with self._lock:
                    fut = self._futures[key]
                with _ENGINE:  # running only once it may start: a filter meanwhile takes it over
                    if not _wait_turn(background=True):
                        break
                if not fut.set_running_or_notify_cancel():
                    continue  # a filter needed it first and computed it
                grain, dims = key[0], key[1]
                try:
                    if len(key) == 3:
                        df = self._compute_member(grain, dims, key[2], background=True)
                    else:
                        df = self._assembled(grain, dims)
                        if df is None:
                            df = self._compute(self._exact_metrics(dims), grain, dims, background=True)
                except Exception as e:  # kept; a filter needing it falls back to its own query
                    if _STOP.is_set():  # interrupted because the interpreter is exiting: not a failure
                        fut.set_result(None)
                        break
                    what = f"{dims[0]} = {key[2]}" if len(key) == 3 else ", ".join(dims)
                    _log.warning("kpinb: precomputing %s by %s failed: %s", grain, what, e)
                    with self._lock:
                        self.precompute_errors.append((grain, dims, f"{type(e).__name__}: {e}"))
                    fut.set_result(None)
                    continue
                if df is not None:
                    with self._lock:
                        self._exact.setdefault(key, df)
                fut.set_result(df)
        finally:  # never leave a filter waiting for a query that will not run
            for key in keys:
                fut = self._futures[key]
                if not fut.done():
                    with contextlib.suppress(Exception):
                        fut.set_result(None)
            with _ENGINE:
                _RUNNING.discard(threading.current_thread())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background precompute; True when it has finished."""
        import concurrent.futures

        with self._lock:
            futures = list(self._futures.values())
        _, pending = concurrent.futures.wait(futures, timeout=timeout)
        return not pending

    def _exact_metrics(self, dims: tuple[str, ...]) -> list[str]:
        return [m for m in self.metrics if self.kinds[m] == "exact" and set(dims) <= set(self.dims_of[m])]

    # --- the frame ------------------------------------------------------------------------------

    def frame(
        self,
        grain: str,
        filters: Mapping[str, str | None] | None = None,
        by: Sequence[str] = (),
        metrics: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The metrics at ``grain``, keeping only rows of the filtered members, by ``by``.

        Parameters
        ----------
        grain : day, week, month, quarter or year.
        filters : dimension -> member (None or ``""`` means all members).
        by : dimensions to break down by (a metric whose sources lack one is not broken down by
            it and gets missing values in that column).
        metrics : metric ids (default all of the cube's).

        Returns
        -------
        The engine's tidy frame (``metric, period_start, <by...>, value, numerator,
        denominator, complete``) with ``attrs`` ``grain``, ``by`` and ``unfiltered`` (metric -> filter
        dimensions its sources do not have).
        """
        import pandas as pd

        _active()
        active = {d: str(v) for d, v in (filters or {}).items() if v not in (None, "")}
        by = list(dict.fromkeys(by))
        ids = list(metrics) if metrics is not None else self.metrics
        unknown = [m for m in ids if m not in self.kinds]
        if unknown:
            raise KeyError(f"metric(s) {', '.join(unknown)} are not in this dashboard's plan")
        parts: list[pd.DataFrame] = []
        unfiltered: dict[str, list[str]] = {}
        for mid in ids:
            missing = [d for d in active if d not in self.dims_of[mid]]
            if missing:
                unfiltered[mid] = missing
        additive = [m for m in ids if self.kinds[m] != "exact"]
        for source in sorted({next(iter(self.sources_of[m])) for m in additive}):
            ms = [m for m in additive if next(iter(self.sources_of[m])) == source]
            parts.append(self._from_additive(grain, source, ms, active, by))
        exact = [m for m in ids if self.kinds[m] == "exact"]
        groups: dict[tuple[str, ...], list[str]] = {}
        for mid in exact:
            dims = self._ordered(d for d in self.dims_of[mid] if d in active or d in by)
            groups.setdefault(dims, []).append(mid)
        for dims, ms in groups.items():
            parts.append(self._from_exact(grain, dims, ms, active, by))
        columns = ["metric", "period_start", *by, *VALUE_COLUMNS, "complete"]
        if parts:
            kept = [p.reindex(columns=columns) for p in parts if len(p)] or [parts[0].reindex(columns=columns)]
            out = pd.concat(kept, ignore_index=True)
            out["complete"] = out["complete"].fillna(True).astype(bool)
        else:
            out = pd.DataFrame(columns=columns)
        order = {m: i for i, m in enumerate(ids)}
        out = out.sort_values(
            ["metric", *by, "period_start"],
            key=lambda s: s.map(order) if s.name == "metric" else s,
            kind="stable",
            na_position="last",
        ).reset_index(drop=True)
        out.attrs.update(grain=grain, by=tuple(by), unfiltered=Shared(unfiltered))
        return out

    def _from_additive(
        self, grain: str, source: str, ms: list[str], active: dict[str, str], by: list[str]
    ) -> pd.DataFrame:
        with self._lock:
            base = self._additive.get((grain, source))
        if base is None:
            every = [m for m in self.metrics if self.kinds[m] != "exact" and self.sources_of[m] == {source}]
            base = self._compute(every, grain, self.source_dims[source])
            with self._lock:
                self._additive[(grain, source)] = base
        dims = self.source_dims[source]
        rows = base[base["metric"].isin(ms)]
        for d, v in active.items():
            if d in dims:
                rows = rows[rows[d] == v]
        keys = ["metric", "period_start", *[d for d in by if d in dims]]
        grouped = rows.groupby(keys, sort=False, dropna=False)
        summed = grouped[list(VALUE_COLUMNS)].sum(min_count=1)
        summed["complete"] = grouped["complete"].all()  # coverage is per period, the same for every member
        summed = summed.reset_index()
        ratio = summed["metric"].map(lambda m: self.kinds[m] == "ratio").astype(bool)
        den = summed["denominator"]
        summed.loc[ratio, "value"] = summed.loc[ratio, "numerator"] / den[ratio].where(den[ratio] != 0)
        summed.loc[~ratio, ["numerator", "denominator"]] = math.nan
        return summed

    def _from_exact(
        self, grain: str, dims: tuple[str, ...], ms: list[str], active: dict[str, str], by: list[str]
    ) -> pd.DataFrame:
        key = (grain, dims)

        def usable(df: pd.DataFrame | None) -> bool:
            return df is not None and set(ms) <= set(df["metric"].unique())

        with self._lock:
            cached = self._exact.get(key)
            fut = self._futures.get(key)
        if not usable(cached) and fut is not None and fut.done():
            cached = fut.result()
        member = active.get(dims[0]) if len(dims) == 1 and dims[0] not in by else None
        if not usable(cached) and member is not None and not (fut is not None and fut.running()):
            cached = self._member_frame(grain, dims, member)  # rather than waiting for every member's
        if not usable(cached) and (whole := self._assembled(grain, dims)) is not None:
            with self._lock:
                cached = self._exact.setdefault(key, whole)
        if not usable(cached) and fut is not None and not fut.cancel():
            cached = fut.result()  # being computed in the background (or done): no second query
        if not usable(cached):
            cached = self._compute(self._exact_metrics(dims), grain, dims)
            with self._lock:
                self._exact[key] = cached
        rows = cached[cached["metric"].isin(ms)]
        for d, v in active.items():
            if d in dims:
                rows = rows[rows[d] == v]
        return rows.drop(columns=[d for d in dims if d not in by])

    def _member_frame(self, grain: str, dims: tuple[str, ...], member: str) -> pd.DataFrame | None:
        """One member's rows of the breakdown by ``dims`` (one dimension): cached, being computed in
        the background (waited for: one member's query is short), or queried now; None when it
        cannot be computed by itself (then the whole breakdown is)."""
        key = (grain, dims, member)
        with self._lock:
            got = self._exact.get(key)
            fut = self._futures.get(key)
        if got is None and fut is not None and not fut.cancel():
            got = fut.result()
        if got is None:
            try:
                got = self._compute_member(grain, dims, member)
            except Exception as e:  # the whole breakdown's query reports it, or runs on another engine
                _log.debug("kpinb: %s = %s by itself failed: %s", dims[0], member, e)
                return None
            if got is not None:
                with self._lock:
                    self._exact[key] = got
        return got

    def _assembled(self, grain: str, dims: tuple[str, ...]) -> pd.DataFrame | None:
        """The breakdown by ``dims`` (one dimension) from its members' frames, when every member's is
        cached and no row lacks the dimension (the breakdown would have that group too); else None."""
        import pandas as pd

        members = (self._members or {}).get(dims[0]) if len(dims) == 1 else None
        if not members or dims[0] in self._with_missing:
            return None
        with self._lock:
            frames = [self._exact.get((grain, dims, m)) for m in members]
        if any(f is None or not (f[dims[0]] == m).all() for f, m in zip(frames, members, strict=True)):
            return None
        return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)

    def _member_source(self, dims: tuple[str, ...]) -> str | None:
        """The source whose rows of one member of ``dims`` (one dimension) give exactly that member's
        rows of the whole breakdown, or None.

        That is so when every non-additive metric reads one catalog source (its periods, hence the
        breakdown's, are then those of the unfiltered frame) and none of those by ``dims`` is windowed
        (a window of a member's period may hold rows of periods where the member has none)."""
        from kpinb.definitions.analysis import dependencies
        from kpinb.definitions.catalog import sources as canonical
        from kpinb.definitions.model import Source

        every = self._exact_metrics(())
        found = set().union(*(self.sources_of[m] for m in every)) if every else set()
        if len(dims) != 1 or len(found) != 1:
            return None
        (source,) = found
        closure = dependencies(self._exact_metrics(dims), self.registry)
        windowed = any(self.registry[m].span is not None for m in closure)
        if windowed or source not in canonical() or not isinstance(self.plan.sources.get(source), Source):
            return None
        return source

    def _compute_member(
        self, grain: str, dims: tuple[str, ...], member: str, background: bool = False
    ) -> pd.DataFrame | None:
        """The breakdown by ``dims`` (one dimension) for ``member`` only, from a query over its rows.

        Exactly those rows of the whole breakdown: its periods and completeness do not depend on the
        member, so they are the unfiltered frame's at ``grain`` (the first and last period are given
        to the query, ``complete`` is that frame's). None when :meth:`_member_source` says no or that
        frame has not been computed."""
        import pandas as pd

        from kpinb.engine.calendar import period_ends
        from kpinb.engine.query import compute

        source = self._member_source(dims)
        with self._lock:
            whole = self._exact.get((grain, ()))
        if source is None or whole is None or whole.empty:
            return None
        (dim,) = dims
        ids = self._exact_metrics(dims)
        first, last = whole["period_start"].min(), whole["period_start"].max()
        end = period_ends([last], grain, self.plan.calendar)[0]
        with _engine_turn(background):
            with self._lock:
                (self.background_calls if background else self.calls).append((grain, (f"{dim}={member}",), tuple(ids)))
            # a value the member's rows lack is no news: the unfiltered source was checked
            df = compute(self.plan, metrics=ids, grain=grain, by=[dim], start=first, end=end, members={dim: member},
                         check_values=False)  # fmt: skip
        df[dim] = df[dim].astype("str")
        complete = whole.set_index(["metric", "period_start"])["complete"]
        df["complete"] = complete.reindex(pd.MultiIndex.from_frame(df[["metric", "period_start"]])).to_numpy()
        if df["complete"].isna().any():  # not the unfiltered frame's periods: cannot be exact
            return None
        df["complete"] = df["complete"].astype(bool)
        return df

    def _compute(self, ids: list[str], grain: str, by: Iterable[str], background: bool = False) -> pd.DataFrame:
        from kpinb.engine.query import compute

        by = tuple(by)
        with _engine_turn(background):
            with self._lock:
                (self.background_calls if background else self.calls).append((grain, by, tuple(ids)))
            df = compute(self.plan, metrics=ids, grain=grain, by=list(by))
        for d in by:  # members are compared as text (dropdown values)
            df[d] = df[d].astype("str")
        return df


def _union(groups: Iterable[Iterable[str]]) -> list[str]:
    out: dict[str, None] = {}
    for g in groups:
        out.update(dict.fromkeys(g))
    return list(out)


def filter_label(filters: Mapping[str, Any]) -> str:
    """``region = Europe, channel = paid`` (empty when nothing is filtered)."""
    return ", ".join(f"{d} = {v}" for d, v in filters.items() if v not in (None, ""))
