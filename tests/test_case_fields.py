"""Case context declared by the framework: the fields a case file records (beside qi's own case,
provider, diversity, evidence and judgements) are the framework's `vocabulary.case_file`, so a
framework adds a field — a delivery unit, a number — and case files, the JSON Schema, the
workbook, the case template, the generator and rule tests follow, with no code."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import ROOT, SAMPLE
from tests.test_framework_files import _names, _own_framework

UNIT_FIELDS = """  case_file:
    - {id: unit, description: "The delivery unit supervising the case.", type: term, terms: units, each: delivery unit}
    - {id: weeks_supervised, description: "Weeks of supervision seen.", type: number, required: false}
"""
UNITS = """  units:
    - {id: north, label: "North unit"}
    - {id: south, label: "South unit"}
"""
UNIT_CONTEXT = """  context:
    - {id: unit, label: "Delivery unit", path: unit, terms: units, fact: unit, group: true}
"""


def _with_units(path):
    """The team framework with a delivery unit every case records, a number it may, and the unit
    as a grouping of cases."""
    text = path.read_text(encoding="utf-8")
    text = text.replace("  case_file:\n", UNIT_FIELDS, 1).replace("  providers:\n", UNITS + "  providers:\n", 1)
    text = text.replace("  context:\n", UNIT_CONTEXT, 1)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def units(tmp_path):
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLE, sample)
    _names(sample / "sample.yaml")
    shutil.copy(ROOT / "rules" / "hmip-qi-adult-2.0.yaml", sample / "team-rules.yaml")
    _names(sample / "team-rules.yaml")
    framework = _with_units(_own_framework(sample))
    for number, case in enumerate(sorted([*(sample / "cases").glob("*.yaml"), *(sample / "moderation").glob("*.yaml")])):
        text = case.read_text(encoding="utf-8")
        case.write_text(re.sub(r"(?m)^provider: (\w+)$", lambda m: f"{m.group(0)}\nunit: {'north' if number % 2 else 'south'}",
                               text, count=1), encoding="utf-8")
    return sample, framework


def _set(case, old, new):
    text = case.read_text(encoding="utf-8")
    assert old in text
    case.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_declared_fields_are_checked_in_case_files(qi, units):
    sample, _ = units
    assert qi("validate", sample).exit_code == 0, qi("validate", sample).stderr
    case = sample / "cases" / "NW-001.yaml"
    _set(case, "unit: south\n", "unit: sout\nweeks_supervised: \"12\"\n")
    result = qi("validate", case)
    assert result.exit_code == 1
    assert "unknown_value: 'sout' is not a known delivery unit (did you mean 'south'?" in result.stderr
    assert re.search(r"NW-001.yaml:6:19: wrong_type: expected a whole number, found the text '12'", result.stderr)
    _set(case, "unit: sout\n", "")
    missing = qi("validate", case)
    assert missing.exit_code == 1 and "missing_field" in missing.stderr and "unit" in missing.stderr
    _set(case, 'weeks_supervised: "12"\n', "weeks_supervised: 12\nunit: north\n")
    assert qi("validate", case).exit_code == 0


def test_a_field_the_framework_does_not_declare_is_an_unknown_field(qi, units, tmp_path):
    sample, framework = units
    case = sample / "cases" / "NW-002.yaml"
    _set(case, "unit: north\n", "unit: north\nregion: east\n")
    result = qi("validate", case)
    assert result.exit_code == 1 and "unknown_field" in result.stderr and "region" in result.stderr


def test_the_schema_workbook_template_and_groups_follow_the_declared_fields(qi, units, tmp_path):
    sample, framework = units
    schema = json.loads(qi("schema", "case", "--framework", framework).stdout)
    assert schema["properties"]["unit"]["enum"] == ["north", "south"]
    assert list(schema["properties"])[:4] == ["case", "provider", "unit", "weeks_supervised"]
    assert "unit" in schema["required"] and "weeks_supervised" not in schema["required"]

    book = tmp_path / "book.xlsx"
    assert qi("cases", "export", sample, "--to", book).exit_code == 0
    back = tmp_path / "back"
    imported = qi("cases", "import", book, "--out", back, "--framework", framework)
    assert imported.exit_code == 0, imported.stderr
    assert '\n"unit": "south"\n' in (back / "cases" / "NW-001.yaml").read_text(encoding="utf-8")
    csv = tmp_path / "cases.csv"
    assert qi("cases", "export", sample, "--to", csv).exit_code == 0
    assert csv.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()[0].startswith("case,provider,unit,weeks_supervised,")

    blank = qi("case", "new", "X-1", "--provider", "NPS", "--set", "unit=north", "--framework", framework)
    assert blank.exit_code == 0, blank.stderr
    assert '\nunit: "north"\n' in blank.stdout and "\nweeks_supervised: null" in blank.stdout

    out = tmp_path / "out"
    ran = qi("run", sample, "--rules", sample / "team-rules.yaml", "--out", out, "--db", tmp_path / "qi.db", "-q")
    assert ran.exit_code == 0, ran.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {"north", "south"} <= {case["groups"].get("unit") for case in report["cases"]}


@pytest.mark.parametrize("change, code, words", [
    ("type: term, terms: units, each", "unknown_value", "'unitz' is not a vocabulary of terms"),
    ("{id: unit, description", "duplicate_value", "case files already have a field 'provider'"),
    ("path: unit, terms", "unknown_field", "case files have no field 'unit.name'"),
    ("type: number, required: false", "invalid_value", "a mapping field declares its fields"),
])
def test_a_framework_declaring_fields_badly_is_refused_with_the_place(qi, units, change, code, words):
    sample, framework = units
    text = framework.read_text(encoding="utf-8")
    broken = {"type: term, terms: units, each": "type: term, terms: unitz, each",
              "{id: unit, description": "{id: provider, description",
              "path: unit, terms": "path: unit.name, terms",
              "type: number, required: false": "type: mapping, required: false"}[change]
    framework.write_text(text.replace(change, broken, 1), encoding="utf-8")
    result = qi("validate", framework)
    assert result.exit_code == 1, result.stderr
    assert f": {code}: " in result.stderr and words in result.stderr, result.stderr
    line = next(number for number, text in enumerate(framework.read_text(encoding="utf-8").splitlines(), 1)
                if broken in text)
    assert f"{framework.name}:{line}:" in result.stderr


def test_a_rule_test_defaults_every_required_declared_field(qi, units, tmp_path):
    sample, framework = units
    rules = sample / "team-rules.yaml"
    tests = tmp_path / "unit-tests.yaml"
    tests.write_text(f"rules: {rules}\ntests:\n  - note: a case with only its evidence\n    case:\n"
                     "      evidence: {2.1.a: \"yes\", 2.1.b: \"yes\"}\n    expect:\n      findings: {\"2.1\": sufficient}\n"
                     "  - note: a declared field given\n    case:\n      unit: south\n      weeks_supervised: 3\n"
                     "      evidence: {2.1.a: \"no\", 2.1.b: \"no\"}\n    expect:\n      findings: {\"2.1\": insufficient}\n",
                     encoding="utf-8")
    result = qi("rules", "test", tests, "--framework", framework)
    assert result.exit_code == 0, result.stdout + result.stderr


def test_a_generation_profile_draws_the_declared_fields(qi, units, tmp_path):
    sample, framework = units
    profile = tmp_path / "profile.yaml"
    text = (SAMPLE.parent / "profiles" / "england-wales-2016.yaml").read_text(encoding="utf-8")
    text = text.replace('framework: {id: hmip-qi-adult, version: "2.0"}', 'framework: {id: team-framework, version: "1.0"}')
    text = text.replace("context:\n  sentence.requirements:",
                        "context:\n  unit: {north: 0.5, south: 0.5}\n  weeks_supervised: {between: [4, 30]}\n"
                        "  sentence.requirements:", 1)
    profile.write_text(text, encoding="utf-8")
    out = tmp_path / "generated"
    made = qi("sample", "generate", "--cases", "12", "--seed", "5", "--out", out, "--profile", profile,
              "--framework", framework)
    assert made.exit_code == 0, made.stderr
    cases = [p.read_text(encoding="utf-8") for p in sorted((out / "cases").glob("*.yaml"))]
    assert all(re.search(r'\n"unit": "(north|south)"\n', c) for c in cases)
    weeks = [int(re.search(r'\n"weeks_supervised": (\d+)\n', c).group(1)) for c in cases]
    assert all(4 <= w <= 30 for w in weeks)
    shutil.copy(framework, out / framework.name)
    assert qi("validate", out).exit_code == 0

    profile.write_text(text.replace("  unit: {north: 0.5, south: 0.5}\n", "  unit: {north: 0.5, west: 0.5}\n"),
                       encoding="utf-8")
    bad = qi("sample", "generate", "--cases", "2", "--out", tmp_path / "x", "--profile", profile, "--framework", framework)
    assert bad.exit_code == 1 and "'west' is not a value of unit" in bad.stderr
    profile.write_text(text.replace("  unit: {north: 0.5, south: 0.5}\n", ""), encoding="utf-8")
    missing = qi("sample", "generate", "--cases", "2", "--out", tmp_path / "y", "--profile", profile, "--framework",
                 framework)
    assert missing.exit_code == 1 and "missing_field: no draw for unit" in missing.stderr


@pytest.mark.parametrize("old, new, expected", [
    ("  team: {team_1: 0.5, team_2: 0.5}", "  team: {team_1: 0, team_2: 0}", "every weight is 0"),
    ("  team: {team_1: 0.5, team_2: 0.5}", "  team: {team_1: -0.5, team_2: 0.5}", "greater than or equal to 0"),
    ("  team: {team_1: 0.5, team_2: 0.5}", "  team: {team_1: .nan, team_2: 0.5}", "finite"),
    ("  weeks_supervised: {between: [8, 52]}", "  weeks_supervised: {between: [52, 8]}", "52 is above 8"),
    ("populations: {unpaid_work: 0.25}", "populations: {unpaid_work: 1.5}", "less than or equal to 1"),
])
def test_a_profile_that_cannot_be_drawn_from_is_refused_at_the_place(qi, tmp_path, old, new, expected):
    text = (SAMPLE.parent / "profiles" / "illustrative-standards-2018.yaml").read_text(encoding="utf-8")
    assert old in text
    profile = tmp_path / "profile.yaml"
    profile.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = qi("sample", "generate", "--cases", "4", "--out", tmp_path / "out", "--profile", profile)
    assert result.exit_code == 1 and expected in result.stderr and "internal error" not in result.stderr, result.stderr
    assert re.search(r"profile\.yaml:\d+:\d+: ", result.stderr)
