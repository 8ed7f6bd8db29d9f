"""A framework file from anywhere: a sample, rule set or profile names its framework by id and
version, and the file is found beside it, with --framework FILE, on $QI_FRAMEWORK_PATH, or among
the bundled ones — first match wins — and every run records the sha256 of the file it used."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

from tests.conftest import ROOT, SAMPLE

FRAMEWORK = ROOT / "framework" / "hmip-qi-adult-2.0.yaml"
RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


def _own_framework(folder, framework_id="team-framework", version="1.0", source=FRAMEWORK,
                   was=("hmip-qi-adult", "2.0")):
    """A bundled framework (the 2016 one unless ``source`` says) under a team's own id and version:
    a file qi has never bundled."""
    text = source.read_text(encoding="utf-8")
    text = re.sub(rf"(?m)^id: {re.escape(was[0])}$", f"id: {framework_id}", text, count=1)
    text = re.sub(rf'(?m)^version: "{re.escape(was[1])}"$', f'version: "{version}"', text, count=1)
    path = folder / f"{framework_id}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _names(path, framework_id="team-framework", version="1.0", was=("hmip-qi-adult", "2.0")):
    """Make a sample manifest, rule set or generated manifest name the team's framework (and no
    bundled rule set)."""
    text = path.read_text(encoding="utf-8")
    text = text.replace(f'framework: {{id: {was[0]}, version: "{was[1]}"}}',
                        f'framework: {{id: {framework_id}, version: "{version}"}}')
    text = re.sub(rf'framework:\n  id: {re.escape(was[0])}\n  version: "{re.escape(was[1])}"',
                  f'framework:\n  id: {framework_id}\n  version: "{version}"', text)
    text = text.replace(f'"framework":\n  "id": "{was[0]}"\n  "version": "{was[1]}"',
                        f'"framework":\n  "id": "{framework_id}"\n  "version": "{version}"')
    text = re.sub(r"(?m)^rules: .*\n", "", text)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def team(tmp_path):
    """A sample folder holding its own framework file and rule set."""
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    _names(sample / "sample.yaml")
    shutil.copy(RULES, sample / "team-rules.yaml")
    _names(sample / "team-rules.yaml")
    framework = _own_framework(sample)
    return sample, framework


def test_a_framework_file_beside_the_sample_is_used_and_recorded(qi, team, tmp_path):
    sample, framework = team
    assert qi("validate", sample).exit_code == 0
    assert qi("validate", sample / "cases" / "NW-014.yaml").exit_code == 0  # a case in its sample
    assert qi("rules", "lint", sample / "team-rules.yaml").exit_code == 0
    result = qi("run", sample, "--rules", sample / "team-rules.yaml", "--out", tmp_path / "out",
                "--db", tmp_path / "qi.db", "-q")
    assert result.exit_code == 0, result.stderr
    recorded = json.loads((tmp_path / "out" / "report.json").read_text())["framework"]
    assert (recorded["id"], recorded["version"]) == ("team-framework", "1.0")
    assert recorded["sha256"] == hashlib.sha256(framework.read_bytes()).hexdigest()
    evaluated = json.loads(qi("evaluate", sample / "cases" / "NW-014.yaml", "--rules", sample / "team-rules.yaml",
                              "--format", "json").stdout)
    assert evaluated["findings"]["3.1"]["value"] == "insufficient"


def test_a_framework_file_elsewhere_by_option_or_search_path(qi, team, tmp_path, monkeypatch):
    sample, framework = team
    shared = tmp_path / "shared"
    shared.mkdir()
    moved = shared / framework.name
    framework.rename(moved)
    missing = qi("validate", sample)
    assert missing.exit_code == 1 and "unknown_framework: framework team-framework 1.0 is not known" in missing.stderr
    assert "known frameworks: hmip-qi-adult 2.0" in missing.stderr and "QI_FRAMEWORK_PATH" not in missing.stdout
    assert qi("validate", sample, "--framework", moved).exit_code == 0
    ran = qi("run", sample, "--rules", sample / "team-rules.yaml", "--framework", moved, "--out", tmp_path / "o1",
             "--db", tmp_path / "qi.db", "-q")
    assert ran.exit_code == 0, ran.stderr
    # --framework holds for one command only
    assert qi("validate", sample).exit_code == 1
    monkeypatch.setenv("QI_FRAMEWORK_PATH", str(shared))
    assert qi("validate", sample).exit_code == 0
    assert qi("rules", "test", "--format", "json").exit_code == 0  # the bundled rules still find theirs


def test_two_different_files_of_one_framework_are_refused(qi, team, tmp_path, monkeypatch):
    sample, framework = team
    rules_folder = tmp_path / "rules"
    rules_folder.mkdir()
    (sample / "team-rules.yaml").rename(rules_folder / "team-rules.yaml")
    other = _own_framework(rules_folder)
    other.write_text(other.read_text() + "\n# another copy, edited\n")
    result = qi("run", sample, "--rules", rules_folder / "team-rules.yaml", "--out", tmp_path / "out",
                "--db", tmp_path / "qi.db", "-q")
    assert result.exit_code == 1 and "framework_mismatch" in result.stderr and not (tmp_path / "out").exists()
    other.write_text(framework.read_text())  # the same bytes: one framework, wherever it lies
    result = qi("run", sample, "--rules", rules_folder / "team-rules.yaml", "--out", tmp_path / "out",
                "--db", tmp_path / "qi.db", "-q")
    assert result.exit_code == 0, result.stderr


def test_an_invalid_framework_file_on_the_search_path_is_reported_not_skipped(qi, team):
    sample, framework = team
    framework.write_text(framework.read_text().replace("scope: case", "scope: cases", 1))
    result = qi("validate", sample)
    assert result.exit_code == 1 and f"{framework.name}:" in result.stderr and "unknown_framework" not in result.stderr


def _numbered_prompts(folder):
    """The 2016 framework with its items numbered (3.1.1, 3.1.2) instead of lettered, as a
    framework with its own numbering would write them."""
    text = _own_framework(folder, "numbered", "1.0").read_text(encoding="utf-8")
    text = re.sub(r'id: "(\d+\.\d+)\.([a-z])"', lambda m: f'id: "{m.group(1)}.{ord(m.group(2)) - 96}"', text)
    text = text.replace('item: {name: Line of enquiry, plural: Lines of enquiry, id_pattern: "^[0-9]+\\\\.[0-9]+\\\\.[a-z]+$", numbering: letters}',
                        'item: {name: Prompt, plural: Prompts, id_pattern: "^[0-9]+\\\\.[0-9]+\\\\.[0-9]+$", '
                        'numbering: numbers}')
    path = folder / "numbered.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_framework_numbers_its_levels_as_it_declares(qi, tmp_path):
    framework = _numbered_prompts(tmp_path)
    assert qi("validate", framework).exit_code == 0
    shown = qi("framework", "show", "3.1.2", "--framework", framework, "--format", "json")
    lettered = json.loads(qi("framework", "show", "3.1.b", "--format", "json").stdout)
    assert shown.exit_code == 0 and json.loads(shown.stdout) == {**lettered, "id": "3.1.2"}
    case = tmp_path / "T-1.yaml"
    case.write_text("case: T-1\nprovider: CRC\nsentence: {type: community_order, requirements: [], start: 2016-01-04}\n"
                    "risk_of_serious_harm: low\nmappa: null\nflags: []\ndiversity: {}\nevidence:\n"
                    "  3.1.1: {answer: \"yes\", note: n, sources: [oasys]}\n", encoding="utf-8")
    assert qi("validate", case, "--framework", framework).exit_code == 0
    case.write_text(case.read_text().replace("3.1.1:", "3.1.a:"))
    refused = qi("validate", case, "--framework", framework)
    assert refused.exit_code == 1 and "3.1.a" in refused.stderr


@pytest.mark.parametrize("before, after, message", [
    ('id: "3.1.2"', 'id: "3.1.9"', "prompt '3.1.9' is prompt number 2 of 3.1 (its id must be '3.1.2')"),
    ('id: "3.1.2"', 'id: "3.1.b"', "prompt id '3.1.b' does not match the pattern"),
    ('id: "3.2"', 'id: "3.1"', "criterion '3.1' is criterion number 2 of 3"),
])
def test_ids_that_break_the_declared_numbering_are_refused_at_their_place(qi, tmp_path, before, after, message):
    framework = _numbered_prompts(tmp_path)
    text = framework.read_text()
    line = text[:text.index(before)].count("\n") + 1
    framework.write_text(text.replace(before, after, 1))
    result = qi("validate", framework)
    assert result.exit_code == 1 and f"numbered.yaml:{line}:" in result.stderr and message in result.stderr
    assert "inconsistent_id" in result.stderr


def test_a_framework_without_impact_standards_gets_no_empty_outcomes_section(qi, team, tmp_path):
    sample, framework = team
    framework.write_text(framework.read_text().replace("dimension: impact", "dimension: quality"))
    result = qi("run", sample, "--rules", sample / "team-rules.yaml", "--out", tmp_path / "out",
                "--db", tmp_path / "qi.db", "-q")
    assert result.exit_code == 0, result.stderr
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Outcomes" not in markdown and "## Standards and criteria" in markdown
    assert re.search(r"(?m)^## [^\n]+\n+## ", markdown) is None  # no heading followed by nothing but the next


def test_the_framework_schema_documents_levels_and_the_answer_scale(qi):
    schema = json.loads(qi("schema", "framework").stdout)
    definitions = schema["$defs"]
    assert "levels" in schema["required"]
    for field in ("name", "plural", "id_pattern", "numbering", "separator"):
        assert definitions["Level"]["properties"][field]["description"]
    assert set(definitions["Levels"]["properties"]) == {"standard", "criterion", "item"}
    counts_as = definitions["AnswerTerm"]["properties"]["counts_as"]
    assert set(counts_as["enum"]) == {"met", "met_in_part", "not_met", "not_applicable"} and counts_as["description"]


def test_the_framework_schema_documents_every_field_of_every_declaration(qi):
    """Every field a framework file can hold — case fields, context fields and their shorthands,
    report layout, levels, answer scale — has a description in `qi schema framework`."""
    definitions = json.loads(qi("schema", "framework").stdout)["$defs"]
    for name in ("CaseField", "ContextField", "Shorthand", "ReportLayout", "Level", "AnswerTerm", "DiversityField"):
        undocumented = [field for field, spec in definitions[name]["properties"].items() if not spec.get("description")]
        assert not undocumented, (name, undocumented)
    framework = json.loads(qi("schema", "framework").stdout)["properties"]
    assert framework["illustration"]["description"] and framework["report"]["description"]
    assert definitions["Vocabulary"]["properties"]["case_file"]["description"]
