"""Redaction (``qi run --redact``): small cells counted in people at every level, complementary
suppression, lists and gaps that never name a removed group, no case trace published, and traces
that say neither a diversity value nor whether a condition on one held. Also the gap threshold's
boundary. (Case references, paths and internal sections: tests/test_publication.py.)"""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.aggregate import aggregate
from engine.report import redact
from engine.run import run
from tests.conftest import ROOT, SAMPLE, case_results, walk

DIVERSITY = ("gender", "gender_reassignment", "ethnicity", "age_band", "disability", "religion",
             "sexual_orientation", "marital_status", "pregnancy_maternity")


GAP_PROBE = """
  - id: gap-probe
    title: Probe
    rationale: Lists the groups compared on 3.1 in the sample traces.
    when:
      any:
        - gap: {criterion: "3.1", between: gender}
        - gap: {criterion: "3.1", between: disability}
        - gap: {criterion: "3.1", between: religion}
        - percent_sufficient: {criterion: "3.1", at_least: 1}
    then:
      - enabler: {id: gap-probe, text: Probe}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The example sample run twice, in full and redacted: (full report, redacted folder)."""
    folder = tmp_path_factory.mktemp("redaction")
    from click.testing import CliRunner

    import cli
    # no gap in the example passes Fisher's exact test, so a probe that always fires puts the gap
    # conditions (and the diversity groups' figures they list) into the sample traces
    rules = folder / "rules.yaml"
    rules.write_text((ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8") + GAP_PROBE,
                     encoding="utf-8")
    runner = CliRunner()
    for name, extra in (("full", []), ("redacted", ["--redact"])):
        result = runner.invoke(cli.cli, ["run", str(SAMPLE), "--rules", str(rules), "--out", str(folder / name),
                                         "--db", str(folder / f"{name}.db"), *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    return json.loads((folder / "full" / "report.json").read_text()), folder / "redacted"


def test_standard_level_groups_are_small_by_people_not_pairs(runs):
    full, _ = runs
    women = full["aggregates"]["targets"]["standard 3"]["groups"]["gender:female"]
    assert women["people"] == 4 and women["applicable"] == 12  # 4 women x 3 criteria
    assert women["small"] is True
    gap = full["aggregates"]["targets"]["standard 3"]["gaps"]["gender"]
    assert "gender:female" in gap["not_compared"] and gap["points"] is None


def test_no_removed_group_can_be_recovered_by_subtraction(runs):
    full, folder = runs
    redacted = json.loads((folder / "report.json").read_text())
    minimum = full["aggregates"]["min_group_size"]
    checked = 0
    for target_id, target in full["aggregates"]["targets"].items():
        shown = redacted["aggregates"]["targets"][target_id]["groups"]
        for field in DIVERSITY:
            members = {k: g for k, g in target["groups"].items() if k.split(":")[0] == field}
            removed = {k for k in members if k not in shown}
            assert all(g["people"] >= minimum for k, g in members.items() if k in shown), (target_id, field)
            if removed:
                checked += 1
                assert len(removed) >= 2 and sum(members[k]["people"] for k in removed) >= minimum, (target_id, removed)
    assert checked > 0
    sizes = redacted["aggregates"]["group_sizes"]
    for field in DIVERSITY:
        removed = {k: n for k, n in full["aggregates"]["group_sizes"].items() if k.split(":")[0] == field and k not in sizes}
        assert not removed or (len(removed) >= 2 and sum(removed.values()) >= minimum), (field, removed)


def test_removed_groups_are_named_nowhere(runs):
    full, folder = runs
    redacted = json.loads((folder / "report.json").read_text())
    assert "gender:male" not in redacted["aggregates"]["targets"]["standard 3"]["groups"]  # complementary
    everything = "\n".join((folder / name).read_text() for name in ("report.json", "report.md", "report.html"))
    assert "gender:female" not in everything  # 4 women: removed everywhere, named nowhere
    for target in redacted["aggregates"]["targets"].values():
        for field, gap in target["gaps"].items():
            if field in DIVERSITY:
                listed = gap["compared"] + gap["not_compared"] + [gap["highest"], gap["lowest"]]
                assert all(key in target["groups"] or key in (None, redact.REDACTED) for key in listed), listed


def test_sample_traces_do_not_list_removed_groups_or_their_figures(runs):
    _, folder = runs
    redacted = json.loads((folder / "report.json").read_text())
    shown = {t["id"]: set(t["groups"]) for t in redacted["aggregates"]["targets"].values()}
    figures = 0
    for node in walk(redacted["sample_judgement"]):
        for entry in node.get("aggregates", []) if isinstance(node.get("aggregates"), list) else []:
            if entry.get("group") and entry["group"].split(":")[0] in DIVERSITY:
                figures += 1
                assert entry["group"] in shown[entry["target"]], entry
            for key in entry.get("compared", []) + entry.get("not_compared", []):
                assert key == redact.REDACTED or key in shown[entry["target"]], entry
    assert figures > 0


def test_suppressed_groups_rule():
    assert redact.suppressed({"a": 4, "b": 10}, 5) == {"a", "b"}           # the only other group goes too
    assert redact.suppressed({"a": 1, "b": 1, "c": 8, "d": 9}, 5) == {"a", "b", "c"}  # 1 + 1 < 5: one more
    assert redact.suppressed({"a": 2, "b": 3, "c": 8}, 5) == {"a", "b"}
    assert redact.suppressed({"a": 5, "b": 5}, 5) == set()
    assert redact.suppressed({}, 5) == set()


# --- case traces --------------------------------------------------------------------------------------

PROBE = """  - id: probe-gender
    title: Probe on gender
    rationale: A test rule reading a diversity characteristic.
    cites: [3.1.a]
    priority: 100
    when:
      all:
        - diversity: {field: gender, in: [female]}
        - answer: {item: 3.1.a, in: ["yes", "no", "partly"]}
    then: [{finding: {criterion: "3.1", value: sufficient}}]
"""


def test_a_redacted_run_publishes_no_case_trace(qi, tmp_path):
    """No trace.jsonl, and no case trace in any view: a trace is keyed by case reference and holds the
    case's answers and context. The audit store keeps every trace in full."""
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text().replace("\nrules:\n", "\nrules:\n" + PROBE, 1))
    out = tmp_path / "out"
    result = qi("run", SAMPLE, "--rules", rules, "--out", out, "--db", tmp_path / "qi.db", "--redact")
    assert result.exit_code == 0, result.stderr
    assert not (out / "trace.jsonl").exists()
    for name in ("report.json", "report.md", "report.html"):
        text = (out / name).read_text()
        assert "gender is female" not in text and "Probe on gender" not in text, name
    from engine.store import store
    with store.Store(tmp_path / "qi.db") as audit:
        stored = [audit.case_result(1, f"NW-{n:03d}") for n in range(1, 15)]
    probes = [node for line in stored for node in walk(line) if node.get("condition") == "diversity"]
    assert probes and all(node["seen"] == {"gender": "female"} for node in probes)


def test_traces_kept_in_a_redacted_report_say_neither_the_value_nor_whether_it_held(qi, tmp_path):
    """The rule every trace left in a redacted report follows (the organisations' and the sample's),
    shown on case traces, where diversity values are read."""
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text().replace("\nrules:\n", "\nrules:\n" + PROBE, 1))
    out = tmp_path / "out"
    assert qi("run", SAMPLE, "--rules", rules, "--out", out, "--db", tmp_path / "qi.db").exit_code == 0
    lines = case_results(out)
    for line in lines:
        redact._scrub(line, set(DIVERSITY))
    probes = [node for line in lines for node in walk(line) if node.get("condition") == "diversity"]
    assert probes, "the probe rule fired on no case"
    for node in probes:
        assert node["seen"] == {"gender": redact.REDACTED} and node["holds"] == redact.REDACTED
    combined = [node for line in lines for node in walk(line)
                if node.get("condition") == "all" and any(c.get("condition") == "diversity" for c in node["children"])]
    assert combined and all(node["holds"] == redact.REDACTED for node in combined)
    answers = [c for node in combined for c in node["children"] if c["condition"] == "answer"]
    assert answers and all(c["holds"] is True for c in answers)  # conditions on evidence keep theirs
    for line in lines:
        for node in walk(line):
            assert node.get("seen", {}).get("gender", redact.REDACTED) == redact.REDACTED


def test_a_full_run_keeps_the_values_and_holds(qi, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text().replace("\nrules:\n", "\nrules:\n" + PROBE, 1))
    out = tmp_path / "out"
    assert qi("run", SAMPLE, "--rules", rules, "--out", out, "--db", tmp_path / "qi.db").exit_code == 0
    lines = case_results(out)
    probes = [node for line in lines for node in walk(line) if node.get("condition") == "diversity"]
    assert probes and all(node["seen"] == {"gender": "female"} and node["holds"] is True for node in probes)


# --- the gap threshold: flagged at exactly gap_points ------------------------------------------------

@pytest.mark.parametrize("gap_points, flagged", [(20.0, True), (19.99, True), (20.01, False)])
def test_a_gap_of_exactly_gap_points_is_flagged(gap_points, flagged):
    prepared = run.prepare(SAMPLE)
    loaded = prepared.cases.loaded
    # the test passes at this level (Fisher's exact p = 0.47 for 10 of 10 against 8 of 10, with no
    # adjustment for the two comparisons), so the threshold alone decides
    settings = loaded.rules.sample.model_copy(update={"gap_points": gap_points, "min_group_size": 5,
                                                      "significance": 0.5, "adjust": "none"})
    loaded = dataclasses.replace(loaded, rules=loaded.rules.model_copy(update={"sample": settings}))
    records = [aggregate.CaseRecord(f"C-{i:02d}", {"provider": "NPS" if i < 10 else "CRC", "sentence_type": "licence",
                                                   "risk_of_serious_harm": "low", **{f: "not_given" for f in DIVERSITY}},
                                    {"3.1": "sufficient" if i < 18 else "insufficient"}, frozenset())
               for i in range(20)]  # NPS 10 of 10 (100%), CRC 8 of 10 (80%): a gap of exactly 20 points
    gap = aggregate.build(records, loaded)["targets"]["3.1"]["gaps"]["provider"]
    assert gap["points"] == 20.0 and gap["flagged"] is flagged
