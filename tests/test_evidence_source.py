"""``evidence_source``: the condition form added in one file (engine/check/rules/conditions/
evidence_source.py), tested through every reader of the registry — validation with positions,
lowering, durable_rules against the Python evaluator, trace text and values seen, the handbook,
lint and the JSON Schema."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import evaluate
from engine.run import pipeline
from tests.conftest import RULES_HEADER, walk

RULES = RULES_HEADER + """rules:
  - id: heard-from-service-user
    title: Engagement judged from the service user's own account
    rationale: A relationship cannot be judged positive from the case record alone.
    cites: [2.1.a]
    when:
      all:
        - answer: {item: 2.1.a, in: ["yes"]}
        - evidence_source: {item: 2.1.a, source: [service_user, interview]}
    then:
      - finding: {criterion: "2.1", value: sufficient}
  - id: not-heard
    title: Engagement not evidenced from the service user
    rationale: Without the service user's account the relationship is unproven.
    cites: [2.1.a]
    when:
      not:
        evidence_source: {item: 2.1.a, source: service_user}
    then:
      - finding: {criterion: "2.1", value: insufficient}
"""


def case_file(tmp_path, sources: str | None, answer: str = "yes"):
    evidence = ("evidence: {}" if sources is None else
                f'evidence:\n  2.1.a: {{answer: "{answer}", note: "Seen.", sources: {sources}}}')
    path = tmp_path / "T-1.yaml"
    path.write_text("case: T-1\nprovider: CRC\nsentence: {type: community_order, requirements: [], start: 2016-01-04}\n"
                    f"risk_of_serious_harm: low\nmappa: null\nflags: []\ndiversity: {{}}\n{evidence}\n",
                    encoding="utf-8")
    return path


def rules_file(tmp_path, text: str = RULES):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def fired(compiled, path) -> list[str]:
    evaluation, _ = pipeline.evaluate_case(compiled, pipeline.load_case(path, compiled))
    return sorted(compiled.rules[i].rule.id for i in evaluation.fired)


def test_holds_when_the_item_lists_one_of_the_sources(tmp_path):
    compiled = pipeline.compiled_rules(rules_file(tmp_path))
    assert fired(compiled, case_file(tmp_path, "[oasys, service_user]")) == ["heard-from-service-user"]
    assert fired(compiled, case_file(tmp_path, "[interview]")) == ["heard-from-service-user", "not-heard"]
    assert fired(compiled, case_file(tmp_path, "[oasys]")) == ["not-heard"]
    assert fired(compiled, case_file(tmp_path, None)) == ["not-heard"]  # not assessed: no sources


def test_lowered_to_one_attribute_per_item_and_source(tmp_path):
    compiled = pipeline.compiled_rules(rules_file(tmp_path))
    assert compiled.schema.domains["src_2_1_a__service_user"] == (True, False)
    emitted = json.dumps(compiled.definitions())
    assert '{"src_2_1_a__service_user": true}' in emitted and '"src_2_1_a__interview": true' in emitted
    # only the pairs a rule reads are added to the fact
    assert sorted(a for a in compiled.schema.domains if a.startswith("src_")) == [
        "src_2_1_a__interview", "src_2_1_a__service_user"]


def test_validation_gives_positions_and_suggestions(qi, tmp_path):
    path = rules_file(tmp_path, RULES.replace("source: [service_user, interview]", "source: [servce_user]"))
    result = qi("validate", path)
    assert result.exit_code == 1
    assert f"{path}:13:51: unknown_value: 'servce_user' is not a known evidence source (did you mean " \
           "'service_user'?" in result.stderr
    path = rules_file(tmp_path, RULES.replace("evidence_source: {item: 2.1.a, source: service_user}",
                                              "evidence_source: {item: 6.1.a, source: service_user}"))
    result = qi("validate", path)
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and any(f"{path}:22:33: wrong_scope: item '6.1.a' is not judged in case evidence" in line
                                          for line in lines), result.stderr


def test_organisation_rules_may_read_it_but_sample_rules_may_not(qi, tmp_path):
    organisation = RULES + """organisation_rules:
  - id: org-heard
    title: Strategy evidenced from a manager
    rationale: Because.
    cites: [6.1.a]
    when: {evidence_source: {item: 6.1.a, source: manager_interview}}
    then: [{finding: {criterion: "6.1", value: sufficient}}]
"""
    assert qi("validate", rules_file(tmp_path, organisation)).exit_code == 0
    sample = RULES + """sample_rules:
  - id: s
    title: T
    rationale: x
    when: {evidence_source: {item: 2.1.a, source: service_user}}
    then: [{recommendation: {id: r, text: t, to: NPS}}]
"""
    result = qi("validate", rules_file(tmp_path, sample))
    assert result.exit_code == 1 and "unknown_condition: unknown condition 'evidence_source'" in result.stderr


durable = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


def test_durable_rules_agrees_with_the_python_evaluator(tmp_path):
    compiled = pipeline.compiled_rules(rules_file(tmp_path))
    domains = compiled.schema.domains
    derived = {a for a in domains if a.startswith("fact_")}

    @durable
    @given(st.fixed_dictionaries({a: st.sampled_from(d) for a, d in domains.items() if a not in derived}))
    def check(attributes):
        assert evaluate.evaluate(compiled, attributes).fired == evaluate.evaluate_in_python(compiled, attributes).fired

    check()


def test_trace_says_what_it_tested_and_which_sources_it_saw(qi, tmp_path):
    path = case_file(tmp_path, "[oasys, service_user]")
    result = qi("evaluate", path, "--rules", rules_file(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.stderr
    nodes = [n for n in walk(json.loads(result.stdout)) if n.get("condition") == "evidence_source"]
    assert nodes and {n["text"] for n in nodes} == {"the evidence on 2.1.a is from service_user or interview"}
    assert all(n["seen"] == {"2.1.a sources": ["oasys", "service_user"]} for n in nodes)
    assert all(n["evidence"][0]["sources"] == ["oasys", "service_user"] for n in nodes)
    text = qi("explain", path, "--rules", rules_file(tmp_path), "--criterion", "2.1").stdout
    assert "[holds] the evidence on 2.1.a is from service_user or interview" in text


def test_handbook_describes_it(qi, tmp_path):
    result = qi("rules", "doc", rules_file(tmp_path))
    assert result.exit_code == 0
    assert "the evidence on 2.1.a is from service_user or interview" in result.stdout


def test_lint_reads_its_items_and_words_its_witness(qi, tmp_path):
    conflicting = RULES.replace('cites: [2.1.a]\n    when:\n      not:', 'cites: [2.1.b]\n    when:\n      not:')
    result = qi("rules", "lint", rules_file(tmp_path, conflicting))
    out = result.stdout + result.stderr
    assert "uncited_item: warning: rule 'not-heard' reads 2.1.a but does not cite it" in out
    assert "conflicting_rules" in out and "2.1.a evidenced from interview" in out \
        and "2.1.a not evidenced from service_user" in out, out


def test_schema_lists_the_sources(qi):
    schema = json.loads(qi("schema", "rules").stdout)
    form = schema["$defs"]["ItemSources"]["properties"]["source"]
    assert "service_user" in json.dumps(form)
