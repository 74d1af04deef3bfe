"""Every catalog metric, computed by the engine on the sample data, equals an independent pandas
computation written here from the metric's YAML formula (not through kpinb's parser or engine).

Each reference takes the sample tables of one grain (``Data``: every table has a ``period``
column, the source's time column truncated to the grain) and the grouping columns
``["period", *by]``, and returns one value per group. Aggregate semantics follow the formula
language: ``count``/``count_if``/``count_distinct``/``sum`` over groups that have rows but no
matching row are 0, ``avg`` of nothing is missing, ``a / 0`` is missing; ``prev(x)`` is x of the
previous period of the same dimension combination.

Each case compares one metric at one grain and breakdown (``by``): engine and reference are
aligned on period and dimension values and must agree wherever either side has a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpinb.data.sample import generate
from kpinb.definitions import catalog
from kpinb.engine.query import compute

ROWS, SEED = 20_000, 7
GRAINS = ("month", "quarter")
FREQ = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
RTOL = ATOL = 1e-9


@dataclass(frozen=True)
class Data:
    """The sample tables of one grain, each with a ``period`` column."""

    grain: str
    tables: dict[str, pd.DataFrame]

    def __getitem__(self, source: str) -> pd.DataFrame:
        return self.tables[source]


Key = list[str]
Reference = Callable[[Data, Key], pd.Series]


# --- pandas building blocks (one value per group of `key`) -------------------------------------


def _by(frame: pd.DataFrame, key: Key) -> list[pd.Series]:
    """Group on the key columns themselves, so every group with rows in ``frame`` is kept."""
    return [frame[c] for c in key]


def _count(frame: pd.DataFrame, key: Key, mask: pd.Series | None = None) -> pd.Series:
    """count(*), or count_if(mask): 0 for a group where no row matches."""
    hits = pd.Series(True, index=frame.index) if mask is None else mask
    return hits.astype("int64").groupby(_by(frame, key)).sum().astype("float64")


def _sum(frame: pd.DataFrame, key: Key, col: str, mask: pd.Series | None = None) -> pd.Series:
    """sum(col) over matching rows: 0 for a group where no row matches."""
    values = frame[col] if mask is None else frame[col].where(mask)
    return values.groupby(_by(frame, key)).sum().astype("float64")


def _avg(frame: pd.DataFrame, key: Key, col: str, mask: pd.Series | None = None) -> pd.Series:
    """avg(col) over matching non-null values: missing for a group without any."""
    values = frame[col] if mask is None else frame[col].where(mask)
    return values.groupby(_by(frame, key)).mean().astype("float64")


def _nunique(frame: pd.DataFrame, key: Key, col: str, mask: pd.Series | None = None) -> pd.Series:
    """count_distinct(col) over matching non-null values: 0 for a group without any."""
    values = frame[col] if mask is None else frame[col].where(mask)
    return values.groupby(_by(frame, key)).nunique().astype("float64")


def _div(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, missing where den is 0."""
    return num / den.where(den != 0)


def _prev(values: pd.Series, grain: str) -> pd.Series:
    """prev(): each value moved to the next period of the same dimension combination, so a
    period whose previous period has no value (first period, gap) gets nothing."""
    idx = values.index.to_frame(index=False)
    nxt = idx["period"].dt.to_period(FREQ[grain]) + 1
    idx["period"] = nxt.dt.start_time.astype("datetime64[ns]")
    index = pd.MultiIndex.from_frame(idx) if idx.shape[1] > 1 else pd.Index(idx["period"])
    return pd.Series(values.to_numpy(), index=index)


def ref(metric_id: str, d: Data, key: Key) -> pd.Series:
    """Another metric's reference value (for derived metrics)."""
    return REFERENCE[metric_id](d, key)


# --- one reference per catalog metric ----------------------------------------------------------


def _ledger_margin(d: Data, key: Key, accounts: list[str]) -> pd.Series:
    lg = d["ledger"]
    kept = lg["account_type"].isin(accounts)
    revenue = kept & (lg["account_type"] == "revenue")
    return _div(_sum(lg, key, "amount", kept), _sum(lg, key, "amount", revenue))


def _sales_growth_rate(d: Data, key: Key) -> pd.Series:
    rev = ref("monthly_sales_revenue", d, key)
    before = _prev(rev, d.grain)
    return _div(rev - before, before)


def _net_revenue_retention(d: Data, key: Key) -> pd.Series:
    return _div(ref("existing_subscription_mrr", d, key), _prev(ref("monthly_recurring_revenue", d, key), d.grain))


def _customer_lifetime_value(d: Data, key: Key) -> pd.Series:
    arpa = ref("average_revenue_per_account", d, key)
    margin = ref("gross_profit_margin", d, key)
    return _div(arpa * margin, ref("customer_churn_rate", d, key))


def _customer_acquisition_rate(d: Data, key: Key) -> pd.Series:
    o = d["orders"]
    done = o["status"] == "completed"
    new = _nunique(o, key, "customer_id", done & o["is_new_customer"])
    return _div(new, _nunique(o, key, "customer_id", done))


def _net_promoter_score(d: Data, key: Key) -> pd.Series:
    n = d["nps_responses"]
    promoters, detractors = _count(n, key, n["score"] >= 9), _count(n, key, n["score"] <= 6)
    return _div(100.0 * (promoters - detractors), _count(n, key, n["score"].notna()))


def _follower_growth_rate(d: Data, key: Key) -> pd.Series:
    sa = d["social_accounts"]
    net = _sum(sa, key, "new_followers") - _sum(sa, key, "lost_followers")
    return _div(net, _div(_sum(sa, key, "followers"), _nunique(sa, key, "snapshot_date")))


def _inventory_turnover(d: Data, key: Key) -> pd.Series:
    inv = d["inventory"]
    avg_value = _div(_sum(inv, key, "on_hand_value"), _nunique(inv, key, "snapshot_date"))
    return _div(_sum(inv, key, "cogs"), avg_value)


def _on_time_delivery_rate(d: Data, key: Key) -> pd.Series:
    sh = d["shipments"]
    delivered = sh["delivery_days"].notna()
    return _div(_count(sh, key, delivered & sh["delivered_on_time"]), _count(sh, key, delivered))


def _social_engagement_rate(d: Data, key: Key) -> pd.Series:
    sp = d["social_posts"]
    actions = _sum(sp, key, "likes") + _sum(sp, key, "shares") + _sum(sp, key, "comments")
    return _div(actions, _sum(sp, key, "impressions"))


def _share(source: str, flag: Callable[[pd.DataFrame], pd.Series]) -> Reference:
    """count_if(flag) / count(*)."""
    return lambda d, k: _div(_count(d[source], k, flag(d[source])), _count(d[source], k))


def _sum_ratio(source: str, num: str, den: str) -> Reference:
    """sum(num) / sum(den)."""
    return lambda d, k: _div(_sum(d[source], k, num), _sum(d[source], k, den))


def _per_snapshot(source: str, col: str | None) -> Reference:
    """sum(col) / count_distinct(snapshot_date), or count(*) / ... when col is None."""

    def f(d: Data, k: Key) -> pd.Series:
        t = d[source]
        total = _count(t, k) if col is None else _sum(t, k, col)
        return _div(total, _nunique(t, k, "snapshot_date"))

    return f


REFERENCE: dict[str, Reference] = {
    # sales
    "monthly_sales_revenue": lambda d, k: _sum(d["orders"], k, "revenue", d["orders"]["status"] == "completed"),
    "sales_growth_rate": _sales_growth_rate,
    "revenue_by_product_category": lambda d, k: _sum(d["orders"], k, "revenue", d["orders"]["status"] == "completed"),
    "average_order_value": lambda d, k: _div(
        _sum(d["orders"], k, "revenue", d["orders"]["status"] == "completed"),
        _nunique(d["orders"], k, "order_id", d["orders"]["status"] == "completed"),
    ),
    "orders_count": lambda d, k: _nunique(d["orders"], k, "order_id", d["orders"]["status"] == "completed"),
    "new_customers": lambda d, k: _nunique(
        d["orders"], k, "customer_id", d["orders"]["is_new_customer"] & (d["orders"]["status"] == "completed")
    ),
    "customer_acquisition_rate": _customer_acquisition_rate,
    "monthly_recurring_revenue": _per_snapshot("subscriptions", "mrr"),
    "average_revenue_per_account": lambda d, k: _avg(d["subscriptions"], k, "mrr"),
    "existing_subscription_mrr": lambda d, k: _div(
        _sum(d["subscriptions"], k, "mrr", ~d["subscriptions"]["is_new"]),
        _nunique(d["subscriptions"], k, "snapshot_date", ~d["subscriptions"]["is_new"]),
    ),
    "net_revenue_retention": _net_revenue_retention,
    "customer_lifetime_value": _customer_lifetime_value,
    "average_deal_size": lambda d, k: _avg(d["opportunities"], k, "deal_value", d["opportunities"]["is_won"]),
    "sales_conversion_rate": _share("opportunities", lambda t: t["is_won"]),
    "demos_scheduled": lambda d, k: _count(d["opportunities"], k, d["opportunities"]["demo_scheduled"]),
    "calls_made_per_day": lambda d, k: _div(
        _count(d["sales_activities"], k, d["sales_activities"]["activity_type"] == "call"),
        _nunique(d["sales_activities"], k, "activity_date"),
    ),
    # marketing
    "marketing_spend": lambda d, k: _sum(d["marketing_spend"], k, "spend"),
    "customer_acquisition_cost": lambda d, k: _div(ref("marketing_spend", d, k), ref("new_customers", d, k)),
    "marketing_roi": lambda d, k: _div(
        _sum(d["marketing_spend"], k, "attributed_revenue") - _sum(d["marketing_spend"], k, "spend"),
        _sum(d["marketing_spend"], k, "spend"),
    ),
    "return_on_ad_spend": _sum_ratio("marketing_spend", "attributed_revenue", "spend"),
    "leads_generated": lambda d, k: _count(d["opportunities"], k),
    "qualified_leads": lambda d, k: _count(d["opportunities"], k, d["opportunities"]["is_qualified"]),
    # customer service
    "tickets_received": lambda d, k: _count(d["support_tickets"], k),
    "tickets_opened": lambda d, k: _count(
        d["support_tickets"], k, d["support_tickets"]["status"].isin(["open", "pending"])
    ),
    "tickets_closed": lambda d, k: _count(
        d["support_tickets"], k, d["support_tickets"]["status"].isin(["resolved", "closed"])
    ),
    "ticket_resolution_rate": _share("support_tickets", lambda t: t["resolved"]),
    "first_response_time": lambda d, k: _avg(d["support_tickets"], k, "first_response_minutes"),
    "average_response_time": lambda d, k: _avg(d["support_tickets"], k, "avg_response_minutes"),
    "chat_session_duration": lambda d, k: _avg(
        d["support_tickets"], k, "handle_minutes", d["support_tickets"]["channel"] == "chat"
    ),
    "customer_satisfaction_score": lambda d, k: _div(
        _count(d["support_tickets"], k, d["support_tickets"]["csat"] >= 4),
        _count(d["support_tickets"], k, d["support_tickets"]["csat"].notna()),
    ),
    "net_promoter_score": _net_promoter_score,
    "customer_churn_rate": _share("subscriptions", lambda t: t["churned"]),
    "customer_retention_rate": lambda d, k: 1 - ref("customer_churn_rate", d, k),
    # finance
    "gross_profit_margin": lambda d, k: _ledger_margin(d, k, ["revenue", "cogs"]),
    "operating_margin": lambda d, k: _ledger_margin(d, k, ["revenue", "cogs", "opex"]),
    "operating_cash_flow": lambda d, k: _sum(
        d["ledger"], k, "amount", d["ledger"]["cash_flow_category"] == "operating"
    ),
    # hr
    "headcount": _per_snapshot("employees", None),
    "employee_turnover_rate": _share("employees", lambda t: t["left"]),
    "voluntary_turnover_rate": _share("employees", lambda t: t["voluntary_exit"]),
    "employee_engagement_score": lambda d, k: _avg(d["employees"], k, "engagement_score"),
    "time_to_hire": lambda d, k: _avg(d["requisitions"], k, "days_to_fill", d["requisitions"]["status"] == "filled"),
    "offer_acceptance_rate": _sum_ratio("requisitions", "offers_accepted", "offers_made"),
    # web
    "website_traffic": lambda d, k: _count(d["web_sessions"], k),
    "unique_visitors": lambda d, k: _nunique(d["web_sessions"], k, "visitor_id"),
    "page_views": lambda d, k: _sum(d["web_sessions"], k, "pageviews"),
    "bounce_rate": _share("web_sessions", lambda t: t["bounced"]),
    "average_time_on_site": lambda d, k: _div(
        _sum(d["web_sessions"], k, "duration_seconds"), _nunique(d["web_sessions"], k, "visitor_id")
    ),
    "average_session_duration": lambda d, k: _avg(d["web_sessions"], k, "duration_seconds"),
    "new_visitors": lambda d, k: _nunique(d["web_sessions"], k, "visitor_id", d["web_sessions"]["is_new_visitor"]),
    "returning_visitors": lambda d, k: _nunique(
        d["web_sessions"], k, "visitor_id", ~d["web_sessions"]["is_new_visitor"]
    ),
    "new_visitor_share": _share("web_sessions", lambda t: t["is_new_visitor"]),
    "conversion_rate": _share("web_sessions", lambda t: t["converted"]),
    # email
    "email_open_rate": _sum_ratio("email_campaigns", "unique_opens", "delivered"),
    "email_click_through_rate": _sum_ratio("email_campaigns", "unique_clicks", "delivered"),
    "click_to_open_rate": _sum_ratio("email_campaigns", "unique_clicks", "unique_opens"),
    "unsubscribe_rate": _sum_ratio("email_campaigns", "unsubscribes", "delivered"),
    "email_bounce_rate": _sum_ratio("email_campaigns", "bounces", "sent"),
    # social
    "social_likes": lambda d, k: _sum(d["social_posts"], k, "likes"),
    "social_shares": lambda d, k: _sum(d["social_posts"], k, "shares"),
    "social_comments": lambda d, k: _sum(d["social_posts"], k, "comments"),
    "social_impressions": lambda d, k: _sum(d["social_posts"], k, "impressions"),
    "social_reach": lambda d, k: _sum(d["social_posts"], k, "reach"),
    "social_engagement_rate": _social_engagement_rate,
    "social_followers": _per_snapshot("social_accounts", "followers"),
    "follower_growth_rate": _follower_growth_rate,
    # operations
    "on_time_delivery_rate": _on_time_delivery_rate,
    "average_delivery_time": lambda d, k: _avg(d["shipments"], k, "delivery_days"),
    "shipping_cost_per_shipment": lambda d, k: _avg(d["shipments"], k, "shipping_cost"),
    "inventory_turnover": _inventory_turnover,
    "stockout_rate": _share("inventory", lambda t: t["stockout_days"] > 0),
}


# --- which breakdowns each metric is checked with ----------------------------------------------

METRICS = catalog.metrics()
SOURCES = catalog.sources()


def base_sources(metric_id: str) -> list[str]:
    """The canonical sources a metric reads, following ``{ref}``s of derived metrics."""
    m = METRICS[metric_id]
    if m.source:
        return [m.source]
    out: list[str] = []
    for r in re.findall(r"\{(\w+)\}", m.expr):
        out += [s for s in base_sources(r) if s not in out]
    return out


def breakdowns(metric_id: str, grain: str) -> list[tuple[str, ...]]:
    """No breakdown; region (or another dimension every source of the metric has); and at month
    grain, for a single-source metric with several dimensions, all of them at once (groups where
    a metric's filter matches nothing, gaps in the periods of a combination)."""
    srcs = base_sources(metric_id)
    shared = [c for c in SOURCES[srcs[0]].dimensions if all(c in SOURCES[s].dimensions for s in srcs)]
    out: list[tuple[str, ...]] = [()]
    if shared:
        out.append(("region",) if "region" in shared else (shared[0],))
    if grain == "month" and len(srcs) == 1 and len(shared) > 1:
        out.append(tuple(shared))
    return out


CASES = [(mid, grain, by) for mid in METRICS for grain in GRAINS for by in breakdowns(mid, grain)]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("catalog_values"), rows=ROWS, seed=SEED)


@pytest.fixture(scope="session")
def data(sample_files: dict[str, Path]) -> Callable[[str], Data]:
    """grain -> the sample tables with a ``period`` column (cached)."""
    raw = {}
    for name, path in sample_files.items():
        frame = pd.read_parquet(path)
        for col, typ in SOURCES[name].columns.items():
            if typ in ("date", "timestamp"):
                frame[col] = pd.to_datetime(frame[col])
        raw[name] = frame

    @cache
    def at(grain: str) -> Data:
        tables = {}
        for name, frame in raw.items():
            period = frame[SOURCES[name].time].dt.to_period(FREQ[grain]).dt.start_time
            tables[name] = frame.assign(period=period.astype("datetime64[ns]"))
        return Data(grain, tables)

    return at


@pytest.fixture(scope="session")
def engine(sample_files: dict[str, Path]) -> Callable[[str, tuple[str, ...]], dict[str, pd.Series]]:
    """(grain, by) -> {metric id: engine value by ``[period, *by]``}, from ONE engine call
    computing every metric checked with that grain and breakdown (cached)."""
    paths = {name: str(p) for name, p in sample_files.items()}

    @cache
    def run(grain: str, by: tuple[str, ...]) -> dict[str, pd.Series]:
        ids = sorted({mid for mid, g, b in CASES if g == grain and b == by})
        result = compute(ids, sources=paths, grain=grain, by=list(by))
        result = result.rename(columns={"period_start": "period"})
        return {
            str(mid): frame.set_index(["period", *by])["value"].astype("float64")
            for mid, frame in result.groupby("metric", sort=False)
        }

    return run


# --- tests -------------------------------------------------------------------------------------


def test_every_catalog_metric_has_a_reference() -> None:
    assert set(REFERENCE) == set(catalog.metrics())


def test_every_metric_is_checked_with_a_dimension_where_its_sources_have_one() -> None:
    for mid in METRICS:
        srcs = base_sources(mid)
        if any(SOURCES[s].dimensions for s in srcs):
            for grain in GRAINS:
                assert any(by for by in breakdowns(mid, grain)), (mid, grain)


@pytest.mark.parametrize(
    ("metric_id", "grain", "by"), CASES, ids=[f"{m}-{g}-{'+'.join(b) or 'total'}" for m, g, b in CASES]
)
def test_engine_matches_pandas_reference(
    metric_id: str,
    grain: str,
    by: tuple[str, ...],
    data: Callable[[str], Data],
    engine: Callable[[str, tuple[str, ...]], dict[str, pd.Series]],
) -> None:
    if metric_id not in REFERENCE:
        pytest.fail(f"no pandas reference for catalog metric {metric_id!r}: add one to REFERENCE")
    key = ["period", *by]
    got = engine(grain, by).get(metric_id)
    assert got is not None, "the engine returned no rows for the metric"
    assert not got.index.duplicated().any(), "engine returned duplicate period/dimension rows"

    want = REFERENCE[metric_id](data(grain), key).astype("float64")
    want.index = want.index.set_names(key)
    assert want.notna().any(), "reference has no value at all: the case checks nothing"

    # Compare wherever either side has a value (the engine also lists empty periods as NaN).
    both = pd.concat({"engine": got.dropna(), "reference": want.dropna()}, axis=1, join="outer")
    e, r = both["engine"], both["reference"]
    close = np.isclose(e, r, rtol=RTOL, atol=ATOL) & e.notna() & r.notna()
    bad = both[~close]
    assert bad.empty, (
        f"{metric_id} at {grain} grain by {list(by)}: {len(bad)} of {len(both)} values differ "
        f"(NaN = no value on that side):\n{bad.head(12).to_string()}"
    )
