"""Engine: the calendar, formulas compiled to grouped queries, and the dashboard's aggregate cube."""

RESULT_COLUMNS = ("metric", "period_start", "value", "numerator", "denominator", "complete")
"""The columns of :func:`kpinb.compute`'s tidy frame besides its ``by`` dimensions (which sit
after ``period_start``); every module that tells dimensions from values reads this."""

VALUE_COLUMNS = ("value", "numerator", "denominator")
"""The measured columns of that frame (a ratio's numerator and denominator beside its value)."""
