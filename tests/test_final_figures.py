"""What qi publishes after review is what people decided: `qi report RUN` computes every figure
from the final findings (checked here against a hand computation), keeps the engine's figures
beside them, says what review changed, and a sign-off names the sha256 of the final report."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil

import pytest

from engine.base.canonical import canonical
from tests.conftest import ME, ROOT, SAMPLE


@pytest.fixture
def stored(qi, tmp_path):
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db, "-q").exit_code == 0
    return db


def _decide(qi, db, case, criterion, decision, finding=None, reason="the reviewer's reason"):
    args = ["review", "1", "--db", db, "--case", case, "--criterion", criterion, "--decision", decision,
            ]
    if finding:
        args += ["--finding", finding]
    if decision != "agree":
        args += ["--reason", reason]
    result = qi(*args)
    assert result.exit_code == 0, result.stderr
    return result


def _report(qi, db, out):
    result = qi("report", "1", "--out", out, "--db", db, "-q")
    assert result.exit_code == 0, result.stderr
    return json.loads((out / "report.json").read_text())


def _expected(engine_targets, case, criterion, engine_value, final_value):
    """The hand computation: the engine's counts, with one case moved from one value to another
    in every group the case belongs to, for the criterion and its standard."""
    standard = criterion.split(".")[0]
    expected = {}
    for target_id in (criterion, f"standard {standard}"):
        for group, figure in engine_targets[target_id]["groups"].items():
            counts = dict(figure["counts"])
            if group in case["member_of"]:
                counts[engine_value] -= 1
                counts[final_value] += 1
            applicable = counts["sufficient"] + counts["insufficient"]
            expected[(target_id, group)] = (counts, round(100 * counts["sufficient"] / applicable, 1)
                                            if applicable else None)
    return expected


@pytest.mark.parametrize("final_value", ["sufficient", "not_applicable"])
def test_an_override_moves_exactly_the_figures_a_hand_computation_moves(qi, stored, tmp_path, final_value):
    engine_report = json.loads((tmp_path / "out" / "report.json").read_text())
    case = next(c for c in engine_report["cases"] if c["case"] == "NW-014")
    assert case["findings"]["3.3"]["value"] == "insufficient"
    case = {**case, "member_of": {"all"} | {f"{g}:{v}" for g, v in case["groups"].items()}}
    _decide(qi, stored, "NW-014", "3.3", "override", final_value)
    final = _report(qi, stored, tmp_path / "final")
    expected = _expected(engine_report["aggregates"]["targets"], case, "3.3", "insufficient", final_value)
    for (target_id, group), (counts, percent) in expected.items():
        figure = final["aggregates"]["targets"][target_id]["groups"][group]
        assert (figure["counts"], figure["percent"]) == (counts, percent), (target_id, group)
    # everything else is the engine's, and the engine's figures are kept beside the final ones
    for target_id, target in engine_report["aggregates"]["targets"].items():
        if target_id not in ("3.3", "standard 3"):
            assert final["aggregates"]["targets"][target_id] == target
    assert final["engine"]["aggregates"] == engine_report["aggregates"]
    changes = final["review"]["changes"]
    assert changes["findings"] == [{"case": "NW-014", "criterion": "3.3", "engine": "insufficient",
                                    "final": final_value, "decision": 1, "reviewer": ME, "role": None,
                                    "identity": "os-user"}]
    moved = {(f["target"], f["group"]) for f in changes["figures"]}
    assert moved == {key for key, (counts, _) in expected.items()
                     if counts != engine_report["aggregates"]["targets"][key[0]]["groups"][key[1]]["counts"]}
    assert ("3.3", "provider:CRC") in moved and ("3.3", "provider:NPS") not in moved
    markdown = (tmp_path / "final" / "report.md").read_text()
    assert "Changed by review: 1 finding — NW-014 3.3 insufficient, final " in markdown
    assert "The engine's own figures are kept in report.json under engine." in markdown
    html = (tmp_path / "final" / "report.html").read_text()
    assert "Changed by review: 1 finding" in html


def test_agreeing_changes_no_figure_and_needs_no_rule_set(qi, stored, tmp_path):
    _decide(qi, stored, "NW-007", "3.1", "agree")
    _decide(qi, stored, "NW-014", "3.3", "challenge")
    final = _report(qi, stored, tmp_path / "final")
    engine = json.loads((tmp_path / "out" / "report.json").read_text())
    assert final["aggregates"] == engine["aggregates"] and "engine" not in final
    assert final["review"]["changes"]["findings"] == []
    assert "Changed by review" not in (tmp_path / "final" / "report.md").read_text()


def test_final_figures_need_the_run_s_own_rule_set(qi, tmp_path):
    rules = tmp_path / "rules.yaml"
    shutil.copy(ROOT / "rules" / "hmip-qi-adult-2.0.yaml", rules)
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--rules", rules, "--out", tmp_path / "out", "--db", db, "-q").exit_code == 0
    _decide(qi, db, "NW-014", "3.3", "override", "sufficient")
    rules.write_text(rules.read_text() + "\n# edited after the run\n")
    changed = qi("report", "1", "--out", tmp_path / "final", "--db", db)
    assert changed.exit_code == 1 and ": input_changed: " in changed.stderr and not (tmp_path / "final").exists()
    rules.unlink()
    gone = qi("report", "1", "--out", tmp_path / "final", "--db", db)
    assert gone.exit_code == 1 and ": input_unavailable: " in gone.stderr and "Traceback" not in gone.stderr


def test_a_changed_rating_is_part_of_the_account(qi, tmp_path):
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--rules", ROOT / "rules" / "hmip-qi-adult-2.0-banded.yaml", "--out", tmp_path / "out",
              "--db", db, "-q").exit_code == 0
    engine = json.loads((tmp_path / "out" / "report.json").read_text())
    failing = [c["case"] for c in engine["cases"] if c["findings"]["3.3"]["value"] == "insufficient"]
    for case in failing:
        _decide(qi, db, case, "3.3", "override", "sufficient")
    final = _report(qi, db, tmp_path / "final")
    before = {(r["target"], r["group"]): r["band"] for r in engine["sample_judgement"]["ratings"]}
    after = {(r["target"], r["group"]): r["band"] for r in final["sample_judgement"]["ratings"]}
    assert before[("3.3", "all")] != after[("3.3", "all")]
    assert final["aggregates"]["targets"]["3.3"]["groups"]["all"]["percent"] == 100.0
    lost = [r for r in final["review"]["changes"]["ratings"] if r["change"] == "lost"]
    assert {"target": "3.3", "group": "all", "band": before[("3.3", "all")], "change": "lost"} in lost
    assert final["engine"]["sample_judgement"]["ratings"] == engine["sample_judgement"]["ratings"]


def _sha_of_final(report: dict) -> str:
    """The final report's sha256 as the sign-off records it (docs/report.md)."""
    signed = copy.deepcopy(report)
    signed.pop("store", None)
    signed["review"].pop("signoffs", None)
    signed["review"].pop("signed", None)
    return hashlib.sha256(canonical(signed)).hexdigest()


def test_a_signoff_names_the_final_report_and_a_later_change_shows(qi, stored, tmp_path):
    _decide(qi, stored, "NW-014", "3.3", "override", "sufficient")
    _decide(qi, stored, "NW-007", "3.1", "agree")
    _decide(qi, stored, "NW-001", "3.2", "agree")
    signed = qi("runs", "signoff", "1", "--db", stored)
    assert signed.exit_code == 0, signed.stderr
    final = _report(qi, stored, tmp_path / "final")
    sha = _sha_of_final(final)
    assert f"final report sha256:{sha}" in signed.stdout
    assert final["review"]["signed"] == {"reviewer": ME, "role": None, "identity": "os-user",
                                         "at": final["review"]["signoffs"][0]["at"],
                                         "report_sha256": sha, "final_report_sha256": sha, "unchanged": True}
    shown = qi("runs", "show", "1", "--db", stored).stdout
    assert f"signed off by {ME} (operating-system user) at {final['review']['signoffs'][0]['at']}: final report sha256:{sha}" in shown
    assert "the final report is the one signed off" in shown
    # a decision after sign-off changes the final report: the re-rendered report says so
    _decide(qi, stored, "NW-001", "3.2", "override", "sufficient")
    again = _report(qi, stored, tmp_path / "again")
    assert again["review"]["signed"]["unchanged"] is False
    assert again["review"]["signed"]["final_report_sha256"] == _sha_of_final(again) != sha
    assert "the final report changed since it was signed off" in qi("runs", "show", "1", "--db", stored).stdout
    assert "the final report has changed since" in (tmp_path / "again" / "report.md").read_text()


def test_the_web_run_page_shows_the_final_figures(stored, qi):
    from starlette.testclient import TestClient

    from engine.serve import app as web
    _decide(qi, stored, "NW-014", "3.3", "override", "sufficient")
    client = TestClient(web.create(stored), base_url="http://127.0.0.1")
    page = client.get("/runs/1").text
    assert "Changed by review: 1 finding" in page
    assert "9 of 14" in page  # 3.3 for all cases, from the final findings (the engine's is 8 of 14)


def test_a_view_still_shows_a_reviewed_run_whose_rule_set_changed(qi, tmp_path):
    from starlette.testclient import TestClient

    from engine.serve import app as web
    rules = tmp_path / "rules.yaml"
    shutil.copy(ROOT / "rules" / "hmip-qi-adult-2.0.yaml", rules)
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--rules", rules, "--out", tmp_path / "out", "--db", db, "-q").exit_code == 0
    _decide(qi, db, "NW-014", "3.3", "override", "sufficient")
    rules.write_text(rules.read_text() + "\n# a comment added after the run\n")
    shown = qi("runs", "show", "1", "--db", db)
    assert shown.exit_code == 0 and "warning: these are the engine's figures" in shown.stderr
    page = TestClient(web.create(db), base_url="http://127.0.0.1").get("/runs/1")
    assert page.status_code == 200 and "these are the engine&#39;s figures" in page.text
    _decide(qi, db, "NW-007", "3.1", "agree")
    _decide(qi, db, "NW-001", "3.2", "agree")
    signed = qi("runs", "signoff", "1", "--db", db)
    assert signed.exit_code == 1 and ": input_changed: " in signed.stderr  # nothing is signed that cannot be made


def test_each_moved_figure_names_only_the_decisions_on_its_own_cases(qi, stored, tmp_path):
    engine = json.loads((tmp_path / "out" / "report.json").read_text())
    providers = {c["case"]: c["provider"] for c in engine["cases"]}
    failing = [c["case"] for c in engine["cases"] if c["findings"]["3.3"]["value"] == "insufficient"]
    nps, crc = (next(c for c in failing if providers[c] == p) for p in ("NPS", "CRC"))
    _decide(qi, stored, nps, "3.3", "override", "sufficient")
    _decide(qi, stored, crc, "3.3", "override", "sufficient")
    figures = {(f["target"], f["group"]): f["decisions"] for f in _report(qi, stored, tmp_path / "f")["review"]["changes"]["figures"]}
    assert figures[("3.3", "all")] == [1, 2]
    assert figures[("3.3", "provider:NPS")] == [1] and figures[("3.3", "provider:CRC")] == [2]
