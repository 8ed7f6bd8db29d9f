"""The rule language: every condition form, forward chaining, and the combination policy."""

from __future__ import annotations

import pytest

from engine.run import pipeline


def fired(compiled, case) -> list[str]:
    evaluation, _ = pipeline.evaluate_case(compiled, case)
    return [compiled.rules[i].rule.id for i in evaluation.fired]


def one_rule(compile_rules, when: str, extra_facts: str = ""):
    return compile_rules(f"""{extra_facts}rules:
  - id: r
    title: The rule
    rationale: Because.
    cites: [3.1.a]
    when:
{when}
    then:
      - finding: {{criterion: "3.1", value: insufficient}}
""")


FORMS = [
    # (condition YAML, case fields that satisfy it, case fields that do not)
    ("      answer: {item: 3.1.a, in: [no, partly]}", {"evidence": {"3.1.a": "partly"}}, {"evidence": {"3.1.a": "yes"}}),
    ("      answer: {item: 3.1.a, in: no}", {"evidence": {"3.1.a": "no"}}, {}),
    ("      any_answer: {items: [3.1.a, 3.1.b], in: [no]}", {"evidence": {"3.1.a": "yes", "3.1.b": "no"}},
     {"evidence": {"3.1.a": "yes", "3.1.b": "partly"}}),
    ("      all_answers: {items: [3.1.a, 3.1.b], in: [\"yes\"]}", {"evidence": {"3.1.a": "yes", "3.1.b": "yes"}},
     {"evidence": {"3.1.a": "yes"}}),
    ("      at_least: {n: 2, items: [3.1.a, 3.1.b, 3.1.c], in: [no]}", {"evidence": {"3.1.a": "no", "3.1.c": "no"}},
     {"evidence": {"3.1.a": "no", "3.1.b": "partly", "3.1.c": "yes"}}),
    ("      not_assessed: 3.1.a", {"evidence": {"3.1.b": "no"}}, {"evidence": {"3.1.a": "not_applicable"}}),
    ("      risk_at_least: high", {"risk": "very_high"}, {"risk": "medium"}),
    ("      provider: NPS", {"provider": "NPS"}, {"provider": "CRC"}),
    ("      sentence_type: [licence, custody]", {"sentence_type": "custody"}, {"sentence_type": "community_order"}),
    ("      requirement: accredited_programme", {"requirements": ["unpaid_work", "accredited_programme"]},
     {"requirements": ["unpaid_work"]}),
    ("      flag: [domestic_abuse, child_safeguarding]", {"flags": ["child_safeguarding"]}, {"flags": ["mental_health"]}),
    ("      mappa: true", {"mappa": "{category: 1, level: 1}"}, {"mappa": "null"}),
    ("      mappa: false", {"mappa": "null"}, {"mappa": "{category: 2, level: 1}"}),
    ("      mappa_category: [2, 3]", {"mappa": "{category: 2, level: 1}"}, {"mappa": "{category: 1, level: 3}"}),
    ("      mappa_level_at_least: 2", {"mappa": "{category: 1, level: 3}"}, {"mappa": "null"}),
    ("      diversity: {field: gender, in: [female]}", {"diversity": "{gender: female}"}, {"diversity": "{}"}),
    ("      context: {field: sentence_type, in: [licence, custody]}", {"sentence_type": "licence"},
     {"sentence_type": "community_order"}),
    ("      context: {field: flags, in: [vulnerable]}", {"flags": ["vulnerable"]}, {"flags": ["mental_health"]}),
    ("      context: {field: mappa, in: false}", {"mappa": "null"}, {"mappa": "{category: 2, level: 1}"}),
    ("      context: {field: mappa_category, in: [3]}", {"mappa": "{category: 3, level: 1}"}, {"mappa": "null"}),
    ("      context_at_least: {field: risk_of_serious_harm, level: high}", {"risk": "high"}, {"risk": "medium"}),
    ("      context_at_least: {field: mappa_level, level: 2}", {"mappa": "{category: 1, level: 2}"},
     {"mappa": "{category: 1, level: 1}"}),
    ("      all:\n        - flag: domestic_abuse\n        - risk_at_least: high",
     {"flags": ["domestic_abuse"], "risk": "high"}, {"flags": ["domestic_abuse"], "risk": "medium"}),
    ("      any:\n        - flag: domestic_abuse\n        - risk_at_least: high", {"risk": "high"}, {"risk": "low"}),
    ("      not: {answer: {item: 3.1.a, in: [\"yes\"]}}", {"evidence": {}}, {"evidence": {"3.1.a": "yes"}}),
    ("      not:\n        any:\n          - provider: NPS\n          - flag: mental_health", {"provider": "CRC"},
     {"provider": "CRC", "flags": ["mental_health"]}),
]


@pytest.mark.parametrize("when, yes, no", FORMS, ids=[f[0].strip().split(":")[0] + str(i) for i, f in enumerate(FORMS)])
def test_condition_form(compile_rules, make_case, when, yes, no):
    compiled = one_rule(compile_rules, when)
    assert fired(compiled, make_case(compiled, **yes)) == ["r"]
    assert fired(compiled, make_case(compiled, reference="T-2", **no)) == []


def test_not_assessed_differs_from_not_applicable(compile_rules, make_case):
    compiled = one_rule(compile_rules, "      answer: {item: 3.1.a, in: [not_applicable]}")
    assert fired(compiled, make_case(compiled, evidence={"3.1.a": "not_applicable"})) == ["r"]
    assert fired(compiled, make_case(compiled, reference="T-2", evidence={})) == []


FORWARD = """facts:
  - {id: children_at_risk, description: Children may be at risk.}
  - {id: children_risk_unassessed, description: Risk to children not assessed.}
rules:
  - id: finding-from-fact
    title: Finding from the derived fact
    rationale: The second step of the chain.
    cites: [3.1.a]
    when: {fact: children_risk_unassessed}
    then:
      - finding: {criterion: "3.1", value: insufficient}
      - barrier: {id: children-risk, text: Risk to children not assessed, criterion: "3.1"}
  - id: unassessed
    title: Children at risk and not assessed
    rationale: The first step of the chain reads another fact.
    cites: [3.1.a]
    when:
      all:
        - fact: children_at_risk
        - answer: {item: 3.1.a, in: [no]}
    then:
      - fact: children_risk_unassessed
  - id: at-risk
    title: Children at risk
    rationale: Context.
    cites: [3.1.a]
    when: {flag: child_safeguarding}
    then:
      - fact: children_at_risk
  - id: sufficient-unless
    title: Sufficient unless the risk to children is unassessed
    rationale: Negation of a derived fact, safe only after every rule deriving it has run.
    cites: [3.1.a]
    when:
      not: {fact: children_risk_unassessed}
    then:
      - finding: {criterion: "3.1", value: sufficient}
"""


def test_forward_chaining_through_two_derived_facts(compile_rules, make_case):
    compiled = compile_rules(FORWARD)
    assert [r.phase for r in compiled.rules] == [2, 1, 0, 2]
    case = make_case(compiled, flags=["child_safeguarding"], evidence={"3.1.a": "no"})
    assert fired(compiled, case) == ["finding-from-fact", "unassessed", "at-risk"]
    result = pipeline.case_result(compiled, case)
    assert result["findings"]["3.1"]["value"] == "insufficient"
    assert result["derived_facts"] == {"children_at_risk": ["at-risk"], "children_risk_unassessed": ["unassessed"]}


def test_negated_fact_waits_for_every_deriving_rule(compile_rules, make_case):
    """No truth maintenance in durable_rules: 'not fact' must not fire before the fact is derived."""
    compiled = compile_rules(FORWARD)
    case = make_case(compiled, flags=["child_safeguarding"], evidence={"3.1.a": "no"})
    assert "sufficient-unless" not in fired(compiled, case)
    clean = make_case(compiled, reference="T-2", flags=["child_safeguarding"], evidence={"3.1.a": "yes"})
    assert fired(compiled, clean) == ["at-risk", "sufficient-unless"]


POLICY = """rules:
  - id: good
    title: Good
    rationale: x
    cites: [3.1.a]
    when: {answer: {item: 3.1.a, in: ["yes"]}}
    then: [{finding: {criterion: "3.1", value: sufficient}}]
  - id: bad
    title: Bad
    rationale: x
    cites: [3.1.b]
    when: {answer: {item: 3.1.b, in: ["no"]}}
    then: [{finding: {criterion: "3.1", value: insufficient}}]
  - id: na
    title: Not applicable
    rationale: x
    cites: [3.1.c]
    when: {answer: {item: 3.1.c, in: [not_applicable]}}
    then: [{finding: {criterion: "3.1", value: not_applicable}}]
  - id: override
    title: Priority override
    rationale: x
    cites: [3.1.d]
    priority: 10
    when: {answer: {item: 3.1.d, in: [not_applicable]}}
    then: [{finding: {criterion: "3.1", value: not_applicable}}]
"""


@pytest.mark.parametrize("answers, expected, by", [
    ({"3.1.a": "yes", "3.1.b": "no"}, "insufficient", ["bad"]),
    ({"3.1.a": "yes", "3.1.c": "not_applicable"}, "sufficient", ["good"]),
    ({"3.1.c": "not_applicable"}, "not_applicable", ["na"]),
    ({"3.1.b": "no", "3.1.d": "not_applicable"}, "not_applicable", ["override"]),
    ({}, "not_assessed", []),
])
def test_combination_policy(compile_rules, make_case, answers, expected, by):
    compiled = compile_rules(POLICY)
    result = pipeline.case_result(compiled, make_case(compiled, evidence=answers))
    assert result["findings"]["3.1"]["value"] == expected
    assert result["findings"]["3.1"]["rules"] == by


def test_criterion_no_rule_concluded_is_not_assessed_with_warning(qi, compile_rules, tmp_path):
    compiled = compile_rules(POLICY)
    case = tmp_path / "T-9.yaml"
    from tests.conftest import case_yaml
    case.write_text(case_yaml(reference="T-9", evidence={"3.1.a": "yes"}))
    result = qi("evaluate", case, "--rules", compiled.loaded.document.path)
    assert result.exit_code == 0
    assert "3.1   sufficient" in result.stdout
    assert "not_assessed: warning: no rule concluded a finding on criterion 3.2" in result.stderr
    assert "criterion 3.1 " not in result.stderr
