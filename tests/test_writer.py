"""The one plan writer (kpinb.definitions.writer): what it writes loads back as the same plan."""

from pathlib import Path

import pytest

from kpinb.definitions.model import to_dict
from kpinb.definitions.plan import load_plan, parse_plan
from kpinb.definitions.writer import plan_yaml, relative_paths

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted((ROOT / "templates" / "plans").glob("*.yml"))


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_every_shipped_plan_round_trips(path):
    plan = load_plan(path)
    text = plan_yaml(to_dict(plan), header="round trip")
    again = parse_plan(text, path)
    assert to_dict(again) == to_dict(plan)
    assert text.startswith("# round trip\nname: ")
    assert "\n  - metric: " in text and "\nsources:\n  " in text  # the shape of DESIGN.md's example


def test_hostile_text_stays_text_and_notes_sit_under_their_source(tmp_path):
    evil = 'Grow: "revenue" # not a comment\n- kpis: []\n{x: 1} & *alias !!python/object'
    data = {
        "name": evil,
        "department": "sales",
        "objectives": [{"id": "grow", "statement": evil}],
        "sources": {"orders": {"path": str(tmp_path / "data" / "orders.csv"), "columns": {"revenue": evil}}},
        "kpis": [{"metric": "monthly_sales_revenue", "objective": "grow", "owner": evil,
                  "target": {"value": 1500000.0, "by": "2025-12-31"}}],
    }  # fmt: skip
    relative_paths(data, tmp_path / "plans")
    text = plan_yaml(data, header="test", notes={"orders": "not connected yet"})
    assert "  orders:\n    # not connected yet\n    path: ../data/orders.csv\n" in text
    assert "value: 1500000," in text and "by: 2025-12-31" in text  # as people type them
    plan = parse_plan(text, tmp_path / "plans" / "sales.yml")
    assert plan.name == evil and plan.kpis[0].owner == evil and plan.objectives[0].statement == evil
    assert plan.sources["orders"].columns == {"revenue": evil}
