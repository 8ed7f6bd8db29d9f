"""The bundled rule tests run under pytest too, one pytest test per rule test; and the runner's
own behaviour: readable failures, coverage from traces, exit codes."""

from __future__ import annotations

import pytest

from engine.tools import ruletest
from tests.conftest import ROOT

FILES = ruletest.discover([ROOT / "rules" / "tests"])
CASES = [(path, index) for path in FILES for index in range(len(ruletest.load(path)[1].tests))]


@pytest.fixture(scope="module")
def outcomes():
    return {path: ruletest.run_file(path) for path in FILES}


@pytest.mark.parametrize("path, index", CASES, ids=[f"{p.stem}-{i}" for p, i in CASES])
def test_bundled_rule_test(outcomes, path, index):
    outcome = outcomes[path][index]
    assert outcome.passed, outcome.render()


def test_bundled_rule_tests_cover_at_least_90_percent_of_rules(qi):
    result = qi("rules", "test", "--coverage", "--fail-under", "90")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "rule coverage:" in result.stdout and f"{len(CASES)} passed, 0 failed" in result.stdout


FAILING = """rules: {rules}
tests:
  - note: expects the wrong finding
    case:
      flags: [child_safeguarding]
      evidence: {{3.1.a: "no"}}
    expect:
      findings: {{"3.1": sufficient}}
      barriers: [no-such-barrier]
"""


def test_failures_are_readable_and_exit_1(qi, tmp_path):
    path = tmp_path / "failing.yaml"
    path.write_text(FAILING.format(rules=ROOT / "rules" / "hmip-qi-adult-2.0.yaml"))
    result = qi("rules", "test", path)
    assert result.exit_code == 1
    assert (f"{path}:3: test 'expects the wrong finding': expected 3.1 sufficient, got insufficient; "
            "expected barrier no-such-barrier, not concluded — rules fired: context-multi-agency") in result.stdout
    assert "0 passed, 1 failed" in result.stdout


def test_invalid_test_file_reports_positions(qi, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(f"rules: {ROOT / 'rules' / 'hmip-qi-adult-2.0.yaml'}\ntests:\n  - note: typo\n    case:\n"
                    "      provider: NSP\n      evidence: {3.1.q: \"no\"}\n    expect: {}\n")
    result = qi("rules", "test", path)
    assert result.exit_code == 1
    assert f"{path}:5:17: unknown_value: 'NSP' is not a known provider" in result.stderr
    assert f"{path}:6:18: unknown_item:" in result.stderr


def test_fail_under_fails_below_the_threshold(qi, tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(f"rules: {ROOT / 'rules' / 'hmip-qi-adult-2.0.yaml'}\ntests:\n  - note: one\n    case:\n"
                    "      evidence: {3.3.f: \"yes\"}\n    expect: {enablers: [service-user-involved-in-planning]}\n")
    result = qi("rules", "test", path, "--fail-under", "50")
    assert result.exit_code == 1 and "1 passed, 0 failed" in result.stdout
    assert "is below 50%" in result.stderr


def test_coverage_counts_rules_and_conditions_from_traces(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(f"rules: {ROOT / 'rules' / 'hmip-qi-adult-2.0.yaml'}\ntests:\n  - note: one\n    case:\n"
                    "      evidence: {3.3.f: \"yes\"}\n    expect: {enablers: [service-user-involved-in-planning]}\n")
    coverage = ruletest.Coverage()
    ruletest.run_file(path, coverage)
    fired = [rule_id for (_, rule_id), was_fired in coverage.rules.items() if was_fired]
    assert fired == ["service-user-involved-in-planning"]
    assert coverage.items_answered == {"3.3.f"}
    assert all(len(seen) == 1 for seen in coverage.conditions.values())  # one case: each seen one way
