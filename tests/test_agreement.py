"""Property tests: the Python evaluator agrees with durable_rules on every rule, on generated
cases; and evaluating many cases in one process keeps memory flat."""

from __future__ import annotations

import gc
import random
import resource

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.check import framework
from engine.compile import facts
from engine.evaluate import evaluate
from engine.run import pipeline
from tests.conftest import ROOT

DEFAULT_RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
COMPILED = pipeline.compiled_rules(DEFAULT_RULES)
FRAMEWORK = COMPILED.loaded.framework
SCHEMA = COMPILED.schema
DECLARED = {facts.fact_attribute(f.id) for f in COMPILED.ruleset.facts}

# Answers are skewed the way practice is: mostly yes, some partly and no, a few gaps.
ANSWER = st.sampled_from(["yes"] * 4 + ["partly"] * 2 + ["no"] * 2 + ["not_applicable", "not_assessed"])


@st.composite
def case_attributes(draw) -> dict:
    """A case's attributes drawn from every attribute's domain (derived facts excluded)."""
    attributes = {}
    for attribute, domain in SCHEMA.domains.items():
        if attribute in DECLARED:
            continue
        attributes[attribute] = draw(ANSWER if attribute.startswith("a_") else st.sampled_from(domain))
    mappa = attributes["mappa"]
    if not mappa:
        attributes["mappa_category"] = attributes["mappa_level"] = 0
    else:
        attributes["mappa_category"] = draw(st.sampled_from(SCHEMA.domains["mappa_category"][1:]))
        attributes["mappa_level"] = draw(st.sampled_from(SCHEMA.domains["mappa_level"][1:]))
    return attributes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_attributes())
def test_python_evaluator_agrees_with_durable_rules_on_every_rule(attributes):
    on_durable = evaluate.evaluate(COMPILED, attributes)
    in_python = evaluate.evaluate_in_python(COMPILED, attributes)
    assert on_durable.fired == in_python.fired
    assert on_durable.derived_by == in_python.derived_by


RULE_FORMS = """facts:
  - {id: f1, description: A derived fact.}
rules:
  - {id: base, title: T, rationale: x, cites: [3.1.a], when: {any: [{flag: domestic_abuse}, {risk_at_least: high}]},
     then: [{fact: f1}]}
  - {id: neg, title: T, rationale: x, cites: [3.1.a], when: {not: {all: [{fact: f1}, {answer: {item: 3.1.a, in: [no, partly]}}]}},
     then: [{finding: {criterion: "3.1", value: sufficient}}]}
  - {id: cnt, title: T, rationale: x, cites: [3.1.a], when: {at_least: {n: 3, items: [3.1.a, 3.1.b, 3.1.c, 3.1.d, 3.1.e], in: ["no", partly]}},
     then: [{finding: {criterion: "3.1", value: insufficient}}]}
  - {id: ctx, title: T, rationale: x, cites: [3.1.a], when: {all: [{provider: NPS}, {mappa_level_at_least: 2}, {diversity: {field: gender, in: [female, not_recorded]}},
     {not: {sentence_type: [custody]}}, {requirement: [curfew, residence]}]}, then: [{finding: {criterion: "3.2", value: sufficient}}]}
  - {id: gap, title: T, rationale: x, cites: [3.1.a], when: {any: [{not_assessed: 3.1.a}, {all_answers: {items: [3.1.b, 3.1.c], in: ["yes", not_applicable]}}]},
     then: [{finding: {criterion: "3.2", value: insufficient}}]}
"""


def test_agreement_on_every_condition_form(compile_rules):
    compiled = compile_rules(RULE_FORMS)

    @settings(max_examples=300, deadline=None)
    @given(case_attributes())
    def check(attributes):
        assert evaluate.evaluate(compiled, attributes).fired == evaluate.evaluate_in_python(compiled, attributes).fired

    check()


def _random_attributes(rng: random.Random) -> dict:
    attributes = {a: rng.choice(d) for a, d in SCHEMA.domains.items() if a not in DECLARED}
    if not attributes["mappa"]:
        attributes["mappa_category"] = attributes["mappa_level"] = 0
    return attributes


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def test_ten_thousand_evaluations_keep_memory_flat():
    """One session per case, deleted at once: memory after 10,000 cases is where it was after 1,000."""
    rng = random.Random(2016)
    samples = [_random_attributes(rng) for _ in range(50)]
    for attributes in samples * 20:  # warm up: 1,000 cases
        evaluate.evaluate(COMPILED, attributes)
    gc.collect()
    before = _rss_mb()
    for attributes in samples * 180:  # 9,000 more
        evaluate.evaluate(COMPILED, attributes)
    gc.collect()
    assert _rss_mb() - before < 8, f"memory grew from {before:.1f} MB to {_rss_mb():.1f} MB"


def test_framework_vocabulary_matches_the_schema():
    assert set(SCHEMA.domains["provider"]) == set(FRAMEWORK.vocabulary.ids("providers"))
    assert framework.default_path().name == "hmip-qi-adult-2.0.yaml"
