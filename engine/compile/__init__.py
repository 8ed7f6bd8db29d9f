"""Compile: conditions lowered to one tree, cases as flat typed facts, rule sets as durable_rules
rulesets in phases and chunks."""
