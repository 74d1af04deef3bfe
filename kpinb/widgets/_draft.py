"""The wizard's plan draft: numbers typed by people, data sources found on disk, the YAML written.

No widgets here: the wizard holds the state, this module turns it into a plan file in the
shape DESIGN.md describes (it loads with :func:`kpinb.load_plan`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb.definitions.analysis import sources_needed
from kpinb.definitions.model import Plan, Source
from kpinb.errors import PlanError, SourceError

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import Metric

_SUFFIX = {"k": 1e3, "m": 1e6, "mn": 1e6, "b": 1e9, "bn": 1e9}


def parse_number(text: str | None, unit: str = "count") -> float | None:
    """A number typed by a person: ``1,500,000``, ``1.5M``, ``12k``, ``13%``; empty gives None.

    For ``percent`` metrics (stored as fractions) ``13%`` and ``13`` both mean 0.13 — a plain
    number above 1 is read as percent — while ``0.13`` stays 0.13.

    >>> parse_number("1.5M"), parse_number("13%", "percent"), parse_number("13", "percent"), parse_number("")
    (1500000.0, 0.13, 0.13, None)
    """
    if text is None:
        return None
    t = str(text).strip().lower().replace(",", "").replace("_", "").replace(" ", "")
    if not t:
        return None
    percent = t.endswith("%")
    t = t.rstrip("%")
    scale = 1.0
    m = re.fullmatch(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)([a-z]*)", t)
    if m is None or (m.group(2) and m.group(2) not in _SUFFIX):
        raise ValueError(f"{text!r} is not a number; write e.g. 1500000, 1.5M or 12%")
    scale = _SUFFIX.get(m.group(2), 1.0)
    value = float(m.group(1)) * scale
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if percent or (unit == "percent" and abs(value) > 1):
        value /= 100.0
    return float(f"{value:.12g}")


def number_text(value: float | None, unit: str = "count") -> str:
    """A value as the wizard pre-fills an editable field: 6 significant digits with thousands
    separators (what :func:`parse_number` reads back), percent metrics as ``12.34%``.

    >>> number_text(1043210.567), number_text(0.026371, "percent"), number_text(325.714), number_text(None)
    ('1,043,210', '2.6371%', '325.714', '')
    """
    if value is None or not math.isfinite(value):
        return ""
    if unit == "percent":
        return f"{_plain(float(f'{value * 100:.5g}'))}%"
    return _plain(float(f"{value:.6g}"), grouped=True)


def _plain(x: float, grouped: bool = False) -> str:
    """No exponent, no trailing zeros: 1043210.0 -> 1043210 (1,043,210 grouped), 0.0264 -> 0.0264."""
    sep = "," if grouped else ""
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):{sep}d}"
    whole, _, frac = f"{x:.12f}".rstrip("0").partition(".")
    whole = f"{int(whole):{sep}d}" if whole not in ("", "-", "-0") else whole
    return f"{whole}.{frac}" if frac else (whole or "0")


def parse_date(text: str | None) -> dt.date | None:
    """A date typed as ``YYYY-MM-DD`` (the one form the wizard shows, whatever the browser's locale);
    empty gives None.

    >>> parse_date("2026-12-31"), parse_date(" ")
    (datetime.date(2026, 12, 31), None)
    """
    t = (text or "").strip()
    if not t:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-31")
    try:
        return dt.date.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a day of the calendar; write it as YYYY-MM-DD") from None


def slug(statement: str, max_words: int = 5) -> str:
    """An objective id from its statement: ``Grow revenue 20% in 2025`` -> ``grow-revenue-20-in-2025``."""
    words = re.findall(r"[a-z0-9]+", statement.lower())[:max_words]
    out = "-".join(words)[:60].strip("-")
    if not out:
        return "objective"
    return out if out[0].isalpha() else f"objective-{out}"


# --- data sources --------------------------------------------------------------------------------


def connect(spec: Any) -> dict[str, Source]:
    """Canonical source name -> :class:`Source` with an absolute path (or a URL).

    ``spec`` is a mapping (name -> path, :class:`Source` or URL), a plan or plan file (its sources), or a
    folder, where ``<source>.parquet`` / ``.csv`` / ``.xlsx`` ... files named after the catalog's
    canonical sources are found. None or ``""`` connects nothing.
    """
    from kpinb.analytics.proposal import sources_from

    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return {}
    if isinstance(spec, Plan):
        return sources_from(plan=spec)
    if isinstance(spec, Mapping):
        out = {}
        for name, value in spec.items():
            if isinstance(value, Source):
                src = value
            elif isinstance(value, str) and "://" in value:
                raise PlanError(f"source {name!r}: a database URL needs a table; pass Source(url=..., table=...).")
            else:
                src = Source(path=str(value))
            if src.path is not None:
                src = src.model_copy(update={"path": str(Path(src.path).expanduser().resolve())})
            out[str(name)] = src
        return out
    path = Path(str(spec).strip()).expanduser()
    if path.suffix.lower() in (".yml", ".yaml"):
        return sources_from(plan=path)
    if not path.is_dir():
        raise SourceError(f"{path}: no such folder or plan file. Give the folder of your data files or a plan (.yml).")
    return sources_from(data_dir=path)


def baselines(
    ids: Iterable[str], sources: Mapping[str, Source], registry: Mapping[str, Metric], today: dt.date
) -> tuple[dict[str, float], pd.DataFrame | None, str]:
    """Mean of the last 12 complete months of each metric that the connected sources can compute.

    Returns ``(metric -> baseline, the monthly frame, a label of the window)``; metrics whose
    sources are not connected, or with no value in the window, are left out.
    """
    import pandas as pd

    from kpinb.analytics.compare import latest_complete_period
    from kpinb.engine.query import compute

    ready = [m for m in ids if m in registry and sources_needed([m], registry) <= set(sources)]
    if not ready:
        return {}, None, ""
    df = compute(ready, sources=dict(sources), grain="month")
    last = latest_complete_period(df, today=today)
    if last is None:
        return {}, df, ""
    first = last - pd.DateOffset(months=11)
    window = df[(df["period_start"] >= first) & (df["period_start"] <= last)]
    means = window.groupby("metric", sort=False)["value"].mean().dropna()
    label = f"mean of {first:%Y-%m} to {last:%Y-%m}"
    return {str(k): float(v) for k, v in means.items()}, df, label


# --- the plan file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiDraft:
    """One KPI as the wizard collected it."""

    metric: str
    owner: str | None = None
    baseline: float | None = None
    target: float | None = None
    deadline: dt.date | None = None
    warning: float | None = None
    critical: float | None = None
    supporting: tuple[str, ...] = ()
    grain: str = "month"


@dataclass(frozen=True)
class PlanDraft:
    """The whole plan as the wizard collected it; sources hold absolute paths."""

    name: str
    department: str
    statement: str
    kpis: tuple[KpiDraft, ...]
    sources: Mapping[str, Source] = field(default_factory=dict)
    placeholders: tuple[str, ...] = ()
    review_every: str = "quarter"
    review_last: dt.date | None = None

    @property
    def objective_id(self) -> str:
        return slug(self.statement)


def render_yaml(draft: PlanDraft, plans_dir: str | Path) -> str:
    """The plan file's text (:func:`kpinb.definitions.writer.plan_yaml`); sources relative to
    ``plans_dir`` when close by."""
    from kpinb.definitions.writer import plan_yaml, relative_paths

    sources = {}
    for name in sorted(draft.sources):
        s = draft.sources[name]
        spec = {key: getattr(s, key) for key in ("path", "url", "table", "query", "sheet", "format", "time")}
        spec["columns"] = dict(sorted(s.columns.items())) if s.columns else None
        spec["dimensions"] = list(s.dimensions) if s.dimensions is not None else None
        sources[name] = {k: v for k, v in spec.items() if v is not None}
    kpis = []
    for k in draft.kpis:
        kpi: dict[str, Any] = {"metric": k.metric, "objective": draft.objective_id, "owner": k.owner or None,
                               "grain": k.grain}  # fmt: skip
        if k.baseline is not None:
            kpi["baseline"] = {"value": k.baseline}
        if k.target is not None and k.deadline is not None:
            kpi["target"] = {"value": k.target, "by": k.deadline}
        if k.warning is not None or k.critical is not None:
            levels = (("warning", k.warning), ("critical", k.critical))
            kpi["thresholds"] = {key: v for key, v in levels if v is not None}
        if k.supporting:
            kpi["supporting"] = list(k.supporting)
        kpis.append({key: v for key, v in kpi.items() if v is not None})
    data = {
        "name": draft.name,
        "department": draft.department,
        "objectives": [{"id": draft.objective_id, "statement": draft.statement}],
        "sources": sources,
        "kpis": kpis,
        "review": {key: v for key, v in (("every", draft.review_every), ("last", draft.review_last)) if v is not None},
    }
    placeholders = {name: data["sources"][name].get("path") for name in draft.placeholders if name in sources}
    relative_paths(data, plans_dir, only_near=True)
    for name, path in placeholders.items():  # a placeholder keeps the path as the user will read it
        if path is not None:
            data["sources"][name]["path"] = path
    return plan_yaml(
        data,
        header="KPI plan written by the kpinb wizard. Edit freely; `kpinb check` reviews it.",
        notes={name: "not connected yet: point `path:` (a file) or `url:` + `table:` at your data"
               for name in draft.placeholders},
    )  # fmt: skip
