"""Rule mutation testing: `qi rules test --mutants` removes each rule and negates each top-level
condition, and lists the mutants no rule test detects."""

from __future__ import annotations

from engine.tools import ruletest
from tests.conftest import ROOT

RULES = """\
id: tiny
title: "Two rules"
version: "1"
framework: {id: hmip-qi-adult, version: "2.0"}
rules:
  - id: reoffending-reduced
    title: "1.1 sufficient"
    rationale: "Both indicators met."
    cites: [1.1.a, 1.1.b]
    when: {all_answers: {items: [1.1.a, 1.1.b], in: ["yes"]}}
    then: [{finding: {criterion: "1.1", value: sufficient}}]
  - id: protected
    title: "1.2 sufficient"
    rationale: "Both indicators met."
    cites: [1.2.a, 1.2.b]
    when: {all: [{answer: {item: 1.2.a, in: ["yes"]}}, {answer: {item: 1.2.b, in: ["yes"]}}]}
    then: [{finding: {criterion: "1.2", value: sufficient}}]
"""

TESTS = """\
rules: tiny.yaml
tests:
  - note: "1.1 met"
    case:
      evidence: {1.1.a: "yes", 1.1.b: "yes", 1.2.a: "yes", 1.2.b: "yes"}
    expect:
      findings: {"1.1": sufficient}
"""


def test_a_rule_no_test_checks_survives_and_fails_the_command(qi, tmp_path):
    (tmp_path / "tiny.yaml").write_text(RULES)
    (tmp_path / "t.yaml").write_text(TESTS)
    result = qi("rules", "test", str(tmp_path / "t.yaml"), "--mutants", "--coverage")
    assert result.exit_code == 1
    assert "survived: rule protected removed" in result.stdout
    assert "survived: rule reoffending-reduced removed" not in result.stdout
    # a negated condition of the checked rule is detected; the unchecked rule's negations survive
    assert "survived: rule protected: not (1.2.a is yes)" in result.stdout
    assert "rule coverage:      100.0%  (2 of 2 rules fired" in result.stdout
    assert "rules checked:       50.0%  (1 of 2 rules whose removal fails some test)" in result.stdout


def test_checking_the_second_rule_kills_every_mutant(qi, tmp_path):
    (tmp_path / "tiny.yaml").write_text(RULES)
    (tmp_path / "t.yaml").write_text(TESTS.replace('findings: {"1.1": sufficient}',
                                                   'findings: {"1.1": sufficient, "1.2": sufficient}')
                                     + """  - note: "1.2.a partly"
    case:
      evidence: {1.2.a: partly, 1.2.b: "yes"}
    expect:
      findings: {"1.2": not_assessed}
  - note: "1.2.b partly"
    case:
      evidence: {1.2.a: "yes", 1.2.b: partly}
    expect:
      findings: {"1.2": not_assessed}
""")
    result = qi("rules", "test", str(tmp_path / "t.yaml"), "--mutants")
    assert "survived: rule protected" not in result.stdout
    assert "0 survived (0 rule removals)" in result.stdout.splitlines()[-2] or "0 rule removals)" in result.stdout


def test_the_bundled_rule_tests_leave_no_rule_removal_mutant_alive():
    """Every rule of the default rule set — declared counting rules, context, barriers, enablers,
    organisation and sample rules — is checked by some bundled rule test. (The illustrative rule
    set's tests show its shape; they are not held to this.)"""
    made = ruletest.mutants([p for p in sorted((ROOT / "rules" / "tests").glob("*.yaml"))
                             if not p.name.startswith("illustrative")], negate=False, jobs=2)
    survivors = [m.render() for m in made if m.survived]
    assert survivors == []
    assert len(made) > 100


def test_mutants_judged_in_several_processes_are_the_same_in_the_same_order(qi, tmp_path):
    (tmp_path / "tiny.yaml").write_text(RULES)
    (tmp_path / "t.yaml").write_text(TESTS)
    counted = []
    serial = ruletest.mutants([tmp_path / "t.yaml"])
    parallel = ruletest.mutants([tmp_path / "t.yaml"], jobs=3, advance=lambda done, total=None: counted.append(
        (done, total)))
    assert [m.as_dict() for m in parallel] == [m.as_dict() for m in serial] and len(serial) == 5
    assert counted[0] == (0, 5) and sum(done for done, _ in counted) == 5  # told the total, then each mutant
    two = qi("rules", "test", str(tmp_path / "t.yaml"), "--mutants", "--jobs", "2")
    one = qi("rules", "test", str(tmp_path / "t.yaml"), "--mutants")
    assert two.exit_code == one.exit_code == 1 and two.stdout == one.stdout
