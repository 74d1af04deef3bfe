"""Clicks on the dashboard's cards and bars, sent to the kernel (DESIGN.md, "Clicks").

The cards are plain HTML and the charts plotly figures drawn by JupyterLab's (or Voilà's) own
plotly renderer, so neither talks to the kernel. This invisible widget listens inside its
dashboard: a click on a card sends ``{"kind": "card", "metric": ...}``; a click on a bar of the
breakdown chart (plotly's ``plotly_click`` event, attached to each chart as it is drawn) sends
``{"kind": "bar", "member": ...}``; a click on a node of the metric tree that is a metric (its
``customdata``; plotly's ``plotly_click`` on the tree's boxes) sends ``{"kind": "node", "metric": ...}``,
which focuses it as a card click does (the plan's and objectives' boxes carry no metric).
A few lines of JavaScript, not plotly.js: the page keeps receiving only the figures' JSON.
"""

from __future__ import annotations

import anywidget

__all__ = ["ClickBridge"]

_ESM = """
function render({ model, el }) {
  el.style.display = "none";
  const root = () => el.closest(".kpinb-dashboard");
  const onClick = (event) => {
    const scope = root();
    const card = event.target.closest ? event.target.closest(".kpinb-card[data-metric]") : null;
    if (scope && card && scope.contains(card)) {
      model.send({ kind: "card", metric: card.dataset.metric });
    }
  };
  const attach = () => {
    const scope = root();
    if (!scope) return;
    scope.querySelectorAll(".kpinb-fig-breakdown .js-plotly-plot").forEach((gd) => {
      if (gd.dataset.kpinbClicks || typeof gd.on !== "function") return;
      gd.dataset.kpinbClicks = "1";
      gd.on("plotly_click", (data) => {
        const point = data && data.points && data.points[0];
        if (point && point.y !== undefined) model.send({ kind: "bar", member: String(point.y) });
      });
    });
    scope.querySelectorAll(".kpinb-fig-tree .js-plotly-plot").forEach((gd) => {
      if (gd.dataset.kpinbClicks || typeof gd.on !== "function") return;
      gd.dataset.kpinbClicks = "1";
      gd.on("plotly_click", (data) => {
        const point = data && data.points && data.points[0];
        if (point && point.customdata) model.send({ kind: "node", metric: String(point.customdata) });
      });
    });
  };
  let observer = null;
  const start = () => {
    const scope = root();
    if (!scope) return setTimeout(start, 200);  // not in the page yet
    scope.addEventListener("click", onClick);
    observer = new MutationObserver(attach);
    observer.observe(scope, { childList: true, subtree: true });
    attach();
  };
  start();
  return () => {
    const scope = root();
    if (scope) scope.removeEventListener("click", onClick);
    if (observer) observer.disconnect();
  };
}
export default { render };
"""


class ClickBridge(anywidget.AnyWidget):
    """Sends the clicks on its dashboard's cards, breakdown bars and tree nodes to the kernel (``on_msg``)."""

    _esm = _ESM
