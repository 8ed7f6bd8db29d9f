"""Populations of cases: a framework may declare samples of their own (the illustrative one: an
unpaid work sample) whose cases answer only their standards; a case names its population, is
checked against it, judged on it, and counted only in its own standards' figures."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import ROOT

FRAMEWORK = ROOT / "framework" / "illustrative-standards-2018.yaml"
SAMPLE = ROOT / "cases" / "illustrative-region-2018"


def _cases(population: str | None):
    for path in sorted((SAMPLE / "cases").glob("*.yaml")):
        named = re.search(r'\n"population": "(\w+)"\n', path.read_text(encoding="utf-8"))
        if (named.group(1) if named else None) == population:
            yield path


@pytest.fixture
def copied(tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    return sample


def test_a_case_answers_only_its_populations_standards(qi, copied):
    main = copied / "cases" / next(_cases(None)).name
    main.write_text(main.read_text(encoding="utf-8").replace('"evidence":\n', '"evidence":\n  "3.1.1.a":\n'
                                                            '    "answer": "yes"\n', 1), encoding="utf-8")
    result = qi("validate", main)
    assert result.exit_code == 1
    assert ("wrong_population: '3.1.1.a' belongs to standard 3.1, answered by cases of the unpaid_work population "
            "(set population: unpaid_work)") in result.stderr
    assert f"{main.name}:" in result.stderr and re.search(r"\.yaml:\d+:3: wrong_population", result.stderr)

    specific = copied / "cases" / next(_cases("unpaid_work")).name
    text = specific.read_text(encoding="utf-8")
    specific.write_text(text.replace('"evidence":\n', '"evidence":\n  "2.1.1.a":\n    "answer": "yes"\n', 1),
                        encoding="utf-8")
    wrong = qi("validate", specific)
    assert wrong.exit_code == 1 and "answered by cases of the main sample (remove population:)" in wrong.stderr
    specific.write_text(text.replace('"population": "unpaid_work"', '"population": "unpaid_wrk"'), encoding="utf-8")
    unknown = qi("validate", specific)
    assert unknown.exit_code == 1 and "'unpaid_wrk' is not a known population (did you mean 'unpaid_work'?" \
        in unknown.stderr


def test_each_case_is_judged_and_counted_on_its_own_populations_standards(qi, tmp_path):
    out = tmp_path / "out"
    assert qi("run", SAMPLE, "--out", out, "--db", tmp_path / "qi.db", "-q").exit_code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    specific = {p.stem for p in _cases("unpaid_work")}
    for case in report["cases"]:
        criteria = set(case["findings"])
        if case["case"] in specific:
            assert criteria == {"3.1.1", "3.1.2"}, case["case"]
        else:
            assert criteria and not criteria & {"3.1.1", "3.1.2"}, case["case"]
    counts = report["aggregates"]["targets"]["3.1.1"]["groups"]["all"]["counts"]
    assert sum(counts.values()) == len(specific)
    main = report["aggregates"]["targets"]["2.1.1"]["groups"]["all"]["counts"]
    assert sum(main.values()) == len(report["cases"]) - len(specific) and main["not_assessed"] == 0
    assert not [w for w in report["warnings"] if w["code"] == "not_assessed"]  # no criterion of another population


def test_a_blank_case_of_a_population_lists_only_its_standards(qi):
    blank = qi("case", "new", "ILL-999", "--provider", "EAST", "--set", "population=unpaid_work", "--framework",
               FRAMEWORK)
    assert blank.exit_code == 0, blank.stderr
    assert '\npopulation: "unpaid_work"\n' in blank.stdout and "  3.1.2.c: {answer: null" in blank.stdout
    assert "  2.1.1.a: {answer: null" not in blank.stdout
    assert "# standard 2.1 (Assessment" in blank.stdout  # said, not listed
    main = qi("case", "new", "ILL-998", "--provider", "EAST", "--framework", FRAMEWORK)
    assert "  2.1.1.a: {answer: null" in main.stdout and "  3.1.1.a: {answer: null" not in main.stdout
    assert qi("case", "new", "X-1", "--provider", "CRC", "--set", "population=unpaid_work").exit_code == 2  # 2016: none


@pytest.mark.parametrize("old, new, expected", [
    ("    population: unpaid_work\n    item_kind: prompt", "    population: unpaid_wrk\n    item_kind: prompt",
     "unknown_value: 'unpaid_wrk' is not a population of cases (did you mean 'unpaid_work'?"),
    ("    scope: organisation\n    item_kind: prompt", "    scope: organisation\n    population: unpaid_work\n"
     "    item_kind: prompt", "an organisation-scoped standard has no population of cases (remove population:)"),
])
def test_a_framework_declaring_populations_badly_is_refused(qi, tmp_path, old, new, expected):
    text = FRAMEWORK.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "framework.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = qi("validate", broken)
    assert result.exit_code == 1 and expected in result.stderr, result.stderr


def test_a_generation_profile_draws_populations(qi, tmp_path):
    out = tmp_path / "generated"
    made = qi("sample", "generate", "--cases", "40", "--seed", "9", "--out", out, "--profile",
              ROOT / "cases" / "profiles" / "illustrative-standards-2018.yaml")
    assert made.exit_code == 0, made.stderr
    texts = [p.read_text(encoding="utf-8") for p in sorted((out / "cases").glob("*.yaml"))]
    specific = [t for t in texts if '\n"population": "unpaid_work"\n' in t]
    assert 0 < len(specific) < len(texts)
    assert all('"3.1.1.a"' in t and '"2.1.1.a"' not in t for t in specific)
    assert qi("validate", out).exit_code == 0


def test_a_sample_with_no_case_of_a_population_still_reports(qi, copied, tmp_path):
    for path in (copied / "cases").glob("*.yaml"):
        if '\n"population": "unpaid_work"\n' in path.read_text(encoding="utf-8"):
            path.unlink()
    ran = qi("run", copied, "--out", tmp_path / "out", "--db", tmp_path / "qi.db", "-q")
    assert ran.exit_code == 0, ran.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["aggregates"]["targets"]["3.1.1"]["groups"]["all"]["applicable"] == 0
    assert "3.1.1" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


def test_a_case_answering_no_standard_is_shown_with_no_findings(qi, tmp_path):
    framework = tmp_path / "framework.yaml"
    framework.write_text(FRAMEWORK.read_text(encoding="utf-8").replace(
        '    - {id: unpaid_work, label: "Unpaid work sample"}\n',
        '    - {id: unpaid_work, label: "Unpaid work sample"}\n    - {id: court_work, label: "Court work sample"}\n'),
        encoding="utf-8")
    case = tmp_path / "ILL-1.yaml"
    case.write_text('case: ILL-1\nprovider: EAST\npopulation: court_work\nsupervision: {case_type: community, start: '
                    '2018-08-01}\nteam: team_1\nharm_level: low\nevidence: {}\n', encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules" / "illustrative-standards-2018.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    shown = qi("evaluate", case, "--rules", rules, "--framework", framework)
    assert shown.exit_code == 0, shown.stderr
    assert "no criterion: the case answers no standard of the framework" in shown.stdout
