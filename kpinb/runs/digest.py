"""The digest without notebooks (``kpinb digest``): every plan judged, one HTML page and one
chat payload written atomically, and optionally posted to a webhook."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kpinb.errors import KpinbError


def run_digest(
    plans: Sequence[str | Path],
    out: str | Path,
    *,
    json_path: str | Path | None = None,
    webhook: str | None = None,
    data_dir: str | Path | None = None,
    period_end: str | None = None,
    include_partial: bool = False,
    title: str = "KPI digest",
    today: dt.date | None = None,
) -> tuple[str, int]:
    """Judge each plan (each KPI at its own grain on its latest complete period ended by
    ``period_end``), write the digest's HTML to ``out`` (and its payload to ``json_path``), post
    the payload to ``webhook`` (:func:`kpinb.outputs.alerts.post`: 30 s in all).

    A plan that cannot be evaluated (missing data, a plan mistake) shows as not evaluated with
    the reason and the others are still digested. Returns a line saying what was written and the
    exit code: 1 when a plan could not be evaluated (so a scheduler notices), else 0.
    """
    from kpinb._io import write_atomic
    from kpinb.outputs import digest
    from kpinb.outputs.alerts import post
    from kpinb.views.digest import to_html

    if not plans:
        raise KpinbError("no plan to digest: give --plan PLAN or --plans-dir DIR.")
    parts = [_department(Path(p), data_dir, period_end, include_partial) for p in plans]
    made = (today or dt.date.today()).isoformat()
    d = digest.Digest(title, made, tuple(parts))
    payload = digest.to_payload(d)
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, indent=1)
    write_atomic(out, to_html(d))
    written = [str(out)]
    if json_path is not None:
        write_atomic(json_path, text + "\n")
        written.append(str(json_path))
    line = f"digest of {len(parts)} department(s) written to {', '.join(written)}"
    if webhook:
        status = post(payload, webhook, what="digest")
        line += f"; posted to the webhook (HTTP {status})"
    failed = [Path(p).name for p, part in zip(plans, parts, strict=True) if part.problem]  # the file people fix
    if failed:
        line += f"; not evaluated: {', '.join(failed)}"
    return line, int(bool(failed))


def _department(path: Path, data_dir: Any, period_end: str | None, include_partial: bool) -> Any:
    import pandas as pd

    from kpinb import scorecard
    from kpinb.definitions.notes import read_notes
    from kpinb.engine.query import compute
    from kpinb.outputs import digest
    from kpinb.views.report import load_for_report

    try:
        plan = load_for_report(path, data_dir)
    except KpinbError as e:
        return digest.Department(path.stem, path.stem, problem=str(e).splitlines()[0])
    end = pd.Timestamp(period_end).normalize() if period_end else None
    by_grain: dict[str, list[str]] = {}
    for k in plan.kpis:
        by_grain.setdefault(k.grain.value, []).append(k.metric)
    try:
        cards = []
        for g, ids in by_grain.items():
            # with their supporting metrics: an unusual value there is an early warning
            wanted = list(dict.fromkeys([*ids, *(m for k in plan.kpis if k.metric in ids for m in k.supporting)]))
            frame = compute(plan, metrics=wanted, grain=g, end=end)
            cards.append(scorecard.evaluate(plan, frame, as_of=end, kpis=ids, include_partial=include_partial))
    except KpinbError as e:
        return digest.Department(plan.name, plan.department, problem=str(e).splitlines()[0])
    try:
        notes = read_notes(plan)
    except KpinbError:  # a broken notes file is kpinb check's to report; the digest goes out without it
        notes = ()
    return digest.department(plan, cards, notes=notes)
