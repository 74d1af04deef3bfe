"""A small shop written to files for the insight, anomaly, alert and digest tests: one row per
region and month (dated the month's last day), numbers chosen so each insight kind fires."""

from pathlib import Path

import pandas as pd

PLAN = """\
name: Shop <North>
department: sales
objectives:
  - {id: grow, statement: Grow revenue & "visits"}
sources:
  orders: {path: orders.csv, time: day, dimensions: [region]}
metrics:
  - {id: revenue, name: Revenue, source: orders, expr: sum(amount), unit: currency, description: Paid}
  - {id: units, name: Units sold, source: orders, expr: sum(units), description: Units}
  - {id: visits, name: Visits, source: orders, expr: sum(visits), description: Store visits}
kpis:
  - metric: revenue
    objective: grow
    owner: Ann
    target: {value: 1000, by: 2025-12-31}
    supporting: [units]
  - metric: visits
    objective: grow
    owner: Bo
    target: {value: 90, by: 2025-12-31}
"""

REGIONS = ("north", "south", "east", "west", "centre", "islands")
MONTHS = pd.date_range("2024-01-01", "2025-08-01", freq="MS")  # 20 months
VISITS_TAIL = [100.0, 110.0, 120.0, 115.0, 105.0, 95.0]  # rising, then falling: the trend turned


def rows() -> pd.DataFrame:
    out = []
    for i, month in enumerate(MONTHS):
        last = i == len(MONTHS) - 1
        day = (month + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")
        visits = VISITS_TAIL[i - 14] if i >= 14 else (100.0 if i % 2 == 0 else 104.0)
        for r in REGIONS:
            amount = {"north": 600.0 if last else 100.0 + 5 * i, "south": 30.0 if last else 50.0, "islands": 10.0}
            out.append({
                "day": day, "region": r, "amount": amount.get(r, 50.0),
                "units": 30.0 if last and r == "north" else 10.0, "visits": visits if r == "north" else 0.0,
            })  # fmt: skip
    return pd.DataFrame(out)


def write_shop(folder: Path, plan: str = PLAN, regions: dict[str, str] | None = None) -> Path:
    """Write orders.csv and plan.yml into ``folder``; ``regions`` renames members (hostile names)."""
    data = rows()
    if regions:
        data["region"] = data["region"].replace(regions)
    data.to_csv(folder / "orders.csv", index=False)
    (folder / "plan.yml").write_text(plan)
    return folder / "plan.yml"
