"""Causes (issue 22, 10): inspectors record the organisational causes they found, per case and per
organisation, from the framework's vocabulary; the report lists each with its counts, and what
fieldwork found with its note and sources. The default rules' use of them is held by
rules/tests/causes.yaml; these tests hold the files, the report and the language."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


def _run(qi, sample, tmp_path, *extra):
    out = tmp_path / "out"
    result = qi("run", sample, "--out", out, "--db", tmp_path / "qi.db", "-q", *extra)
    assert result.exit_code == 0, result.stderr
    return out


def _add_cause(sample, organisation: str, text: str) -> None:
    path = sample / "organisation" / f"{organisation}.yaml"
    body = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    path.write_text(body + text if "\ncauses:" in body else body + "causes:\n" + text, encoding="utf-8")


def test_the_report_lists_every_cause_recorded_concluded_or_not_and_what_fieldwork_found(qi, sample_copy, tmp_path):
    _add_cause(sample_copy, "NPS", '  it_systems: {note: "The case system was down for two weeks.", '
                                   "sources: [staff_survey]}\n")
    out = _run(qi, sample_copy, tmp_path)
    report = json.loads((out / "report.json").read_text())
    nps = next(o for o in report["organisations"] if o["organisation"] == "NPS")
    assert nps["causes"] == [{"cause": "it_systems", "label": "IT systems hindered recording, sharing or finding "
                              "information", "note": "The case system was down for two weeks.",
                              "sources": ["staff_survey"]}]
    kinds = {e["rule"]: e["kind"] for o in report["organisations"] for e in o.get("corroboration", [])}
    assert kinds["cause-caseloads"] == "cause" and kinds["6.2.e-contradicted-by-cases"] == "check"
    text = " ".join((out / "report.md").read_text().replace("\\", "").split())
    crc = text[text.index("CRC, causes the inspectors recorded:"):text.index("NPS, causes the inspectors recorded:")]
    assert re.search(r"Cause found — Caseloads as a cause: recorded in 3 of its cases; \d of the 3 judged were "
                     r"insufficient .*\(cases: NW-", crc)
    assert "Not concluded — Changes of case manager as a cause: recorded in 1 of its cases" in crc
    assert not re.search(r"\(\d+(\.\d+)?%\)", crc)  # counts, never a percentage of 1 to 3 cases
    assert "Found in fieldwork with the organisation — Caseloads or workloads too high" in crc
    assert ("Found in fieldwork with the organisation — IT systems hindered recording, sharing or finding "
            "information: The case system was down for two weeks (sources: staff_survey).") in text
    # a cause no case records and no rule concluded is still listed, as fieldwork found it
    assert "Cause found — IT systems" not in text


def test_a_redacted_report_keeps_the_causes_but_not_the_inspectors_words(qi, sample_copy, tmp_path):
    out = _run(qi, sample_copy, tmp_path, "--redact")
    report = (out / "report.json").read_text()
    assert "management_oversight" in report and "managers sign off assessments" not in report
    assert "managers sign off assessments" not in (out / "report.md").read_text()


def test_a_rule_reading_the_providers_cases_without_recorded_causes_is_not_called_a_cause(qi, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""extends: {RULES}
id: t
title: T
version: "1"
organisation_rules:
  - id: strong-domestic-abuse-work
    title: "Domestic abuse work in the provider's cases"
    rationale: R
    cites: [6.2.c]
    when:
      provider_cases: {{where: {{flag: [domestic_abuse]}}, insufficient_on: ["3.1"], at_least: 1, min_cases: 1}}
    then: [{{enabler: {{id: strong, text: "Strong", criterion: "6.2"}}}}]
""", encoding="utf-8")
    out = _run(qi, ROOT / "cases" / "north-west-2016", tmp_path, "--rules", rules)
    report = json.loads((out / "report.json").read_text())
    entry = next(e for o in report["organisations"] for e in o.get("corroboration", [])
                 if e["rule"] == "strong-domestic-abuse-work")
    assert entry["kind"] == "check"
    assert "Domestic abuse work" not in " ".join((out / "report.md").read_text().split()).split(
        "causes the inspectors recorded")[-1]


def test_bad_causes_are_coded_errors_in_one_pass(qi, sample_copy):
    _add_cause(sample_copy, "CRC", '  it_systems: {note: "   "}\n  nowhere: {note: "x"}\n')
    for name, causes in (("NW-002", "[caseloads, caseloads]"), ("NW-003", "[unheard_of]")):
        case = sample_copy / "cases" / f"{name}.yaml"
        case.write_text(case.read_text().replace("diversity:", f"causes: {causes}\ndiversity:", 1))
    result = qi("validate", sample_copy)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    for code in ("empty_note", "unknown_value", "duplicate_value"):
        assert f": {code}: " in result.stderr, (code, result.stderr)
    assert "'nowhere' is not a known cause" in result.stderr and "'unheard_of' is not a known cause" in result.stderr


def test_cause_found_is_an_organisation_condition_and_the_hint_lists_only_what_case_rules_read(qi, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""extends: {RULES}
id: t
title: T
version: "1"
rules:
  - id: x
    title: X
    rationale: R
    cites: [2.1.a]
    when: {{cause_found: [caseloads]}}
    then: [{{enabler: {{id: x, text: X, criterion: "2.1"}}}}]
""", encoding="utf-8")
    result = qi("rules", "lint", rules)
    assert result.exit_code == 1
    line = next(line for line in result.stderr.splitlines() if ": wrong_scope: " in line)
    assert re.match(rf"{re.escape(str(rules))}:10:\d+: wrong_scope: condition 'cause_found' cannot be read in case",
                    line)
    hint = line.split("case rules read only:")[1]
    assert "answer" in hint and "cause_found" not in hint and "provider_cases" not in hint
