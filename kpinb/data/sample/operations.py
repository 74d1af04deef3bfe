"""Sample data for the supply chain: shipments and inventory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kpinb.data.sample._common import (
    _CARRIERS,
    _CAT_COST,
    _CATALOG,
    _CATS,
    _HOURS_WORK,
    _NR,
    _PROD_CAT,
    _PROD_PRICE,
    _PRODUCTS,
    _REGION_CARRIERS,
    _REGION_GROWTH,
    _REGION_W,
    _SEASON_RETAIL,
    _WAREHOUSES,
    _WH_REGION,
    _WH_SHARE,
    REGIONS,
    Cols,
    Rng,
    _choice,
    _Ctx,
    _ids,
    _lognormal,
    _monthly,
    _spread,
    _take,
)


def _shipments(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * _REGION_GROWTH[:, None] ** cal.t * _SEASON_RETAIL[cal.moy - 1]
         * np.array([1.2, 1.15, 1.1, 1.1, 1.05, 0.3, 0.2])[cal.dow])
    counts = _spread(rng, max(1, round(ctx.rows * 0.5)), w)
    promised_opts = np.array([[2, 3, 5], [2, 3, 4], [3, 5, 7], [4, 7, 10]])
    for m, (region, _, ts, seq) in enumerate(_monthly(rng, cal, counts, _HOURS_WORK)):
        n, t = len(ts), cal.month_t[m]
        carrier = _choice(rng, n, [0.45, 0.35, 0.20])
        wh = np.where(region == 0, (rng.random(n) < 0.45).astype(np.int64), region + 1)
        service = _choice(rng, n, [0.2, 0.35, 0.45])
        promised = promised_opts[region, service]
        p_on = (np.minimum(0.86 + 0.04 * t, 0.97) + np.array([0.02, 0.0, -0.03])[carrier]
                - 0.04 * (cal.month_moy[m] == 12))
        on_time = rng.random(n) < p_on
        days = np.where(on_time, np.floor(promised * rng.uniform(0.45, 1.0, n) * 10) / 10,
                        np.ceil((promised + 0.1 + rng.exponential(1.2, n)) * 10) / 10)
        delivered = ts + (days * 8.64e10).astype(np.int64).astype("m8[us]") < cal.end
        cost = (np.array([7.5, 6.5, 9.0, 11.0])[region] * (1 + 2.5 / promised) * 1.03**t
                * _lognormal(rng, 1.0, 0.2, n))
        cost = np.round(cost, 2)
        ctx.ship_month[:, m] = np.bincount(region, cost, _NR)
        yield {
            "shipment_id": _ids("SHP-", seq, 8),
            "shipped_at": ts,
            "region": _take(REGIONS, region),
            "carrier": _take(_CARRIERS, _REGION_CARRIERS[region, carrier]),
            "warehouse": _take(_WAREHOUSES, wh),
            "promised_days": promised.astype(np.int64),
            "delivery_days": (days, ~delivered),
            "delivered_on_time": on_time & delivered,
            "shipping_cost": cost,
        }


def _inventory(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    n_prod, n_wh = len(_PRODUCTS), len(_WAREHOUSES)
    prod, var, wh, m = (a.ravel() for a in np.indices((n_prod, 2, n_wh, cal.n_months)))
    cat, region = _PROD_CAT[prod], _WH_REGION[wh]
    n = len(prod)
    share = np.where(var == 0, 0.6, 0.4) * _WH_SHARE[wh]
    cogs = np.round(ctx.prod_cost[region, prod, m] * share * _lognormal(rng, 1.0, 0.05, n), 2)
    cover = np.array([1.1, 2.0, 2.6, 2.2, 1.6])[cat] * _lognormal(rng, 1.0, 0.3, n)  # months
    unit_cost = _PROD_PRICE[prod] * _CAT_COST[cat] * 1.03 ** cal.month_t[m]
    units = np.round(np.maximum(cogs, unit_cost) * cover / unit_cost).astype(np.int64)
    value = np.round(units * unit_cost, 2)
    days_in = np.diff(cal.bounds)[m]
    p_out = np.clip(0.5 * np.exp(-2.2 * value / np.maximum(cogs, 1.0)), 0, 0.5)
    order = np.lexsort((wh, var, prod, m))
    sku = [f"{_CATALOG[_CATS[_PROD_CAT[p]]][0]}-{p % 5 + 1:02d}{v}" for p in range(n_prod)
           for v in "AB"]
    yield {
        "snapshot_date": cal.snapshots[m][order],
        "sku": _take(sku, (prod * 2 + var)[order]),
        "warehouse": _take(_WAREHOUSES, wh[order]),
        "region": _take(REGIONS, region[order]),
        "product_category": _take(_CATS, cat[order]),
        "on_hand_units": units[order],
        "on_hand_value": value[order],
        "cogs": cogs[order],
        "stockout_days": rng.binomial(days_in, p_out)[order],
    }
