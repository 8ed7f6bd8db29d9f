"""Foundations every stage uses: diagnostics, where bundled data lives, logging, templating."""
