"""`kpinb init`: a new folder runs with `kpinb run` at once, on sample data or on the user's CSV."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import kpinb
from kpinb.cli import main
from kpinb.errors import PlanError, RunError
from kpinb.runs.scaffold import init_project, parse_columns

ROOT = Path(__file__).resolve().parent.parent
COFFEE = ROOT / "data" / "examples" / "coffee_shop_orders.csv"
COFFEE_COLUMNS = {
    "order_date": "sold_on", "order_id": "receipt", "customer_id": "client", "region": "area", "channel": "via",
    "product_category": "category", "product": "item", "quantity": "qty", "revenue": "amount_usd",
    "cost": "cost_usd", "is_new_customer": "first_purchase", "status": "state",
}  # fmt: skip


@pytest.mark.slow
def test_init_on_sample_data_runs_the_reports_and_the_wizard_notebook(tmp_path, monkeypatch, capsys):
    import nbformat
    from nbclient import NotebookClient

    folder = tmp_path / "my-kpis"
    assert main(["init", str(folder), "--department", "marketing", "--rows", "5000"]) == 0
    assert f"cd {folder} && kpinb run --runs runs.yml" in capsys.readouterr().out
    assert len((folder / "README.md").read_text().splitlines()) == 3
    plan = kpinb.load_plan(folder / "plans" / "marketing.yml")
    assert all(plan.resolve(s.path).resolve().parent == (folder / "data").resolve() for s in plan.sources.values())

    monkeypatch.chdir(folder)  # as the README says: run from the folder, with the files it made
    assert main(["run", "--runs", "runs.yml", "--out", "reports"]) == 0
    assert {p.name for p in (folder / "reports" / "marketing").glob("*.html")} == {
        "kpi_dashboard.html", "kpi_review.html"
    }  # fmt: skip

    nb = nbformat.read(folder / "kpis.ipynb", as_version=4)
    assert nb.metadata.kernelspec.name == "python3"  # opens without a "Select Kernel" dialog
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    wizard, dashboard = (c.outputs[-1]["data"]["text/plain"] for c in nb.cells if c.cell_type == "code")
    assert "KpiWizard" in wizard and "Dashboard" in dashboard, (wizard, dashboard)


def test_init_on_a_csv_proposes_kpis_its_columns_can_compute(tmp_path):
    made = init_project(tmp_path / "shop", "sales", csv=COFFEE, columns=COFFEE_COLUMNS)
    plan = kpinb.load_plan(made.plan)
    assert plan.kpis and {o.id for o in plan.objectives} == {k.objective for k in plan.kpis}
    assert Path(plan.sources["orders"].path) == COFFEE.resolve()  # outside the folder: absolute
    df = kpinb.compute(plan, grain="month")
    assert set(df.metric) >= {k.metric for k in plan.kpis} and df.value.notna().any()
    assert not (made.folder / "data").exists()
    runs = (made.folder / "runs.yml").read_text()
    assert "plan: plans/sales.yml" in runs


def test_a_csv_that_does_not_fit_names_the_column_and_leaves_nothing(tmp_path, capsys):
    folder = tmp_path / "shop"
    assert main(["init", str(folder), "--csv", str(COFFEE)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing column '" in err and "map your column" in err
    assert not folder.exists()


def test_init_refuses_a_folder_with_files_and_an_unknown_department(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match=r"not empty.*--force"):
        init_project(tmp_path, "sales")
    with pytest.raises(PlanError, match=r"--department nope: not in the catalog\. Choose one of .*sales"):
        init_project(tmp_path / "new", "nope")
    assert not (tmp_path / "new").exists()
    with pytest.raises(PlanError, match="--map revenue: write canonical=yours"):
        parse_columns(["revenue"])


def test_scaffold_templates_ship_in_the_wheel():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kpinb"]
    assert "templates/scaffold/*" in data
    shipped = {p.name for p in (ROOT / "kpinb" / "templates" / "scaffold").iterdir()}
    assert shipped == {"README.md", "runs.yml", "kpis.ipynb.in"}
    json.loads((ROOT / "templates" / "scaffold" / "kpis.ipynb.in").read_text())  # valid before substitution
