"""The framework's conditions as data (issue 22): lines decisive only where the case calls for them
(``key_when``, ``decisive_when``), a rule's ``warning:`` when the inspector's answers record a
context the case's fields do not, and barriers whose shares are of the cases where they can arise
(``among:``). The default rule set's use of them is held by its rule tests (rules/tests/); these
tests hold the language and the CLI."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, SAMPLE, case_yaml

RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
HEAD = 'id: t\ntitle: T\nversion: "1"\nframework: {id: hmip-qi-adult, version: "2.0"}\n'


def _warnings(stderr: str, code: str) -> list[str]:
    return [line for line in stderr.splitlines() if f": {code}: warning: " in line]


def test_an_answer_recording_non_compliance_is_warned_at_the_answer_and_makes_the_other_lines_expected(qi, tmp_path):
    case = tmp_path / "W-1.yaml"
    case.write_text(case_yaml(reference="W-1", evidence={"4.2.a": "yes", "4.2.b": "yes", "4.2.c": "yes",
                                                         "5.3.a": "yes", "5.3.b": "yes", "5.3.d": "yes"}))
    result = qi("evaluate", case, "--format", "json")
    assert result.exit_code == 0
    line = next(n for n, text in enumerate(case.read_text().splitlines(), 1) if text.strip().startswith("4.2.b:"))
    warned = _warnings(result.stderr, "rule_warning")
    assert len(warned) == 1 and re.match(rf"{re.escape(str(case))}:{line}:\d+: rule_warning: ", warned[0]), result.stderr
    assert "not flagged non_compliance" in warned[0] and "(rule context-enforcement-from-answers)" in warned[0]
    # the answer is evidence of non-compliance: 5.3.c ('service users who have not complied') is expected
    findings = json.loads(result.stdout)["findings"]
    assert findings["4.2"]["value"] == "sufficient" and findings["5.3"]["value"] == "not_assessed"


def test_no_warning_when_the_case_records_the_context_itself(qi, tmp_path):
    case = tmp_path / "W-2.yaml"
    case.write_text(case_yaml(reference="W-2", flags=["non_compliance"], evidence={"1.3.a": "yes", "1.3.b": "no"}))
    result = qi("evaluate", case, "--format", "json")
    assert result.exit_code == 0 and _warnings(result.stderr, "rule_warning") == []
    assert "non-compliance-unaddressed" in [b["id"] for b in json.loads(result.stdout)["barriers"]]


def test_a_conditional_line_not_applicable_where_the_case_shows_the_condition_is_warned(qi, tmp_path):
    case = tmp_path / "W-3.yaml"
    case.write_text(case_yaml(reference="W-3", flags=["vulnerable"], evidence={
        "5.2.a": "yes", "5.2.b": "yes", "5.2.c": "yes", "5.2.d": "yes", "5.2.e": "not_applicable"}))
    result = qi("evaluate", case, "--format", "json")
    assert json.loads(result.stdout)["findings"]["5.2"]["value"] == "not_assessed"
    warned = _warnings(result.stderr, "expected_not_applicable")
    assert len(warned) == 1 and "5.2.e" in warned[0] and "5.2 cannot be sufficient" in warned[0]


def _lint(qi, tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + text, encoding="utf-8")
    return qi("rules", "lint", path), path


def test_key_when_and_decisive_when_are_checked_in_one_pass_with_positions(qi, tmp_path):
    result, path = _lint(qi, tmp_path, (
        "facts: [{id: f, description: D}]\nrules: []\ncriteria:\n"
        '  - criterion: "5.2"\n    rationale: "R."\n    core: [5.2.a, 5.2.b, 5.2.c, 5.2.d]\n'
        "    key: [5.2.c]\n"
        "    key_when:\n      5.2.c: {fact: f}\n      5.2.x: {fact: f}\n"
        "    decisive_when:\n      5.2.e: {fact: f}\n      5.2.b: {answer: {item: 5.2.b, in: [\"no\"]}}\n"
        "    threshold: 66\n"))
    assert result.exit_code == 1
    errors = result.stdout + result.stderr
    for line, code in ((13, "duplicate_item"), (14, "unknown_item"), (16, "uncounted_item"), (17, "circular_expectation")):
        assert re.search(rf"{re.escape(str(path))}:{line}:\d+: {code}: ", errors), (code, errors)
    assert "Traceback" not in errors


def test_a_decisive_when_line_decides_only_where_its_condition_holds(compile_rules, make_case):
    from engine.run import pipeline
    compiled = compile_rules(
        "rules: []\ncriteria:\n"
        '  - criterion: "4.3"\n    rationale: "R."\n    core: [4.3.a, 4.3.b, 4.3.c]\n'
        "    decisive_when:\n      4.3.a: {flag: vulnerable}\n    key_when:\n      4.3.b: {risk_at_least: high}\n"
        "    threshold: 66\n")
    one_partly = {"4.3.a": "partly", "4.3.b": "yes", "4.3.c": "yes"}
    one_no = {"4.3.a": "yes", "4.3.b": "no", "4.3.c": "yes"}

    def value(**fields):
        result = pipeline.case_result(compiled, make_case(compiled, **fields))
        return result["findings"]["4.3"]["value"]
    assert value(evidence=one_partly) == "sufficient"                       # 2 of 3: within the threshold
    assert value(evidence=one_partly, flags=["vulnerable"]) == "insufficient"
    assert value(evidence=one_no, risk="medium") == "sufficient"
    assert value(evidence=one_no, risk="high") == "insufficient"
    assert value(evidence={**one_no, "4.3.b": "partly"}, risk="high") == "sufficient"  # key: only no decides


def test_among_is_checked_in_one_pass(qi, tmp_path):
    barrier = 'barrier: {id: b, text: "B", criterion: "%s", among: {where: %s, cases: "c"}}'
    result, path = _lint(qi, tmp_path, (
        "facts: [{id: f, description: D}]\nrules:\n"
        "  - {id: r1, title: T, rationale: R, when: {answer: {item: 3.1.a, in: [\"no\"]}}, then: [{"
        + barrier % ("3.1", "{fact: f}") + "}, {fact: f}]}\n"
        "  - {id: r2, title: T, rationale: R, when: {answer: {item: 3.1.b, in: [\"no\"]}}, then: [{"
        + barrier % ("3.1", "{flag: vulnerable}") + "}]}\n"
        "  - {id: r3, title: T, rationale: R, when: {answer: {item: 3.1.c, in: [\"no\"]}}, then: [{"
        + barrier.replace("id: b", "id: c") % ("3.1", "{fact: nope}") + "}]}\n"
        "organisation_rules:\n"
        "  - {id: o1, title: T, rationale: R, when: {answer: {item: 6.1.a, in: [\"no\"]}}, then: [{"
        + barrier.replace("id: b", "id: o") % ("6.1", "{flag: vulnerable}") + "}]}\n"))
    assert result.exit_code == 1
    errors = result.stdout + result.stderr
    for line, code in ((8, "inconsistent_factor"), (9, "unknown_fact"), (11, "wrong_scope")):
        assert re.search(rf"{re.escape(str(path))}:{line}:\d+: {code}: ", errors), (code, errors)


def test_the_report_gives_each_share_of_the_cases_where_it_can_arise_and_never_a_factor_no_case_shows(qi, tmp_path, db):
    out = tmp_path / "out"
    assert qi("run", SAMPLE, "--out", out, "--db", db).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    children = report["aggregates"]["factors"]["barrier:children-risk-unassessed"]
    assert children["among"] == "cases with child safeguarding concerns"
    assert (children["groups"]["all"]["cases"], children["groups"]["all"]["of"]) == (3, 5)
    text = " ".join((out / "report.md").read_text().split())
    assert "3 of 5 cases with child safeguarding concerns" in text
    assert not re.search(r": 0 of \d+ ", text)  # a factor with no case is never listed
    # every barrier's share is of at most the whole sample, never of more
    for factor in report["aggregates"]["factors"].values():
        for group in factor["groups"].values():
            assert group["cases"] <= group["of"] <= len(report["cases"])


@pytest.fixture
def db(tmp_path):
    return tmp_path / "qi.db"


def test_a_rule_test_checks_to_whom_a_recommendation_is_addressed(qi, tmp_path):
    tests = tmp_path / "t.yaml"
    tests.write_text(f"rules: {RULES}\ntests:\n"
                     "  - note: N\n    sample:\n      cases:\n"
                     "      - {provider: NPS, count: 5, flags: [non_compliance], evidence: {1.3.a: \"yes\", 1.3.b: \"no\"}}\n"
                     "      - {provider: CRC, count: 5, flags: [non_compliance], evidence: {1.3.a: \"yes\", 1.3.b: \"yes\"}}\n"
                     "    expect:\n      recommended_to: {respond-to-non-compliance: [NPS, CRC]}\n", encoding="utf-8")
    result = qi("rules", "test", tests)
    assert result.exit_code == 1
    assert "expected recommendation respond-to-non-compliance addressed to CRC, NPS, got NPS" in result.stdout


def test_sources_at_least_reads_how_many_sources_the_evidence_lists(compile_rules, tmp_path):
    from engine.run import pipeline
    compiled = compile_rules(
        'rules:\n  - {id: two, title: T, rationale: R, when: {sources_at_least: {item: 3.1.h, n: 2}}, '
        'then: [{barrier: {id: b, text: B, criterion: "3.1"}}]}\n')
    for sources, fires in (("[oasys]", False), ("[oasys, review]", True), ("[oasys, review, interview]", True),
                           ("[]", False)):
        case = tmp_path / "S-1.yaml"
        case.write_text(case_yaml(reference="S-1").replace(
            "evidence: {}", f"evidence:\n  3.1.h: {{answer: \"yes\", sources: {sources}}}"))
        result = pipeline.case_result(compiled, pipeline.load_case(case, compiled))
        assert [b["id"] for b in result["barriers"]] == (["b"] if fires else []), sources


def test_the_report_counts_answers_resting_on_one_source_by_source(qi, tmp_path, db):
    out = tmp_path / "out"
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    assert result.exit_code == 0
    report = json.loads((out / "report.json").read_text())
    sources = report["aggregates"]["sources"]
    # every answer that applies, counted once: the same total the line figures count as relevant
    assert sources["answers"] == sum(line["groups"]["all"]["relevant"] for line in report["aggregates"]["lines"].values()
                                     if "all" in line["groups"]) > 0
    assert sources["one_source"] == sum(entry["answers"] for entry in sources["by_source"])
    case_manager = next(e for e in sources["by_source"] if e["source"] == "interview")
    text = " ".join((out / "report.md").read_text().split())
    assert f"{case_manager['answers']} on “Interview with the case manager” alone" in text
    assert "3.1.h ('drawing on all relevant sources of information') is answered yes or partly" in result.stderr


def test_a_generated_sample_where_one_provider_never_fails_sends_it_nothing(qi, tmp_path, db):
    """60 generated cases, every NPS answer short of not_applicable turned to yes: no
    recommendation goes to the NPS, no NPS share is listed, every listed factor has cases, each
    share is of the cases where it can arise, and a provider difference is a figure, not a barrier."""
    import yaml

    sample = tmp_path / "generated"
    assert qi("sample", "generate", "--cases", "60", "--seed", "7", "--out", sample).exit_code == 0
    for path in sorted((sample / "cases").glob("*.yaml")):
        case = yaml.safe_load(path.read_text(encoding="utf-8"))
        if case["provider"] == "NPS":
            for entry in case["evidence"].values():
                if entry["answer"] != "not_applicable":
                    entry["answer"] = "yes"
            path.write_text(yaml.safe_dump(case, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    assert qi("run", sample, "--out", out, "--db", db).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    recommendations = report["sample_judgement"]["recommendations"]
    assert recommendations and all("NPS" not in r["to"] for r in recommendations)
    assert all("NPS" not in r["text"] for r in recommendations)
    nps = sum(1 for c in report["cases"] if c["provider"] == "NPS")
    assert nps >= 10 and all(not c["barriers"] for c in report["cases"] if c["provider"] == "NPS")
    for factor in report["aggregates"]["factors"].values():
        if factor["kind"] == "barrier":
            assert factor["groups"].get("provider:NPS", {}).get("cases", 0) == 0
        for group in factor["groups"].values():
            assert group["cases"] <= group["of"] <= len(report["cases"])
        if factor.get("among"):  # of the relevant cases only, never of all
            matched = [c for c in report["cases"] if factor["id"] in [f["id"] for f in c[factor["kind"] + "s"]]]
            assert factor["groups"]["all"]["cases"] == len(matched)
    text = " ".join((out / "report.md").read_text().split())
    assert not re.search(r": 0 of \d+ (?!cases counted)", text)  # a check may count none; a factor is never listed so
    assert "provider-trails" not in json.dumps(report["sample_judgement"])
