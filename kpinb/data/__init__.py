"""Data: open a plan's sources with canonical column names, and the synthetic sample data."""
