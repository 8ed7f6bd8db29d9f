"""What-if explanations: the smallest answer changes that change a finding, found by the exact
search, and every one of them re-evaluates to the finding it states."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compile import conditions, facts, satisfy
from engine.evaluate import evaluate
from engine.judge import judge, whatif
from engine.run import pipeline
from tests.conftest import SAMPLE
from tests.test_agreement import COMPILED, case_attributes

CRITERIA = [c.id for s in COMPILED.loaded.framework.standards if s.scope == "case" for c in s.criteria]
CONDITIONS = whatif.FindingConditions(COMPILED)


def _finding(attributes: dict, criterion: str) -> str:
    return judge.judge(COMPILED, evaluate.evaluate(COMPILED, attributes)).findings[criterion].value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_attributes(), st.sampled_from(CRITERIA))
def test_every_change_set_re_evaluates_to_its_stated_finding(attributes, criterion):
    current = _finding(attributes, criterion)
    found = whatif.what_if(COMPILED, attributes, criterion, current, max_changes=2, conditions_of=CONDITIONS)
    sizes: dict[str, set[int]] = {}
    for alternative in found.alternatives:
        changed = whatif.apply(attributes, alternative)
        assert _finding(changed, criterion) == alternative.finding != current
        assert all(c.before != c.after and c.after != "not_assessed" for c in alternative.changes)
        sizes.setdefault(alternative.finding, set()).add(len(alternative.changes))
        if len(alternative.changes) > 1:  # smallest: no change left out would do on its own
            for dropped in alternative.changes:
                fewer = whatif.Alternative(alternative.finding, tuple(c for c in alternative.changes if c != dropped))
                assert _finding(whatif.apply(attributes, fewer), criterion) != alternative.finding
    assert all(len(s) == 1 for s in sizes.values())  # only the smallest size per finding is listed
    listed = set(sizes) | set(found.unreachable) | set(found.beyond)
    assert listed == set(whatif.FINDINGS) - {current}


def test_what_if_from_the_command_line(qi):
    result = qi("explain", SAMPLE / "cases" / "NW-014.yaml", "--criterion", "3.3", "--what-if", "--format", "json")
    assert result.exit_code == 0
    alternatives = json.loads(result.stdout)
    assert alternatives and all(set(a) == {"changes", "finding"} for a in alternatives)
    # 3.3.a and 3.3.b are protection lines in this child-safeguarding case: both must change to yes
    # (not_applicable on either leaves the protection evidence missing: not assessed)
    assert {a["finding"] for a in alternatives} == {"sufficient", "not_assessed"}
    assert alternatives[0]["changes"] == [{"item": "3.3.a", "from": "partly", "to": "yes"},
                                          {"item": "3.3.b", "from": "no", "to": "yes"}]
    text = qi("explain", SAMPLE / "cases" / "NW-014.yaml", "--criterion", "3.3", "--what-if").stdout
    assert "3.3 would be sufficient if 3.3.a were yes instead of partly and 3.3.b were yes instead of no\n" in text
    assert "3.3 would be not_assessed if 3.3.a were not_applicable instead of partly and 3.3.b were yes" in text
    protected = qi("explain", SAMPLE / "cases" / "NW-014.yaml", "--criterion", "3.1", "--what-if").stdout
    assert "3.1 would be sufficient only with more than 3 answers changed" in protected


def test_a_count_is_read_from_its_items_never_chosen_freely():
    """``at_least`` over many items lowers to a count attribute; the exact search must derive it
    from the items' answers (kept and changed), or what-if and lint would claim impossible cases."""
    answers = ("yes", "partly", "no", "not_applicable")
    counts = {"n_yes": (("x", "y", "z"), ("yes",))}
    schema = facts.Schema({facts.answer_attribute(i): answers for i in "xyz"}, counts=counts)
    two_or_more = conditions.In("n_yes", frozenset({2, 3}), (0, 1, 2, 3))
    found, assignment = satisfy.decide(two_or_more, schema)
    assert found is True and sum(assignment.get(facts.answer_attribute(i)) == "yes" for i in "xyz") >= 2
    kept = {facts.answer_attribute("x"): "no", facts.answer_attribute("y"): "no"}
    assert satisfy.decide(two_or_more, schema, start=kept)[0] is False  # only z is left to change
    kept_one = {facts.answer_attribute("x"): "yes"}
    assert satisfy.decide(two_or_more, schema, start=kept_one)[0] is True
    assert satisfy.evaluate(two_or_more, kept_one, counts) is None  # undecided while y and z are open


def test_what_if_on_a_threshold_counts_the_answers_it_keeps():
    """3.3 in NW-014 fails on its protection lines and its threshold; the changes listed are
    exactly those that make it sufficient when re-evaluated (the counts include kept answers)."""
    loaded = pipeline.load_case(SAMPLE / "cases" / "NW-014.yaml", COMPILED)
    case = facts.case_attributes(loaded.model, COMPILED.loaded.framework, COMPILED.schema)
    found = whatif.what_if(COMPILED, case, "3.3", _finding(case, "3.3"), ("sufficient",), conditions_of=CONDITIONS)
    assert found.alternatives
    for alternative in found.alternatives:
        assert _finding(whatif.apply(case, alternative), "3.3") == "sufficient"


def test_a_listed_change_made_in_the_case_file_gives_the_finding(qi, sample_copy):
    case = sample_copy / "cases" / "NW-014.yaml"
    alternatives = json.loads(qi("explain", case, "--criterion", "3.3", "--what-if", "--format", "json").stdout)
    text = case.read_text()
    for change in alternatives[0]["changes"]:
        line = next(line for line in text.splitlines() if line.startswith(f"  {change['item']}:"))
        text = text.replace(line, f"  {change['item']}: {{answer: \"{change['to']}\", note: \"changed\"}}")
    case.write_text(text)
    result = json.loads(qi("evaluate", case, "--format", "json").stdout)
    assert result["findings"]["3.3"]["value"] == alternatives[0]["finding"]


def test_a_finding_no_answer_can_change_says_so(qi, tmp_path, compile_rules):
    rules = tmp_path / "custody.yaml"
    rules.write_text("""id: custody-rules
title: Custody decides
version: "0.1"
framework: {id: hmip-qi-adult, version: "2.0"}
rules:
  - id: custody-not-applicable
    title: Not applicable in custody
    rationale: In custody throughout.
    cites: []
    priority: 5
    when: {sentence_type: custody}
    then: [{finding: {criterion: "1.3", value: not_applicable}}]
  - id: complied
    title: Complied
    rationale: Complied.
    cites: [1.3.a]
    when: {answer: {item: 1.3.a, in: ["yes"]}}
    then: [{finding: {criterion: "1.3", value: sufficient}}]
""")
    case = SAMPLE / "cases" / "NW-003.yaml"  # a custody case
    result = qi("explain", case, "--criterion", "1.3", "--what-if", "--rules", rules, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    text = qi("explain", case, "--criterion", "1.3", "--what-if", "--rules", rules).stdout
    assert "no change of answers changes the finding on 1.3" in text
    assert "no change of answers would make 1.3 sufficient" in text and "under no change" not in text


def test_what_if_on_a_stored_run(qi, tmp_path, sample_copy):
    db = tmp_path / "qi.db"
    qi("run", sample_copy, "--out", tmp_path / "out", "--db", db)
    stored = qi("explain", "--run", "1", "--case", "NW-014", "--criterion", "3.3", "--what-if", "--format", "json",
                "--db", db)
    now = qi("explain", sample_copy / "cases" / "NW-014.yaml", "--criterion", "3.3", "--what-if", "--format", "json")
    assert stored.exit_code == 0 and json.loads(stored.stdout) == json.loads(now.stdout)
    case = sample_copy / "cases" / "NW-014.yaml"
    case.write_text(case.read_text() + "# edited after the run\n")
    changed = qi("explain", "--run", "1", "--case", "NW-014", "--criterion", "3.3", "--what-if", "--db", db)
    assert changed.exit_code == 1 and "input_changed" in changed.stderr and "NW-014.yaml" in changed.stderr
