"""The framework as data: complete, verbatim from the source document, and shown by the CLI."""

from __future__ import annotations

import json
import re

import pytest

from engine.check import framework as frameworks
from engine.check import models
from tests.conftest import ROOT

SEED = ROOT / "framework" / "source" / "q-and-i-adult-inspection-framework-v2.0.txt"


def _normalised_seed() -> str:
    """The source document as one line: whitespace collapsed, line-break hyphenation mended."""
    text = SEED.read_text(encoding="utf-8")
    text = re.sub(r"-\s*\n\s*", "-", text)  # "pro-\nsocial" -> "pro-social"
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def fw() -> models.Framework:
    return frameworks.load(frameworks.default_path())


def test_framework_has_6_standards_18_criteria_76_items(fw):
    assert [s.id for s in fw.standards] == ["1", "2", "3", "4", "5", "6"]
    assert len(fw.criteria()) == 18
    assert len(fw.items()) == 76
    assert [s.scope for s in fw.standards] == ["case"] * 5 + ["organisation"]


def test_item_count_matches_bullets_in_source(fw):
    body = SEED.read_text(encoding="utf-8").split("The inspection framework", 1)[1]
    assert body.count("•") == len(fw.items())


def test_every_text_is_verbatim_from_source(fw):
    seed = _normalised_seed()
    for node in fw.items() + fw.criteria() + fw.standards:
        text = getattr(node, "text", None) or node.title
        assert text in seed, f"{node.id} is not verbatim: {text!r}"


def test_items_are_in_source_order_within_each_criterion(fw):
    seed = _normalised_seed()
    for criterion in fw.criteria():
        positions = [seed.index(item.text) for item in criterion.items]
        assert positions == sorted(positions), criterion.id


def test_introduction_facts(fw):
    assert (fw.id, fw.version, fw.released.isoformat()) == ("hmip-qi-adult", "2.0", "2016-05-04")
    assert fw.introduction.working_model == "quality (of work) + impact (positive change achieved) = effectiveness"
    assert fw.introduction.outcome_questions == [
        "reoffending is reduced", "the public is protected from harm", "individuals abide by their sentence"]


def test_show_json_reproduces_all_items(qi, fw):
    result = qi("framework", "show", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("id", "version", "released")} == {
        "id": "hmip-qi-adult", "version": "2.0", "released": "2016-05-04"}
    shown = {i["id"]: (i["kind"], i["text"]) for s in data["standards"] for c in s["criteria"] for i in c["items"]}
    assert len(shown) == 76
    assert shown["1.1.a"][0] == "key_indicator" and shown["3.1.a"][0] == "line_of_enquiry"
    assert {i.id: i.text for i in fw.items()} == {k: v[1] for k, v in shown.items()}
    assert shown["5.1.d"][1].count("pro-social") == 1


@pytest.mark.parametrize("node_id, expected", [("3", "Assessment and planning contributes to effectiveness"),
                                               ("3.1", "Assessment establishes outcome priorities"),
                                               ("3.1.c", "Victim safety concerns are specifically addressed")])
def test_show_one_node(qi, node_id, expected):
    text = qi("framework", "show", node_id)
    assert text.exit_code == 0 and expected in text.stdout
    as_json = json.loads(qi("framework", "show", node_id, "--format", "json").stdout)
    assert as_json["id"] == node_id


def test_show_text_tree_lists_every_item(qi, fw):
    result = qi("framework", "show")
    assert result.exit_code == 0
    for item in fw.items():
        assert re.search(rf"^\s+{re.escape(item.id)}\s", result.stdout, re.M), item.id


def test_show_unknown_id_is_a_usage_error_with_suggestion(qi):
    result = qi("framework", "show", "3.1.z")
    assert result.exit_code == 2
    assert "did you mean '3.1.a'" in result.stderr or "did you mean '3.1.i'" in result.stderr


def test_vocabulary_is_data_and_extensible(tmp_path, qi):
    """A term added to the framework file is accepted at once, without code."""
    text = (ROOT / "framework" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    extended = text.replace("    - {id: gang_affiliation,", "    - {id: modern_slavery, label: \"Victim of modern slavery\"}\n"
                                                           "    - {id: gang_affiliation,")
    assert extended != text
    fw_file = tmp_path / "fw.yaml"
    fw_file.write_text(extended, encoding="utf-8")
    case = tmp_path / "X-1.yaml"
    case.write_text("case: X-1\nprovider: CRC\nsentence: {type: custody, start: 2016-01-01}\n"
                    "risk_of_serious_harm: low\nflags: [modern_slavery]\n", encoding="utf-8")
    assert qi("validate", case).exit_code == 1
    assert qi("validate", "--framework", fw_file, case).exit_code == 0


def test_framework_file_itself_validates_and_catches_bad_ids(tmp_path, qi):
    assert qi("validate", ROOT / "framework" / "hmip-qi-adult-2.0.yaml").exit_code == 0
    text = (ROOT / "framework" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "fw.yaml"
    broken.write_text(text.replace('- id: "3.1.c"', '- id: "3.1.x"'), encoding="utf-8")
    result = qi("validate", broken)
    assert result.exit_code == 1
    line = next(n for n, l in enumerate(broken.read_text().splitlines(), 1) if '"3.1.x"' in l)
    assert f"fw.yaml:{line}:" in result.stderr and "inconsistent_id" in result.stderr


def test_an_unrecorded_value_must_be_one_of_the_fields_values(tmp_path, qi):
    text = (ROOT / "framework" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "fw.yaml"
    broken.write_text(text.replace("unrecorded: [not_recorded]", "unrecorded: [unknown]", 1), encoding="utf-8")
    result = qi("validate", broken)
    assert result.exit_code == 1 and "unrecorded: unknown not among the values of gender" in result.stderr
    line = next(n for n, l in enumerate(broken.read_text().splitlines(), 1) if "unrecorded: [unknown]" in l)
    assert f"fw.yaml:{line}:" in result.stderr and "(values are male, female" in result.stderr
