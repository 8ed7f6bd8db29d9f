"""Case context declared in the framework's vocabulary (``vocabulary.context``): the generic
``context`` and ``context_at_least`` conditions, today's forms as shorthands for them, and the
fields, their order and their groupings read from the framework, not from code."""

from __future__ import annotations

import re

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
    text = FRAMEWORK.read_text(encoding="utf-8").replace("      terms: sentence_types\n      fact: sentence_type",
                                                         "      terms: sentence_kinds\n      fact: sentence_type")
    text = text.replace("      path: flags\n", "      path: flagz\n")
    assert "sentence_kinds" in text and "flagz" in text
    copy = tmp_path / "framework.yaml"
    copy.write_text(text, encoding="utf-8")
    result = qi("validate", copy)
    assert result.exit_code == 1
    assert "unknown_value: 'sentence_kinds' is not a vocabulary of terms (did you mean 'sentence_types'?" \
        in result.stderr
    assert "unknown_field: case files have no field 'flagz' (did you mean 'flags'?" in result.stderr


# --- shorthands are the framework's: keys, values and wording declared in vocabulary.context -------


def _framework_with(tmp_path, old: str, new: str):
    text = FRAMEWORK.read_text(encoding="utf-8")
    assert old in text
    copy = tmp_path / "framework.yaml"
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


def test_a_shorthand_is_only_what_the_framework_declares(qi, tmp_path):
    """The same rule set: with the framework's flag shorthand renamed, `flag:` is unknown and the
    new key reads the same field with the framework's new words."""
    framework = _framework_with(tmp_path, '        - {key: flag, words: "the case is flagged {values}"}',
                                '        - {key: marked, words: "the case file marks {values}"}')
    path = rule_set(tmp_path, "{flag: vulnerable}")
    result = qi("validate", path, "--framework", framework)
    assert result.exit_code == 1
    assert f"{path}:9:11: unknown_condition: unknown condition 'flag'" in result.stderr, result.stderr
    typo = rule_set(tmp_path, "{marke: vulnerable}")
    assert "did you mean 'marked'?" in qi("validate", typo, "--framework", framework).stderr  # declared keys offered
    path = rule_set(tmp_path, "{flag: vulnerable}")
    path.write_text(path.read_text(encoding="utf-8").replace("{flag: vulnerable}", "{marked: [vulnerable]}"),
                    encoding="utf-8")
    assert qi("validate", path, "--framework", framework).exit_code == 0
    case = tmp_path / "T-1.yaml"
    case.write_text((ROOT / "cases" / "north-west-2016" / "cases" / "NW-008.yaml").read_text(encoding="utf-8"),
                    encoding="utf-8")
    explained = qi("explain", case, "--rules", path, "--criterion", "3.1", "--framework", framework)
    assert "the case file marks vulnerable" in explained.stdout, explained.stdout + explained.stderr


def test_a_declared_shorthand_checks_its_values_where_they_are_written(qi, tmp_path):
    for when, at, expected in [
        ("{flag: [vulnerable, vulnerabel]}", "vulnerabel",
         "unknown_value: 'vulnerabel' is not a known flag (did you mean 'vulnerable'?"),
        ("{risk_at_least: hihg}", "hihg", "unknown_value: 'hihg' is not a known risk level (did you mean 'high'?"),
        ("{mappa_level_at_least: \"2\"}", '"2"', "unknown_value: '2' is not a known MAPPA level"),
        ("{mappa: yes}", "yes", "wrong_type: mappa is true or false"),
        ("{flag: []}", "[]", "invalid_value: this must not be empty"),
    ]:
        path = rule_set(tmp_path, when)
        line = path.read_text(encoding="utf-8").splitlines()[8]
        result = qi("validate", path)
        assert result.exit_code == 1 and f"{path}:9:{line.index(at) + 1}: {expected}" in result.stderr, (
            when, result.stderr)


def test_a_framework_declaring_shorthands_badly_is_refused(qi, tmp_path):
    for old, new, expected in [
        ('        - {key: flag, words: "the case is flagged {values}"}',
         '        - {key: requirement, words: "the case is flagged {values}"}',
         "duplicate_value: the shorthand 'requirement' is declared twice"),
        ('        - {key: flag, words: "the case is flagged {values}"}',
         '        - {key: flag, test: at_least, words: "the case is flagged {values}"}',
         "invalid_value: flags has no order to be at or above"),
        ('otherwise: "the case is not managed under MAPPA",', "",
         "invalid_value: otherwise: words when a present field is not recorded"),
    ]:
        result = qi("validate", _framework_with(tmp_path, old, new))
        assert result.exit_code == 1 and expected in result.stderr, (new, result.stderr)


def test_a_framework_with_a_flawed_vocabulary_is_refused_at_the_place(qi, tmp_path):
    for old, new, expected in [
        ('    - {id: CRC, label: "Community Rehabilitation Company"}\n',
         '    - {id: CRC, label: "Community Rehabilitation Company"}\n    - {id: NPS, label: "Again"}\n',
         "duplicate_value: 'NPS' is listed twice in providers"),
        ('    - {id: very_high, label: "Very high risk of serious harm"}\n',
         '    - {id: low, label: "Very high risk of serious harm"}\n', "'low' is listed twice in risk_levels"),
        ('        - {key: flag, words: "the case is flagged {values}"}',
         '        - {key: flag, words: "the case is flagged"}', "invalid_value: the words do not say the values"),
        ('           shows: mappa}', '           shows: mapa}', "unknown_field: case files have no field 'mapa'"),
        ('        - {key: flag, words: "the case is flagged {values}"}',
         '        - {key: answer, words: "the case is flagged {values}"}', "reserved_key: 'answer' is a condition of "
                                                                          "qi's own"),
        ('    - {id: flags, description:', '    - {id: sentence_type, description: "Clash.", type: number}\n'
                                          '    - {id: flags, description:',
         "would share the workbook column 'sentence_type'"),
    ]:
        result = qi("validate", _framework_with(tmp_path, old, new))
        assert result.exit_code == 1 and expected in result.stderr, (new, result.stderr)
        assert re.search(r"framework\.yaml:\d+:\d+: ", result.stderr), result.stderr
