"""Re-judging only what a rule change can move (engine.compile.delta): for any edit of a rule
set, the new rules carried over from the old evaluation plus those evaluated again fire exactly
what a whole evaluation of the new rule set fires, on every case."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.check import rules, sample
from engine.compile import compile as compiler
from engine.compile import delta, facts
from engine.evaluate import evaluate as evaluator
from engine.judge import judge
from engine.tools import generate
from tests.conftest import ROOT, SAMPLE

DEFAULT = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
DATA = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """The example's cases and a generated sample's: every context the generator draws."""
    profile, framework = generate.load_profile(generate.default_profile())
    generated = tmp_path_factory.mktemp("generated") / "sample"
    generate.generate(profile, framework, 40, 7, generated)
    return [handle.load() for handle in sample.load(SAMPLE).cases + sample.load(generated).cases]


@pytest.fixture(scope="module")
def old():
    return compiler.compile_rules(rules.load(DEFAULT))


def _compiled(data: dict, folder: Path, name: str) -> compiler.CompiledRuleSet:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return compiler.compile_rules(rules.load(path))


def _check(old, new, cases) -> None:
    change = delta.between(old, new)
    framework = old.loaded.framework
    for case in cases:
        before = evaluator.evaluate(old, facts.case_attributes(case.model, framework, old.schema))
        attributes = facts.case_attributes(case.model, framework, new.schema)
        whole = evaluator.evaluate(new, attributes)
        again = evaluator.evaluate(change.evaluated, attributes).fired if change.evaluated is not None else ()
        fired = delta.fired(change, before.fired, again)
        assert fired == whole.fired, case.model.case
        assembled = evaluator.assembled(new, attributes, fired)
        assert assembled.fact == whole.fact and assembled.derived_by == whole.derived_by
        assert judge.judge(new, assembled) == judge.judge(new, whole)


def _edit(draw, data: dict) -> dict:
    """One edit a methodology team might make: a threshold, a key or protection line, a rule
    removed, its priority or conclusion changed, its condition negated, or a derived fact's rule
    removed (which moves every rule reading the fact)."""
    edited = copy.deepcopy(data)
    kind = draw(st.sampled_from(["threshold", "key", "remove", "remove_fact_rule", "priority", "conclusion",
                                 "negate"]))
    if kind in ("threshold", "key"):
        declared = draw(st.sampled_from(edited["criteria"]))
        if kind == "threshold":
            declared["threshold"] = draw(st.integers(0, 100))
        else:
            lines = declared.get("core", [])
            key = set(declared.get("key", []))
            line = draw(st.sampled_from(lines))
            declared["key"] = sorted(key ^ {line})
            if not declared["key"]:
                del declared["key"]
        return edited
    if kind == "remove_fact_rule":
        rule = draw(st.sampled_from([r for r in edited["rules"] if any("fact" in c for c in r["then"])]))
        edited["rules"].remove(rule)
        return edited
    rule = draw(st.sampled_from(edited["rules"]))
    if kind == "remove":
        edited["rules"].remove(rule)
    elif kind == "priority":
        rule["priority"] = draw(st.integers(0, 5))
    elif kind == "conclusion":
        for conclusion in rule["then"]:
            if "finding" in conclusion:
                value = conclusion["finding"]["value"]
                conclusion["finding"]["value"] = "sufficient" if value == "insufficient" else "insufficient"
    else:
        rule["when"] = {"not": rule["when"]}
    return edited


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_carried_and_re_evaluated_rules_fire_what_a_whole_evaluation_fires(data, old, cases, tmp_path):
    edits = data.draw(st.integers(1, 3))
    edited = DATA
    for _ in range(edits):
        edited = _edit(data.draw, edited)
    try:
        new = _compiled(edited, tmp_path, "edited")
    except Exception as error:  # an edit the rule language refuses (InputError) is not a rule set
        from engine.base.diagnostics import InputError
        if isinstance(error, InputError):
            return
        raise
    _check(old, new, cases)


def test_an_unchanged_rule_set_evaluates_nothing_again(old, tmp_path):
    change = delta.between(old, _compiled(DATA, tmp_path, "same"))
    assert change.evaluated is None and not change.again and len(change.carried) == len(old.rules)


def test_a_changed_threshold_re_evaluates_its_criterion_and_what_it_reads_only(old, cases, tmp_path):
    edited = copy.deepcopy(DATA)
    declared = next(c for c in edited["criteria"] if c["criterion"] == "2.3")
    declared["threshold"] = 100
    new = _compiled(edited, tmp_path, "threshold")
    change = delta.between(old, new)
    labels = {new.rules[i].label for i in change.again}
    assert labels and all(label.startswith("2.3-") or not label[0].isdigit() for label in labels)
    assert any(label.startswith("2.3-") for label in labels)
    assert len(change.again) < len(new.rules) // 4
    _check(old, new, cases)


def test_a_removed_fact_rule_moves_every_rule_that_reads_the_fact(old, cases, tmp_path):
    edited = copy.deepcopy(DATA)
    edited["rules"] = [r for r in edited["rules"] if r["id"] != "context-victim"]
    new = _compiled(edited, tmp_path, "no-victim")
    change = delta.between(old, new)
    readers = {r.label for r in new.rules if facts.fact_attribute("victim_work_relevant")
               in r.condition.__repr__()}
    assert readers and readers <= {new.rules[i].label for i in change.again}
    _check(old, new, cases)


def test_rule_sets_for_different_frameworks_share_nothing(old):
    other = compiler.compile_rules(rules.load(ROOT / "rules" / "illustrative-standards-2018.yaml"))
    change = delta.between(old, other)
    assert change.everything and len(change.again) == len(other.rules)
