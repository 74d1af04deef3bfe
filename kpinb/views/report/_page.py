"""Display helpers of the report notebooks: the plotly renderer and pandas options (:func:`setup`),
escaped headings, notes, tables and code, :func:`show` for figures, and the small formatters
the section modules share.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kpinb.views.kit import esc

if TYPE_CHECKING:
    from kpinb.views.report._load import Report


RENDERER_ENV = "KPINB_PLOTLY_RENDERER"
"""Environment variable naming the plotly renderer :func:`setup` selects (``kpinb run`` sets
it to :data:`REPORT_RENDERER` for the kernels whose notebooks become HTML reports)."""

REPORT_RENDERER = "kpinb_report"
"""A plotly renderer that outputs a ``text/html`` div and script *without* plotly.js; the
HTML export embeds plotly.js once per report (see :mod:`kpinb.runs.export`)."""

STORED_RENDERER = "plotly_mimetype"
"""The renderer for interactive and stored notebooks: compact JSON that JupyterLab draws."""

TRACES_ATTRIBUTE = "data-kpinb-traces"
"""Attribute of the wrapper div :data:`REPORT_RENDERER` writes: the figure's trace types, so
the exporter can embed a plotly.js bundle that has them."""


# --- set-up -------------------------------------------------------------------------------------


def setup(renderer: str | None = None) -> None:
    """Select the plotly renderer and pandas display options for a report notebook.

    The renderer is ``renderer``, else ``$KPINB_PLOTLY_RENDERER``, else ``plotly_mimetype``
    (small stored notebooks that JupyterLab renders); ``plotly.io.renderers.default`` tells
    which was chosen.
    """
    import pandas as pd
    import plotly.io as pio

    chosen = renderer or os.environ.get(RENDERER_ENV) or STORED_RENDERER
    if REPORT_RENDERER not in pio.renderers:
        pio.renderers[REPORT_RENDERER] = _report_renderer()
    pio.renderers.default = chosen
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 120)


def _report_renderer() -> Any:
    from plotly.io._base_renderers import MimetypeRenderer

    class ReportRenderer(MimetypeRenderer):
        """plotly figures as HTML without plotly.js (the export embeds it once per report)."""

        def to_mimebundle(self, fig_dict: dict) -> dict[str, str]:
            import plotly.io as pio

            traces = sorted({str(t.get("type", "scatter")) for t in fig_dict.get("data", [])})
            body = pio.to_html(
                fig_dict, include_plotlyjs=False, full_html=False, include_mathjax=False,
                default_width="100%", default_height=420, validate=False,
                config={"displaylogo": False, "responsive": True},
            )  # fmt: skip
            marker = esc(" ".join(traces))
            return {"text/html": f'<div class="kpinb-plotly" {TRACES_ATTRIBUTE}="{marker}">{body}</div>'}

    return ReportRenderer()


# --- display helpers ----------------------------------------------------------------------------


def heading(text: str, level: int = 2, sub: str | None = None) -> Any:
    """An escaped HTML heading (user text such as plan and KPI names never becomes markup)."""
    from IPython.display import HTML

    level = min(max(int(level), 1), 6)
    out = f"<h{level}>{esc(text)}</h{level}>"
    if sub:
        out += f'<p class="kpinb-sub">{esc(sub)}</p>'
    return HTML(out)


def note(text: str, kind: str = "info") -> Any:
    """A short escaped note box (``info``, ``warning`` or ``error``)."""
    from IPython.display import HTML

    colours = {"info": "#e8f0fe", "warning": "#fff4e5", "error": "#fdecea"}
    bg = colours.get(kind, colours["info"])
    return HTML(f'<div style="background:{bg};padding:.5em .8em;border-radius:4px">{esc(text)}</div>')


# --- tables, figures, code ------------------------------------------------------------------


def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    """A plain HTML table; every cell is text and is escaped (numbers: format them first)."""
    from kpinb.views.kit import table

    cap = f'<div style="color:#5f6368">{esc(caption)}</div>' if caption else ""
    return cap + table(headers, [[esc(c) for c in row] for row in rows], "kpinb-table")


def folded(summary: str, body: str) -> str:
    """``body`` (HTML) inside a closed ``<details>`` whose ``summary`` (text, escaped) opens it:
    the table behind a chart, there for whoever wants the numbers, not a second visual."""
    return f'<details class="kpinb-details"><summary>{esc(summary)}</summary>{body}</details>'


def _html(body: str) -> Any:
    from IPython.display import HTML

    return HTML(body)


def _fmt(r: Report, metric: str, value: Any) -> str:
    from kpinb.views.kit import format_value

    return format_value(value, r.unit(metric))


def _pct(x: Any) -> str:
    v = _num(x)
    return "–" if v is None else f"{v:+.1f}%"


def show(figures: Sequence[Any]) -> None:
    """Display each figure (with the renderer :func:`setup` chose)."""
    from IPython.display import display

    for f in figures:
        display(f)


def code_block(text: str, caption: str | None = None) -> Any:
    """Text (YAML, a path) shown verbatim and escaped."""
    cap = f"<p>{esc(caption)}</p>" if caption else ""
    return _html(f'{cap}<pre style="background:#f8f9fa;padding:8px;font-size:12px">{esc(text)}</pre>')


# --- small formatters ----------------------------------------------------------------------


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _day(x: Any) -> str | None:
    import pandas as pd

    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return None
    return f"{pd.Timestamp(x):%Y-%m-%d}"
