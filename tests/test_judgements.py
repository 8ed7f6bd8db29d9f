"""Inspectors' judgements beside the engine's findings: validation, side-by-side views, agreement
figures (checked against hand computations), second markings and the report's consistency section."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from scipy import stats

from engine.aggregate import agreement
from tests.conftest import SAMPLE, case_yaml


def _pairs(*counted: tuple[str, str, int]) -> list[tuple[str, str]]:
    return [(a, b) for a, b, count in counted for _ in range(count)]


# --- agreement figures against hand computations ---------------------------------------------------


def test_two_categories_match_hand_computation():
    # table [[5, 1], [2, 4]]: po = 9/12 = 0.75; pe = (6*7 + 6*5)/144 = 0.5; kappa = 0.25/0.5 = 0.5
    figures = agreement.agreement(_pairs(("sufficient", "sufficient", 5), ("sufficient", "insufficient", 1),
                                         ("insufficient", "sufficient", 2), ("insufficient", "insufficient", 4)))
    assert (figures["n"], figures["agreed"], figures["percent"]) == (12, 9, 75.0)
    assert figures["kappa"] == 0.5
    wilson = stats.binomtest(9, 12).proportion_ci(confidence_level=0.95, method="wilson")
    assert figures["percent_interval"] == [round(100 * wilson.low, 1), round(100 * wilson.high, 1)]
    low, high = figures["kappa_interval"]
    assert -1 <= low < 0.5 < high <= 1 and figures["kappa_note"] is None


def test_three_categories_match_hand_computation():
    # po = 8/10; inspector marginals s 6, i 3, n 1; engine s 4, i 5, n 1; pe = (24 + 15 + 1)/100 = 0.4
    # kappa = (0.8 - 0.4) / 0.6 = 0.667
    figures = agreement.agreement(_pairs(("sufficient", "sufficient", 4), ("insufficient", "insufficient", 3),
                                         ("not_applicable", "not_applicable", 1), ("sufficient", "insufficient", 2)))
    assert (figures["agreed"], figures["percent"], figures["kappa"]) == (8, 80.0, 0.667)


def test_all_agree_gives_kappa_one_without_an_interval():
    figures = agreement.agreement(_pairs(("sufficient", "sufficient", 3), ("insufficient", "insufficient", 2)))
    assert figures["kappa"] == 1.0 and figures["percent"] == 100.0
    assert figures["kappa_interval"] is None and "every pair agrees" in figures["kappa_note"]


def test_one_category_only_leaves_kappa_undefined_and_says_why():
    figures = agreement.agreement(_pairs(("sufficient", "sufficient", 4)))
    assert figures["percent"] == 100.0 and figures["kappa"] is None and figures["kappa_interval"] is None
    assert "undefined" in figures["kappa_note"] and "sufficient" in figures["kappa_note"]


def test_no_pairs_computes_nothing():
    figures = agreement.agreement([])
    assert figures["n"] == 0 and figures["percent"] is None and figures["kappa"] is None


def _by_case(cases: list[list[tuple[str, str]]]) -> tuple[list, list]:
    pairs = [pair for group in cases for pair in group]
    return pairs, [f"C{i}" for i, group in enumerate(cases) for _ in group]


def test_pairs_of_one_case_resample_together_for_pooled_intervals():
    """Each case's criteria repeat one verdict (as pooled criteria of one person tend to): counted
    as independent pairs the interval would be as narrow as 36 people give; resampling whole cases
    it is as wide as 12 people give, and says how it was computed."""
    verdicts = [("sufficient", "sufficient")] * 5 + [("insufficient", "insufficient")] * 4 + \
        [("sufficient", "insufficient")] * 2 + [("insufficient", "sufficient")]
    pairs, cases = _by_case([[verdict] * 3 for verdict in verdicts])
    naive, clustered = agreement.agreement(pairs), agreement.agreement(pairs, cases)
    assert (clustered["n"], clustered["agreed"], clustered["kappa"]) == (naive["n"], naive["agreed"], naive["kappa"])
    assert clustered["interval_method"] == "bootstrap resampling whole cases"
    width = lambda interval: interval[1] - interval[0]  # noqa: E731
    assert width(clustered["percent_interval"]) > 1.3 * width(naive["percent_interval"])
    assert width(clustered["kappa_interval"]) > 1.3 * width(naive["kappa_interval"])
    assert clustered["percent_interval"][0] < 75.0 < clustered["percent_interval"][1]
    assert agreement.agreement(pairs, cases) == clustered  # seeded: the same figures every run


def test_one_pair_per_case_is_not_resampled_and_too_few_cases_give_no_interval():
    pairs = _pairs(("sufficient", "sufficient", 5), ("sufficient", "insufficient", 1),
                   ("insufficient", "sufficient", 2), ("insufficient", "insufficient", 4))
    assert agreement.agreement(pairs, [f"C{i}" for i in range(12)]) == agreement.agreement(pairs)
    few = agreement.agreement(pairs, [f"C{i % 4}" for i in range(12)])
    assert few["percent_interval"] is None and few["kappa_interval"] is None
    assert "4 cases" in few["interval_note"] and few["kappa"] == 0.5


def test_consistency_lists_every_disagreement_and_which_side_the_engine_takes():
    order, items = ["3.1", "3.3"], ["3.1.a", "3.3.a"]
    rows = lambda pairs: agreement.compare(*pairs, order)  # noqa: E731
    cases = [{"case": "A", "provider": "NPS", "judgements": rows(({"3.1": "sufficient", "3.3": "insufficient"},
                                                                   {"3.1": {"finding": "sufficient"},
                                                                    "3.3": {"finding": "sufficient", "note": "n"}}))},
             {"case": "B", "provider": "CRC"}]
    second = [{"case": "A", "answers": {"3.1.a": "yes", "3.3.a": "no"}, "judgements": {"3.3": "insufficient"},
               "first_answers": {"3.1.a": "yes", "3.3.a": "yes"}, "first_judgements": {"3.3": "sufficient"},
               "engine": {"3.3": "insufficient"}}]
    result = agreement.consistency(cases, [], second, order, items)
    assert cases[0]["judgements"][0]["criterion"] == "3.3"  # disagreements first
    assert result["engine_inspector"]["overall"]["n"] == 2 and result["engine_inspector"]["judged"] == 1
    assert [(m["case"], m["criterion"], m["engine"], m["inspector"], m["note"]) for m in result["moderation"]] == [
        ("A", "3.3", "insufficient", "sufficient", "n")]
    marked = result["second_marking"]
    assert marked["answers"]["overall"]["n"] == 2 and marked["answers"]["overall"]["agreed"] == 1
    assert marked["differences"][0]["engine_sides_with"] == "second"
    assert marked["engine_sides_with"] == {"first": 0, "second": 1, "neither": 0}


# --- case files ---------------------------------------------------------------------------------------


def test_judgements_are_validated_with_positions(qi, tmp_path):
    path = tmp_path / "T-1.yaml"
    path.write_text(case_yaml() + 'judgements:\n  3.1: {finding: sufficient}\n  "3.9": {finding: sufficient}\n'
                    '  "6.1": {finding: sufficient}\n  "3.2": {finding: good}\n  "3.3": {findin: sufficient}\n',
                    encoding="utf-8")
    result = qi("validate", path)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(":10:3: wrong_type:" in line and "quotes" in line for line in lines)
    assert any(":11:3: unknown_criterion:" in line and "'3.9'" in line for line in lines)
    assert any(":12:3: unknown_criterion:" in line and "'6.1'" in line for line in lines)
    assert any(":13:20: invalid_value:" in line and "sufficient, insufficient, not_applicable" in line for line in lines)
    assert any(":14:11: unknown_field:" in line and "did you mean 'finding'" in line for line in lines)


def test_schema_describes_judgements(qi):
    case = json.loads(qi("schema", "case").stdout)
    assert "3.1" in case["properties"]["judgements"]["propertyNames"]["enum"]
    assert "6.1" not in case["properties"]["judgements"]["propertyNames"]["enum"]
    assert case["$defs"]["Judgement"]["properties"]["finding"]["enum"] == ["sufficient", "insufficient",
                                                                            "not_applicable"]
    organisation = json.loads(qi("schema", "organisation").stdout)
    assert organisation["properties"]["judgements"]["propertyNames"]["enum"][0].startswith("6.")


def test_evaluate_shows_engine_and_inspector_side_by_side_disagreements_first(qi):
    text = qi("evaluate", SAMPLE / "cases" / "NW-014.yaml").stdout
    section = text[text.index("Engine and inspector"):text.index("Findings:")]
    rows = [line.split()[0] for line in section.splitlines()[1:] if line.strip() and line.split()[0][0].isdigit()]
    assert rows == ["3.3", "1.1", "3.1"]
    assert "engine insufficient" in section and "inspector sufficient" in section and "DISAGREE" in section
    assert "the engine would agree if 3.3." in section
    result = json.loads(qi("evaluate", SAMPLE / "cases" / "NW-014.yaml", "--format", "json").stdout)
    first = result["judgements"][0]
    assert (first["criterion"], first["agree"], first["engine"], first["inspector"]) == ("3.3", False, "insufficient",
                                                                                        "sufficient")
    assert first["what_if"]["alternatives"] and {a["finding"] for a in first["what_if"]["alternatives"]} == {"sufficient"}
    assert all(row["agree"] for row in result["judgements"][1:])


# --- second markings ----------------------------------------------------------------------------------


def test_second_marking_of_an_unknown_or_twice_marked_case_is_an_error(qi, sample_copy):
    moderation = sample_copy / "moderation"
    text = (moderation / "NW-003.yaml").read_text()
    (moderation / "NW-099.yaml").write_text(text.replace("case: NW-003", "case: NW-099"))
    (moderation / "NW-003-again.yaml").write_text(text)
    result = qi("validate", sample_copy)
    assert result.exit_code == 1
    assert any("NW-099.yaml:" in line and "unknown_case" in line for line in result.stderr.splitlines())
    assert any("NW-003-again.yaml:" in line and "duplicate_marking" in line for line in result.stderr.splitlines())


def test_the_first_marking_stays_the_one_judged(qi, sample_copy, tmp_path):
    moderation = sample_copy / "moderation" / "NW-003.yaml"
    moderation.write_text(moderation.read_text().replace('3.1.a: {answer: "yes"', '3.1.a: {answer: "no"'))
    qi("run", sample_copy, "--out", tmp_path / "out", "--db", tmp_path / "qi.db")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    case = next(c for c in report["cases"] if c["case"] == "NW-003")
    assert case["findings"]["3.1"]["value"] == "sufficient"  # the second marking's 'no' is compared, not judged
    assert any(i["role"] == "moderation" and i["path"].endswith("moderation/NW-003.yaml") for i in report["inputs"])
    items = report["consistency"]["second_marking"]["answers"]["items"]
    assert (items["3.1.a"]["n"], items["3.1.a"]["agreed"]) == (2, 1)  # NW-014 agrees; NW-003 now differs


# --- the run's consistency section --------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    from click.testing import CliRunner

    import cli

    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(out / "reports"), "--db",
                                          str(out / "qi.db")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_report_has_the_consistency_figures_of_the_example_sample(example_run):
    consistency = json.loads((example_run / "reports" / "report.json").read_text())["consistency"]
    # NW-001, NW-003, NW-007 and NW-014 carry 3 judgements each; NW-007 3.1 (3.1.c only partly met,
    # a protection line in a domestic abuse case), NW-001 3.2 (one of two lines met in part: the
    # rule set tolerates it, the inspector did not) and NW-014 3.3 disagree
    overall = consistency["engine_inspector"]["overall"]
    assert (overall["n"], overall["agreed"], overall["percent"]) == (12, 9, 75.0)
    assert [(m["case"], m["criterion"]) for m in consistency["moderation"]] == [
        ("NW-007", "3.1"), ("NW-001", "3.2"), ("NW-014", "3.3")]
    assert all(m["what_if"]["alternatives"] and m["note"] for m in consistency["moderation"])
    marked = consistency["second_marking"]
    assert marked["cases"] == ["NW-003", "NW-014"]
    assert {(d["case"], d["engine_sides_with"]) for d in marked["differences"]} == {("NW-003", "first"),
                                                                                  ("NW-014", "second")}


def test_markdown_and_html_have_the_consistency_section(example_run):
    markdown = (example_run / "reports" / "report.md").read_text()
    section = markdown[markdown.index("## Consistency"):]
    assert "9 of 12 (75.0%" in section and "### Moderation list" in section and "### Second marking" in section
    assert "NW-014, 3.3" in section and "restraining order" in section
    html = (example_run / "reports" / "report.html").read_text()
    assert 'id="consistency"' in html and "Moderation list" in html and 'href="#case-NW-014"' in html


def test_the_draft_never_invites_changing_answers_but_reviewers_see_what_would(example_run, qi):
    """The answer changes that would make the engine agree are shown to reviewers (qi runs show,
    the review queue), not in the draft report an inspection team edits and publishes."""
    for name in ("report.md", "report.html"):
        text = (example_run / "reports" / name).read_text()
        assert "would agree" not in text and "would be sufficient if" not in text, name
    import docx
    words = "\n".join(p.text for p in docx.Document(example_run / "reports" / "report.docx").paragraphs)
    assert "NW-014, 3.3: engine insufficient, inspector sufficient." in words and "would agree" not in words
    shown = qi("runs", "show", "1", "--db", example_run / "qi.db").stdout
    assert re.search(r"NW-014 3\.3: engine insufficient, inspector sufficient \[open\]\n    the engine would agree if 3\.3\.",
                     shown), shown


def test_redacted_run_has_no_judgement_notes(qi, tmp_path):
    qi("run", SAMPLE, "--out", tmp_path / "out", "--db", tmp_path / "qi.db", "--redact")
    assert not (tmp_path / "out" / "trace.jsonl").exists()
    for name in ("report.json", "report.md", "report.html"):
        text = (tmp_path / "out" / name).read_text()
        assert "restraining order and unpaid work" not in text, name
        assert "Programme suitability came four months late" not in text, name


def test_organisation_judgements_are_compared_too(qi, sample_copy, tmp_path):
    organisation = sample_copy / "organisation" / "NPS.yaml"
    organisation.write_text(organisation.read_text() + 'judgements:\n  "6.1": {finding: insufficient, note: "x"}\n')
    result = qi("run", sample_copy, "--out", tmp_path / "out", "--db", tmp_path / "qi.db")
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    nps = next(o for o in report["organisations"] if o["organisation"] == "NPS")
    assert nps["judgements"][0]["criterion"] == "6.1"
    assert "6.1" in report["consistency"]["engine_inspector"]["criteria"]
    assert report["consistency"]["engine_inspector"]["judged"] == 5


def test_a_sample_without_judgements_says_so(qi, sample_copy, tmp_path):
    for path in (sample_copy / "cases").glob("*.yaml"):
        text = path.read_text()
        if "judgements:" in text:
            path.write_text(text[:text.index("# The inspector's own judgements")])
    shutil.rmtree(sample_copy / "moderation")
    qi("run", sample_copy, "--out", tmp_path / "out", "--db", tmp_path / "qi.db")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["consistency"]["engine_inspector"]["overall"]["n"] == 0 and not report["consistency"]["moderation"]
    assert "No case carries the inspector's own judgements." in (tmp_path / "out" / "report.md").read_text()
