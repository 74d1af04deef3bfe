"""HTML export: an executed notebook as one self-contained page (nbconvert with kpinb's template,
plotly.js inlined once, nothing loaded from the network)."""

from __future__ import annotations

import copy
import re
import secrets
import threading
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
.jp-RenderedHTMLCommon { line-height: 1.45; }
.jp-RenderedHTMLCommon h1 { margin-bottom: .2em; }
.kpinb-sub { color: #555; margin-top: 0; }
.jp-RenderedHTMLCommon table { font-size: 12px; }
.kpinb-age { margin: .4em 0 .8em; color: #3c4043; }
/* contents: one line of links under the title */
.kpinb-toc { margin: .6em 0 1.2em; padding: .5em .8em; background: #f8f9fa; border-radius: 6px; font-size: 13px; }
.kpinb-toc ol { display: inline; margin: 0; padding: 0; list-style: none; }
.kpinb-toc li { display: inline; }
.kpinb-toc li + li::before { content: "·"; margin: 0 .6em; color: #9aa0a6; }
.kpinb-toc b { margin-right: .8em; }
/* a cell's charts side by side: one visual per idea, not one 420 px column each */
.jp-OutputArea:has(> .jp-OutputArea-child + .jp-OutputArea-child .kpinb-plotly) {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 0 16px;
}
.jp-OutputArea-child:has(.kpinb-plotly) { min-width: 0; }
/* at most the printable width of A4 (charts keep the width they were drawn at when printed) */
.kpinb-plotly { max-width: 680px; overflow: hidden; }
/* the table behind a chart, for whoever wants the numbers */
details.kpinb-details { margin: .2em 0 1em; }
details.kpinb-details > summary { cursor: pointer; color: #1a73e8; font-size: 13px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body.jp-Notebook { max-width: none; padding: 0; }
  .kpinb-toc, details.kpinb-details, .anchor-link { display: none !important; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
  .kpinb-card, .kpinb-plotly, tr, .kpinb-age { break-inside: avoid; page-break-inside: avoid; }
  .jp-OutputArea:has(> .jp-OutputArea-child + .jp-OutputArea-child .kpinb-plotly) { display: block; }
}
</style>
{%- if resources.kpinb_plotly_js %}
<script type="text/javascript">{{ resources.kpinb_plotly_js }}</script>
{%- endif %}
{%- endblock html_head_css -%}
"""

_TRACES_RE = re.compile(r'data-kpinb-traces="([^"]*)"')
# a markdown section heading as nbconvert writes it: id, text, then its anchor link
_SECTION_RE = re.compile(r'<h2 id="([^"<>]+)">(.*?)<a class="anchor-link"', re.S)
_TAG_RE = re.compile(r"<[^>]+>")


def with_contents(body: str) -> str:
    """``body`` with a table of contents (its markdown sections, ``##`` headings) before the first
    section; unchanged with fewer than two sections. The headings' text and ids are nbconvert's,
    already escaped."""
    found = list(_SECTION_RE.finditer(body))
    if len(found) < 2:
        return body
    items = "".join(f'<li><a href="#{m.group(1)}">{_TAG_RE.sub("", m.group(2)).strip()}</a></li>' for m in found)
    nav = f'<nav class="kpinb-toc" aria-label="Contents"><b>Contents</b><ol>{items}</ol></nav>'
    at = found[0].start()
    return body[:at] + nav + body[at:]


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


_PLOTLY_SLOT = f"/* kpinb: plotly.js {secrets.token_hex(16)} */"
"""Where plotly.js goes in the exported page: filled in after nbconvert, whose HTML exporter
parses the whole page with BeautifulSoup (plotly.js made that most of an export). Random, so no
text in a notebook can be mistaken for it."""

_local = threading.local()


def _exporter(show_code: bool) -> Any:
    """This thread's HTML exporter for ``show_code`` (building one compiles its Jinja templates:
    half of an export)."""
    exporters = _local.__dict__.setdefault("exporters", {})
    if show_code not in exporters:
        import jinja2
        from nbconvert import HTMLExporter
        from nbconvert.preprocessors import TagRemovePreprocessor

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
        exporters[show_code] = exporter
    return exporters[show_code]


def export_html(nb: Any, show_code: bool = False) -> str:
    """Export an executed notebook to one self-contained HTML page.

    Code cells are hidden unless ``show_code``; prompts are hidden; cells tagged ``report-remove``
    (words to the analyst running the notebook) are left out; a table of contents lists the
    sections; a print stylesheet paginates it on paper; plotly.js is inlined once
    (the small basic bundle when every figure uses scatter, bar or pie traces, else plotly's
    full bundle) and no script, style or font is loaded from the network.
    """
    from kpinb.views.report import SUMMARY_MIMETYPE

    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        if cell.get("outputs"):  # the machine-readable summary is for the manifest, not the page
            cell["outputs"] = [o for o in cell["outputs"] if SUMMARY_MIMETYPE not in (o.get("data") or {})]
    bundle = _bundle_needed(nb)
    resources = {"kpinb_plotly_js": _PLOTLY_SLOT if bundle != "none" else ""}
    body, _ = _exporter(show_code).from_notebook_node(nb, resources=resources)
    if bundle != "none":
        head, slot, rest = body.partition(_PLOTLY_SLOT)  # the first one: the head comes before any output
        body = head + _plotly_js(bundle) + rest if slot else body
    return with_contents(body)
