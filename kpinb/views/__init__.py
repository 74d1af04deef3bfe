"""Views: KPI cards, plotly charts, notebook displays and the report notebooks' helpers."""
