"""Checks: SMART and common-mistake rules of a plan, and data-quality checks of its sources."""
