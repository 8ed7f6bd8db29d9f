"""qi rules lint: each defect class with its file:line, exit codes, and a clean default rule set."""

from __future__ import annotations

import re

from tests.conftest import FIXTURES, ROOT

WARNINGS = FIXTURES / "lint" / "warnings.yaml"
ERRORS = FIXTURES / "lint" / "errors.yaml"


def _found(stderr: str) -> set[tuple[int, str]]:
    return {(int(line), code) for line, code in re.findall(r"^\S+?:(\d+):\d+: (\w+):", stderr, re.M)}


def test_default_rule_set_lints_clean(qi):
    result = qi("rules", "lint", "--strict", ROOT / "rules" / "hmip-qi-adult-2.0.yaml")
    assert result.exit_code == 0, result.stderr
    assert "0 errors, 0 warnings" in result.stderr


def test_every_warning_class_with_its_line(qi):
    result = qi("rules", "lint", WARNINGS)
    assert result.exit_code == 0  # warnings alone
    found = _found(result.stderr)
    assert {(7, "fact_never_derived"), (8, "fact_never_read"), (15, "rule_never_fires"), (47, "rule_never_fires"),
            (25, "conflicting_rules"), (28, "cited_not_read"), (39, "uncited_item")} <= found
    assert (9, "criterion_not_covered") in found
    assert {(55, "protection_not_key"), (57, "low_threshold")} <= found  # criterion declarations
    assert "for example 3.1.a: yes, 3.1.b: no, flag child_safeguarding" in result.stderr  # the witness


def test_strict_fails_on_warnings(qi):
    assert qi("rules", "lint", "--strict", WARNINGS).exit_code == 1


def test_errors_fail_and_come_in_one_pass(qi):
    result = qi("rules", "lint", ERRORS)
    assert result.exit_code == 1
    assert _found(result.stderr) >= {(9, "unknown_item"), (12, "duplicate_rule")}


def test_cycles_and_broken_rule_sets_are_errors(qi):
    result = qi("rules", "lint", FIXTURES / "bad_rules" / "fact_cycle.yaml")
    assert result.exit_code == 1 and "fact_cycle" in result.stderr


def test_json_format(qi):
    import json
    report = json.loads(qi("rules", "lint", "--format", "json", WARNINGS).stdout)
    assert report["errors"] == 0 and report["warnings"] >= 7
    assert {d["severity"] for d in report["diagnostics"]} == {"warning"}
