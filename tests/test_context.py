"""Case context declared in the framework's vocabulary (``vocabulary.context``): the generic
``context`` and ``context_at_least`` conditions, today's forms as shorthands for them, and the
fields, their order and their groupings read from the framework, not from code."""

from __future__ import annotations

from engine.check import framework as frameworks
from engine.check import rules
from engine.compile import conditions
from tests.conftest import ROOT, RULES_HEADER

FRAMEWORK = ROOT / "framework" / "hmip-qi-adult-2.0.yaml"


def rule_set(tmp_path, when: str):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_HEADER + f"""rules:
  - id: r
    title: T
    rationale: x
    when: {when}
    then: [{{finding: {{criterion: "3.1", value: insufficient}}}}]
""", encoding="utf-8")
    return path


def test_shorthands_lower_exactly_as_context_does(compile_rules):
    pairs = [("flag: [domestic_abuse, vulnerable]", "context: {field: flags, in: [domestic_abuse, vulnerable]}"),
             ("risk_at_least: high", "context_at_least: {field: risk_of_serious_harm, level: high}"),
             ("sentence_type: licence", "context: {field: sentence_type, in: licence}"),
             ("requirement: curfew", "context: {field: requirements, in: curfew}"),
             ("mappa: true", "context: {field: mappa, in: true}"),
             ("mappa_level_at_least: 2", "context_at_least: {field: mappa_level, level: 2}")]
    for shorthand, generic in pairs:
        lowered = [compile_rules(f"rules:\n  - {{id: r, title: T, rationale: x, when: {{{when}}}, "
                                 "then: [{finding: {criterion: '3.1', value: insufficient}}]}\n").rules[0].condition
                   for when in (shorthand, generic)]
        assert lowered[0] == lowered[1], shorthand
        assert isinstance(lowered[0], (conditions.In, conditions.AnyOf))


def test_unknown_fields_and_values_are_reported_with_positions(qi, tmp_path):
    for when, expected in [
        ("{context: {field: sentense_type, in: [licence]}}",
         ":9:29: unknown_field: 'sentense_type' is not a field of case context (did you mean 'sentence_type'?"),
        ("{context: {field: sentence_type, in: [licenc]}}",
         ":9:49: unknown_value: 'licenc' is not a value of sentence_type (did you mean 'licence'?"),
        ("{context_at_least: {field: flags, level: vulnerable}}",
         ":9:38: invalid_value: 'flags' has no order to be at or above (use context: to test its values)"),
    ]:
        path = rule_set(tmp_path, when)
        result = qi("validate", path)
        assert result.exit_code == 1 and f"{path}{expected}" in result.stderr, result.stderr


def test_fields_order_and_groupings_come_from_the_vocabulary(tmp_path):
    text = FRAMEWORK.read_text(encoding="utf-8")
    # risk levels re-ordered highest first, and provider no longer a grouping: no code changes
    text = text.replace("    - {id: low, label: \"Low risk of serious harm\"}\n", "").replace(
        "    - {id: very_high, label: \"Very high risk of serious harm\"}\n",
        "    - {id: very_high, label: \"Very high risk of serious harm\"}\n"
        "    - {id: low, label: \"Low risk of serious harm\"}\n")
    text = text.replace("path: provider, terms: providers, fact: provider, group: true}",
                        "path: provider, terms: providers, fact: provider}")
    copy = tmp_path / "framework.yaml"
    copy.write_text(text, encoding="utf-8")
    framework = frameworks.load(copy)
    assert rules.groupings(framework)[:2] == ["sentence_type", "risk_of_serious_harm"]
    from engine.compile import facts
    schema = facts.Schema.for_framework(framework)
    assert schema.domains["risk"] == ("medium", "high", "very_high", "low")
    node = conditions.Lowering(schema).context_at_least("risk_of_serious_harm", "very_high")
    assert node.values == frozenset({"very_high", "low"})


def test_a_bad_declaration_is_reported(qi, tmp_path):
    text = FRAMEWORK.read_text(encoding="utf-8").replace("terms: sentence_types, fact: sentence_type",
                                                         "terms: sentence_kinds, fact: sentence_type")
    text = text.replace("path: flags, terms: flags", "path: flagz, terms: flags")
    copy = tmp_path / "framework.yaml"
    copy.write_text(text, encoding="utf-8")
    result = qi("validate", copy)
    assert result.exit_code == 1
    assert "unknown_value: 'sentence_kinds' is not a vocabulary of terms (did you mean 'sentence_types'?" \
        in result.stderr
    assert "unknown_field: case files have no field 'flagz' (did you mean 'flags'?" in result.stderr
