"""Set-up files agree with each other and `import kpinb` stays light."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _normalise(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    return name, m.group(3).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = {_normalise(r) for r in project["dependencies"] + [r for rs in extras.values() for r in rs]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    conda = [d for d in conda if _normalise(d)[0] not in ("python", "pip")]
    assert sorted(declared) == sorted(map(_normalise, conda))


def test_import_kpinb_does_not_load_the_heavy_stack():
    code = (
        "import sys, kpinb; kpinb.PlanError; "
        "heavy = [m for m in ('plotly', 'ipywidgets', 'ibis', 'duckdb', 'papermill', 'nbconvert', "
        "'pandas', 'statsmodels') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_catalog_ships_in_the_package():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "*.yaml" in setup["package-data"]["kpinb.definitions.catalog"]


def test_constraints_pin_every_declared_dependency_within_its_range_and_make_installs_with_them():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]
    lines = [x for x in (ROOT / "constraints.txt").read_text().splitlines() if x and not x.startswith("#")]
    pins = dict(map(_normalise, lines))  # name -> "==version"
    assert "kpinb" not in pins
    for text in declared:
        req = Requirement(text)
        name = _normalise(req.name)[0]
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned: run `make lock`"
        assert req.specifier.contains(pins[name].removeprefix("=="), prereleases=True), (text, pins[name])
    make = (ROOT / "Makefile").read_text()
    assert make.count("pip install -q -c constraints.txt -e") == 2 and "scripts/lock.py" in make
