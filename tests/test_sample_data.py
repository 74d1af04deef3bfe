"""The synthetic sample data: catalog schema, determinism, time span and consistency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from kpinb.data.sample import ensure, generate

SOURCES = yaml.safe_load(
    (Path(__file__).parents[1] / "kpinb" / "definitions" / "catalog" / "sources.yaml").read_text(encoding="utf-8")
)
TYPES = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
ROWS, ROW_GROUP = 5000, 1000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("a"), rows=ROWS, _row_group_size=ROW_GROUP)


@pytest.fixture(scope="module")
def df(files: dict[str, Path]) -> dict[str, pd.DataFrame]:
    out = {}
    for name, path in files.items():
        frame = pq.read_table(path).to_pandas()
        for col, typ in SOURCES[name]["columns"].items():
            if typ == "date":
                frame[col] = pd.to_datetime(frame[col])
        out[name] = frame
    return out


def test_every_source_written_with_catalog_columns_and_types(files: dict[str, Path]) -> None:
    assert list(files) == list(SOURCES)
    for name, path in files.items():
        assert path == path.parent / f"{name}.parquet" and path.exists()
        expected = pa.schema([(c, TYPES[t]) for c, t in SOURCES[name]["columns"].items()])
        assert pq.read_schema(path).remove_metadata() == expected, name
        assert pq.ParquetFile(path).metadata.num_rows > 0, name


def test_deterministic(files: dict[str, Path], tmp_path: Path) -> None:
    again = generate(tmp_path, rows=ROWS, _row_group_size=ROW_GROUP)
    for name, path in files.items():
        assert pq.read_table(again[name]).equals(pq.read_table(path)), name
        assert again[name].read_bytes() == path.read_bytes(), name
    other = generate(tmp_path / "seed8", rows=ROWS, seed=8, _row_group_size=ROW_GROUP)
    assert not pq.read_table(other["orders"]).equals(pq.read_table(files["orders"]))


def test_row_groups(files: dict[str, Path]) -> None:
    meta = pq.ParquetFile(files["orders"]).metadata
    assert meta.num_row_groups > 1
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert all(s == ROW_GROUP for s in sizes[:-1]) and 0 < sizes[-1] <= ROW_GROUP


def test_sizes_scale_with_rows(df: dict[str, pd.DataFrame]) -> None:
    assert 0.9 * ROWS < len(df["orders"]) < 1.1 * ROWS
    assert ROWS < len(df["web_sessions"]) < 3 * ROWS
    for name in ("opportunities", "support_tickets", "nps_responses", "shipments"):
        assert len(df[name]) < len(df["orders"]), name


def test_time_columns_span_the_years(df: dict[str, pd.DataFrame]) -> None:
    for name, spec in SOURCES.items():
        t = df[name][spec["time"]]
        assert t.min() >= pd.Timestamp("2023-01-01") and t.max() < pd.Timestamp("2026-01-01"), name
        assert set(t.dt.year) == {2023, 2024, 2025}, name
    for name in ("subscriptions", "employees", "inventory"):
        snaps = df[name]["snapshot_date"]
        assert snaps.min() == pd.Timestamp("2023-01-01") and snaps.nunique() == 36, name
        assert snaps.max() == pd.Timestamp("2025-12-01"), name
    assert df["social_accounts"]["snapshot_date"].nunique() == 1096


def test_other_period(tmp_path: Path) -> None:
    got = generate(tmp_path, rows=400, start="2024-03-01", years=1)
    orders = pq.read_table(got["orders"]).to_pandas()
    assert orders["order_date"].min() >= pd.Timestamp("2024-03-01")
    assert orders["order_date"].max() < pd.Timestamp("2025-03-01")
    snaps = pq.read_table(got["employees"]).to_pandas()["snapshot_date"]
    assert snaps.nunique() == 12


def test_dimensions(df: dict[str, pd.DataFrame]) -> None:
    regions = {"North America", "Europe", "Asia Pacific", "Latin America"}
    for name, spec in SOURCES.items():
        if "region" in spec["columns"]:
            assert set(df[name]["region"]) == regions, name
    o = df["orders"]
    share = o["region"].value_counts(normalize=True)
    assert share["North America"] > share["Europe"] > share["Latin America"]
    assert o["product_category"].nunique() == 5 and o["product"].nunique() >= 20
    assert set(o["channel"]) == {"online", "retail", "partner", "direct sales"}
    assert set(o["status"]) == {"completed", "returned", "cancelled"}
    assert (o["status"] == "completed").mean() > 0.9
    assert set(df["social_accounts"]["platform"]) == {"linkedin", "instagram", "x", "facebook",
                                                     "tiktok"}


def test_orders(df: dict[str, pd.DataFrame]) -> None:
    o = df["orders"]
    assert (o["quantity"] >= 1).all() and (o["revenue"] > 0).all() and (o["cost"] > 0).all()
    # lines of one order share date, customer, region and channel
    assert (o.groupby("order_id")[["order_date", "customer_id", "region", "channel"]].nunique()
            == 1).all().all()
    # is_new_customer marks exactly the lines of each customer's first order
    first = o.sort_values(["order_date", "order_id"]).groupby("customer_id")["order_id"].first()
    assert o["is_new_customer"].equals(o["order_id"].isin(set(first)))
    assert o["customer_id"].nunique() < o["order_id"].nunique()  # customers come back
    done = o[o["status"] == "completed"]
    margin = 1 - done["cost"].sum() / done["revenue"].sum()
    assert 0.35 < margin < 0.60


def test_subscriptions(df: dict[str, pd.DataFrame]) -> None:
    s = df["subscriptions"].sort_values(["subscription_id", "snapshot_date"])
    g = s.groupby("subscription_id")
    months = s["snapshot_date"].dt.year * 12 + s["snapshot_date"].dt.month
    assert (months.groupby(s["subscription_id"]).diff().dropna() == 1).all()  # no gaps
    first, last = g.cumcount() == 0, g.cumcount(ascending=False) == 0
    assert not s.loc[~first, "is_new"].any() and not s.loc[~last, "churned"].any()
    start, end = s["snapshot_date"].min(), s["snapshot_date"].max()
    assert s.loc[first & (s["snapshot_date"] > start), "is_new"].all()
    assert s.loc[last & (s["snapshot_date"] < end), "churned"].all()
    assert (s["mrr"] > 0).all() and (g["mrr"].diff().dropna() >= 0).all()
    assert s.groupby("subscription_id")["plan"].nunique().eq(1).all()
    churn = s.groupby("snapshot_date")["churned"].mean()
    assert 0.01 < churn.mean() < 0.04


def test_employees(df: dict[str, pd.DataFrame]) -> None:
    e = df["employees"].sort_values(["employee_id", "snapshot_date"])
    assert (e["hire_date"] <= e["snapshot_date"]).all()
    g = e.groupby("employee_id")
    last = g.cumcount(ascending=False) == 0
    assert not e.loc[~last, "left"].any()
    assert not (e["voluntary_exit"] & ~e["left"]).any()
    assert e.loc[last & (e["snapshot_date"] < e["snapshot_date"].max()), "left"].all()
    survey = e["snapshot_date"].dt.month.isin([3, 6, 9, 12])
    assert e.loc[~survey, "engagement_score"].isna().all()
    assert 0.6 < e.loc[survey, "engagement_score"].notna().mean() < 0.8
    assert e["engagement_score"].between(0, 100).sum() == e["engagement_score"].notna().sum()


def test_opportunities(df: dict[str, pd.DataFrame]) -> None:
    op = df["opportunities"]
    assert not (op["is_won"] & ~op["is_qualified"]).any()
    assert op.loc[op["demo_scheduled"], "is_qualified"].mean() > 0.8
    closed = op["closed_date"].notna()
    assert (op.loc[closed, "closed_date"] >= op.loc[closed, "created_date"].dt.normalize()).all()
    assert op["deal_value"].notna().equals(op["is_won"])
    assert op.loc[op["is_won"], "closed_date"].notna().all()
    assert (op.loc[op["is_won"], "deal_value"] > 0).all()


def test_email_and_marketing(df: dict[str, pd.DataFrame]) -> None:
    e = df["email_campaigns"]
    assert (e["delivered"] + e["bounces"] == e["sent"]).all()
    assert (e["unique_opens"] <= e["delivered"]).all()
    assert (e["unique_clicks"] <= e["unique_opens"]).all()
    assert (e["unsubscribes"] <= e["unique_opens"]).all()
    assert 0.15 < e["unique_opens"].sum() / e["delivered"].sum() < 0.35
    m = df["marketing_spend"]
    assert (m["clicks"] <= m["impressions"]).all() and (m["spend"] > 0).all()
    assert 1.5 < m["attributed_revenue"].sum() / m["spend"].sum() < 5
    assert 0.01 < m["clicks"].sum() / m["impressions"].sum() < 0.05


def test_social(df: dict[str, pd.DataFrame]) -> None:
    a = df["social_accounts"].sort_values(["platform", "snapshot_date"])
    assert not a.duplicated(["platform", "snapshot_date"]).any()
    nxt = a.groupby("platform")["followers"].shift(-1)
    calc = a["followers"] + a["new_followers"] - a["lost_followers"]
    assert (nxt.dropna() == calc[nxt.notna()]).all()
    assert (a[["followers", "new_followers", "lost_followers"]] >= 0).all().all()
    p = df["social_posts"]
    assert (p["reach"] <= p["impressions"]).all() and (p["likes"] <= p["reach"]).all()


def test_support_and_nps(df: dict[str, pd.DataFrame]) -> None:
    t = df["support_tickets"]
    assert t["resolution_hours"].notna().equals(t["resolved"])
    assert t["status"].isin(["resolved", "closed"]).equals(t["resolved"])
    assert t["csat"].dropna().between(1, 5).all() and t.loc[~t["resolved"], "csat"].isna().all()
    frt = t.groupby(t["created_at"].dt.year)["first_response_minutes"].median()
    assert frt[2025] < frt[2023]  # support gets faster
    n = df["nps_responses"]
    assert n["score"].between(0, 10).all()
    nps = 100 * ((n["score"] >= 9).mean() - (n["score"] <= 6).mean())
    assert -10 < nps < 60


def test_ledger(df: dict[str, pd.DataFrame]) -> None:
    led = df["ledger"]
    sign = led.groupby("account_type")["amount"].agg(["min", "max"])
    assert sign.loc["revenue", "min"] > 0
    assert (sign.loc[["cogs", "opex", "capex", "tax"], "max"] < 0).all()
    flow = led.groupby("account_type")["cash_flow_category"].unique().map(list).to_dict()
    assert flow == {"revenue": ["operating"], "cogs": ["operating"], "opex": ["operating"],
                    "tax": ["operating"], "capex": ["investing"], "financing": ["financing"]}
    o = df["orders"]
    done = o[o["status"] == "completed"]
    rev_orders = done.groupby(done["order_date"].dt.to_period("M"))["revenue"].sum()
    rev = led[led["account_type"] == "revenue"]
    rev_ledger = rev.groupby(rev["entry_date"].dt.to_period("M"))["amount"].sum()
    ratio = (rev_ledger / rev_orders).dropna()
    assert len(ratio) == 36 and ratio.between(0.98, 1.02).all()


def test_shipments_and_inventory(df: dict[str, pd.DataFrame]) -> None:
    s = df["shipments"]
    delivered = s["delivery_days"].notna()
    on_time = s.loc[delivered, "delivery_days"] <= s.loc[delivered, "promised_days"]
    assert on_time.equals(s.loc[delivered, "delivered_on_time"])
    assert not s.loc[~delivered, "delivered_on_time"].any()
    assert 0.85 < s.loc[delivered, "delivered_on_time"].mean() < 0.98
    inv = df["inventory"]
    assert not inv.duplicated(["snapshot_date", "sku", "warehouse"]).any()
    assert (inv[["on_hand_units", "on_hand_value", "cogs", "stockout_days"]] >= 0).all().all()
    o = df["orders"]
    cost = o.loc[o["status"] == "completed", "cost"].sum()
    assert inv["cogs"].sum() == pytest.approx(cost, rel=0.02)


def test_requisitions(df: dict[str, pd.DataFrame]) -> None:
    r = df["requisitions"]
    filled = r["status"] == "filled"
    assert r["filled_date"].notna().equals(filled) and r["days_to_fill"].notna().equals(filled)
    days = (r.loc[filled, "filled_date"] - r.loc[filled, "opened_date"]).dt.days
    assert (days == r.loc[filled, "days_to_fill"]).all()
    assert r.loc[filled, "days_to_fill"].between(10, 150).all()
    assert (r["offers_accepted"] <= r["offers_made"]).all()


def test_trends(tmp_path: Path) -> None:
    got = generate(tmp_path, rows=60_000)
    o = pq.read_table(got["orders"]).to_pandas()
    o = o[o["status"] == "completed"]
    rev = o.pivot_table("revenue", "region", o["order_date"].dt.year, "sum")
    total = rev.sum()
    assert 1.1 < total[2024] / total[2023] < 1.35 and 1.1 < total[2025] / total[2024] < 1.35
    assert rev.loc["Europe", 2025] < rev.loc["Europe", 2023]  # the declining region
    w = pq.read_table(got["web_sessions"]).to_pandas()
    bounce = w.groupby(w["session_start"].dt.year)["bounced"].mean()
    assert 0.35 < bounce[2023] < bounce[2025] < 0.6
    s = pq.read_table(got["shipments"]).to_pandas()
    s = s[s["delivery_days"].notna()]
    on_time = s.groupby(s["shipped_at"].dt.year)["delivered_on_time"].mean()
    assert on_time[2023] < on_time[2025]
    subs = pq.read_table(got["subscriptions"]).to_pandas()
    churn = subs.groupby(subs["snapshot_date"].map(lambda d: d.year))["churned"].mean()
    assert churn[2025] > churn[2024]
    e = pq.read_table(got["email_campaigns"]).to_pandas()
    e = e.groupby(e["sent_at"].dt.year)[["unique_opens", "delivered"]].sum()
    open_rate = e["unique_opens"] / e["delivered"]
    assert open_rate[2025] < open_rate[2023]
    assert np.isfinite(open_rate).all()


def test_ensure(tmp_path: Path) -> None:
    written, fresh = ensure(tmp_path, rows=300)
    assert fresh and set(written) == set(SOURCES)
    stamp = written["orders"].stat().st_mtime_ns
    again, fresh = ensure(tmp_path, rows=300)
    assert not fresh and again == written and written["orders"].stat().st_mtime_ns == stamp
    _, fresh = ensure(tmp_path, rows=300, force=True)
    assert fresh
    _, fresh = ensure(tmp_path, rows=301)
    assert fresh
