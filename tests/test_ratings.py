"""Honest ratings (issue 9): the default rule set issues no bands, banding is an explicit rule set
that extends it, every view that shows a band says how it was derived (in the rule set's words),
and no band is issued from fewer than min_group_size applicable cases."""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from pathlib import Path

import docx
import pytest
import yaml
from click.testing import CliRunner

import cli
from engine.check import rules
from engine.run import pipeline
from tests.conftest import ROOT, SAMPLE

DEFAULT = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
BANDED = ROOT / "rules" / "hmip-qi-adult-2.0-banded.yaml"
#: Band words and rating labels as any view would print them ("good" alone appears in inspectors' notes).
BAND_WORDS = re.compile(r"outstanding|requires.improvement|inadequate|\bratings?\b|\brated\b|(?<!age.)band", re.I)
#: NPS cases removed so that the NPS has 4 cases: too few to rate.
NPS_REMOVED = ("NW-010", "NW-012")


def _run(root: Path, name: str, sample: Path, *extra: str) -> dict:
    out = root / name
    result = CliRunner().invoke(cli.cli, ["run", str(sample), "--out", str(out), "--db", str(root / "qi.db"),
                                          *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    exported = CliRunner().invoke(cli.cli, ["export", str(out), "--to", str(root / f"{name}.csv")])
    assert exported.exit_code == 0, exported.output
    with open(root / f"{name}.ratings.csv", encoding="utf-8-sig", newline="") as handle:
        ratings_csv = list(csv.DictReader(handle))
    return {"stdout": result.stdout, "json": json.loads((out / "report.json").read_text()),
            "md": (out / "report.md").read_text(), "html": (out / "report.html").read_text(),
            "docx": _docx_text(out / "report.docx"), "csv": ratings_csv, "out": out}


def _docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def _flat(text: str) -> str:
    """Text with markup (and style sheets) removed and whitespace runs made one space (views wrap lines)."""
    text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The example sample under the default and the banded rule set, and with only 4 NPS cases
    under the banded rule set; all through the CLI into one store."""
    root = tmp_path_factory.mktemp("ratings")
    small = root / "small-sample"
    shutil.copytree(SAMPLE, small)
    for reference in NPS_REMOVED:
        (small / "cases" / f"{reference}.yaml").unlink()
    return {"default": _run(root, "default", SAMPLE), "banded": _run(root, "banded", SAMPLE, "--rules", str(BANDED)),
            "small": _run(root, "small", small, "--rules", str(BANDED)), "db": root / "qi.db"}


def _method() -> str:
    """The banded rule set's own words on how bands are derived, as views show them."""
    settings = yaml.safe_load(BANDED.read_text())["sample"]
    return " ".join(settings["rating_method"].split()).replace("{min_group_size}", "5")


# --- the default rule set: percentages, no bands --------------------------------------------------

def test_default_run_has_no_band_anywhere(runs):
    run = runs["default"]
    judgement = run["json"]["sample_judgement"]
    assert judgement["ratings"] == [] and judgement["rating_scheme"] is None
    said = "The rule set issues no rating bands: findings are the percentages of applicable cases judged sufficient."
    for view in ("stdout", "md", "html", "docx"):
        assert not BAND_WORDS.search(_flat(run[view]).replace(said, "")), view
    assert run["csv"] == []  # the export's ratings table: a header, no rows
    assert said in _flat(run["md"]) and said in _flat(run["html"])


def test_default_headline_gives_percentages_of_applicable_cases(runs):
    run = runs["default"]
    standard_3 = run["json"]["aggregates"]["targets"]["standard 3"]["groups"]
    row = next(line for line in run["stdout"].splitlines() if line.startswith("  3 "))
    expected = ["3"]
    for group in ("all", "provider:NPS", "provider:CRC"):
        low, high = standard_3[group]["interval"]
        expected += [f"{standard_3[group]['percent']}%", f"[{round(low)}–{round(high)}]"]
    assert row.split() == expected
    assert "% of applicable cases sufficient" in run["stdout"] and "Ratings:" not in run["stdout"]


def test_headline_shows_an_interval_wherever_the_aggregates_carry_one():
    from engine.report import views

    report = {"sample": {"providers": ["NPS"]}, "standards": [{"id": "3", "scope": "case"}],
              "sample_judgement": {"ratings": [], "recommendations": [], "rating_scheme": None},
              "aggregates": {"targets": {"standard 3": {"groups": {
                  "all": {"percent": 83.3, "interval": {"low": 43.6, "high": 97.0}},
                  "provider:NPS": {"percent": 83.3, "interval": [43.6, 97.0]}}}}}}
    text = views.headline_text(report)
    assert "83.3% [44–97]  " in text and text.count("[44–97]") == 2
    assert "% of applicable cases sufficient, [95% interval]" in text and "Ratings" not in text


# --- the banded rule set: bands, and how they were derived, in every view -------------------------

def test_banded_run_has_bands_and_says_how_they_were_derived_in_every_view(runs):
    run, method = runs["banded"], _method()
    scheme = run["json"]["sample_judgement"]["rating_scheme"]
    assert scheme["method"] == method and scheme["bands"][0] == "outstanding" and scheme["min_group_size"] == 5
    ratings = {(r["target"], r["group"]): r["band"] for r in run["json"]["sample_judgement"]["ratings"]}
    assert ratings[("standard 3", "all")] in scheme["bands"] and ratings[("3.1", "CRC")] in scheme["bands"]
    for view in ("stdout", "md", "html", "docx"):
        assert f"Ratings: {method}" in _flat(run[view]), view
    key_facts, method_section = run["md"].split("## Recommendations")[0], run["md"].split("## How these findings")[1]
    assert f"Ratings: {method}" in _flat(key_facts) and f"Ratings: {method}" in _flat(method_section)
    band = ratings[("standard 3", "all")].replace("_", " ")
    row = next(line for line in run["stdout"].splitlines() if line.startswith("  3 "))
    assert band in row
    assert all(r["method"] == method for r in run["csv"]) and {r["band"] for r in run["csv"]} <= set(scheme["bands"])
    assert len(run["csv"]) == len(ratings)
    standard_3 = _flat(run["md"]).split("Standard 3:")[1]
    assert f"Rating (see how these findings were reached): all cases: {band}" in standard_3


def test_banded_run_json_headline_carries_ratings_and_their_method(runs, tmp_path):
    result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--rules", str(BANDED), "--out", str(tmp_path / "o"),
                                          "--db", str(tmp_path / "qi.db"), "--format", "json"])
    summary = json.loads(result.stdout)
    assert summary["rating_method"] == _method()
    assert summary["headline"][2]["groups"]["all"]["rating"] in ("outstanding", "good", "requires improvement",
                                                                  "inadequate")
    default = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(tmp_path / "d"),
                                           "--db", str(tmp_path / "qi.db"), "--format", "json"])
    summary = json.loads(default.stdout)
    assert summary["rating_method"] is None and "rating" not in summary["headline"][2]["groups"]["all"]


def test_serve_run_page_shows_bands_with_their_method_and_none_for_the_default(runs):
    from starlette.testclient import TestClient

    from engine.serve import app

    web = TestClient(app.create(runs["db"]), base_url="http://127.0.0.1")
    default, banded, small = (web.get(f"/runs/{seq}") for seq in (1, 2, 3))
    assert banded.status_code == 200 and default.status_code == 200
    assert f"Ratings: {_method()}" in _flat(banded.text) and 'class="band ' in banded.text
    assert "Ratings:" not in default.text and 'class="band ' not in default.text
    assert not BAND_WORDS.search(_flat(default.text.split('<table id="headline">')[1].split("</table>")[0]))
    assert "too few cases to rate (n = 4)" in small.text


# --- no band from fewer than min_group_size applicable cases --------------------------------------

def test_a_group_under_min_group_size_is_shown_as_too_few_to_rate_and_a_larger_one_is_rated(runs):
    run = runs["small"]
    assert run["json"]["sample"]["cases"] == 12
    unrated = {(u["target"], u["group"]): u for u in run["json"]["sample_judgement"]["rating_scheme"]["unrated"]}
    ratings = {(r["target"], r["group"]): r["band"] for r in run["json"]["sample_judgement"]["ratings"]}
    applicable = run["json"]["aggregates"]["targets"]["3.1"]["groups"]["provider:NPS"]["applicable"]
    assert applicable == 4
    assert unrated[("3.1", "NPS")] == {"target": "3.1", "group": "NPS", "applicable": 4, "why": "too_few_cases"}
    assert ("3.1", "NPS") not in ratings and ("3.1", "CRC") in ratings and ("3.1", "all") in ratings
    assert unrated[("standard 3", "NPS")]["why"] == "no_criterion_rated"
    section = _flat(run["md"]).split("3.1 ")[1]
    assert "NPS: too few cases to rate (n = 4)" in section
    assert "NPS: too few cases to rate (n = 4)" in _flat(run["html"]) and "(n = 4)" in run["docx"]
    row = next(line for line in run["stdout"].splitlines() if line.startswith("  3 "))
    assert "not rated: no criterion rated" in row
    shown = {(r["target"], r["group"]): r for r in run["csv"]}
    assert shown[("3.1", "NPS")]["band"] == "" and shown[("3.1", "NPS")]["shown"] == "too few cases to rate (n = 4)"
    # the example sample's NPS (6 cases) is rated on the same criterion
    assert ("3.1", "NPS") in {(r["target"], r["group"]) for r in runs["banded"]["json"]["sample_judgement"]["ratings"]}


# --- the rule sets: banding is an option that extends the default --------------------------------

def test_the_default_rule_set_has_no_bands_and_the_banded_one_adds_only_band_rules():
    default, banded = rules.load(DEFAULT).rules, rules.load(BANDED).rules
    assert default.sample.bands == [] and default.sample.method_text() is None
    assert banded.sample.bands == ["outstanding", "good", "requires_improvement", "inadequate"]
    assert [r.id for r in banded.rules] == [r.id for r in default.rules]
    added = [r for r in banded.sample_rules if r.id not in {s.id for s in default.sample_rules}]
    assert added and all("band" in r.id for r in added)
    assert all(any(hasattr(c, "rating") for c in r.then) for r in added)
    assert banded.sample.min_group_size == default.sample.min_group_size


def test_the_banded_option_is_chosen_only_by_name():
    chosen = pipeline.rules_path(None, None, ("hmip-qi-adult", "2.0"))
    assert chosen == DEFAULT.resolve() or chosen.name == DEFAULT.name
    assert pipeline.rules_path("hmip-qi-adult-2.0-banded").name == BANDED.name


def test_a_rule_set_with_bands_must_say_how_they_are_derived(qi, tmp_path):
    text = BANDED.read_text().replace("  rating_method: >-", "  unused: >-", 1)
    start = text.index("  unused: >-")
    end = text.index("\nsample_rules:")
    (tmp_path / "hmip-qi-adult-2.0.yaml").write_text(DEFAULT.read_text())
    child = tmp_path / "banded.yaml"
    child.write_text(text[:start] + text[end:])
    result = qi("validate", child)
    assert result.exit_code == 1
    assert re.search(rf"{re.escape(str(child))}:\d+:\d+: bands_without_method:", result.output), result.output


def test_extends_reports_problems_in_either_file_at_their_own_position(qi, tmp_path):
    base = tmp_path / "hmip-qi-adult-2.0.yaml"
    base_text = DEFAULT.read_text().replace("    for_each: [provider]\n", "    for_each: [provder]\n", 1)
    base.write_text(base_text)
    base_line = base_text[:base_text.index("[provder]")].count("\n") + 1
    child_text = BANDED.read_text().replace("for_each: [criterion]\n", "for_each: [criteria]\n", 1)
    child = tmp_path / "banded.yaml"
    child.write_text(child_text)
    child_line = child_text[:child_text.index("[criteria]")].count("\n") + 1
    result = qi("validate", child)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(rf"{re.escape(str(base))}:{base_line}:\d+: ", result.output), result.output
    assert re.search(rf"{re.escape(str(child))}:{child_line}:\d+: invalid_value: 'criteria'", result.output), \
        result.output


def test_extends_refuses_a_missing_or_circular_base(qi, tmp_path):
    missing = tmp_path / "missing.yaml"
    missing.write_text(BANDED.read_text().replace("extends: hmip-qi-adult-2.0.yaml", "extends: nowhere.yaml"))
    result = qi("validate", missing)
    assert result.exit_code == 1 and re.search(rf"{re.escape(str(missing))}:13:\d+: unreadable_base:", result.output)
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(BANDED.read_text().replace("extends: hmip-qi-adult-2.0.yaml", "extends: two.yaml"))
    two.write_text(DEFAULT.read_text().replace("id: hmip-qi-adult-2.0-default", "extends: one.yaml\nid: x", 1))
    result = qi("validate", one)
    assert result.exit_code == 1 and "circular_extends" in result.output and "Traceback" not in result.output


def test_the_banded_rule_set_hash_covers_its_base(tmp_path):
    shutil.copy(DEFAULT, tmp_path / DEFAULT.name)
    shutil.copy(BANDED, tmp_path / BANDED.name)
    before = rules.load(tmp_path / BANDED.name).sha256
    (tmp_path / DEFAULT.name).write_text(DEFAULT.read_text() + "# a comment\n")
    assert rules.load(tmp_path / BANDED.name).sha256 != before
    assert before != rules.load(DEFAULT).sha256


def test_interval_labels_follow_the_rule_sets_confidence():
    from engine.report import draft, views

    group = {"counts": {"sufficient": 5}, "applicable": 6, "percent": 83.3, "interval": [50.0, 95.0]}
    report = {"sample": {"providers": []}, "standards": [{"id": "3", "scope": "case"}],
              "sample_judgement": {"ratings": [], "recommendations": [], "rating_scheme": None},
              "aggregates": {"confidence": 0.9, "targets": {"standard 3": {"groups": {"all": group}}}}}
    assert "[90% interval]" in views.headline_text(report) and "95%" not in views.headline_text(report)
    assert draft.figure(group, 0.9) == "5 of 6 (90% interval 50–95%)"
    assert draft.figure(group, 0.975) == "5 of 6 (97.5% interval 50–95%)"
