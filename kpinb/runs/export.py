"""HTML export: an executed notebook as one self-contained page (nbconvert with kpinb's template,
plotly.js inlined once, nothing loaded from the network)."""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

_BASIC_TRACES = frozenset({"scatter", "bar", "pie"})


_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{#- Offline, self-contained reports: no require.js, MathJax, mermaid or widget CDNs; plotly.js inline once. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style type="text/css">
body.jp-Notebook { max-width: 1200px; margin: 0 auto; }
.kpinb-sub { color: #555; margin-top: -0.5em; }
.jp-RenderedHTMLCommon table { font-size: 12px; }
</style>
{%- if resources.kpinb_plotly_js %}
<script type="text/javascript">{{ resources.kpinb_plotly_js }}</script>
{%- endif %}
{%- endblock html_head_css -%}
"""

_TRACES_RE = re.compile(r'data-kpinb-traces="([^"]*)"')
def _plotly_js(bundle: Literal["basic", "full"]) -> str:
    """plotly.js for a report's head (MathJax kept local: a report opens with no network)."""
    from kpinb.views.charts import plotly_js_source

    return "window.PlotlyConfig = {MathJaxConfig: 'local'};\n" + plotly_js_source(bundle)


def _bundle_needed(nb: Any) -> Literal["none", "basic", "full"]:
    """Which plotly.js the notebook's outputs need: none, the basic bundle, or the full one."""
    need: Literal["none", "basic", "full"] = "none"
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            body = (out.get("data") or {}).get("text/html")
            if not body:
                continue
            body = "".join(body) if isinstance(body, list) else str(body)
            if "Plotly.newPlot" not in body:
                continue
            markers = _TRACES_RE.findall(body)
            traces = {t for m in markers for t in m.split()}
            if not markers or traces - _BASIC_TRACES:
                return "full"
            need = "basic"
    return need


def export_html(nb: Any, show_code: bool = False) -> str:
    """Export an executed notebook to one self-contained HTML page.

    Code cells are hidden unless ``show_code``; prompts are hidden; plotly.js is inlined once
    (the small basic bundle when every figure uses scatter, bar or pie traces, else plotly's
    full bundle) and no script, style or font is loaded from the network.
    """
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    from kpinb.views.report import SUMMARY_MIMETYPE

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"kpinb_report.html.j2": _TEMPLATE})],
        template_file="kpinb_report.html.j2",
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    # interactive-only cells (widgets) say nothing in a static page
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"report-remove"}), enabled=True)
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        if cell.get("outputs"):  # the machine-readable summary is for the manifest, not the page
            cell["outputs"] = [o for o in cell["outputs"] if SUMMARY_MIMETYPE not in (o.get("data") or {})]
    bundle = _bundle_needed(nb)
    resources = {"kpinb_plotly_js": _plotly_js(bundle) if bundle != "none" else ""}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body
