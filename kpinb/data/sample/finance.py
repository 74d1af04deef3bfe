"""Sample data for finance: the general ledger."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from kpinb.data.sample._common import _NR, REGIONS, Cols, Rng, _Ctx, _ids, _lognormal, _take

_CC = ("sales", "marketing", "operations", "rnd", "g_and_a")
_ACCOUNTS = ("revenue", "cogs", "opex", "capex", "tax", "financing")
_CASH_FLOW = np.array([0, 0, 0, 1, 0, 2])  # account -> operating, investing, financing


def _ledger(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    day_i, reg_i, cc_i, acc_i, amt = [], [], [], [], []

    def post(d: Any, r: Any, cc: int, acc: int, amount: Any) -> None:
        amount = np.atleast_1d(np.asarray(amount, dtype=float))
        day_i.append(np.broadcast_to(d, amount.shape))
        reg_i.append(np.broadcast_to(r, amount.shape))
        cc_i.append(np.full(amount.shape, cc))
        acc_i.append(np.full(amount.shape, acc))
        amt.append(amount)

    # weekly revenue and cost of goods sold postings, from completed orders
    dom = np.arange(cal.n) - cal.bounds[cal.month]
    key = cal.month * 4 + np.minimum(dom // 7, 3)
    last = np.zeros(cal.n_months * 4, dtype=np.int64)
    np.maximum.at(last, key, np.arange(cal.n))
    for r in range(_NR):
        rev = np.bincount(key, ctx.rev_day[r], cal.n_months * 4)
        cost = np.bincount(key, ctx.cost_day[r], cal.n_months * 4)
        ok = rev > 0
        post(last[ok], r, 0, 0, rev[ok] * (1 + 0.003 * rng.standard_normal(ok.sum())))
        post(last[ok], r, 2, 1, -cost[ok] * (1 + 0.003 * rng.standard_normal(ok.sum())))
    # monthly operating expenses: payroll on the 25th, invoices mid-month and at month end
    rm = ctx.rev_month()
    total = rm.sum(axis=0)
    for m in range(cal.n_months):
        d0, d1 = cal.bounds[m], cal.bounds[m + 1]
        pay, mid, end = min(d0 + 24, d1 - 1), min(d0 + 14, d1 - 1), d1 - 1
        for r in range(_NR):
            noise = _lognormal(rng, 1.0, 0.03, 8)
            post(pay, r, 0, 2, -0.075 * rm[r, m] * noise[0])
            post(end, r, 0, 2, -0.025 * rm[r, m] * noise[1])  # commissions
            post(pay, r, 1, 2, -0.02 * rm[r, m] * noise[2])
            post([mid, end], r, 1, 2, -0.5 * ctx.mkt_month[r, m] * np.ones(2))
            post(pay, r, 2, 2, -0.03 * rm[r, m] * noise[3])
            post(end, r, 2, 2, -(ctx.ship_month[r, m] + 0.01 * rm[r, m]) * noise[4])
            post(pay, r, 4, 2, -0.035 * rm[r, m] * noise[5])
            post(d0, r, 4, 2, -0.012 * rm[r, m] * noise[6])  # rent
        post(pay, [0, 1], 3, 2, -0.075 * total[m] * np.array([0.7, 0.3]) * noise[7])
    # quarterly tax on profit and capital expenditure; financing at head office
    arrays = [np.concatenate(a) for a in (day_i, reg_i, cc_i, acc_i, amt)]
    month_of = cal.month[arrays[0]]
    for q0 in range(0, cal.n_months, 3):
        q1 = min(q0 + 3, cal.n_months)
        d_end = cal.bounds[q1] - 1
        for r in range(_NR):
            in_q = (month_of >= q0) & (month_of < q1) & (arrays[1] == r)
            profit = arrays[4][in_q].sum()
            if profit > 0:
                post(d_end, r, 4, 4, -0.24 * profit)
            capex = rm[r, q0:q1].sum() * rng.uniform(0.01, 0.04)
            post(rng.integers(cal.bounds[q0], cal.bounds[q1]), r, int(rng.integers(2, 4)), 3,
                 -capex)
    loan = 3 * total.mean()
    post(0, 0, 4, 5, loan)
    post(np.minimum(cal.bounds[1:-1] + 14, cal.n - 1), 0, 4, 5,
         -(loan / 48 + 0.006 * loan) * np.ones(cal.n_months - 1))
    for m in np.flatnonzero(cal.month_moy == 4):
        post(cal.bounds[m + 1] - 1, 0, 4, 5, -0.03 * total[max(0, m - 12) : m].sum())
    d, r, cc, acc, amount = (np.concatenate(a) for a in (day_i, reg_i, cc_i, acc_i, amt))
    order = np.lexsort((acc, cc, r, d))
    d, r, cc, acc, amount = d[order], r[order], cc[order], acc[order], amount[order]
    yield {
        "entry_id": _ids("JE-", np.arange(1, len(d) + 1), 6),
        "entry_date": cal.days[d],
        "region": _take(REGIONS, r),
        "cost_center": _take(_CC, cc),
        "account_type": _take(_ACCOUNTS, acc),
        "cash_flow_category": _take(("operating", "investing", "financing"), _CASH_FLOW[acc]),
        "amount": np.round(amount, 2),
    }
