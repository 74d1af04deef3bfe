"""Sample data for customer service: support tickets and NPS responses."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kpinb.data.sample._common import (
    _DOW_WORK,
    _HOURS_B2C,
    _HOURS_WORK,
    _REGION_GROWTH,
    _REGION_W,
    _SEASON_RETAIL,
    REGIONS,
    Cols,
    Rng,
    _choice,
    _choice_rows,
    _Ctx,
    _ids,
    _lognormal,
    _monthly,
    _pick_customers,
    _spread,
    _take,
)


def _support_tickets(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * _REGION_GROWTH[:, None] ** (0.6 * cal.t)
         * _SEASON_RETAIL[cal.moy - 1] ** 0.7 * np.array([1.1, 1.05, 1.0, 1.0, 0.95, 0.5, 0.4])
         [cal.dow])
    counts = _spread(rng, max(500, round(40_000 * ctx.scale)), w)
    for region, day, ts, seq in _monthly(rng, cal, counts, _HOURS_WORK * 0.6 + _HOURS_B2C * 0.4):
        n, t = len(ts), cal.t[day]
        channel = _choice_rows(rng, np.column_stack([0.50 - 0.05 * t, 0.30 + 0.05 * t,
                                                     np.full(n, 0.20)]))
        team = _choice(rng, n, [0.42, 0.20, 0.26, 0.12])
        prio = _choice(rng, n, [0.25, 0.50, 0.18, 0.07])
        first = (np.array([240.0, 1.5, 1.0])[channel] * np.array([1.3, 1.0, 0.6, 0.35])[prio]
                 * 0.78**t * np.exp(0.7 * rng.standard_normal(n)))
        avg = first * _lognormal(rng, 0.9, 0.35, n)
        res_h = (np.array([18.0, 0.6, 0.4])[channel] * np.array([1.0, 0.8, 2.5, 1.5])[team]
                 * np.array([1.2, 1.0, 0.8, 0.6])[prio] * 0.92**t
                 * np.exp(0.9 * rng.standard_normal(n)))
        done_at = ts + (res_h * 3.6e9).astype(np.int64).astype("m8[us]")
        resolved = (done_at < cal.end) & (rng.random(n) > 0.005)
        closed = resolved & (done_at < cal.end - np.timedelta64(7, "D")) & (rng.random(n) < 0.97)
        status = np.where(closed, 3, np.where(resolved, 2, np.where(rng.random(n) < 0.5, 0, 1)))
        handle = (np.array([9.0, 14.0, 8.0])[channel] * np.array([1.0, 0.8, 1.5, 1.1])[team]
                  * np.exp(0.5 * rng.standard_normal(n)))
        answered = resolved & (rng.random(n) < 0.28)
        mood = 4.55 - 0.22 * np.log1p(res_h) - 0.05 * np.log1p(first) + 0.9 * rng.standard_normal(n)
        yield {
            "ticket_id": _ids("T-", seq, 7),
            "created_at": ts,
            "customer_id": _pick_customers(rng, ctx, region, cal.month[day]),
            "region": _take(REGIONS, region),
            "channel": _take(("email", "chat", "phone"), channel),
            "team": _take(("General Support", "Billing", "Technical", "Returns"), team),
            "priority": _take(("low", "normal", "high", "urgent"), prio),
            "status": _take(("open", "pending", "resolved", "closed"), status),
            "first_response_minutes": np.round(np.maximum(first, 0.1), 1),
            "avg_response_minutes": np.round(np.maximum(avg, 0.1), 1),
            "resolution_hours": (np.round(np.maximum(res_h, 0.01), 2), ~resolved),
            "resolved": resolved,
            "handle_minutes": np.round(np.maximum(handle, 0.5), 1),
            "csat": (np.clip(np.round(mood), 1, 5).astype(np.int64), ~answered),
        }


def _nps_responses(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = _REGION_W[:, None] * _REGION_GROWTH[:, None] ** (0.5 * cal.t) * _DOW_WORK[cal.dow]
    counts = _spread(rng, max(300, round(12_000 * ctx.scale)), w)
    for region, day, ts, seq in _monthly(rng, cal, counts, _HOURS_WORK):
        n, t = len(ts), cal.t[day]
        segment = _choice(rng, n, [0.6, 0.3, 0.1])
        nps = (np.array([36.0, 26.0, 40.0, 22.0])[region] + np.array([-4.0, 0.0, 6.0])[segment]
               + np.array([2.0, -5.0, 3.0, 4.0])[region] * t) / 100
        passive = 0.32
        kind = _choice_rows(rng, np.column_stack([(1 - passive - nps) / 2, np.full(n, passive),
                                                  (1 - passive + nps) / 2]))
        detractor = _choice(rng, n, [1, 1, 2, 3, 5, 8, 10])
        score = np.select([kind == 0, kind == 1], [detractor, 7 + (rng.random(n) < 0.55)],
                          9 + (rng.random(n) < 0.55))
        yield {
            "response_id": _ids("NPS-", seq, 6),
            "responded_at": ts,
            "customer_id": _pick_customers(rng, ctx, region, cal.month[day]),
            "region": _take(REGIONS, region),
            "segment": _take(("smb", "mid_market", "enterprise"), segment),
            "score": score.astype(np.int64),
        }
