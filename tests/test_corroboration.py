"""Standard 6 corroborated by the provider's own cases: the ``provider_cases`` condition form, the
default rules on 6.2.e and 6.1.d, and the contradiction with its cases in every view."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import docx
import pytest

from engine.check.rules.conditions import provider_cases
from engine.check.rules.form import condition_key
from tests.conftest import case_yaml, walk

YES_6 = {f"6.{c}.{i}": "yes" for c, items in ((1, "abcdefgh"), (2, "abcdef"), (3, "abcd")) for i in items}
FAIL_31 = {"3.1.a": "no", "3.1.b": "no"}  # a key line not met: 3.1 insufficient; 3.1.b fails 6.1.d's test too
GOOD_31 = {f"3.1.{i}": "yes" for i in "abcdefghi"}


def sample(root: Path, cases: list[tuple[str, str, dict]], organisation: dict | None = None,
           provider: str = "NPS") -> Path:
    """A sample folder: cases as (reference, context, evidence) with context "mappa", "child" or
    "none", all for ``provider``; the provider's organisation file answering ``organisation``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sample.yaml").write_text("id: corroboration\ntitle: Corroboration test\narea: Test area\n"
                                      "period: {start: 2016-01-01, end: 2016-03-31}\n"
                                      "framework: {id: hmip-qi-adult, version: '2.0'}\n", encoding="utf-8")
    (root / "cases").mkdir(exist_ok=True)
    for reference, context, evidence in cases:
        fields = {"mappa": "{category: 2, level: 2}"} if context == "mappa" else (
            {"flags": ["child_safeguarding"]} if context == "child" else {})
        (root / "cases" / f"{reference}.yaml").write_text(
            case_yaml(reference, provider, evidence=evidence, **fields), encoding="utf-8")
    (root / "organisation").mkdir(exist_ok=True)
    answers = organisation if organisation is not None else YES_6
    lines = [f"organisation: {provider}", "evidence:"] + [
        f'  {item}: {{answer: "{answer}", note: "Organisation note on {item}.", sources: [manager_interview]}}'
        for item, answer in answers.items()]
    (root / "organisation" / f"{provider}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def run(qi, folder: Path, out: Path, *extra: str) -> dict:
    result = qi("run", folder, "--out", out, "--db", out.parent / f"{out.name}.db", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def organisation(report: dict, provider: str = "NPS") -> dict:
    return next(o for o in report["organisations"] if o["organisation"] == provider)


def check_of(org: dict, rule: str) -> dict:
    return next(e for e in org["corroboration"] if e["rule"] == rule)


# --- the condition form --------------------------------------------------------------------------------


def _form(**body):
    return provider_cases.ProviderCasesCondition.model_validate({"provider_cases": {
        "where": {"fact": "multi_agency_relevant"}, **body}})


def _case(reference, matched, **findings):
    return SimpleNamespace(reference=reference, matched=frozenset(matched), findings=findings)


def test_the_form_counts_cases_of_the_kind_judged_on_the_criteria_and_lists_those_failing():
    form = _form(insufficient_on=["3.1", "3.3"], at_least=50, min_cases=3)
    key = condition_key(form.body.where)
    cases = [_case("A", [key], **{"3.1": "insufficient"}), _case("B", [key], **{"3.1": "sufficient"}),
             _case("C", [key], **{"3.1": "not_assessed", "3.3": "insufficient"}),
             _case("D", [key], **{"3.1": "not_assessed", "3.3": "not_applicable"}),  # judged on neither: left out
             _case("E", [], **{"3.1": "insufficient"})]                              # not of the kind
    found = provider_cases.figures(form.body, key, cases)
    assert found == {"matching": 4, "judged": 3, "insufficient": 2, "percent": 66.7, "holds": True, "cases": ["A", "C"]}
    assert provider_cases.figures(form.body, key, None) is None  # the cases were not read


@pytest.mark.parametrize("failing, judged, holds", [(2, 4, True), (1, 3, False), (2, 2, False), (3, 3, True)])
def test_the_threshold_and_the_minimum_are_the_rules_own(failing, judged, holds):
    form = _form(insufficient_on="3.1", at_least=50, min_cases=3)
    key = condition_key(form.body.where)
    cases = [_case(f"C{i}", [key], **{"3.1": "insufficient" if i < failing else "sufficient"}) for i in range(judged)]
    assert provider_cases.figures(form.body, key, cases)["holds"] is holds


def test_failing_counts_every_case_of_the_kind_and_those_where_it_holds():
    form = _form(failing={"answer": {"item": "3.1.b", "in": ["no"]}}, at_least=50)
    key, failing = condition_key(form.body.where), condition_key(form.body.failing[0])
    found = provider_cases.figures(form.body, key, [_case("A", [key, failing]), _case("B", [key]), _case("C", [failing])])
    assert (found["judged"], found["cases"], found["holds"]) == (2, ["A"], True)
    assert "3.1.b is no" in form.describe() and "at least 50%" in form.describe()


RULE = """organisation_rules:
  - id: r
    title: T
    rationale: x
    cites: [6.2.e]
    when:
      provider_cases: {BODY}
    then: [{finding: {criterion: "6.2", value: insufficient}}]
"""
CASE_RULE = """rules:
  - {id: c, title: T, rationale: x, when: {answer: {item: 3.1.a, in: ["no"]}}, then: [{finding: {criterion: "3.1", value: insufficient}}]}
facts:
  - {id: declared, description: d}
"""


@pytest.mark.parametrize("body, code, where", [
    ('{where: {flag: child_safeguarding}, at_least: 50}', "invalid_value", "exactly one of"),
    ('{where: {flag: child_safeguarding}, insufficient_on: ["6.1"], at_least: 50}', "unknown_criterion", "6.1"),
    ('{where: {answer: {item: 6.1.a, in: ["no"]}}, insufficient_on: ["3.1"], at_least: 50}', "wrong_scope", "6.1.a"),
    ('{where: {fact: undeclared}, insufficient_on: ["3.1"], at_least: 50}', "unknown_fact", "undeclared"),
    ('{where: {flag: child_safeguarding}, insufficient_on: ["3.1"], at_least: 0}', "", "greater than 0"),
])
def test_bad_provider_cases_conditions_are_diagnosed_with_a_position(qi, tmp_path, body, code, where):
    path = tmp_path / "r.yaml"
    path.write_text("id: r\ntitle: T\nversion: '1'\nframework: {id: hmip-qi-adult, version: '2.0'}\n"
                    + CASE_RULE + RULE.replace("{BODY}", body), encoding="utf-8")
    result = qi("rules", "lint", path)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if where in line]
    assert lines and all(re.match(rf"{re.escape(str(path))}:\d+:\d+: ", line) for line in lines), result.stderr
    assert code in lines[0] and "Traceback" not in result.stderr


def test_a_case_rule_cannot_read_the_provider_cases(qi, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("id: r\ntitle: T\nversion: '1'\nframework: {id: hmip-qi-adult, version: '2.0'}\nrules:\n"
                    "  - {id: c, title: T, rationale: x, when: {provider_cases: {where: {flag: child_safeguarding}, "
                    "insufficient_on: '3.1', at_least: 50}}, then: [{finding: {criterion: '3.1', value: sufficient}}]}\n",
                    encoding="utf-8")
    result = qi("rules", "lint", path)
    assert result.exit_code == 1 and "wrong_scope: condition 'provider_cases' cannot be read in case rules" in result.stderr


# --- the default rules, end to end through qi run ---------------------------------------------------------


def test_an_nps_claim_on_mappa_and_child_protection_contradicted_by_its_own_cases(qi, tmp_path):
    folder = sample(tmp_path / "bad", [("M-1", "mappa", FAIL_31), ("M-2", "mappa", FAIL_31),
                                       ("K-1", "child", FAIL_31), ("O-1", "none", FAIL_31)])
    report = run(qi, folder, tmp_path / "out")
    org = organisation(report)
    assert org["findings"]["6.2"]["value"] == "insufficient"
    assert org["findings"]["6.2"]["rules"] == ["6.2.e-contradicted-by-cases"]
    assert "mappa-child-support-contradicted" in [b["id"] for b in org["barriers"]]
    check = check_of(org, "6.2.e-contradicted-by-cases")
    seen = check["checks"][0]["seen"]
    assert check["contradicted"] is True and check["checks"][0]["holds"] is True
    assert seen["cases"] == ["K-1", "M-1", "M-2"]  # O-1 is neither MAPPA nor child safeguarding
    assert (seen["provider cases matching"], seen["counted"], seen["falling short"]) == (3, 3, 3)
    # the trace of the finding shows the condition with the counts and cases it read
    conditions = [n for n in walk(org["findings"]["6.2"]["trace"]) if n.get("condition") == "provider_cases"]
    assert conditions and conditions[0]["holds"] is True and conditions[0]["seen"]["cases"] == ["K-1", "M-1", "M-2"]
    # 6.1.d: 3.1.b answered no in all three cases
    assert org["findings"]["6.1"]["value"] == "insufficient"
    assert check_of(org, "6.1.d-contradicted-by-cases")["checks"][0]["seen"]["cases"] == ["K-1", "M-1", "M-2"]
    # every view lists the contradiction and its cases
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    line = next(line for line in md.splitlines() if "Contradicted" in line and "MAPPA and child protection" in line)
    assert "cases: K-1, M-1, M-2" in line and "3 of 3 cases counted fall short" in line and "6.2 insufficient" in line
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Contradicted — Support on MAPPA and child protection" in html and "K-1, M-1, M-2" in html
    text = "\n".join(p.text for p in docx.Document(str(tmp_path / "out" / "report.docx")).paragraphs)
    assert "Contradicted — Support on MAPPA and child protection" in text and "K-1, M-1, M-2" in text


def test_the_same_claim_with_good_cases_stays_sufficient(qi, tmp_path):
    folder = sample(tmp_path / "good", [("M-1", "mappa", GOOD_31), ("M-2", "mappa", GOOD_31),
                                        ("K-1", "child", GOOD_31)])
    org = organisation(run(qi, folder, tmp_path / "out"))
    assert org["findings"]["6.2"]["value"] == "sufficient" and org["findings"]["6.1"]["value"] == "sufficient"
    check = check_of(org, "6.2.e-contradicted-by-cases")
    assert check["contradicted"] is False and check["checks"][0]["seen"]["counted"] == 3
    assert check["checks"][0]["seen"]["cases"] == []
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "Not contradicted by the rule set's test — Support on MAPPA and child protection checked against the " \
           "provider's cases: 0 of 3 cases counted fall short" in md


@pytest.mark.parametrize("failing, good, value", [(1, 2, "sufficient"), (2, 2, "insufficient"), (2, 0, "sufficient")])
def test_the_threshold_edge(qi, tmp_path, failing, good, value):
    """At least 50% of at least 3 cases: 1 of 3 is not enough, 2 of 4 is, 2 of 2 is too few cases."""
    cases = [(f"F-{i}", "child", FAIL_31) for i in range(failing)] + [(f"G-{i}", "child", GOOD_31) for i in range(good)]
    org = organisation(run(qi, sample(tmp_path / "s", cases), tmp_path / "out"))
    assert org["findings"]["6.2"]["value"] == value


def test_an_organisation_that_answers_no_is_not_contradicted_and_keeps_its_own_finding(qi, tmp_path):
    folder = sample(tmp_path / "s", [(f"F-{i}", "child", FAIL_31) for i in range(3)], {**YES_6, "6.2.e": "no"})
    org = organisation(run(qi, folder, tmp_path / "out"))
    check = check_of(org, "6.2.e-contradicted-by-cases")
    assert check["contradicted"] is False and check["checks"][0]["holds"] is True
    assert org["findings"]["6.2"]["rules"] == ["6.2-key-line-not-met"]
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "Cases fall short, no contradiction — Support on MAPPA" in md


def test_redaction_keeps_the_counts_and_hides_the_cases(qi, tmp_path):
    folder = sample(tmp_path / "bad", [(f"M-{i}", "mappa", FAIL_31) for i in range(3)])
    report = run(qi, folder, tmp_path / "out", "--redact")
    org = organisation(report)
    seen = check_of(org, "6.2.e-contradicted-by-cases")["checks"][0]["seen"]
    assert seen["cases"] == "[redacted]" and seen["falling short"] == 3
    assert all(n["seen"].get("cases") in (None, "[redacted]") for n in walk(org) if isinstance(n.get("seen"), dict))
    for name in ("report.md", "report.html"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "Contradicted — Support on MAPPA" in text
        lines = [line for line in text.splitlines() if "checked against the provider" in line]
        assert lines and not any(re.search(r"M-\d", line) for line in lines)
        assert any("redacted" in line for line in lines)


def test_the_serve_run_page_lists_the_contradiction_with_links_to_its_cases(qi, tmp_path):
    from starlette.testclient import TestClient

    from engine.serve import app

    folder = sample(tmp_path / "bad", [(f"M-{i}", "mappa", FAIL_31) for i in range(3)])
    run(qi, folder, tmp_path / "out")
    page = TestClient(app.create(tmp_path / "out.db"), base_url="http://127.0.0.1").get("/runs/1")
    assert page.status_code == 200
    checks = re.search(r'<ul id="corroboration-checks">(.*?)</ul>', page.text, flags=re.S).group(1)
    item = next(li for li in checks.split("<li") if "MAPPA and child protection" in li)
    assert "<strong>contradicted</strong>, so 6.2 is insufficient" in item
    assert all(f'href="/runs/1/cases/M-{i}"' in item for i in range(3))


def test_organisation_rules_read_nothing_without_the_cases(tmp_path):
    """An organisation judged without its provider's cases (not in a run): the form does not hold,
    and its trace says the cases were not read."""
    from engine.check import sample as samples
    from engine.compile import compile as compiler
    from engine.compile import facts
    from engine.evaluate import evaluate as evaluator
    from engine.judge import trace
    from engine.run import pipeline
    from engine.run import run as runs

    compiled = pipeline.compiled_rules(pipeline.rules_path("hmip-qi-adult-2.0-default"))
    section = compiler.compile_organisation(compiled.loaded)
    folder = sample(tmp_path / "s", [])
    path = folder / "organisation" / "NPS.yaml"
    loaded = samples.check_file(path, expect="organisation", framework=compiled.loaded.framework)
    assert runs.organisation_subject(loaded, None, None) is loaded
    evaluation = evaluator.evaluate(section, facts.organisation_attributes(loaded.model, compiled.loaded.framework,
                                                                          section.schema))
    tracer = trace.Trace(section, evaluation, loaded)
    check = next(e for e in tracer.corroboration() if e["rule"] == "6.2.e-contradicted-by-cases")
    assert check["contradicted"] is False and check["checks"][0]["holds"] is False
    assert "not read" in check["checks"][0]["seen"]["provider cases"]


def test_cases_judged_in_worker_processes_are_read_the_same(qi, tmp_path):
    """Which cases a rule's case condition holds on is worked out where each case is judged (in a
    worker with --jobs): the report is the same as in one process."""
    cases = [(f"M-{i:02}", "mappa", FAIL_31) for i in range(20)] + [(f"K-{i:02}", "child", GOOD_31) for i in range(17)]
    folder = sample(tmp_path / "s", cases + [(f"O-{i:02}", "none", FAIL_31) for i in range(17)])  # over 50: in workers
    one = run(qi, folder, tmp_path / "one")
    two = run(qi, folder, tmp_path / "two", "--jobs", "2")
    for report in (one, two):
        report.pop("run")
        report.pop("store", None)
    assert one == two
    seen = check_of(organisation(two), "6.2.e-contradicted-by-cases")["checks"][0]["seen"]
    assert (seen["counted"], seen["cases"]) == (37, [f"M-{i:02}" for i in range(20)])
