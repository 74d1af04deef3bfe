"""Outputs that read the judgements: alerts (as data, JSON or a webhook message), written
insights and the digest (an email-safe page and a chat payload)."""
