"""Runs: template notebooks executed per department, exported reports, manifest and index."""
