"""What a batch leaves beside its reports: ``manifest.json`` (per run: parameters, inputs, versions,
timings, statuses) and ``index.html`` (every report with its KPI statuses)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kpinb.runs.specs import RunResult
from kpinb.views.kit import NEUTRAL, STATUS_STYLE, esc, pill, table


def _rel(path: Path | None, out: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return str(path)


def manifest_text(
    runs: Sequence[RunResult], out: Path, base: Mapping[str, Any], jobs: int, show_code: bool,
    vers: Mapping[str, Any], duration: float, complete: bool = True,
) -> str:  # fmt: skip
    def jsonable(x: Any) -> Any:
        if isinstance(x, (dt.date, dt.datetime)):
            return x.isoformat()
        if isinstance(x, Path):
            return str(x)
        return x

    doc = {
        "kpinb_manifest": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "out_dir": str(out),
        "parameters": dict(base),
        "jobs": jobs,
        "show_code": show_code,
        "complete": complete,
        "duration_s": duration,
        "ok": all(r.status == "ok" for r in runs),
        "runs": [
            {
                "template": r.spec.name, "department": r.spec.department, "status": r.status,
                "parameters": {k: jsonable(v) for k, v in r.parameters.items()},
                "notebook": _rel(r.notebook, out), "report": _rel(r.report, out), "report_bytes": r.report_bytes,
                "duration_s": r.duration_s, "show_code": show_code, "reused": r.reused,
                "error": None if r.error is None else {"ename": r.error.ename, "evalue": r.error.evalue,
                                                       "cell_index": r.error.cell_index},
                "kpis": list(r.kpis), "alerts": None if r.alerts is None else list(r.alerts),
                "objectives": list(r.objectives),
                "inputs": list(r.inputs), "versions": dict(vers),
            }
            for r in runs
        ],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def _count(n: int, noun: str) -> str:
    """``1 report``, ``3 reports``, ``0 reports``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _chips(kpis: Sequence[Mapping[str, Any]]) -> str:
    """Each KPI as the kit's status pill and its name; the status reason shows on hover."""
    out = []
    for k in kpis:
        status = str(k.get("status"))
        label, colour, background = STATUS_STYLE.get(status, (status, NEUTRAL, "#f1f3f4"))
        out.append(
            f'<span class="chip" title="{esc(str(k.get("reason", "")))}">{pill(label, colour, background)} '
            f"{esc(str(k.get('name', k.get('metric', ''))))}</span>"
        )
    return "".join(out) or "–"


def _company(departments: Mapping[str, Sequence[RunResult]]) -> str:
    """The company view: every department's objectives with their roll-up (from the first report
    of each department that judged them), or nothing when no plan states objectives."""
    from kpinb._numbers import format_value
    from kpinb.views.kit import STATUS_STYLE, pill

    rows = []
    for dep, group in departments.items():
        first = next((r for r in group if r.objectives), None)
        for o in first.objectives if first is not None else ():
            status = str(o.get("status"))
            label, color, background = STATUS_STYLE.get(status, (status, "#5f6368", "#f1f3f4"))
            progress = o.get("progress")
            shown = "–" if progress is None else format_value(min(max(float(progress), 0.0), 1.0), "percent")
            badge = pill(label, color, background)
            rows.append([esc(dep), esc(o.get("statement")), esc(shown), badge, esc(o.get("reason"))])
    if not rows:
        return ""
    return "<h2>Objectives across departments</h2>" + table(
        ["department", "objective", "progress", "status", "why"], rows, "kpinb-objectives"
    )


def index_page(runs: Sequence[RunResult], out: Path, base: Mapping[str, Any]) -> str:
    """One row per department: its reports (failures marked) and its KPI statuses (once when
    every report judged them alike, else per report). Every user string is escaped."""
    e = esc
    rows = []
    departments: dict[str, list[RunResult]] = {}
    order = {t: i for i, t in enumerate(("kpi_dashboard", "benchmark_comparison", "kpi_review", "objective_to_kpi"))}
    for r in sorted(runs, key=lambda r: (r.spec.department, order.get(r.spec.name, len(order)), r.spec.name)):
        departments.setdefault(r.spec.department, []).append(r)
    for dep, group in departments.items():
        links = []
        for r in group:
            if r.status == "ok" and r.report is not None:
                href = urllib.parse.quote(_rel(r.report, out) or "")
                links.append(f'<a href="{e(href)}">{e(r.spec.name)}</a>')
            else:
                href = urllib.parse.quote(_rel(r.notebook, out) or "")
                kept = f' (<a href="{e(href)}">notebook</a>)' if r.notebook is not None else " (no notebook kept)"
                links.append(
                    f'<span class="failed">{e(r.spec.name)} failed</span>{kept}<div class="err">{e(str(r.error))}</div>'
                )
        judged = [r for r in group if r.kpis]
        distinct = {json.dumps(list(r.kpis), sort_keys=True, default=str) for r in judged}
        if len(distinct) <= 1:
            status = _chips(judged[0].kpis) if judged else "–"
        else:
            status = "".join(f"<div><i>{e(r.spec.name)}:</i> {_chips(r.kpis)}</div>" for r in judged)
        seconds = sum(r.duration_s for r in group)
        rows.append([e(dep), "<br>".join(links), status, f"{seconds:.1f}s"])
    company = _company(departments)
    n_fail = sum(r.status != "ok" for r in runs)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    period = base.get("period_end") or "latest complete period"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KPI reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table.kpinb-index {{ width: 100%; }}
.chip {{ display: inline-block; margin: .1em .4em .1em 0; }}
.failed {{ color: #c62828; font-weight: bold; }} .err {{ font-size: 85%; color: #555; }}
</style></head>
<body><h1>KPI reports</h1>
<p>{_count(len(runs), "report")}, {n_fail} failed; KPIs judged on: {e(str(period))}; grain: {e(str(base.get("grain")))};
generated {e(when)}. Details in <a href="manifest.json">manifest.json</a>.</p>
{company}
{table(["department", "reports", "KPI status", "time"], rows, "kpinb-index")}
</body></html>
"""
