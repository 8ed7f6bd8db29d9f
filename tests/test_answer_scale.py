"""The answer scale is the framework's: each answer says what it counts as (met, met_in_part,
not_met, not_applicable), and criterion declarations, the notes a short answer needs, practice
examples and generated samples read answers through that — so a yes/no scale in other words
works with no change to qi, and the 2016 scale behaves as before."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import ROOT

FRAMEWORK = ROOT / "framework" / "hmip-qi-adult-2.0.yaml"

MET_OR_NOT = """  answers:
    - {id: met, label: "Met", counts_as: met}
    - {id: not_met, label: "Not met", counts_as: not_met}
    - {id: does_not_arise, label: "Does not arise in this case", counts_as: not_applicable}
"""

RULES = """id: two-answer-rules
title: Rules on a two-answer scale
version: "0.1"
framework: {id: two-answer, version: "1.0"}
criteria:
  - criterion: "3.1"
    rationale: "A test declaration."
    core: [3.1.a, 3.1.b, 3.1.c]
    key: [3.1.a]
    protection: [3.1.b]
    protection_when: {flag: domestic_abuse}
    threshold: 66
rules: []
"""


@pytest.fixture
def two_answers(tmp_path):
    """A framework whose scale is met / not_met / does_not_arise, and a rule set declaring 3.1."""
    text = FRAMEWORK.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^id: hmip-qi-adult$", "id: two-answer", text, count=1)
    text = re.sub(r'(?m)^version: "2.0"$', 'version: "1.0"', text, count=1)
    text = re.sub(r"(?ms)^  answers:\n(    - .*?\n)+", MET_OR_NOT, text, count=1)
    (tmp_path / "two-answer.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return tmp_path


def _case(folder, name, answers, flags=""):
    evidence = "\n".join(f'  {item}: {{answer: {answer}, note: "n", sources: [oasys]}}' for item, answer in answers.items())
    path = folder / f"{name}.yaml"
    path.write_text(f"case: {name}\nprovider: CRC\nsentence: {{type: community_order, requirements: [], start: "
                    f"2016-01-04}}\nrisk_of_serious_harm: medium\nmappa: null\nflags: [{flags}]\ndiversity: {{}}\n"
                    f"evidence:\n{evidence}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("answers, flags, finding", [
    ({"3.1.a": "met", "3.1.b": "met", "3.1.c": "not_met"}, "", "sufficient"),           # 2 of 3 met: 66%
    ({"3.1.a": "not_met", "3.1.b": "met", "3.1.c": "met"}, "", "insufficient"),         # a key line not met
    ({"3.1.a": "met", "3.1.b": "not_met", "3.1.c": "met"}, "domestic_abuse", "insufficient"),  # protection line
    ({"3.1.a": "met", "3.1.b": "not_met", "3.1.c": "met"}, "", "sufficient"),
    ({"3.1.a": "met", "3.1.b": "does_not_arise", "3.1.c": "not_met"}, "", "insufficient"),  # 1 of 2 applicable
    ({"3.1.a": "does_not_arise", "3.1.b": "does_not_arise", "3.1.c": "does_not_arise"}, "", "not_applicable"),
    ({"3.1.a": "met", "3.1.b": "met"}, "", "not_assessed"),                              # 3.1.c missing
])
def test_a_declaration_counts_answers_by_what_they_count_as(qi, two_answers, answers, flags, finding):
    case = _case(two_answers, "T-1", answers, flags)
    assert qi("rules", "lint", two_answers / "rules.yaml").exit_code == 0
    result = qi("evaluate", case, "--rules", two_answers / "rules.yaml", "--framework", two_answers / "two-answer.yaml",
                "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json
    assert json.loads(result.stdout)["findings"]["3.1"]["value"] == finding


def test_the_scale_s_own_words_are_the_only_answers(qi, two_answers):
    case = _case(two_answers, "T-2", {"3.1.a": "partly"})
    result = qi("validate", case, "--framework", two_answers / "two-answer.yaml")
    assert result.exit_code == 1 and "'partly' is not a known answer" in result.stderr
    assert "met, not_met, does_not_arise" in result.stderr
    noted = _case(two_answers, "T-3", {"3.1.a": "not_met"})
    noted.write_text(noted.read_text().replace('note: "n", ', ""))
    warned = qi("validate", noted, "--framework", two_answers / "two-answer.yaml")
    assert warned.exit_code == 0 and "missing_note" in warned.stderr  # a not-met answer needs its note


def test_a_scale_without_a_met_answer_is_refused(qi, two_answers):
    path = two_answers / "two-answer.yaml"
    path.write_text(path.read_text().replace("counts_as: met}", "counts_as: met_in_part}"))
    result = qi("validate", path)
    assert result.exit_code == 1 and "no answer counts as met" in result.stderr


def test_the_handbook_states_the_method_in_the_scale_s_words(qi, two_answers):
    handbook = qi("rules", "doc", two_answers / "rules.yaml", "--framework", two_answers / "two-answer.yaml")
    assert handbook.exit_code == 0, handbook.stderr
    assert ("at least 66% of the applicable lines (answered met or not_met) are met; a not_met on a key line "
            "(3.1.a) makes it insufficient") in handbook.stdout
    assert "partly" not in handbook.stdout.split("## ")[3]  # the method text of standard 3 onwards


def test_a_generated_sample_answers_on_the_framework_s_scale(qi, two_answers, tmp_path):
    profile = (ROOT / "cases" / "profiles" / "england-wales-2016.yaml").read_text()
    profile = profile.replace('framework: {id: hmip-qi-adult, version: "2.0"}', 'framework: {id: two-answer, version: "1.0"}')
    (two_answers / "profile.yaml").write_text(profile)
    made = qi("sample", "generate", "--cases", "6", "--out", tmp_path / "gen", "--profile", two_answers / "profile.yaml")
    assert made.exit_code == 0, made.stderr
    answers = set(re.findall(r'"answer": "([a-z_]+)"', "".join(p.read_text() for p in (tmp_path / "gen").rglob("*.yaml"))))
    assert answers and answers <= {"met", "not_met", "does_not_arise"}
    shutil.rmtree(tmp_path / "gen")
