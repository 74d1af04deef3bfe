"""Loading a plan for a report: the plan (pointed at a data folder), its KPIs computed and
judged once, in one :class:`Report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb.errors import PlanError

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.definitions.model import KPI, Metric, Plan
    from kpinb.scorecard import Scorecard


def with_data_dir(plan: Plan, data_dir: str | Path | None) -> Plan:
    """A copy of ``plan`` whose file sources are looked up in ``data_dir`` by file name.

    Lets the shipped example plans (and any plan) run against data generated elsewhere,
    e.g. ``kpinb sample-data --out /tmp/sample`` then ``data_dir="/tmp/sample"``. Database
    sources are unchanged; ``benchmarks:`` moves too when ``data_dir`` has that file.
    """
    if data_dir is None or str(data_dir) == "":
        return plan
    folder = Path(data_dir).expanduser().resolve()
    sources = {
        name: src.model_copy(update={"path": str(folder / Path(src.path).name)}) if src.path else src
        for name, src in plan.sources.items()
    }
    update: dict[str, Any] = {"sources": sources}
    if plan.benchmarks and (folder / Path(plan.benchmarks).name).is_file():
        update["benchmarks"] = str(folder / Path(plan.benchmarks).name)
    return plan.model_copy(update=update)


def load_for_report(plan: str | Path | Plan, data_dir: str | Path | None = None) -> Plan:
    """Load a plan file (checked) and point it at ``data_dir`` (see :func:`with_data_dir`)."""
    from kpinb.definitions.plan import load_plan

    return with_data_dir(load_plan(plan), data_dir)


@dataclass(frozen=True)
class Report:
    """Everything a report notebook shows for one plan, grain and period.

    ``frame`` is the engine's tidy frame (KPIs and supporting metrics, totals) up to
    ``period_end``; ``scorecard`` judges its KPIs once (:func:`kpinb.scorecard.evaluate`) and
    ``status`` is that scorecard's status frame; ``kpis`` are the plan's KPIs at ``grain`` and
    ``skipped`` the others (reported, not judged).
    """

    plan: Plan
    department: str
    grain: str
    period_end: pd.Timestamp | None
    frame: pd.DataFrame
    status: pd.DataFrame
    kpis: tuple[KPI, ...]
    skipped: tuple[KPI, ...] = ()
    registry: Mapping[str, Metric] = field(default_factory=dict)
    scorecard: Scorecard | None = field(default=None, repr=False)

    @property
    def title(self) -> str:
        """The plan's name (user text: escape before putting it in HTML)."""
        return self.plan.name

    @property
    def as_of(self) -> str | None:
        """``period_end`` as ``YYYY-MM-DD``, or None for the latest complete period."""
        return None if self.period_end is None else f"{self.period_end:%Y-%m-%d}"

    @property
    def judged(self) -> pd.Timestamp | None:
        """The start of the period the KPIs were judged on (None when nothing had data)."""
        import pandas as pd

        have = self.status["period_start"].dropna() if "period_start" in self.status else []
        return pd.Timestamp(have.iloc[0]) if len(have) else None

    def judged_on(self, metric_id: str) -> pd.Timestamp | None:
        """The period the scorecard judged ``metric_id`` on: a metric that settles late (a
        conversion rate) is judged on an earlier, complete period than the others, and every
        section shows it on that period; other metrics the report's :attr:`judged` period."""
        import pandas as pd

        if self.scorecard is not None:
            try:
                when = self.scorecard.get(metric_id).period_start
            except KeyError:
                when = None
            if when is not None and not pd.isna(when):
                return pd.Timestamp(when)
        return self.judged

    @property
    def judged_label(self) -> str:
        """The judged period as a label (``2025-06``, ``2025-Q2``), or ``no data``."""
        from kpinb.analytics.compare import period_label

        if self.judged is None:
            return "no data"
        return period_label(self.judged, self.grain, long=True, calendar=self.plan.calendar)

    @property
    def kpi_ids(self) -> list[str]:
        """The metric ids of the judged KPIs, in plan order."""
        return [k.metric for k in self.kpis]

    def unit(self, metric_id: str) -> str:
        """The display unit of a metric for :func:`kpinb.views.kit.format_value`: durations in their
        time unit, amounts in the plan's ``currency:`` code when it names one."""
        from kpinb.views.kit import display_unit

        m = self.registry.get(metric_id)
        if m is None:
            return "count"
        return display_unit(m, None, self.plan.currency)

    def chart_name(self, metric_id: str) -> str:
        """The name a chart of the report's grain gives the metric: a total (it sums over time)
        named for one period follows the grain ("Quarterly sales revenue" by quarter); averages
        and rates keep their name ("Monthly recurring revenue" is a monthly amount at any grain)."""
        from kpinb.definitions.analysis import additivity
        from kpinb.views.kit import name_at_grain

        m = self.registry.get(metric_id)
        total = m is not None and additivity(m, self.registry) in ("sum", "distinct")
        return name_at_grain(self.metric_name(metric_id), self.grain, total)

    def metric_name(self, metric_id: str) -> str:
        """The display name of a KPI or metric (the KPI's own ``name:`` first)."""
        for k in self.plan.kpis:
            if k.metric == metric_id and k.name:
                return k.name
        m = self.registry.get(metric_id)
        return m.name if m is not None else metric_id


STEADY_DIGITS = 12
"""Significant digits the report keeps of computed values (see :func:`_steady`)."""


def _steady(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its float columns rounded to :data:`STEADY_DIGITS` significant digits.

    DuckDB sums floats in parallel, so a grouped sum can differ in its last bit from one run
    to the next (measured: 1 ulp on the sample data by region). Reports, their figures and the
    forecasts fitted on them must not: stored notebook outputs are compared exactly.
    """
    import numpy as np
    import pandas as pd

    from kpinb._numbers import round_significant

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            v = round_significant(out[col].to_numpy(dtype=float, na_value=np.nan), STEADY_DIGITS)
            out[col] = pd.array(v, dtype=out[col].dtype)
    return out


def load(
    plan: str | Path | Plan,
    *,
    department: str | None = None,
    period_end: Any = None,
    grain: str = "month",
    data_dir: str | Path | None = None,
) -> Report:
    """Load ``plan``, compute its KPIs and supporting metrics at ``grain`` up to ``period_end``
    and judge each KPI's status (see :func:`kpinb.status.evaluate`).

    Parameters
    ----------
    plan : a plan file or :class:`~kpinb.model.Plan`.
    department : checked against the plan's ``department:`` (a mismatch is an error, so a
        batch never labels one department's numbers with another's name).
    period_end : judge the latest period that ended on this date; None: the latest complete
        period in the data.
    grain : the KPIs to judge are those set at this grain.
    data_dir : look the plan's data files up in this folder (see :func:`with_data_dir`).
    """
    import pandas as pd

    from kpinb import scorecard
    from kpinb.definitions.model import Grain
    from kpinb.definitions.plan import registry
    from kpinb.engine.cache import cached_compute

    p = load_for_report(plan, data_dir)
    if department and department != p.department:
        raise PlanError(
            f"{p.file or 'plan'}: department is {p.department!r}, but the report was asked for "
            f"{department!r}. Pass the plan of that department, or department={p.department!r}."
        )
    g = Grain(grain).value
    from kpinb.scorecard.evaluation import GRAINS

    # a KPI set per month can be viewed by quarter (re-grained); a quarterly one not by month
    kpis = tuple(k for k in p.kpis if GRAINS.index(k.grain.value) <= GRAINS.index(g))
    skipped = tuple(k for k in p.kpis if k not in kpis)
    if not kpis:
        raise PlanError(
            f"{p.file or 'plan'}: no KPI is set at grain {g!r} or finer (they are at "
            f"{', '.join(sorted({k.grain.value for k in p.kpis})) or 'none'}). Pass grain= one of those."
        )
    end = pd.Timestamp(period_end).normalize() if period_end not in (None, "") else None
    ids = list(dict.fromkeys(m for k in kpis for m in (k.metric, *k.supporting)))
    frame = _steady(cached_compute(p, metrics=ids, grain=g, end=end))
    card = scorecard.evaluate(p, frame, as_of=end, kpis=[k.metric for k in kpis])
    return Report(
        plan=p, department=p.department, grain=g, period_end=end, frame=frame, status=card.status_frame(),
        kpis=kpis, skipped=skipped, registry=registry(p), scorecard=card,
    )  # fmt: skip
