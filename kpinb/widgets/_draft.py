"""The wizard's plan draft: numbers typed by people, data sources found on disk, the YAML written.

No widgets here: the wizard holds the state, this module turns it into a plan file in the
shape DESIGN.md describes (it loads with :func:`kpinb.load_plan`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

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
    """A value as the wizard pre-fills it: 6 significant digits, percent metrics as ``12.34%``.

    >>> number_text(1043210.567), number_text(0.026371, "percent"), number_text(None)
    ('1043211', '2.6371%', '')
    """
    if value is None or not math.isfinite(value):
        return ""
    if unit == "percent":
        return f"{_plain(float(f'{value * 100:.5g}'))}%"
    return _plain(float(f"{value:.6g}"))


def _plain(x: float) -> str:
    """No exponent, no trailing zeros: 1043210.0 -> 1043210, 0.0264 -> 0.0264."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    text = f"{x:.12f}".rstrip("0").rstrip(".")
    return text or "0"


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


def _scalar(value: Any) -> str:
    """One YAML scalar, quoted only when needed (user text can never break the structure)."""
    if isinstance(value, bool) or value is None:
        return yaml.safe_dump(value).split("\n")[0]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return _plain(float(f"{float(value):.12g}"))
    text = yaml.safe_dump(str(value), default_flow_style=True, allow_unicode=True, width=10**9)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _flow(pairs: Iterable[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in pairs if v is not None) + "}"


def _relative(path: str, plans_dir: Path) -> str:
    """The path relative to the plan's folder when close by (plan and data move together), else absolute."""
    try:
        rel = os.path.relpath(path, plans_dir.resolve())
    except ValueError:  # another drive on Windows
        return path
    return rel if not rel.startswith(os.path.join("..", "..", "..")) else path


def render_yaml(draft: PlanDraft, plans_dir: str | Path) -> str:
    """The plan file's text, in the shape of DESIGN.md; sources relative to ``plans_dir`` when close."""
    plans_dir = Path(plans_dir)
    lines = [
        "# KPI plan written by the kpinb wizard. Edit freely; `kpinb check` reviews it.",
        f"name: {_scalar(draft.name)}",
        f"department: {_scalar(draft.department)}",
        "objectives:",
        f"  - id: {draft.objective_id}",
        f"    statement: {_scalar(draft.statement)}",
        "sources:",
    ]
    for name in sorted(draft.sources):
        s = draft.sources[name]
        lines.append(f"  {name}:")
        if name in draft.placeholders:
            lines.append("    # not connected yet: point `path:` (a file) or `url:` + `table:` at your data")
        if s.path is not None:
            lines.append(
                f"    path: {_scalar(_relative(s.path, plans_dir) if name not in draft.placeholders else s.path)}"
            )
        else:
            lines.append(f"    url: {_scalar(s.url)}")
            for key in ("table", "query"):
                if getattr(s, key) is not None:
                    lines.append(f"    {key}: {_scalar(getattr(s, key))}")
        for key in ("sheet", "format", "time"):
            if getattr(s, key) is not None:
                lines.append(f"    {key}: {_scalar(getattr(s, key))}")
        if s.columns:
            lines.append(f"    columns: {_flow(sorted(s.columns.items()))}")
        if s.dimensions is not None:
            lines.append(f"    dimensions: [{', '.join(_scalar(d) for d in s.dimensions)}]")
    lines.append("kpis:" if draft.kpis else "kpis: []")
    for k in draft.kpis:
        lines.append(f"  - metric: {k.metric}")
        lines.append(f"    objective: {draft.objective_id}")
        if k.owner:
            lines.append(f"    owner: {_scalar(k.owner)}")
        lines.append(f"    grain: {k.grain}")
        if k.baseline is not None:
            lines.append(f"    baseline: {_flow([('value', k.baseline)])}")
        if k.target is not None and k.deadline is not None:
            lines.append(f"    target: {_flow([('value', k.target), ('by', k.deadline)])}")
        if k.warning is not None or k.critical is not None:
            lines.append(f"    thresholds: {_flow([('warning', k.warning), ('critical', k.critical)])}")
        if k.supporting:
            lines.append(f"    supporting: [{', '.join(k.supporting)}]")
    lines.append(f"review: {_flow([('every', draft.review_every), ('last', draft.review_last)])}")
    return "\n".join(lines) + "\n"
