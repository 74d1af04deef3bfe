"""``kpinb init``: a working folder (plan, runs.yml, wizard notebook, README) that runs at once.

The files come from ``templates/scaffold/`` inside the installed package, so a ``pip install``
user gets the same folder as a checkout. The plan is either the shipped example plan of the
department pointed at freshly generated sample data in ``<folder>/data/``, or, for a CSV of
the user's own, a plan proposed from the catalog for the columns that CSV has.

>>> init_project("my-kpis", department="sales")                       # doctest: +SKIP
>>> init_project("shop", department="sales", csv="orders.csv",
...              columns={"order_date": "sold_on", "revenue": "amount_usd"})  # doctest: +SKIP
"""

from __future__ import annotations

import re
import shutil
import string
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kpinb._io import write_atomic
from kpinb.errors import PlanError, RunError, SourceError
from kpinb.runs.discovery import department_plans, shipped_plans_dir, templates_dir

__all__ = ["Scaffold", "init_project", "parse_columns"]

SAMPLE_ROWS = 20_000
"""Order lines of the sample data a new folder gets: small enough to generate in seconds."""

_FILES = {"README.md": "README.md", "runs.yml": "runs.yml", "kpis.ipynb": "kpis.ipynb.in"}


@dataclass(frozen=True)
class Scaffold:
    """What :func:`init_project` wrote: the folder, its plan and every file made."""

    folder: Path
    plan: Path
    files: tuple[Path, ...]

    def summary(self) -> str:
        rel = [p.relative_to(self.folder).as_posix() + ("/" if p.is_dir() else "") for p in self.files]
        return (
            f"created {self.folder}: {', '.join(rel)}\n"
            f"next: cd {self.folder} && kpinb run --runs runs.yml --out reports"
        )


def default_source(department: str) -> str:
    """The canonical source most of ``department``'s catalog metrics read (``orders`` for sales)."""
    from kpinb.definitions import catalog

    counts = Counter(m.source for m in catalog.metrics().values() if m.department == department and m.source)
    if not counts:
        known = sorted({m.department for m in catalog.metrics().values() if m.department})
        raise PlanError(f"--department {department}: not in the catalog. Choose one of {', '.join(known)}.")
    return counts.most_common(1)[0][0]


def _sample_plan(department: str, folder: Path, rows: int) -> str:
    """The shipped example plan, its sources pointed at sample data generated in ``folder/data``
    (ending last month, the plan moved with it: :mod:`kpinb.runs.demo`)."""
    from kpinb.data.sample import ensure, last_complete_month, start_for
    from kpinb.runs.demo import demo_plan_text, shift_years

    shipped = department_plans(shipped_plans_dir(), [department])[0]
    end = last_complete_month()  # a current demo: data to last month, the plan's dates moved past it
    ensure(folder / "data", rows=rows, start=start_for(end))
    text = demo_plan_text(shipped.read_text(encoding="utf-8"), shift_years(end), "../data")
    benchmarks = (shipped.parent / "../../data/benchmarks.csv").resolve()  # a checkout has it, a wheel not
    if benchmarks.is_file():
        shutil.copyfile(benchmarks, folder / "data" / "benchmarks.csv")
        text = re.sub(r"(?m)^benchmarks:.*$", "benchmarks: ../data/benchmarks.csv", text)
    else:
        text = re.sub(r"(?m)^benchmarks:.*\n", "", text)
    return text.replace("(`make report` generates it under data/sample/)", "(`kpinb init` generated it in ../data/)")


def _csv_plan(department: str, folder: Path, csv: Path, source: str | None, columns: Mapping[str, str]) -> str:
    """A plan proposed from the catalog for what ``csv`` (as canonical ``source``) can compute."""
    from kpinb.analytics.proposal import propose, to_yaml
    from kpinb.definitions.model import Source

    if not csv.is_file():
        raise SourceError(f"--csv {csv}: no such file. Give the path of your CSV export.")
    name = source or default_source(department)
    shipped = {p.stem: p for p in shipped_plans_dir().glob("*.yml")}
    statements = []
    if department in shipped:
        from kpinb.definitions.plan import load_plan

        statements = [o.statement for o in load_plan(shipped[department]).objectives]
    spec = Source(path=str(csv.resolve()), columns=dict(columns))
    proposal = propose(statements or [f"Improve {department.replace('_', ' ')}"], department, {name: spec})
    if not proposal.plan.kpis:
        raise PlanError(
            f"--csv {csv}: none of the {department} KPIs can be computed from it as the `{name}` source. "
            "Map your columns to the canonical ones with --map canonical=yours (see `kpinb catalog`)."
        )
    plan = proposal.plan
    used = {k.objective for k in plan.kpis}  # objectives of the example plan that this CSV cannot serve go
    plan = plan.model_copy(update={"objectives": tuple(o for o in plan.objectives if o.id in used)})
    inside = csv.resolve().is_relative_to(folder.resolve())
    # a CSV inside the folder moves with it (relative path); one elsewhere stays where it is (absolute)
    return to_yaml(plan, folder / "plans" if inside else None)


def init_project(
    folder: str | Path,
    department: str = "sales",
    *,
    csv: str | Path | None = None,
    source: str | None = None,
    columns: Mapping[str, str] | None = None,
    rows: int = SAMPLE_ROWS,
    force: bool = False,
) -> Scaffold:
    """Create ``folder`` with ``plans/<department>.yml``, ``runs.yml``, ``kpis.ipynb`` and a README.

    Parameters
    ----------
    folder : the new folder; it must not exist or be empty (``force`` overwrites kpinb's files).
    department : a catalog department (``sales``, ``marketing``, ...).
    csv : your own CSV file; without it the folder gets sample data (``rows`` order lines) in ``data/``.
    source : the canonical source the CSV holds (default: the one most of the department's metrics read).
    columns : canonical column -> your column, e.g. ``{"order_date": "sold_on", "revenue": "amount_usd"}``.
    """
    out = Path(folder).expanduser()
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: a file is in the way. Choose another folder name.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RunError(f"{out}: the folder is not empty. Choose a new folder, or pass --force to write into it.")
    default_source(department)  # an unknown department fails before anything is written
    if csv is None:
        out.mkdir(parents=True, exist_ok=True)
        plan_text = _sample_plan(department, out, rows)
    else:  # proposed before the folder exists: a CSV that does not fit leaves nothing behind
        plan_text = _csv_plan(department, out, Path(csv).expanduser(), source, columns or {})
    from kpinb.definitions.plan import parse_plan

    plan_file = out / "plans" / f"{department}.yml"
    plan = parse_plan(plan_text, plan_file)  # never leave a plan that would not load
    written = [write_atomic(plan_file, plan_text)]
    words = {"department": department, "title": plan.name}
    source_dir = templates_dir() / "scaffold"
    for target, name in _FILES.items():
        text = string.Template((source_dir / name).read_text(encoding="utf-8")).substitute(words)
        written.append(write_atomic(out / target, text))
    if (out / "data").is_dir():
        written.append(out / "data")
    return Scaffold(out, plan_file, tuple(written))


def parse_columns(pairs: list[str] | None) -> dict[str, str]:
    """``["revenue=amount_usd", ...]`` (the CLI's ``--map``) as ``{"revenue": "amount_usd"}``."""
    out = {}
    for pair in pairs or ():
        canonical, sep, yours = pair.partition("=")
        if not sep or not canonical.strip() or not yours.strip():
            raise PlanError(f"--map {pair}: write canonical=yours, e.g. --map revenue=amount_usd.")
        out[canonical.strip()] = yours.strip()
    return out
