"""Samples: the example validates; problems across files come out in one pass."""

from __future__ import annotations

import re
import shutil

from engine.check import sample as samples
from tests.conftest import SAMPLE


def test_example_sample_is_valid(qi):
    result = qi("validate", SAMPLE)
    assert result.exit_code == 0, result.stderr
    assert "0 errors, 0 warnings" in result.stderr


def test_example_sample_has_the_required_mix():
    loaded = samples.load(SAMPLE)
    cases = [c.load().model for c in loaded.cases]
    assert len(cases) >= 12
    assert {c.provider for c in cases} == {"NPS", "CRC"}
    assert {c.sentence.type for c in cases} >= {"community_order", "suspended_sentence_order", "custody", "licence"}
    assert {c.risk_of_serious_harm for c in cases} == {"low", "medium", "high", "very_high"}
    assert any(c.mappa for c in cases) and any(c.mappa is None for c in cases)
    for flag in ("child_safeguarding", "domestic_abuse", "identifiable_victim"):
        assert any(flag in c.flags for c in cases) and any(flag not in c.flags for c in cases)
    answers = {e.answer for c in cases for e in c.evidence.values()}
    assert answers == {"yes", "partly", "no", "not_applicable"}
    assert len({c.diversity.get("ethnicity") for c in cases}) >= 4
    assert sorted(o.model.organisation for o in loaded.organisations) == ["CRC", "NPS"]


def test_unquoted_answers_in_sample_are_words(tmp_path):
    loaded = samples.load(SAMPLE)
    nw006 = next(m for m in (c.load().model for c in loaded.cases) if m.case == "NW-006")
    assert nw006.evidence["3.1.a"].answer == "no"


def test_problems_across_files_in_one_pass(qi, sample_copy):
    shutil.copy(sample_copy / "cases" / "NW-001.yaml", sample_copy / "cases" / "NW-099.yaml")
    shutil.copy(sample_copy / "organisation" / "NPS.yaml", sample_copy / "organisation" / "Z-NPS.yaml")
    with open(sample_copy / "cases" / "NW-002.yaml", "a", encoding="utf-8") as handle:
        handle.write("colour: blue\n")
    (sample_copy / "cases" / "NW-003.yaml").write_text("case: [\n", encoding="utf-8")
    result = qi("validate", sample_copy)
    assert result.exit_code == 1
    codes = re.findall(r"^(\S+?):(\d+):\d+: (\w+):", result.stderr, re.M)
    found = {(path.split("/")[-1], code) for path, _, code in codes}
    assert found >= {("NW-099.yaml", "duplicate_case"), ("Z-NPS.yaml", "duplicate_organisation"),
                     ("NW-002.yaml", "unknown_field"), ("NW-003.yaml", "yaml_syntax"),
                     ("NW-099.yaml", "file_name_mismatch")}
    line = next(l for l in result.stderr.splitlines() if "duplicate_case" in l)
    assert "NW-001.yaml:3" in line  # points at the first occurrence


def test_unknown_framework(qi, sample_copy):
    manifest = sample_copy / "sample.yaml"
    manifest.write_text(manifest.read_text().replace('version: "2.0"', 'version: "2.1"'))
    result = qi("validate", sample_copy)
    assert result.exit_code == 1
    assert re.search(r"sample\.yaml:\d+:\d+: unknown_framework: framework hmip-qi-adult 2\.1 is not known",
                     result.stderr)
    assert "did you mean 'hmip-qi-adult 2.0'" in result.stderr


def test_missing_manifest_and_no_cases(qi, tmp_path):
    assert "missing_manifest" in qi("validate", tmp_path).stderr
    shutil.copy(SAMPLE / "sample.yaml", tmp_path / "sample.yaml")
    result = qi("validate", tmp_path)
    assert result.exit_code == 1 and "no_cases" in result.stderr


def test_wrong_kind_of_file_in_cases_folder(qi, sample_copy):
    shutil.copy(sample_copy / "organisation" / "CRC.yaml", sample_copy / "cases" / "CRC.yaml")
    result = qi("validate", sample_copy)
    assert result.exit_code == 1
    assert re.search(r"cases/CRC\.yaml:\d+:\d+: wrong_file_kind:", result.stderr)


def test_case_file_in_a_sample_uses_the_sample_framework(qi):
    result = qi("validate", SAMPLE / "cases" / "NW-014.yaml")
    assert result.exit_code == 0
