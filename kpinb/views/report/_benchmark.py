"""The benchmark pieces of a report: external benchmarks, peers (members of a dimension) and the
KPIs' own history.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpinb.views.kit import human_name
from kpinb.views.report._page import _day, _fmt, _html, _num, _pct, table_html
from kpinb.views.report._page import folded as folded_html

if TYPE_CHECKING:
    import pandas as pd

    from kpinb.views.report._load import Report


def benchmark_file(r: Report) -> Path | None:
    """The plan's ``benchmarks:`` table (resolved), or None when it has none or the file is missing."""
    if not r.plan.benchmarks:
        return None
    path = r.plan.resolve(r.plan.benchmarks)
    return path if path.is_file() else None


def external(r: Report) -> pd.DataFrame:
    """The KPIs and supporting metrics against the plan's benchmark table (:func:`kpinb.benchmark.external`);
    an empty frame when the plan has no table."""
    import pandas as pd

    from kpinb.analytics.benchmark import external as external_

    path = benchmark_file(r)
    if path is None:
        return pd.DataFrame(columns=["metric", "value", "p25", "p50", "p75", "percentile", "illustrative"])
    # each metric on the period it is judged on (a late-settling rate on its last complete one)
    by_period: dict[Any, list[str]] = {}
    for mid in dict.fromkeys(r.frame["metric"]):
        by_period.setdefault(r.judged_on(str(mid)), []).append(str(mid))
    parts = [
        external_(r.frame[r.frame["metric"].isin(ids)], path, directions=r.plan, period=when)
        for when, ids in by_period.items()
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return external_(r.frame, path, directions=r.plan, period=r.judged)
    order = {m: i for i, m in enumerate(dict.fromkeys(r.frame["metric"]))}
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("metric", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)


def _members_add_up(r: Report, metric: str, part: pd.DataFrame) -> bool:
    """True when the members' values add up to the whole in the judged period, as observed in
    the data (amounts, counts, and MRR averaged over snapshot days, which
    :func:`kpinb.definitions.analysis.additivity` cannot promise from the formula alone)."""
    import pandas as pd

    when = r.judged_on(metric)
    whole = r.frame[(r.frame["metric"] == metric) & (r.frame["period_start"] == when)]["value"]
    members = part[part["period_start"] == when]["value"]
    if whole.empty or pd.isna(whole.iloc[0]) or members.notna().sum() == 0:
        return False
    total, value = float(members.sum()), float(whole.iloc[0])
    return abs(total - value) <= 1e-6 * max(abs(value), 1.0)


def peers(r: Report, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Each KPI's members of its dimension against each other (:func:`kpinb.benchmark.peers`);
    the reference is the whole's value for ratios and averages, the median member for sums.
    One frame with a ``dimension`` and a ``member`` column."""
    import pandas as pd

    from kpinb.analytics.benchmark import peers as peers_

    parts = []
    for dim, frame in frames.items():
        for mid, part in frame.groupby("metric", sort=False):
            # a member of a sum is not comparable with the whole: compare it with the median member
            whole = None if _members_add_up(r, str(mid), part) else r.frame
            p = peers_(part, dim, period=r.judged_on(str(mid)), overall=whole, directions=r.plan)
            parts.append(p.rename(columns={dim: "member"}).assign(dimension=dim))
    if not parts:
        return pd.DataFrame(columns=["metric", "dimension", "member", "value", "rank", "gap_to_overall"])
    return pd.concat(parts, ignore_index=True)


def history(r: Report) -> pd.DataFrame:
    """The KPIs against their own history (:func:`kpinb.benchmark.history`)."""
    import pandas as pd

    from kpinb.analytics.benchmark import history as history_

    parts = [
        history_(r.frame[r.frame["metric"] == m], period=r.judged_on(m), directions=r.plan) for m in r.kpi_ids
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return history_(r.frame[r.frame["metric"].isin(r.kpi_ids)], period=r.judged, directions=r.plan)
    return pd.concat(parts, ignore_index=True)


def benchmark_summary(r: Report, ext: pd.DataFrame, peer: pd.DataFrame, hist: pd.DataFrame) -> Any:
    """The three comparisons side by side, one row per KPI, every gap read as "positive = better"."""
    rows = []
    for k in r.kpis:
        m = k.metric
        e = ext[ext["metric"] == m]
        if len(e):
            x = e.iloc[0]
            tag = " (illustrative)" if bool(x.get("illustrative", False)) else ""
            ext_text = f"better than {x['better_than_pct']:.0f}% · median {_fmt(r, m, x['p50'])}{tag}"
        else:
            ext_text = "no benchmark row"
        p = peer[(peer["metric"] == m) & peer["value"].notna()]
        if len(p):
            best = p.sort_values("rank").iloc[0]
            worst = p.sort_values("rank").iloc[-1]
            peer_text = (
                f"best {best['member']} {_fmt(r, m, best['value'])}, weakest {worst['member']} "
                f"{_fmt(r, m, worst['value'])} ({p.iloc[0]['dimension']})"
            )
        else:
            peer_text = "no breakdown"
        h = hist[hist["metric"] == m]
        if len(h):
            y = h.iloc[0]
            hist_text = f"vs last year {_pct(y['gap_to_last_year_pct'])} · best before {_fmt(r, m, y['best_value'])}"
        else:
            hist_text = "no history"
        value = r.status.loc[r.status["metric"] == m, "value"]
        rows.append([r.metric_name(m), _fmt(r, m, value.iloc[0] if len(value) else None), ext_text, peer_text,
                     hist_text])  # fmt: skip
    headers = ["KPI", "value", "external benchmark", "peers (best / weakest member)", "own history"]
    return _html(table_html(headers, rows))


def external_table(r: Report, ext: pd.DataFrame) -> Any:
    """The external comparison formatted: quartiles, position, gaps (positive = better), source."""
    rows = [
        [r.metric_name(x["metric"]), _fmt(r, x["metric"], x["value"]), _fmt(r, x["metric"], x["p25"]),
         _fmt(r, x["metric"], x["p50"]), _fmt(r, x["metric"], x["p75"]), f"{x['better_than_pct']:.0f}%",
         _fmt(r, x["metric"], x["gap_to_median"]), str(x["source"]) + (" ⚠" if x["illustrative"] else "")]
        for x in ext.to_dict("records")
    ]  # fmt: skip
    headers = ["metric", "value", "p25", "median", "p75", "better than", "gap to median", "source"]
    return _html(table_html(headers, rows) if rows else "<p>The plan names no benchmark table.</p>")


def peers_table(r: Report, peer: pd.DataFrame, folded: bool = False) -> Any:
    """The peer comparison formatted: rank and gap to the whole per member; ``folded``: inside a
    closed ``<details>`` (the numbers behind the peer charts)."""
    rows = [
        [r.metric_name(x["metric"]), human_name(x["dimension"]), x["member"], _fmt(r, x["metric"], x["value"]),
         "–" if _num(x["rank"]) is None else str(int(x["rank"])), _fmt(r, x["metric"], x["overall"]),
         "whole" if x["overall_kind"] == "given" else "median member", _fmt(r, x["metric"], x["gap_to_overall"])]
        for x in peer.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "dimension", "member", "value", "rank", "reference", "reference is", "gap to reference"]
    if not rows:
        return _html("<p>No KPI can be broken down by a dimension.</p>")
    body = table_html(headers, rows)
    return _html(folded_html("The peers as a table: rank and gap to the reference", body) if folded else body)


def history_table(r: Report, hist: pd.DataFrame, folded: bool = False) -> Any:
    """The comparison with the KPI's own past formatted; ``folded``: inside a closed ``<details>``."""
    rows = [
        [r.metric_name(x["metric"]), _label(r, x["period_start"]), _fmt(r, x["metric"], x["value"]),
         _fmt(r, x["metric"], x["last_year_value"]), _pct(x["gap_to_last_year_pct"]), _label(r, x["best_period"]),
         _fmt(r, x["metric"], x["best_value"]), _fmt(r, x["metric"], x["gap_to_best"])]
        for x in hist.to_dict("records")
    ]  # fmt: skip
    headers = ["KPI", "period", "value", "last year", "vs last year", "best period before", "best value",
               "gap to best"]  # fmt: skip
    body = table_html(headers, rows)
    return _html(folded_html("Against its past, as a table", body) if folded else body)


def _label(r: Report, when: Any) -> str:
    """A period's label for people at the report's grain (``Dec 2025``), ``–`` when there is none."""
    if _day(when) is None:
        return "–"
    from kpinb.analytics.compare import period_label

    return period_label(when, r.grain, long=True, calendar=r.plan.calendar)


def external_figure(ext: pd.DataFrame) -> list[Any]:
    """Where each metric stands in the external benchmark's range (none without a table)."""
    from kpinb.views.charts import benchmark_position

    return [benchmark_position(ext, title="Against the external benchmark")] if len(ext) else []


def peer_figures(r: Report, peer: pd.DataFrame) -> list[Any]:
    """One chart per KPI: the members of its dimension against each other."""
    from kpinb.views.charts import benchmark_position

    figs = []
    for (m, dim), part in peer.groupby(["metric", "dimension"], sort=False):
        frame = part.drop(columns=["dimension"]).rename(columns={"member": dim})
        title = f"{r.metric_name(str(m))}: {human_name(str(dim), capital=False)} against each other"
        figs.append(benchmark_position(frame, title=title, unit=r.unit(str(m))))
    return figs


def history_figures(r: Report, hist: pd.DataFrame) -> list[Any]:
    """One chart per KPI: the latest value next to last year's and the best before it."""
    from kpinb.views.charts import benchmark_position

    return [
        benchmark_position(hist[hist["metric"] == m], title=f"{r.metric_name(str(m))}: against its past",
                           unit=r.unit(str(m)))
        for m in dict.fromkeys(hist["metric"])
    ]  # fmt: skip
