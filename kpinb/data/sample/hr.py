"""Sample data for people: employees and requisitions."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kpinb.data.sample._common import (
    _DEPT_APPLICANTS,
    _DEPT_ENGAGEMENT,
    _DEPT_FILL_DAYS,
    _DEPT_P,
    _DEPT_TURNOVER,
    _DEPTS,
    _LEVELS,
    _SUPPORT,
    REGIONS,
    Cols,
    Rng,
    _choice,
    _Ctx,
    _ids,
    _lognormal,
    _take,
)


def _employees(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    n0 = max(60, round(250 * ctx.scale**0.5))
    dept = _choice(rng, n0, _DEPT_P)
    region = _choice(rng, n0, [0.45, 0.28, 0.17, 0.10])
    level = _choice(rng, n0, [0.30, 0.38, 0.22, 0.10])
    hired = cal.start - (1 + rng.exponential(900, n0)).astype(np.int64).astype("m8[D]")
    mood = rng.standard_normal(n0)
    active = np.ones(n0, dtype=bool)
    log: list[tuple[np.ndarray, ...]] = []
    for m in range(cal.n_months):
        idx = np.flatnonzero(active)
        k, t, de = len(idx), cal.month_t[m], dept[idx]
        annual = _DEPT_TURNOVER[de] + (de == _SUPPORT) * 0.09 * t
        hazard = (1 - (1 - annual) ** (1 / 12)) * np.exp(-0.35 * mood[idx])
        left = rng.random(k) < hazard
        voluntary = left & (rng.random(k) < np.where(de == _SUPPORT, 0.85, 0.72))
        score = np.full(k, np.nan)
        if cal.month_moy[m] % 3 == 0:
            s = (73 + _DEPT_ENGAGEMENT[de] - (de == _SUPPORT) * 3.5 * t + 7 * mood[idx]
                 + 5 * rng.standard_normal(k))
            answered = rng.random(k) < 0.7
            score[answered] = np.round(np.clip(s, 0, 100), 1)[answered]
        yield {
            "snapshot_date": np.full(k, cal.snapshots[m]),
            "employee_id": _ids("EMP-", idx + 1, 5),
            "region": _take(REGIONS, region[idx]),
            "department": _take(_DEPTS, de),
            "level": _take(_LEVELS, level[idx]),
            "hire_date": hired[idx],
            "left": left,
            "voluntary_exit": voluntary,
            "engagement_score": score,
        }
        active[idx[left]] = False
        # backfill the leavers and grow ~8% a year; new hires appear in next month's snapshot
        grow = rng.poisson(k * 0.0065)
        g_dept = _choice(rng, grow, _DEPT_P)
        g_region = _choice(rng, grow, [0.45, 0.28, 0.17, 0.10])
        new_dept = np.concatenate([de[left], g_dept])
        new_region = np.concatenate([region[idx[left]], g_region])
        nh = len(new_dept)
        new_hired = cal.days[rng.integers(cal.bounds[m], cal.bounds[m + 1], nh)]
        dept, region = np.concatenate([dept, new_dept]), np.concatenate([region, new_region])
        level = np.concatenate([level, _choice(rng, nh, [0.45, 0.35, 0.15, 0.05])])
        hired = np.concatenate([hired, new_hired])
        mood = np.concatenate([mood, rng.standard_normal(nh)])
        active = np.concatenate([active, np.ones(nh, dtype=bool)])
        log.append((new_dept, new_region, new_hired))
    ctx.hires = tuple(np.concatenate(a) for a in zip(*log, strict=True))  # type: ignore[assignment]


def _requisitions(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    dept, region, hired = ctx.hires
    n = len(dept)
    t = (hired - cal.start).astype(np.int64) / 365.25
    fill = np.round(np.clip(_lognormal(rng, _DEPT_FILL_DAYS[dept] * 0.96**t, 0.3, n), 10, 150))
    filled = hired - rng.integers(14, 36, n).astype("timedelta64[D]")
    opened = filled - fill.astype("timedelta64[D]")
    keep = opened >= cal.start
    dept, region, filled, opened, fill = (a[keep] for a in (dept, region, filled, opened, fill))
    # cancelled openings through the period and openings still open at the end
    nc = max(1, round(0.08 * len(dept)))
    no = max(1, round(len(dept) / cal.n_months * 1.5))
    dept = np.concatenate([dept, _choice(rng, nc + no, _DEPT_P)])
    region = np.concatenate([region, _choice(rng, nc + no, [0.45, 0.28, 0.17, 0.10])])
    opened = np.concatenate([opened, cal.days[rng.integers(0, cal.n, nc)],
                             cal.days[rng.integers(max(0, cal.n - 75), cal.n, no)]])
    status = np.repeat([1, 2, 0], [len(fill), nc, no])
    nf, n = len(fill), len(dept)
    filled = np.concatenate([filled, np.full(n - nf, np.datetime64("NaT"), "datetime64[D]")])
    fill = np.concatenate([fill, np.full(n - nf, np.nan)])
    applicants = rng.poisson(_DEPT_APPLICANTS[dept]) + 5
    offers = np.select([status == 1, status == 2],
                       [1 + rng.binomial(2, 0.2, n), rng.binomial(1, 0.2, n)],
                       rng.binomial(1, 0.3, n))
    order = np.lexsort((dept, opened))
    yield {
        "requisition_id": _ids("REQ-", np.arange(1, n + 1), 5),
        "opened_date": opened[order],
        "filled_date": filled[order],
        "region": _take(REGIONS, region[order]),
        "department": _take(_DEPTS, dept[order]),
        "status": _take(("open", "filled", "cancelled"), status[order]),
        "applicants": applicants[order],
        "offers_made": offers[order],
        "offers_accepted": (status[order] == 1).astype(np.int64),
        "days_to_fill": fill[order],
    }
