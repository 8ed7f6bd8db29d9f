"""Evaluate: one case (or organisation, or sample) on the durable_rules Rete engine."""
