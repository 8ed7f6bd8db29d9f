"""The rules expanded from criterion declarations mean what docs/methodology.md says they mean.

A reference model written from the method's words (not from the expanded rules) is compared with
the engine on random answers and case contexts, for the bundled declarations of 3.1 (key lines,
protection lines, three conditional lines) and 5.2 (core protection line, one conditional line):

* a key line answered no, or a protection line short of yes where protection is the priority, or
  too few lines met even if every expected line still unanswered were yes: insufficient;
* otherwise, with every expected line answered (every line expected only because the case shows
  its condition, and, where protection is the priority, every expected protection line, answered
  other than not_applicable): not applicable when no line applies, sufficient when the threshold
  of applicable lines is met;
* otherwise not assessed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.run import pipeline
from tests.conftest import ROOT, case_yaml

APPLIES, NOT_MET = ("yes", "partly", "no"), ("partly", "no")
COMPILED = pipeline.compiled_rules(ROOT / "rules" / "hmip-qi-adult-2.0.yaml")
DECLARED = {d.criterion: d for d in COMPILED.ruleset.criteria}


def reference(criterion: str, lines: list[pipeline.Expectation], answers: dict[str, str]) -> str:
    declared = DECLARED[criterion]
    applicable = [line.item for line in lines if answers.get(line.item) in APPLIES]
    met = sum(answers.get(item) == "yes" for item in applicable)
    pending = [line.item for line in lines if line.expected and line.item not in answers]
    if any(line.key and answers.get(line.item) == "no" for line in lines):
        return "insufficient"
    if any(line.protected and answers.get(line.item) in NOT_MET for line in lines):
        return "insufficient"
    possible = len(applicable) + len(pending)  # every expected line still missing answered yes
    if possible and (met + len(pending)) * 100 < declared.threshold * possible:
        return "insufficient"
    protection_missing = any(line.protected and line.expected and answers.get(line.item) == "not_applicable"
                             for line in lines)
    # a line expected because the case shows the condition its words set, answered not applicable
    condition_missing = any(line.expected and not line.core and answers.get(line.item) == "not_applicable"
                            for line in lines)
    if pending or protection_missing or condition_missing:
        return "not_assessed"
    if not applicable:
        return "not_applicable"
    return "sufficient"  # the threshold is met: it was not too few


ANSWER = st.sampled_from([None, "yes", "partly", "no", "not_applicable"])
CONTEXT = st.fixed_dictionaries({
    "risk": st.sampled_from(["low", "medium", "high", "very_high"]),
    "sentence_type": st.sampled_from(["community_order", "licence"]),
    "mappa": st.sampled_from(["null", "{category: 2, level: 1}", "{category: 1, level: 2}"]),
    "flags": st.lists(st.sampled_from(["domestic_abuse", "child_safeguarding", "identifiable_victim", "vulnerable",
                                       "non_compliance"]), unique=True, max_size=3),
})


@pytest.mark.parametrize("criterion", ["3.1", "5.2"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), context=CONTEXT)
def test_declared_criterion_matches_the_method(criterion, data, context):
    declared = DECLARED[criterion]
    items = declared.core + list(declared.expected_when)
    answers = {item: answer for item in items if (answer := data.draw(ANSWER, label=item)) is not None}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "P-1.yaml"
        path.write_text(case_yaml(reference="P-1", evidence=answers, **context), encoding="utf-8")
        case = pipeline.load_case(path, COMPILED)
        result, _, evaluation = pipeline.case_evaluated(COMPILED, case)
    lines = pipeline.expectations(COMPILED, evaluation.fact)[criterion]
    value = result["findings"][criterion]["value"] if criterion in result["findings"] else "not_assessed"
    assert value == reference(criterion, lines, answers), (answers, context, lines)


def test_the_reference_is_not_vacuous():
    """The contexts drawn above reach protection priority and conditional lines both ways."""
    lines = [pipeline.Expectation("3.1.a", True, True, True), pipeline.Expectation("3.1.i", False, False, False)]
    assert reference("3.1", lines, {"3.1.a": "partly"}) == "insufficient"
    assert reference("3.1", lines, {"3.1.a": "not_applicable"}) == "not_assessed"
    assert reference("3.1", lines, {"3.1.a": "yes"}) == "sufficient"
    assert reference("3.1", [pipeline.Expectation("3.1.a", True, True, False)], {"3.1.a": "not_applicable"}) == \
        "not_applicable"


def test_a_declaration_needs_no_facts_section(tmp_path):
    """The derived fact a declaration shares between its rules is declared for it, whether or not
    the rule set has a facts: section of its own."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text('id: t\ntitle: T\nversion: "1"\nframework: {id: hmip-qi-adult, version: "2.0"}\n'
                          'rules: []\ncriteria:\n  - criterion: "3.2"\n    rationale: "Both lines."\n'
                          '    core: [3.2.a, 3.2.b]\n    threshold: 66\n', encoding="utf-8")
    compiled = pipeline.compiled_rules(rules_file)
    case = tmp_path / "T-1.yaml"
    case.write_text(case_yaml(evidence={"3.2.a": "yes", "3.2.b": "yes"}), encoding="utf-8")
    result = pipeline.case_result(compiled, pipeline.load_case(case, compiled))
    assert result["findings"]["3.2"]["value"] == "sufficient"
