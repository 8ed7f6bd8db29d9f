"""A second framework, shaped unlike the 2016 one (organisational standards and case supervision
standards with key questions and lettered prompts; yes/no answers; delivery units; four bands),
goes through every command by the same code paths — validate, evaluate, explain and what-if, run,
review, sign-off, report, runs show and verify, export, cases export/import, rules lint, test,
diff and doc, and the web workspace — and a renamed copy of it works from a sample folder and
from --framework."""

from __future__ import annotations

import json
import re
import shutil

import openpyxl
import pytest
from click.testing import CliRunner

import cli
from tests.conftest import ME, ROOT
from tests.test_framework_files import _names, _own_framework

FRAMEWORK = ROOT / "framework" / "illustrative-standards-2018.yaml"
RULES = ROOT / "rules" / "illustrative-standards-2018.yaml"
SAMPLE = ROOT / "cases" / "illustrative-region-2018"
DISAGREEING = SAMPLE / "cases" / "ILL-00005.yaml"  # the inspector judges 2.1.3 sufficient, the engine insufficient


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The example sample run once into a store."""
    root = tmp_path_factory.mktemp("illustrative")
    result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(root / "out"), "--db", str(root / "qi.db"),
                                          "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


def test_the_example_sample_is_two_delivery_units_of_at_least_forty_cases(qi):
    cases = sorted((SAMPLE / "cases").glob("*.yaml"))
    units = {re.search(r'\n"provider": "(\w+)"\n', c.read_text(encoding="utf-8")).group(1) for c in cases}
    assert len(cases) >= 40 and units == {"EAST", "WEST"}
    specific = [c for c in cases if '\n"population": "unpaid_work"\n' in c.read_text(encoding="utf-8")]
    assert 10 <= len(specific) < len(cases) - 40  # a specific-work sample beside a main sample of at least 40
    assert qi("validate", SAMPLE).exit_code == 0
    assert qi("validate", FRAMEWORK).exit_code == 0


def test_the_framework_is_an_illustration_and_never_the_default(qi):
    text = FRAMEWORK.read_text(encoding="utf-8")
    assert "NOT HM INSPECTORATE OF PROBATION'S TEXT" in text
    assert "sentence" in json.loads(qi("schema", "case").stdout)["properties"]  # the default stays the 2016 one
    schema = json.loads(qi("schema", "case", "--framework", FRAMEWORK).stdout)
    assert list(schema["properties"])[:7] == ["case", "provider", "population", "supervision", "team", "harm_level",
                                              "concerns"]
    assert schema["properties"]["population"]["enum"] == ["unpaid_work", None]


def test_rule_set_lints_and_its_tests_pass(qi):
    linted = qi("rules", "lint", RULES)
    assert linted.exit_code == 0 and "0 errors, 0 warnings" in linted.stderr, linted.stderr
    tested = qi("rules", "test", ROOT / "rules" / "tests" / "illustrative-standards.yaml")
    assert tested.exit_code == 0, tested.stdout
    assert re.search(r"\b[2-9][0-9] passed, 0 failed", tested.stdout)
    doc = qi("rules", "doc", RULES)
    assert doc.exit_code == 0 and "Does the assessment focus on keeping other people safe?" in doc.stdout


def test_evaluate_explain_and_what_if_on_a_case(qi):
    evaluated = qi("evaluate", DISAGREEING)
    assert evaluated.exit_code == 0, evaluated.stderr
    assert "rule set illustrative-standards-2018-default" in evaluated.stdout
    assert re.search(r"2\.1\.3 engine insufficient\s+inspector sufficient\s+DISAGREE", evaluated.stdout)
    explained = qi("explain", DISAGREEING, "--criterion", "2.1.3", "--what-if")
    assert explained.exit_code == 0
    assert "2.1.3 would be sufficient if 2.1.3.a were yes instead of no" in explained.stdout


def test_the_run_reports_in_the_frameworks_own_words(stored):
    report = json.loads((stored / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["framework"]["names"]["criterion"] == ["Key question", "Key questions"]
    assert report["framework"]["illustration"].startswith("An illustration")
    assert {r["band"] for r in report["sample_judgement"]["ratings"]} <= {
        "outstanding", "good", "requires_improvement", "inadequate"}
    assert any(r["target"] == "standard 2.1" and r["group"] == "all" for r in report["sample_judgement"]["ratings"])
    markdown = (stored / "out" / "report.md").read_text(encoding="utf-8")
    assert markdown.splitlines()[2].startswith("Not a real inspection framework: An illustration")
    assert "## Standards and key questions" in markdown and "| Key question | EAST | WEST |" in markdown
    assert "judged per delivery unit" in markdown and "Judged once for each delivery unit" in markdown
    assert "criteri" not in markdown.lower() and "lines of enquiry" not in markdown
    assert "## Outcomes" not in markdown  # no impact standards: no empty section


def test_review_signoff_report_show_and_verify(qi, stored, tmp_path):
    db = tmp_path / "qi.db"
    shutil.copy(stored / "qi.db", db)
    decided = qi("review", "1", "--db", db, "--case", "ILL-00005", "--criterion", "2.1.3", "--decision", "override",
                 "--finding", "sufficient", "--reason", "Risks to others were analysed at the first review.",
                 )
    assert decided.exit_code == 0, decided.stderr
    refused = qi("runs", "signoff", "1", "--db", db)
    assert refused.exit_code == 1 and "ILL-00002 2.1.2 is open" in refused.stderr  # every disagreement decided first
    for case, criterion in (("ILL-00002", "2.1.2"), ("ILL-00004", "2.1.1")):
        agreed = qi("review", "1", "--db", db, "--case", case, "--criterion", criterion, "--decision", "agree",
                    )
        assert agreed.exit_code == 0, agreed.stderr
    signed = qi("runs", "signoff", "1", "--db", db)
    assert signed.exit_code == 0, signed.stderr
    shown = qi("runs", "show", "1", "--db", db)
    assert shown.exit_code == 0 and f"signed off by {ME} (operating-system user)" in shown.stdout
    verified = qi("runs", "verify", "--db", db)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    out = tmp_path / "report"
    rendered = qi("report", "1", "--db", db, "--out", out)
    assert rendered.exit_code == 0, rendered.stderr
    final = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert final["review"]["changes"]["findings"][0]["criterion"] == "2.1.3"
    assert "ILL-00005, 2.1.3" in (out / "report.md").read_text(encoding="utf-8")
    book = tmp_path / "findings.xlsx"
    assert qi("export", "1", "--db", db, "--to", book).exit_code == 0
    assert openpyxl.load_workbook(book).sheetnames


def test_cases_export_and_import_round_trip(qi, tmp_path):
    book = tmp_path / "cases.xlsx"
    assert qi("cases", "export", SAMPLE, "--to", book).exit_code == 0
    headers = [c.value for c in openpyxl.load_workbook(book)["Cases"][1]]
    assert headers[:8] == ["case", "provider", "population", "supervision_case_type", "supervision_start", "team",
                           "harm_level", "concerns"]
    back = tmp_path / "back"
    imported = qi("cases", "import", book, "--out", back, "--framework", FRAMEWORK)
    assert imported.exit_code == 0, imported.stderr
    assert qi("validate", back, "--framework", FRAMEWORK).exit_code == 0
    assert len(list((back / "cases").glob("*.yaml"))) == len(list((SAMPLE / "cases").glob("*.yaml")))


def test_rules_diff_on_a_changed_threshold(qi, tmp_path):
    changed = tmp_path / "stricter.yaml"
    text = RULES.read_text(encoding="utf-8")
    changed.write_text(text.replace("id: illustrative-standards-2018-default", "id: stricter", 1)
                       .replace("    core: [2.1.1.a, 2.1.1.b, 2.1.1.c]\n    threshold: 66",
                                "    core: [2.1.1.a, 2.1.1.b, 2.1.1.c]\n    threshold: 100", 1), encoding="utf-8")
    diff = qi("rules", "diff", RULES, changed, "--sample", SAMPLE, "--format", "json")
    assert diff.exit_code == 0, diff.stderr
    result = json.loads(diff.stdout)
    moved = {t["target"]: t["groups"]["all"] for t in result["targets"]}
    assert "2.1.1" in moved  # only the key question whose threshold changed, and its standard, move
    assert set(moved) <= {"2.1.1", "standard 2.1"}
    before, after = moved["2.1.1"]["before"], moved["2.1.1"]["after"]
    assert after["counts"]["sufficient"] < before["counts"]["sufficient"] and after["applicable"] == before["applicable"]


def test_the_web_workspace_shows_the_run(stored):
    from starlette.testclient import TestClient

    from engine.serve import app

    web = TestClient(app.create(stored / "qi.db"), base_url="http://127.0.0.1")
    run = web.get("/runs/1")
    assert run.status_code == 200 and "Key question" in run.text and "EAST" in run.text
    case = web.get("/runs/1/cases/ILL-00005")
    assert case.status_code == 200 and "Does the assessment focus on keeping other people safe?" in case.text
    queue = web.get("/runs/1/review")
    assert queue.status_code == 200 and "ILL-00005" in queue.text


ILLUSTRATION = ("illustrative-standards", "2018.1")


def test_a_renamed_copy_works_from_the_sample_folder_and_from_framework(qi, tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    _names(sample / "sample.yaml", "team-standards", was=ILLUSTRATION)
    rules = sample / "team-rules.yaml"
    shutil.copy(RULES, rules)
    _names(rules, "team-standards", was=ILLUSTRATION)
    framework = _own_framework(sample, "team-standards", source=FRAMEWORK, was=ILLUSTRATION)
    ran = qi("run", sample, "--rules", rules, "--out", tmp_path / "out", "--db", tmp_path / "qi.db", "-q")
    assert ran.exit_code == 0, ran.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["framework"]["id"] == "team-standards" and report["framework"]["file"] == framework.name

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = framework.rename(elsewhere / framework.name)
    assert qi("validate", sample).exit_code == 1  # not found any more
    again = qi("run", sample, "--rules", rules, "--framework", moved, "--out", tmp_path / "out2", "--db",
               tmp_path / "qi.db", "-q")
    assert again.exit_code == 0, again.stderr


def test_the_ratings_led_layout_opens_with_the_ratings_then_strengths_and_areas(stored):
    markdown = (stored / "out" / "report.md").read_text(encoding="utf-8")
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[:4] == ["## Ratings", "## Strengths and areas for improvement", "## Recommendations",
                            "## Key facts"]
    ratings = markdown.split("## Ratings")[1].split("## ")[0]
    assert "| Standard | All cases | EAST | WEST |" in ratings and "How the bands are derived:" in ratings
    strengths = markdown.split("## Strengths and areas for improvement")[1].split("\n## ")[0]
    assert "### Standard 2.1: Assessment" in strengths and "Areas for improvement:" in strengths
    assert re.search(r"- 2\.1\.\d .*\? — (outstanding|good): \d+% \(", strengths)
    assert "Risks of harm to others were not identified and analysed: " in strengths  # the key question's barrier
    assert "Strengths:\n\nAreas" not in strengths  # no empty list


def test_a_framework_names_its_layout_and_its_outcomes_as_data(qi, tmp_path):
    """The 2016 framework switched to the ratings-led layout, with the banded rule set: the report
    leads with its ratings; an outcomes dimension the framework does not have is refused."""
    from tests.test_framework_files import _names as names_2016
    from tests.test_framework_files import _own_framework as own_2016

    sample = tmp_path / "sample"
    shutil.copytree(ROOT / "cases" / "north-west-2016", sample)
    names_2016(sample / "sample.yaml")
    framework = own_2016(sample)
    framework.write_text(framework.read_text(encoding="utf-8").replace(
        "report: {layout: findings, outcomes: impact}", "report: {layout: ratings}"), encoding="utf-8")
    for name in ("hmip-qi-adult-2.0.yaml", "hmip-qi-adult-2.0-banded.yaml"):
        shutil.copy(ROOT / "rules" / name, sample / name)
        names_2016(sample / name)
    ran = qi("run", sample, "--rules", sample / "hmip-qi-adult-2.0-banded.yaml", "--out", tmp_path / "out", "--db",
             tmp_path / "qi.db", "-q")
    assert ran.exit_code == 0, ran.stderr
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Ratings" and "## Outcomes" not in headings
    framework.write_text(framework.read_text(encoding="utf-8").replace(
        "report: {layout: ratings}", "report: {layout: ratings, outcomes: impakt}"), encoding="utf-8")
    refused = qi("validate", framework)
    assert refused.exit_code == 1 and "'impakt' is not a dimension (did you mean 'impact'?" in refused.stderr


@pytest.mark.parametrize("old, new, expected", [
    ("band_scores: {outstanding: 3, good: 2, requires_improvement: 1, inadequate: 0}",
     "band_scores: {outstanding: 3, good: 2, requires_improvement: 1, inadequat: 0}",
     "unknown_band: 'inadequat' is not a rating band (did you mean 'inadequate'?"),
    ("band_scores: {outstanding: 3, good: 2, requires_improvement: 1, inadequate: 0}",
     "band_scores: {outstanding: 3, good: 2, requires_improvement: 1}", "missing_field: no score for inadequate"),
    ("band_scores: {outstanding: 3, good: 2, requires_improvement: 1, inadequate: 0}", "",
     "missing_field: rating_score adds up band scores, but the rule set gives none"),
    ("    when: {criteria_sufficient: {below: 1}}", "    when: {criteria_sufficient: {standard: \"2.1\", below: 1}}",
     "unknown_standard: '2.1' is not an organisation-scoped standard"),
    ("then: [{rating: {overall: true, band: outstanding}}]",
     "then: [{rating: {overall: true, standard: \"1.1\", band: outstanding}}]",
     "invalid_value: an overall rating names no criterion or standard"),
    ("    for_each: [organisation_standard, provider]\n    when: {criteria_sufficient: {below: 1}}",
     "    for_each: [organisation_standard]\n    when: {criteria_sufficient: {below: 1}}",
     "unbound_target: this names no provider"),
    ("    for_each: [organisation_standard, provider]\n    when: {criteria_sufficient: {at_least: 2}}",
     "    for_each: [standard, provider]\n    when: {criteria_sufficient: {at_least: 2}}",
     "unbound_target: this names no organisation-scoped standard"),
    ("    for_each: [organisation_standard, provider]\n    when: {criteria_sufficient: {at_least: 2}}",
     "    for_each: [organisation_standard, provider]\n    when: {percent_sufficient: {at_least: 2}}",
     "wrong_scope: this reads a case-scoped criterion's or standard's figures"),
    ("    for_each: [organisation_standard, provider]\n    when: {criteria_sufficient: {at_least: 2}}",
     "    for_each: [organisation_standard, provider]\n    when: {criterion_rated: {band: good}}",
     "wrong_scope: an organisation-scoped standard's criteria are not rated from case figures"),
])
def test_organisation_and_overall_ratings_are_checked_where_they_are_written(qi, tmp_path, old, new, expected):
    text = RULES.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "rules.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = qi("rules", "lint", broken)
    assert result.exit_code == 1 and expected in result.stderr, result.stderr


def test_overall_and_organisation_ratings_in_the_report(stored):
    report = json.loads((stored / "out" / "report.json").read_text(encoding="utf-8"))
    bands = {(r["target"], r["group"]): r["band"] for r in report["sample_judgement"]["ratings"]}
    assert {("standard 1.1", "EAST"), ("standard 1.1", "WEST"), ("overall", "EAST"), ("overall", "WEST")} <= set(bands)
    assert ("overall", "all") not in bands  # the organisational standards are rated per unit only
    markdown = (stored / "out" / "report.md").read_text(encoding="utf-8")
    ratings = markdown.split("## Ratings")[1].split("\n## ")[0]
    assert f"| Overall | not rated | {bands[('overall', 'EAST')].replace('_', ' ')} | " in ratings
    assert "| per delivery unit |" in ratings



def test_a_rule_test_naming_no_rated_target_fails(qi, tmp_path):
    tests = tmp_path / "t.yaml"
    tests.write_text(f"rules: {RULES}\ntests:\n  - note: typos\n    sample:\n      cases:\n      - provider: EAST\n"
                     "        evidence: {2.1.1.a: \"yes\"}\n    expect:\n"
                     "      ratings: {\"overal/EAST\": unrated, \"2.1.1/EATS\": unrated, \"overall/EAST\": unrated}\n",
                     encoding="utf-8")
    result = qi("rules", "test", tests)
    assert result.exit_code == 1
    assert "'overal/EAST' names no rated target" in result.stdout and "'2.1.1/EATS' names no rated target" in \
        result.stdout and "overall/EAST" not in result.stdout.replace("'overal/EAST'", "")
