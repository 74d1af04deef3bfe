"""Definitions: typed models, the catalog, formulas, plan files and what a metric needs."""
