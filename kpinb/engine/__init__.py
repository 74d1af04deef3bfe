"""Engine: the calendar, formulas compiled to grouped queries, and the dashboard's aggregate cube."""
