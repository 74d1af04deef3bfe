"""Sample data for sales and customers: orders, subscriptions, opportunities, sales activities."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from kpinb.data.sample._common import (
    _CAT_COST,
    _CAT_RETURN,
    _CATS,
    _DOW_RETAIL,
    _DOW_WORK,
    _HOURS_B2C,
    _HOURS_WORK,
    _NR,
    _PROD_CAT,
    _PROD_P,
    _PROD_PRICE,
    _PROD_QTY,
    _PRODUCTS,
    _REGION_GROWTH,
    _REGION_W,
    _SALES_TEAMS,
    _SEASON_B2B,
    _SEASON_RETAIL,
    REGIONS,
    Cols,
    Rng,
    _choice,
    _choice_rows,
    _Ctx,
    _customer_ids,
    _ids,
    _lognormal,
    _monthly,
    _spread,
    _take,
)


def _orders(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * _REGION_GROWTH[:, None] ** cal.t
         * _SEASON_RETAIL[cal.moy - 1] * _DOW_RETAIL[cal.dow])
    counts = _spread(rng, max(1, round(ctx.rows / 1.36)), w)
    n_cust = np.zeros(_NR, dtype=np.int64)
    for m, (region, day, ts, oid) in enumerate(_monthly(rng, cal, counts, _HOURS_B2C)):
        n, t = len(ts), cal.month_t[m]
        # customers: new ones get the next id of their region; the others are earlier customers
        known = n_cust[region]
        is_new = (rng.random(n) < 0.30 + 0.6 * np.exp(-m / 4)) | (known == 0)
        u = rng.random(n)
        local = (known * np.where(rng.random(n) < 0.5, u**2, u)).astype(np.int64)
        for r in range(_NR):
            sel = np.flatnonzero(is_new & (region == r))
            local[sel] = n_cust[r] + np.arange(len(sel))
            n_cust[r] += len(sel)
        ctx.customers[:, m] = n_cust
        channel = _choice(rng, n, [0.48 + 0.03 * t, 0.27 - 0.02 * t, 0.15 - 0.01 * t, 0.10])
        cancelled = rng.random(n) < 0.025
        lines = 1 + np.minimum(rng.poisson(0.36, n), 4)
        line = np.repeat(np.arange(n), lines)  # order of each line
        nl = len(line)
        prod = _choice(rng, nl, _PROD_P)
        cat = _PROD_CAT[prod]
        qty = 1 + rng.poisson(_PROD_QTY[prod])
        list_price = _PROD_PRICE[prod] * 1.03 ** cal.t[day[line]]
        disc_p = [0.55, 0.2, 0.15, 0.1] if cal.month_moy[m] in (11, 12) else [0.7, 0.15, 0.1, 0.05]
        discount = np.array([0.0, 0.05, 0.10, 0.20])[_choice(rng, nl, disc_p)]
        chan = channel[line]
        unit = list_price * (1 + 0.02 * rng.standard_normal(nl)) * (1 - discount)
        revenue = np.round(qty * unit * np.where(chan == 2, 0.85, 1.0), 2)
        cost = np.round(qty * list_price * _CAT_COST[cat] * (1 + 0.01 * rng.standard_normal(nl)), 2)
        returned = rng.random(nl) < _CAT_RETURN[cat]
        status = np.where(cancelled[line], 2, np.where(returned, 1, 0))
        reg, dl, done = region[line], day[line], status == 0
        key = reg[done] * cal.n + dl[done]
        ctx.rev_day += np.bincount(key, revenue[done], _NR * cal.n).reshape(_NR, cal.n)
        ctx.cost_day += np.bincount(key, cost[done], _NR * cal.n).reshape(_NR, cal.n)
        pk = reg[done] * len(_PRODUCTS) + prod[done]
        ctx.prod_cost[:, :, m] = np.bincount(pk, cost[done], _NR * len(_PRODUCTS)).reshape(_NR, -1)
        yield {
            "order_id": _ids("ORD-", oid[line], 8),
            "order_date": ts[line],
            "customer_id": _customer_ids(local[line], reg),
            "region": _take(REGIONS, reg),
            "channel": _take(("online", "retail", "partner", "direct sales"), chan),
            "product_category": _take(_CATS, cat),
            "product": _take(_PRODUCTS, prod),
            "quantity": qty,
            "revenue": revenue,
            "cost": cost,
            "is_new_customer": is_new[line],
            "status": _take(("completed", "returned", "cancelled"), status),
        }


def _subscriptions(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    n0 = max(40, round(1500 * ctx.scale))
    new = rng.poisson(n0 * 0.036 * 1.12**cal.month_t * _SEASON_B2B[cal.month_moy - 1])
    first = np.concatenate([np.full(n0, -1), np.repeat(np.arange(cal.n_months), new)])
    cap = len(first)
    region = _choice(rng, cap, _REGION_W)
    plan = _choice(rng, cap, [0.55, 0.35, 0.10])
    mrr = np.select(
        [plan == 0, plan == 1],
        [np.array([29.0, 49.0, 79.0])[_choice(rng, cap, [0.3, 0.5, 0.2])],
         149.0 * (1 + rng.poisson(0.6, cap))],
        np.round(_lognormal(rng, 900.0, 0.5, cap), -1),
    )
    known = np.maximum(ctx.customers[region, np.maximum(first, 0)], 1)
    customer = _customer_ids((rng.random(cap) * known).astype(np.int64), region)
    hazard = np.array([0.028, 0.018, 0.008])[plan] * np.array([1.0, 1.15, 0.9, 1.2])[region]
    active = first < 0
    for m in range(cal.n_months):
        active[first == m] = True
        idx = np.flatnonzero(active)
        is_new = first[idx] == m
        up = ~is_new & (rng.random(len(idx)) < 0.012)
        mrr[idx[up]] = np.round(mrr[idx[up]] * np.where(rng.random(up.sum()) < 0.7, 1.2, 1.5))
        last_year = np.clip((cal.month_t[m] - (cal.years - 1.25)) / 0.5, 0, 1)
        churned = ~is_new & (rng.random(len(idx)) < hazard[idx] * (1 + 0.35 * last_year))
        yield {
            "snapshot_date": np.full(len(idx), cal.snapshots[m]),
            "subscription_id": _ids("SUB-", idx + 1, 6),
            "customer_id": customer.take(pa.array(idx)),
            "region": _take(REGIONS, region[idx]),
            "plan": _take(("basic", "pro", "enterprise"), plan[idx]),
            "mrr": mrr[idx],
            "is_new": is_new,
            "churned": churned,
        }
        active[idx[churned]] = False


def _rep_choice(rng: Rng, ctx: _Ctx, region: np.ndarray, team: np.ndarray) -> np.ndarray:
    """A rep of the given region and team for each row (index into the roster)."""
    _, r_region, r_team = ctx.reps
    out = np.zeros(len(region), dtype=np.int64)
    for r in range(_NR):
        for k in range(len(_SALES_TEAMS)):
            sel = np.flatnonzero((region == r) & (team == k))
            pool = np.flatnonzero((r_region == r) & (r_team == k))
            out[sel] = pool[rng.integers(0, len(pool), len(sel))]
    return out


def _opportunities(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * np.array([1.15, 0.97, 1.3, 1.2])[:, None] ** cal.t
         * _SEASON_B2B[cal.moy - 1] * _DOW_WORK[cal.dow])
    counts = _spread(rng, max(300, round(30_000 * ctx.scale)), w)
    for region, day, ts, seq in _monthly(rng, cal, counts, _HOURS_WORK):
        n, t = len(ts), cal.t[day]
        channel = _choice(rng, n, [0.40, 0.25, 0.12, 0.13, 0.10])
        team = _choice(rng, n, [0.55, 0.30, 0.15])
        rep = _rep_choice(rng, ctx, region, team)
        p_qual = np.array([0.35, 0.22, 0.55, 0.45, 0.28])[channel] * (1 + 0.06 * t)
        qualified = rng.random(n) < p_qual
        demo = rng.random(n) < np.where(qualified, 0.72, 0.03)
        p_win = np.where(demo, 0.40, 0.10) * np.array([1.0, 0.9, 0.75])[team]
        won = qualified & (rng.random(n) < p_win)
        cycle = np.where(qualified, _lognormal(rng, np.array([18.0, 40.0, 85.0])[team], 0.5, n),
                         1 + rng.exponential(6.0, n))
        closed = ts.astype("datetime64[D]") + np.round(cycle).astype(np.int64).astype("m8[D]")
        is_open = closed >= cal.end
        won &= ~is_open
        value = _lognormal(rng, np.array([7500.0, 32000.0, 140000.0])[team], 0.6, n)
        value = np.round(value * np.array([1.0, 0.95, 0.85, 0.7])[region], -2)
        yield {
            "lead_id": _ids("LEAD-", seq, 6),
            "created_date": ts,
            "region": _take(REGIONS, region),
            "channel": _take(("inbound", "outbound", "referral", "partner", "events"), channel),
            "team": _take(_SALES_TEAMS, team),
            "rep": _take(ctx.reps[0], rep),
            "is_qualified": qualified,
            "demo_scheduled": demo,
            "is_won": won,
            "closed_date": (closed, is_open),
            "deal_value": (value, ~won),
        }


_ACTIVITY_P = np.array([[0.48, 0.32, 0.12, 0.08], [0.42, 0.30, 0.17, 0.11],
                        [0.30, 0.30, 0.25, 0.15]])  # team x call, email, meeting, demo


def _sales_activities(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    names, r_region, r_team = ctx.reps
    level = _lognormal(rng, 1.0, 0.35, len(names))  # how much each rep logs
    w = level[:, None] * 1.1 ** cal.t * _SEASON_B2B[cal.moy - 1] * _DOW_WORK[cal.dow]
    counts = _spread(rng, max(500, round(100_000 * ctx.scale)), w)
    for rep, day, _, seq in _monthly(rng, cal, counts, _HOURS_WORK):
        n, team = len(rep), r_team[rep]
        kind = _choice_rows(rng, _ACTIVITY_P[team])
        minutes = _lognormal(rng, np.array([7.0, 4.0, 35.0, 50.0])[kind], 0.5, n)
        yield {
            "activity_id": _ids("ACT-", seq, 7),
            "activity_date": cal.days[day],
            "rep": _take(names, rep),
            "team": _take(_SALES_TEAMS, team),
            "region": _take(REGIONS, r_region[rep]),
            "activity_type": _take(("call", "email", "meeting", "demo"), kind),
            "duration_minutes": np.round(np.maximum(minutes, 0.5), 1),
        }
