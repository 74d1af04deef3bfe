"""Driver decompositions: effects add up exactly to the change and match hand-computed numbers."""

import math

import numpy as np
import pandas as pd
import pytest

from kpinb import DataError
from kpinb.analytics.drivers import dimension_contributions, product_effects, ratio_effects, shapley_pair
from kpinb.definitions.model import Metric
from kpinb.engine.query import compute


def orders(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """Completed order lines: (date, order_id, region, revenue)."""
    df = pd.DataFrame(rows, columns=["order_date", "order_id", "region", "revenue"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    df["status"] = "completed"
    return df


# January: north 2 orders (100 + 100), south 1 order (100): 300 over 3 orders, AOV 100.
# February: north 1 order (120), south 3 orders (120 each): 480 over 4 orders, AOV 120.
ORDERS = orders([
    ("2025-01-05", "o1", "north", 100.0), ("2025-01-06", "o2", "north", 100.0),
    ("2025-01-07", "o3", "south", 100.0),
    ("2025-02-03", "o4", "north", 120.0), ("2025-02-04", "o5", "south", 120.0),
    ("2025-02-05", "o6", "south", 120.0), ("2025-02-06", "o7", "south", 120.0),
])  # fmt: skip
IDS = ["monthly_sales_revenue", "orders_count", "average_order_value"]


def adds_up(out: pd.DataFrame) -> bool:
    return math.isclose(out["effect"].sum(), out.attrs["change"], rel_tol=1e-12, abs_tol=1e-12)


def test_shapley_pair_is_symmetric_and_exact():
    assert shapley_pair(10, 12, 5, 6) == (11.0, 11.0)
    ex, ey = shapley_pair(3.0, 4.0, 100.0, 120.0)
    assert (ex, ey) == (110.0, 70.0)
    assert ex + ey == 4 * 120 - 3 * 100


def test_ratio_effects_split_average_order_value_into_numerator_and_denominator():
    df = compute(IDS, sources={"orders": ORDERS})
    out = ratio_effects(df, "average_order_value", "2025-01-15", "2025-02")
    assert list(out["driver"]) == ["numerator", "denominator"]
    assert list(out["value_a"]) == [300.0, 3.0] and list(out["value_b"]) == [480.0, 4.0]
    # numerator: (480 - 300) * (1/3 + 1/4) / 2 = 52.5; denominator: (1/4 - 1/3) * (300 + 480) / 2 = -32.5
    assert out["effect"].tolist() == pytest.approx([52.5, -32.5], rel=1e-12)
    assert out.attrs["change"] == pytest.approx(20.0) and adds_up(out)
    assert out["share_of_change"].tolist() == pytest.approx([52.5 / 20, -32.5 / 20])
    assert (out["note"] == "").all()


def test_ratio_effects_zero_denominator_gives_nan_and_a_note_never_inf():
    rate = Metric(id="hit_rate", name="Hit rate", source="orders", expr="sum(revenue) / sum(quantity)")
    df = ORDERS.assign(quantity=[1, 1, 2, 0, 0, 0, 0])
    frame = compute([rate], sources={"orders": df})
    assert frame["value"].isna().tolist() == [False, True]  # 0 / 0 is missing, not an error
    out = ratio_effects(frame, "hit_rate", "2025-01", "2025-02")
    assert out["effect"].isna().all() and out["share_of_change"].isna().all()
    assert "denominator is 0 in period B (2025-02-01)" in out["note"].iloc[0]
    assert not np.isinf(out.select_dtypes("number").to_numpy()).any()


def test_ratio_effects_refuses_a_metric_that_is_not_a_ratio():
    df = compute(IDS, sources={"orders": ORDERS})
    with pytest.raises(DataError, match="not a ratio"):
        ratio_effects(df, "monthly_sales_revenue", "2025-01", "2025-02")
    with pytest.raises(DataError, match="no row for the period starting 2025-05-01"):
        ratio_effects(df, "average_order_value", "2025-01", "2025-05")


def test_product_effects_volume_and_price_add_up_to_revenue_change():
    df = compute(IDS, sources={"orders": ORDERS})
    out = product_effects(
        df, "orders_count", "average_order_value", "2025-01", "2025-02",
        total="monthly_sales_revenue", names=("volume", "price"),
    )  # fmt: skip
    # volume: (4 - 3) * (100 + 120) / 2 = 110; price: (120 - 100) * (3 + 4) / 2 = 70; 480 - 300 = 180
    assert out[["driver", "effect"]].values.tolist() == [["volume", 110.0], ["price", 70.0]]
    assert out.attrs["change"] == 180.0 and adds_up(out)
    assert out["share_of_change"].tolist() == pytest.approx([110 / 180, 70 / 180])


def test_product_effects_checks_that_the_factors_multiply_to_the_total():
    df = compute(IDS, sources={"orders": ORDERS})
    with pytest.raises(DataError, match=r"do not multiply to the total"):
        product_effects(df, "orders_count", "orders_count", "2025-01", "2025-02",
                        total="monthly_sales_revenue")  # fmt: skip


def test_dimension_contributions_of_a_sum_metric_add_up_and_count_new_members_from_zero():
    extra = orders([("2025-02-10", "o8", "west", 50.0)])
    df = compute(["monthly_sales_revenue"], sources={"orders": pd.concat([ORDERS, extra])}, by=["region"])
    out = dimension_contributions(df, "monthly_sales_revenue", "2025-01", "2025-02")
    got = dict(zip(out["region"], out["effect"], strict=True))
    # north 200 -> 120, south 100 -> 360, west (new) 0 -> 50: total 300 -> 530
    assert got == {"north": -80.0, "south": 260.0, "west": 50.0}
    assert out.attrs["total_a"] == 300.0 and out.attrs["total_b"] == 530.0
    assert out.attrs["change"] == 230.0 and adds_up(out)
    assert (out["component"] == "contribution").all()
    assert math.isnan(out.loc[out.region == "west", "value_a"].iloc[0])


def test_dimension_contributions_of_a_ratio_split_into_rate_and_mix_per_member():
    df = compute(["average_order_value"], sources={"orders": ORDERS}, by=["region"])
    out = dimension_contributions(df, "average_order_value", "2025-01", "2025-02")
    eff = {(r, c): e for r, c, e in zip(out["region"], out["component"], out["effect"], strict=True)}
    # north: rate 100 -> 120, share 2/3 -> 1/4; south: rate 100 -> 120, share 1/3 -> 3/4
    # rate effects: 20 * (2/3 + 1/4) / 2 = 55/6 and 20 * (1/3 + 3/4) / 2 = 65/6 (sum 20)
    # mix effects: (1/4 - 2/3) * 110 = -275/6 and (3/4 - 1/3) * 110 = +275/6 (sum 0: same rates)
    assert eff[("north", "rate")] == pytest.approx(55 / 6, rel=1e-12)
    assert eff[("south", "rate")] == pytest.approx(65 / 6, rel=1e-12)
    assert eff[("north", "mix")] == pytest.approx(-275 / 6, rel=1e-12)
    assert eff[("south", "mix")] == pytest.approx(275 / 6, rel=1e-12)
    assert out.attrs["total_a"] == 100.0 and out.attrs["total_b"] == 120.0 and adds_up(out)
    assert list(out["component"]) == ["rate", "mix", "rate", "mix"]


def test_mix_effect_alone_moves_the_overall_ratio():
    # both regions keep their own rate; the overall rises only because more orders come from the dearer one
    df = compute(["average_order_value"], by=["region"], sources={"orders": orders([
        ("2025-01-05", "a", "north", 100.0), ("2025-01-06", "b", "south", 200.0),
        ("2025-02-05", "c", "north", 100.0), ("2025-02-06", "d", "south", 200.0),
        ("2025-02-07", "e", "south", 200.0), ("2025-02-08", "f", "south", 200.0),
    ])})  # fmt: skip
    out = dimension_contributions(df, "average_order_value", "2025-01", "2025-02")
    assert out.attrs["total_a"] == 150.0 and out.attrs["total_b"] == 175.0
    assert out.loc[out.component == "rate", "effect"].tolist() == [0.0, 0.0]
    # north share 1/2 -> 1/4 at rate 100: -25; south 1/2 -> 3/4 at rate 200: +50
    assert out.loc[out.component == "mix", "effect"].tolist() == pytest.approx([-25.0, 50.0])
    assert adds_up(out)


def test_dimension_contributions_zero_denominators():
    rate = Metric(id="hit_rate", name="Hit rate", source="orders", expr="sum(revenue) / sum(quantity)")
    # February sells nothing: 0 / 0 everywhere, the overall ratio is undefined there
    quiet = ORDERS.assign(quantity=[1, 1, 2, 0, 0, 0, 0], revenue=[100.0, 100.0, 100.0, 0, 0, 0, 0])
    frame = compute([rate], sources={"orders": quiet}, by=["region"])
    out = dimension_contributions(frame, "hit_rate", "2025-01", "2025-02")
    assert out["effect"].isna().all() and out["share_of_change"].isna().all()
    assert "overall denominator is 0 in period B (2025-02-01)" in out["note"].iloc[0]
    assert not np.isinf(out.select_dtypes("number").to_numpy()).any()
    # revenue over zero quantity: the member's rate is undefined, so the split does not apply
    broken = compute([rate], sources={"orders": ORDERS.assign(quantity=[1, 1, 2, 0, 0, 0, 0])}, by=["region"])
    with pytest.raises(DataError, match="member 'north' has numerator 120 but denominator 0 in 2025-02-01"):
        dimension_contributions(broken, "hit_rate", "2025-01", "2025-02")


def test_dimension_contributions_refuses_averages_and_frames_without_one_dimension():
    opp = pd.DataFrame({
        "created_date": pd.to_datetime(["2025-01-03", "2025-02-03"]), "lead_id": ["l1", "l2"],
        "region": ["north", "north"], "is_won": [True, True], "deal_value": [10.0, 30.0],
    })  # fmt: skip
    df = compute(["average_deal_size"], sources={"opportunities": opp}, by=["region"])
    with pytest.raises(DataError, match="not a sum or count"):
        dimension_contributions(df, "average_deal_size", "2025-01", "2025-02")
    total = compute(["monthly_sales_revenue"], sources={"orders": ORDERS})
    with pytest.raises(DataError, match="exactly one dimension"):
        dimension_contributions(total, "monthly_sales_revenue", "2025-01", "2025-02")
