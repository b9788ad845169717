"""Reporting: the results table, its text forms, figures, sweeps, and the research protocol's comparisons."""
