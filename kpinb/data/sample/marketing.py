"""Sample data for marketing: web sessions, email campaigns, social accounts and posts, marketing spend."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kpinb.data.sample._common import (
    _DOW_WEB,
    _DOW_WORK,
    _HOURS_B2C,
    _HOURS_WORK,
    _NR,
    _REGION_W,
    _SEASON_WEB,
    REGIONS,
    Cols,
    Rng,
    _Calendar,
    _choice,
    _choice_rows,
    _Ctx,
    _events,
    _ids,
    _lognormal,
    _monthly,
    _spread,
    _take,
)


def _web_sessions(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    w = (_REGION_W[:, None] * np.array([1.15, 1.0, 1.3, 1.2])[:, None] ** cal.t
         * _SEASON_WEB[cal.moy - 1] * _DOW_WEB[cal.dow])
    counts = _spread(rng, max(1, round(ctx.rows * 1.5)), w)
    n_vis = np.zeros(_NR, dtype=np.int64)
    for m, (region, _, ts, seq) in enumerate(_monthly(rng, cal, counts, _HOURS_B2C)):
        n, t = len(ts), cal.month_t[m]
        known = n_vis[region]
        is_new = (rng.random(n) < 0.42 + 0.45 * np.exp(-m / 3)) | (known == 0)
        local = (known * rng.random(n) ** 1.5).astype(np.int64)
        for r in range(_NR):
            sel = np.flatnonzero(is_new & (region == r))
            local[sel] = n_vis[r] + np.arange(len(sel))
            n_vis[r] += len(sel)
        channel = _choice(rng, n, [0.35, 0.20 + 0.02 * t, 0.12, 0.08, 0.18, 0.07])
        device = _choice(rng, n, [0.50 - 0.04 * t, 0.42 + 0.04 * t, 0.08])
        p_bounce = (0.40 + 0.02 * t + np.array([0.0, 0.08, 0.12, -0.06, -0.04, -0.02])[channel]
                    + np.array([-0.04, 0.05, 0.0])[device])
        bounced = rng.random(n) < p_bounce
        p_conv = (0.045 * np.array([1.0, 1.2, 0.6, 1.8, 1.4, 1.1])[channel]
                  * np.array([1.2, 0.8, 0.9])[device])
        converted = ~bounced & (rng.random(n) < p_conv)
        pages = np.where(bounced, 1, 2 + rng.poisson(2.5 + 2 * converted))
        secs = np.where(bounced, rng.exponential(8.0, n),
                        _lognormal(rng, 60.0 * pages, 0.6, n) * (1 + converted))
        yield {
            "session_id": _ids("S-", seq, 9),
            "session_start": ts,
            "visitor_id": _ids("V", local * _NR + region + 1, 9),
            "region": _take(REGIONS, region),
            "channel": _take(("organic", "paid", "social", "email", "direct", "referral"),
                             channel),
            "device": _take(("desktop", "mobile", "tablet"), device),
            "is_new_visitor": is_new,
            "pageviews": pages,
            "duration_seconds": np.round(secs, 1),
            "bounced": bounced,
            "converted": converted,
        }


_PROMO_THEMES = ("New Year Sale", "Valentine's Picks", "Spring Sale", "Easter Deals",
                 "Mother's Day", "Summer Kickoff", "Midsummer Sale", "Back to School",
                 "Autumn Edit", "Halloween Deals", "Black Friday", "Holiday Gifts")
# type: (segments, base open rate, click-to-open rate); segments: (name, list size, open uplift)
_EMAIL_TYPES: dict[str, tuple[tuple[tuple[str, float, float], ...], float, float]] = {
    "newsletter": ((("prospects", 40_000, -0.03), ("active_customers", 25_000, 0.03)), 0.26, 0.10),
    "promotion": ((("active_customers", 25_000, 0.0), ("vip", 3_000, 0.08),
                   ("prospects", 40_000, -0.04)), 0.23, 0.15),
    "onboarding": ((("new_signups", 1_500, 0.0),), 0.38, 0.18),
    "winback": ((("lapsed_customers", 15_000, 0.0),), 0.15, 0.08),
}


def _email_campaigns(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    sends = [(i, f"Newsletter {cal.days[i]}", "newsletter") for i in np.flatnonzero(cal.dow == 1)]
    sends += [(i, "Onboarding Series", "onboarding") for i in np.flatnonzero(cal.dow == 0)]
    for m in range(cal.n_months):  # two promotions (Thursdays) and one winback (Wednesday)
        month = np.arange(cal.bounds[m], cal.bounds[m + 1])
        label, theme = str(cal.snapshots[m])[:7], _PROMO_THEMES[cal.month_moy[m] - 1]
        for k, d in enumerate(month[cal.dow[month] == 3][::2][:2]):
            sends.append((d, f"{theme} {label[:4]}" + (" #2" if k else ""), "promotion"))
        sends += [(d, f"Winback {label}", "winback") for d in month[cal.dow[month] == 2][:1]]
    rows = [(d, name, typ, seg, size * _REGION_W[r] * _NR, up, r)
            for d, name, typ in sends for seg, size, up in _EMAIL_TYPES[typ][0]
            for r in range(_NR)]
    day, camp, typ, seg, size, up, region = (np.array(c) for c in zip(*rows, strict=True))
    n, t = len(day), cal.t[day]
    base = np.array([_EMAIL_TYPES[k][1] for k in typ])
    ctor = np.array([_EMAIL_TYPES[k][2] for k in typ])
    sent = rng.poisson(size * 1.12**t * _lognormal(rng, 1.0, 0.05, n))
    bounces = rng.binomial(sent, np.where(seg == "lapsed_customers", 0.03, 0.009))
    delivered = sent - bounces
    p_open = np.clip((base + up) * (1 - 0.06 * t) * _lognormal(rng, 1.0, 0.1, n), 0.02, 0.9)
    opens = rng.binomial(delivered, p_open)
    clicks = rng.binomial(opens, np.clip(_lognormal(rng, ctor, 0.2, n), 0, 1))
    unsubs = rng.binomial(opens, np.where(typ == "promotion", 0.012, 0.007))
    minute = np.array([9 * 60, 10 * 60 + 30, 8 * 60, 10 * 60 + 15])[region]  # local send time
    ts = cal.days[day].astype("datetime64[us]") + (minute * 60_000_000).astype("m8[us]")
    o = np.lexsort((region, ts))
    yield {
        "send_id": _ids("SEND-", np.arange(1, n + 1), 6),
        "sent_at": ts[o],
        "campaign": camp[o],
        "campaign_type": typ[o],
        "segment": seg[o],
        "region": _take(REGIONS, region[o]),
        "sent": sent[o],
        "delivered": delivered[o],
        "unique_opens": opens[o],
        "unique_clicks": clicks[o],
        "unsubscribes": unsubs[o],
        "bounces": bounces[o],
    }


_PLATFORMS = ("linkedin", "instagram", "x", "facebook", "tiktok")
_FOLLOWERS0 = np.array([12_000.0, 28_000.0, 21_000.0, 35_000.0, 4_000.0])
_NEW_PER_DAY = np.array([30.0, 45.0, 14.0, 26.0, 22.0])
_NEW_GROWTH = np.array([1.25, 1.08, 0.80, 0.92, 1.9])
_LOST_RATE = np.array([0.0006, 0.0010, 0.0012, 0.0008, 0.0014])  # of followers per day


def _social_followers(cal: _Calendar, rng: Rng) -> tuple[np.ndarray, ...]:
    """Followers (start of day), new and lost per platform x day."""
    lam_new = (_NEW_PER_DAY[:, None] * _NEW_GROWTH[:, None] ** cal.t
               * np.array([1.05, 1.05, 1.0, 1.0, 1.0, 0.9, 0.9])[cal.dow])
    approx = _FOLLOWERS0[:, None] + np.cumsum(lam_new, axis=1)
    approx -= np.cumsum(_LOST_RATE[:, None] * approx, axis=1)
    new = rng.poisson(lam_new)
    lost = rng.poisson(_LOST_RATE[:, None] * np.maximum(approx, 0))
    followers = _FOLLOWERS0[:, None].astype(np.int64) + np.cumsum(new - lost, axis=1) - (new - lost)
    return followers, new, lost


def _social_accounts(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    followers, new, lost = ctx.social
    day, plat = np.divmod(np.arange(cal.n * len(_PLATFORMS)), len(_PLATFORMS))
    yield {
        "snapshot_date": cal.days[day],
        "platform": _take(_PLATFORMS, plat),
        "followers": followers[plat, day],
        "new_followers": new[plat, day],
        "lost_followers": lost[plat, day],
    }


def _social_posts(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    followers = ctx.social[0]
    per_week = np.array([4.0, 5.0, 9.0, 3.0, 4.0])
    counts = rng.poisson(per_week[:, None] / 7 * 1.15 * _DOW_WORK[cal.dow])
    plat, day, ts = _events(rng, cal, counts, _HOURS_WORK)
    n, t = len(ts), cal.t[day]
    p_type = np.array([[0.30, 0.15, 0.30, 0.25], [0.60, 0.40, 0.0, 0.0], [0.25, 0.10, 0.45, 0.20],
                       [0.45, 0.25, 0.10, 0.20], [0.0, 1.0, 0.0, 0.0]])
    kind = _choice_rows(rng, p_type[plat])
    reach_f = np.array([0.25, 0.30, 0.15, 0.10, 0.9])[plat] * np.array([1.0, 1.6, 0.7, 0.8])[kind]
    impressions = np.round(followers[plat, day] * reach_f * np.exp(0.7 * rng.standard_normal(n)))
    reach = np.round(impressions * rng.uniform(0.55, 0.9, n)).astype(np.int64)
    like = (np.array([0.018, 0.028, 0.006, 0.008, 0.035])[plat]
            * np.array([1.0, 0.94, 1.0, 0.93, 1.06])[plat] ** t)
    link = np.where(kind == 3, 2.5, 1.0)
    yield {
        "post_id": _ids("POST-", np.arange(1, n + 1), 5),
        "posted_at": ts,
        "platform": _take(_PLATFORMS, plat),
        "post_type": _take(("image", "video", "text", "link"), kind),
        "impressions": impressions.astype(np.int64),
        "reach": reach,
        "likes": rng.binomial(reach, like),
        "shares": rng.binomial(reach, like * 0.12),
        "comments": rng.binomial(reach, like * 0.06),
        "clicks": rng.binomial(impressions.astype(np.int64),
                               np.array([0.010, 0.003, 0.007, 0.008, 0.002])[plat] * link),
    }


# channel, campaign, budget share, CPM, CTR, ROAS, yearly ROAS trend
_CAMPAIGNS = (
    ("paid_search", "Search - Brand", 0.12, 45.0, 0.060, 4.6, 1.0),
    ("paid_search", "Search - Generic", 0.22, 40.0, 0.032, 3.0, 0.97),
    ("paid_social", "Social - Prospecting", 0.15, 9.0, 0.011, 2.4, 0.88),
    ("paid_social", "Social - Retargeting", 0.10, 12.0, 0.016, 3.6, 0.95),
    ("display", "Display - Awareness", 0.12, 3.5, 0.006, 1.7, 1.0),
    ("email", "Email - Lifecycle", 0.03, 1.5, 0.025, 4.5, 1.0),
    ("events", "Trade Shows", 0.16, 250.0, 0.040, 2.0, 1.05),
    ("affiliates", "Affiliate Partners", 0.10, 7.0, 0.015, 3.0, 1.0),
)


def _marketing_spend(ctx: _Ctx, rng: Rng) -> Iterator[Cols]:
    cal = ctx.cal
    nc = len(_CAMPAIGNS)
    share, cpm, ctr, roas, trend = (np.array([c[i] for c in _CAMPAIGNS]) for i in range(2, 7))
    day, region, camp = (a.ravel() for a in np.indices((cal.n, _NR, nc)))
    n = len(day)
    w = _lognormal(rng, 1.0, 0.3, n) * np.where(cal.dow[day] >= 5, 0.75, 1.0)
    events = camp == 6
    w[events] *= (rng.random(events.sum()) < 0.08) & (cal.dow[day[events]] < 5)
    month = cal.month[day]
    key = (camp * _NR + region) * cal.n_months + month
    budget = 0.07 * ctx.rev_month()
    spend = np.round(budget[region, month] * share[camp] * w
                     / np.bincount(key, w, nc * _NR * cal.n_months)[key].clip(1e-9), 2)
    keep = spend > 0
    day, region, camp, month, spend = day[keep], region[keep], camp[keep], month[keep], spend[keep]
    n, t = len(day), cal.t[day]
    ctx.mkt_month = np.bincount(region * cal.n_months + month, spend,
                                _NR * cal.n_months).reshape(_NR, -1)
    impressions = rng.poisson(spend / cpm[camp] * 1000 * _lognormal(rng, 1.0, 0.1, n))
    ctr_t = ctr[camp] * np.where(camp == 2, 0.92**t, 1.0) * _lognormal(rng, 1.0, 0.1, n)
    yield {
        "spend_date": cal.days[day],
        "region": _take(REGIONS, region),
        "channel": _take([c[0] for c in _CAMPAIGNS], camp),
        "campaign": _take([c[1] for c in _CAMPAIGNS], camp),
        "spend": spend,
        "impressions": impressions,
        "clicks": rng.binomial(impressions, np.minimum(ctr_t, 1.0)),
        "attributed_revenue": np.round(
            spend * roas[camp] * trend[camp] ** t * _lognormal(rng, 1.0, 0.35, n), 2),
    }
