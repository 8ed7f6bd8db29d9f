"""Tools for rule authors and benchmarks, built on the stages: lint, rule tests, diff, handbook,
synthetic samples, spreadsheets in and out, case templates."""
