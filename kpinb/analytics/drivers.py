"""Why a KPI moved between two periods: split its change into driver effects that add up.

Every decomposition here is **additive and exact**: the effects sum to the change of the KPI
between period A and period B (up to floating-point rounding), and no part is left over as
an "interaction" or "residual". Two-factor changes use the symmetric (Shapley, midpoint)
split of a product ``x · y``::

    effect_x = (x_b - x_a) · (y_a + y_b) / 2
    effect_y = (y_b - y_a) · (x_a + x_b) / 2        effect_x + effect_y = x_b·y_b - x_a·y_a

It treats both factors alike (the result does not depend on which one is "first") and uses
no logarithms, so it works with zeros and negative values.

- :func:`ratio_effects` — a ratio ``N / D`` as ``N · (1/D)``: numerator and denominator effects;
- :func:`product_effects` — a product ``total = a · b`` (revenue = orders × average order value):
  volume and price effects;
- :func:`dimension_contributions` — a metric broken down by a dimension: each member's
  contribution for a sum-like metric, or a rate and a mix effect per member for a ratio.

Results are DataFrames with ``driver, effect, share_of_change`` (effect / total change; NaN
when nothing changed) plus their inputs and a ``note``; ``attrs`` carry ``metric,
period_a, period_b, total_a, total_b, change``. Where a decomposition is undefined (a zero or
missing denominator, no data in a period) the effects are NaN and ``note`` says why; no
result is ever infinite.

>>> df = kpinb.compute(["average_order_value"], sources={"orders": "orders.parquet"})  # doctest: +SKIP
>>> ratio_effects(df, "average_order_value", "2025-01", "2025-02")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from kpinb.definitions.analysis import additivity
from kpinb.definitions.model import Grain, Plan
from kpinb.engine.calendar import calendar_of, period_start
from kpinb.errors import DataError

__all__ = ["dimension_contributions", "product_effects", "ratio_effects", "shapley_pair"]

_BASE = ("metric", "period_start", "value", "numerator", "denominator")


def shapley_pair(x_a: float, x_b: float, y_a: float, y_b: float) -> tuple[float, float]:
    """The symmetric split of the change of ``x · y`` into an x effect and a y effect.

    >>> shapley_pair(10, 12, 5, 6)   # 10·5 = 50 -> 12·6 = 72: +22 = 11 + 11
    (11.0, 11.0)
    """
    return (x_b - x_a) * (y_a + y_b) / 2.0, (y_b - y_a) * (x_a + x_b) / 2.0


def ratio_effects(df: pd.DataFrame, metric: str, period_a: Any, period_b: Any) -> pd.DataFrame:
    """Split the change of a ratio metric into a numerator effect and a denominator effect.

    With ``R = N / D`` written as ``N · (1/D)``::

        numerator effect   = (N_b - N_a) · (1/D_a + 1/D_b) / 2
        denominator effect = (1/D_b - 1/D_a) · (N_a + N_b) / 2
        numerator effect + denominator effect = N_b/D_b - N_a/D_a

    A growing denominator gives a negative denominator effect on the ratio (more orders for
    the same revenue lower the average order value).

    Parameters
    ----------
    df : the engine's tidy frame without ``by``; the metric must be a ratio (its formula's top
        operation is a division), so that the engine filled ``numerator`` and ``denominator``.
    metric : the metric id.
    period_a, period_b : the periods to compare (any date inside them, e.g. ``"2025-01"``).

    Returns
    -------
    Two rows, ``driver`` ``numerator`` and ``denominator``: ``metric, driver, period_a,
    period_b, value_a, value_b`` (the driver's values), ``effect, share_of_change, note``.
    A zero or missing denominator (or numerator) in either period makes the effects NaN, with
    the reason in ``note``.

    Examples
    --------
    >>> out = ratio_effects(df, "average_order_value", "2025-01", "2025-02")  # doctest: +SKIP
    >>> out.effect.sum() == out.attrs["change"]  # doctest: +SKIP
    """
    rows, dims = _metric_rows(df, metric, "ratio_effects()")
    if dims:
        raise DataError(
            f"ratio_effects(): the frame is broken down by {', '.join(dims)}. Compute {metric!r} "
            "without `by=`, or use dimension_contributions() for a breakdown."
        )
    if rows["numerator"].isna().all() and rows["value"].notna().any():
        raise DataError(
            f"metric {metric!r} is not a ratio (its formula's top operation is not a division), so "
            "it has no numerator and denominator. Use product_effects() or dimension_contributions()."
        )
    pa, pb = _period(df, period_a), _period(df, period_b)
    a, b = _at(rows, pa, metric), _at(rows, pb, metric)
    n_a, d_a, n_b, d_b = (float(x) for x in (a["numerator"], a["denominator"], b["numerator"], b["denominator"]))
    notes = []
    for label, p, n, d in (("A", pa, n_a, d_a), ("B", pb, n_b, d_b)):
        if math.isnan(n) or math.isnan(d):
            notes.append(f"no data in period {label} ({p:%Y-%m-%d})")
        elif d == 0:
            notes.append(f"the denominator is 0 in period {label} ({p:%Y-%m-%d})")
    if notes:
        note = "; ".join(notes) + ": the ratio is undefined there, so its change cannot be split"
        eff_n = eff_d = math.nan
        total_a = n_a / d_a if d_a and not math.isnan(d_a) else math.nan
        total_b = n_b / d_b if d_b and not math.isnan(d_b) else math.nan
    else:
        note = ""
        eff_n, eff_d = shapley_pair(n_a, n_b, 1.0 / d_a, 1.0 / d_b)
        total_a, total_b = n_a / d_a, n_b / d_b
    change = total_b - total_a
    out = pd.DataFrame(
        {
            "metric": metric,
            "driver": ["numerator", "denominator"],
            "period_a": pa,
            "period_b": pb,
            "value_a": [n_a, d_a],
            "value_b": [n_b, d_b],
            "effect": [eff_n, eff_d],
        }
    )
    return _finish(out, change, note, metric, pa, pb, total_a, total_b)


def product_effects(
    df: pd.DataFrame,
    a: str,
    b: str,
    period_a: Any,
    period_b: Any,
    *,
    total: str | None = None,
    names: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Split the change of a product ``total = a · b`` into the effects of ``a`` and ``b``.

    The classic use is revenue = orders × average order value: a **volume** effect
    ``(orders_b - orders_a) · (aov_a + aov_b) / 2`` and a **price/mix** effect
    ``(aov_b - aov_a) · (orders_a + orders_b) / 2``, which add up to the revenue change.

    Parameters
    ----------
    df : the engine's tidy frame without ``by``, holding metrics ``a`` and ``b`` (and ``total``).
    a, b : the factor metric ids.
    period_a, period_b : the periods to compare.
    total : optional metric id of the product; when given, it must equal ``a · b`` in both
        periods (relative tolerance 1e-9), otherwise a :class:`DataError` says the factors do
        not multiply to it (for example when they filter rows differently).
    names : labels for the two drivers (default: the metric ids), e.g. ``("volume", "price")``.

    Returns
    -------
    Two rows: ``metric`` (``total`` or ``"a × b"``), ``driver, factor`` (the metric id),
    ``period_a, period_b, value_a, value_b, effect, share_of_change, note``.

    Examples
    --------
    >>> product_effects(df, "orders_count", "average_order_value", "2025-01", "2025-02",
    ...                 total="monthly_sales_revenue", names=("volume", "price"))  # doctest: +SKIP
    """
    ra, dims = _metric_rows(df, a, "product_effects()")
    rb, _ = _metric_rows(df, b, "product_effects()")
    if dims:
        raise DataError(
            f"product_effects(): the frame is broken down by {', '.join(dims)}. Compute {a!r} and {b!r} without `by=`."
        )
    pa, pb = _period(df, period_a), _period(df, period_b)
    xa, xb = float(_at(ra, pa, a)["value"]), float(_at(ra, pb, a)["value"])
    ya, yb = float(_at(rb, pa, b)["value"]), float(_at(rb, pb, b)["value"])
    label = total or f"{a} × {b}"
    if total is not None:
        rt, _ = _metric_rows(df, total, "product_effects()")
        for p, x, y in ((pa, xa, ya), (pb, xb, yb)):
            t = float(_at(rt, p, total)["value"])
            if not any(map(math.isnan, (t, x, y))) and not math.isclose(t, x * y, rel_tol=1e-9, abs_tol=1e-9):
                raise DataError(
                    f"{total!r} is {t:g} in {p:%Y-%m-%d}, but {a!r} × {b!r} is {x:g} × {y:g} = {x * y:g}: "
                    "the factors do not multiply to the total (do they filter rows the same way?). "
                    "Choose factors whose product is the total, e.g. a ratio's denominator and the ratio."
                )
    missing = [
        f"{m} in period {lab}"
        for m, lab, v in ((a, "A", xa), (a, "B", xb), (b, "A", ya), (b, "B", yb))
        if math.isnan(v)
    ]
    if missing:
        note = f"no value for {', '.join(missing)}: the change cannot be split"
        effects = (math.nan, math.nan)
    else:
        note = ""
        effects = shapley_pair(xa, xb, ya, yb)
    drivers = names or (a, b)
    out = pd.DataFrame(
        {
            "metric": label,
            "driver": list(drivers),
            "factor": [a, b],
            "period_a": pa,
            "period_b": pb,
            "value_a": [xa, ya],
            "value_b": [xb, yb],
            "effect": list(effects),
        }
    )
    return _finish(out, xb * yb - xa * ya, note, label, pa, pb, xa * ya, xb * yb)


def dimension_contributions(
    df: pd.DataFrame,
    metric: str,
    period_a: Any,
    period_b: Any,
    *,
    plan: Plan | None = None,
    members_add_up: bool = False,
) -> pd.DataFrame:
    """Split a metric's change between the members of a dimension.

    **Sum-like metrics** (no numerator/denominator in the frame): each member contributes
    ``value_b - value_a``; a member missing in a period counts as 0 (it entered or left).
    The contributions add up to the change of the members' total.

    **Ratio metrics**: the overall ratio is recomputed from the summed numerators and
    denominators, ``R = ΣN / ΣD = Σ s_i · r_i`` with member rate ``r_i = N_i / D_i`` and mix
    share ``s_i = D_i / ΣD``. Per member::

        rate effect = (r_b - r_a) · (s_a + s_b) / 2     (the member got better or worse)
        mix effect  = (s_b - s_a) · (r_a + r_b) / 2     (its weight in the whole changed)

    and all rate and mix effects add up to ``R_b - R_a``. A member absent in one period
    (denominator 0 or missing) keeps the rate of the other period, so its whole effect is mix.

    Parameters
    ----------
    df : the engine's tidy frame computed with ``by=[dimension]`` (one dimension).
    metric : the metric id.
    period_a, period_b : the periods to compare.
    plan : used only to look up the formula of a plan metric; averages, minimums, maximums,
        medians and other non-additive formulas are refused (their members do not add up).
    members_add_up : the caller checked that the members' values add up to the whole (a sum per
        shared unit such as MRR per snapshot day, a ratio in form): split it member by member.

    Returns
    -------
    Sum-like: one row per member with ``metric, <dimension>, driver`` (the member as text),
    ``component`` (``contribution``), ``value_a, value_b, effect, share_of_change, note``.
    Ratio: two rows per member, ``component`` ``rate`` and ``mix``, with ``numerator_a/_b,
    denominator_a/_b, rate_a/_b, share_a/_b`` as inputs. An overall denominator of 0 (or no
    data) in a period gives NaN effects and a note.

    Examples
    --------
    >>> by_region = kpinb.compute(["average_order_value"], sources=..., by=["region"])  # doctest: +SKIP
    >>> dimension_contributions(by_region, "average_order_value", "2025-01", "2025-02")  # doctest: +SKIP
    """
    rows, dims = _metric_rows(df, metric, "dimension_contributions()")
    if len(dims) != 1:
        raise DataError(
            f"dimension_contributions(): the frame must be broken down by exactly one dimension "
            f"(it has {', '.join(dims) or 'none'}). Compute {metric!r} with by=['region'] (or another)."
        )
    dim = dims[0]
    pa, pb = _period(df, period_a), _period(df, period_b)
    for p in (pa, pb):
        if not (rows["period_start"] == p).any():
            _at(rows, p, metric)  # raises naming the periods there are
    members = list(dict.fromkeys(rows[dim]))
    side = {p: rows[rows["period_start"] == p].set_index(dim) for p in (pa, pb)}

    def get(p: pd.Timestamp, col: str) -> pd.Series:
        return side[p][col].reindex(members).astype("float64")

    is_ratio = rows["numerator"].notna().any() and not members_add_up
    if not is_ratio:
        note = "" if members_add_up else _additive_note(metric, plan)
        va, vb = get(pa, "value"), get(pb, "value")
        out = pd.DataFrame(
            {
                "metric": metric,
                dim: members,
                "driver": [str(m) for m in members],
                "component": "contribution",
                "value_a": va.to_numpy(),
                "value_b": vb.to_numpy(),
                "effect": (vb.fillna(0.0) - va.fillna(0.0)).to_numpy(),
            }
        )
        total_a, total_b = float(va.fillna(0.0).sum()), float(vb.fillna(0.0).sum())
        return _finish(out, total_b - total_a, note, metric, pa, pb, total_a, total_b)

    na, nb = get(pa, "numerator").fillna(0.0), get(pb, "numerator").fillna(0.0)
    da, db = get(pa, "denominator").fillna(0.0), get(pb, "denominator").fillna(0.0)
    for p, n, d in ((pa, na, da), (pb, nb, db)):
        bad = n[(d == 0) & (n != 0)]
        if len(bad):
            raise DataError(
                f"metric {metric!r}: member {bad.index[0]!r} has numerator {bad.iloc[0]:g} but denominator 0 "
                f"in {p:%Y-%m-%d}, so its rate is undefined and the mix/rate split does not apply. "
                "Check the data, or drop that member."
            )
    sum_da, sum_db = float(da.sum()), float(db.sum())
    notes = [
        f"the overall denominator is 0 in period {lab} ({p:%Y-%m-%d})"
        for lab, p, s in (("A", pa, sum_da), ("B", pb, sum_db))
        if s == 0
    ]
    ra = na / da.where(da != 0)
    rb = nb / db.where(db != 0)
    ra, rb = ra.fillna(rb), rb.fillna(ra)  # entering/leaving members: no rate change
    ra, rb = ra.fillna(0.0), rb.fillna(0.0)  # absent in both periods: no effect at all
    if notes:
        note = "; ".join(notes) + ": the overall ratio is undefined there, so its change cannot be split"
        sa = sb = pd.Series(math.nan, index=members)
        rate_eff = mix_eff = pd.Series(math.nan, index=members)
    else:
        note = ""
        sa, sb = da / sum_da, db / sum_db
        rate_eff, mix_eff = shapley_pair(ra, rb, sa, sb)
    total_a = float(na.sum()) / sum_da if sum_da else math.nan
    total_b = float(nb.sum()) / sum_db if sum_db else math.nan
    parts = []
    for component, eff in (("rate", rate_eff), ("mix", mix_eff)):
        parts.append(
            pd.DataFrame(
                {
                    "metric": metric,
                    dim: members,
                    "driver": [str(m) for m in members],
                    "component": component,
                    "numerator_a": na.to_numpy(),
                    "numerator_b": nb.to_numpy(),
                    "denominator_a": da.to_numpy(),
                    "denominator_b": db.to_numpy(),
                    "rate_a": ra.to_numpy(),
                    "rate_b": rb.to_numpy(),
                    "share_a": sa.to_numpy(),
                    "share_b": sb.to_numpy(),
                    "effect": eff.to_numpy(),
                    "_member": range(len(members)),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(["_member"], kind="stable").drop(columns="_member")
    return _finish(out.reset_index(drop=True), total_b - total_a, note, metric, pa, pb, total_a, total_b)


# --- helpers -----------------------------------------------------------------------------------


def _additive_note(metric: str, plan: Plan | None) -> str:
    from kpinb.definitions.plan import registry

    reg = registry(plan)
    m = reg.get(metric)
    if m is None:  # a Metric passed straight to compute(): trust the caller
        return ""
    kind = additivity(m, reg)
    if kind not in ("sum", "distinct"):
        raise DataError(
            f"metric {metric!r} ({m.expr}) is not a sum or count, so its members' values do not add "
            "up to the whole and their changes cannot be split by member. Break down a sum-like "
            "metric, or a ratio (mix/rate effects)."
        )
    if kind == "distinct":
        return "distinct counts can overlap between members; the contributions add up to the members' total"
    return ""


def _metric_rows(df: pd.DataFrame, metric: str, what: str) -> tuple[pd.DataFrame, list[str]]:
    missing = [c for c in _BASE if c not in df.columns]
    if missing:
        raise DataError(
            f"{what}: the frame has no column(s) {', '.join(missing)}. Pass the tidy frame that "
            "kpinb.compute() returns."
        )
    rows = df[df["metric"] == metric]
    if rows.empty:
        have = ", ".join(map(str, dict.fromkeys(df["metric"]))) or "none"
        raise DataError(f"{what}: metric {metric!r} is not in the frame (it has: {have}). Compute it first.")
    by = df.attrs.get("by")
    dims = [c for c in (by if by is not None else df.columns) if c in df.columns and c not in _BASE]
    return rows, dims


def _period(df: pd.DataFrame, value: Any) -> pd.Timestamp:
    g = df.attrs.get("grain")
    try:
        return period_start(value, Grain(g).value, calendar_of(df)) if g else pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"period {value!r} is not a date. Pass a date such as '2025-06-01'.") from None


def _at(rows: pd.DataFrame, p: pd.Timestamp, metric: str) -> pd.Series:
    hit = rows[rows["period_start"] == p]
    if hit.empty:
        first, last = rows["period_start"].min(), rows["period_start"].max()
        raise DataError(
            f"metric {metric!r} has no row for the period starting {p:%Y-%m-%d}; the frame covers "
            f"{first:%Y-%m-%d} to {last:%Y-%m-%d}. Pick periods inside it or compute a wider range."
        )
    return hit.iloc[0]


def _finish(
    out: pd.DataFrame,
    change: float,
    note: str,
    metric: str,
    pa: pd.Timestamp,
    pb: pd.Timestamp,
    total_a: float,
    total_b: float,
) -> pd.DataFrame:
    if not note and change == 0:
        note = "no change between the periods"
    out["share_of_change"] = out["effect"] / change if change and not math.isnan(change) else math.nan
    out["note"] = note
    out.attrs.update(metric=metric, period_a=pa, period_b=pb, total_a=total_a, total_b=total_b, change=change)
    return out
