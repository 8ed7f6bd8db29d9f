"""Aggregate: counts, percentages, groups and gaps across a sample."""
