"""Outputs that read the judgements: alerts (as data, JSON or a webhook message)."""
