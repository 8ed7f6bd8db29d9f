"""durable_rules 2.0.28's traps (design.md): each one shown to be real, and qi's guard for it tested.

The demonstrations use a bare durable_rules host; the guards are exercised through qi's own
compile and evaluate stages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import durable.engine
import pytest

from engine.check import sample
from engine.compile import compile as compiler
from engine.compile import facts
from engine.evaluate import evaluate, tracer
from engine.run import pipeline
from tests.conftest import ROOT, SAMPLE, walk

DEFAULT_RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


class BareHost(durable.engine.Host):
    def _run(self):
        pass


@pytest.fixture(scope="module")
def default_rules():
    return pipeline.compiled_rules(DEFAULT_RULES)


@pytest.fixture(scope="module")
def cases(default_rules):
    loaded = sample.load(SAMPLE)
    cases = [c.load() for c in loaded.cases]
    return {c.model.case: facts.case_attributes(c.model, loaded.framework, default_rules.schema) for c in cases}


def _noop(c):
    return None


def test_unmatched_fact_raises_without_a_catch_all_and_not_with_one(compile_rules, make_case):
    host = BareHost()
    host.register_rulesets({"trap1": {"r": {"all": [{"m": {"$and": [{"x": 1}]}}], "run": _noop}}})
    with pytest.raises(durable.engine.MessageNotHandledException):
        host.assert_fact("trap1", {"sid": "1", "id": "f", "x": 2})
    compiled = compile_rules("""rules:
  - {id: r, title: R, rationale: x, cites: [3.1.a], when: {provider: NPS}, then: [{finding: {criterion: "3.1", value: sufficient}}]}
""")
    case = make_case(compiled, provider="CRC")
    assert pipeline.evaluate_case(compiled, case)[0].fired == ()
    assert all(compiler.CATCH_ALL in chunk.definition for phase in compiled.phases for chunk in phase)


_SEGFAULT = textwrap.dedent("""
    import durable.engine
    class H(durable.engine.Host):
        def _run(self): pass
    h = H()
    h.register_rulesets({"t": {"r": {"all": [{"m": {"$and": [{"x": 1}]}}], "run": lambda c: None}%s}})
    try:
        h.assert_fact("t", {"sid": "1", "id": "f", "x": %d})
    except Exception:
        pass
    h.delete_state("t", "1")
    print("survived")
""")


def test_delete_state_of_a_session_that_never_matched_crashes_the_process():
    catch_all = ', "c": {"all": [{"m": {"$and": [{"k": 1}]}}], "run": lambda c: None}'
    crashed = subprocess.run([sys.executable, "-c", _SEGFAULT % ("", 2)], capture_output=True, text=True)
    assert crashed.returncode != 0 and "survived" not in crashed.stdout
    guarded = subprocess.run([sys.executable, "-c", (_SEGFAULT % (catch_all, 2)).replace('"x": 2', '"x": 2, "k": 1')],
                             capture_output=True, text=True)
    assert guarded.returncode == 0 and "survived" in guarded.stdout


def test_qi_deletes_every_session_even_for_cases_that_match_nothing(default_rules, cases):
    """More than 1,024 sessions per ruleset would be a MemoryError: qi keeps one alive at a time."""
    empty = {**next(iter(cases.values()))}
    for key in empty:
        if key.startswith("a_"):
            empty[key] = facts.NOT_ASSESSED
    real = evaluate.evaluate(default_rules, cases["NW-006"])
    first = evaluate.evaluate(default_rules, empty)
    later = [evaluate.evaluate(default_rules, empty) for _ in range(1_100)]  # past 1,024 live sessions
    assert all(result == first for result in later) and first.fired != real.fired
    assert evaluate.evaluate(default_rules, cases["NW-006"]) == real and real.fired  # the engine still judges


def test_results_do_not_leak_between_cases(default_rules, cases):
    first = evaluate.evaluate(default_rules, cases["NW-006"])
    evaluate.evaluate(default_rules, cases["NW-002"])
    assert evaluate.evaluate(default_rules, cases["NW-006"]) == first


def test_same_fact_twice_raises_in_durable_but_qi_can_evaluate_a_case_twice(default_rules, cases):
    host = BareHost()
    host.register_rulesets({"trap5": {"r": {"all": [{"m": {"$and": [{"x": 1}]}}], "run": _noop}}})
    host.assert_fact("trap5", {"sid": "1", "id": "f", "x": 1})
    with pytest.raises(durable.engine.MessageObservedException):
        host.assert_fact("trap5", {"sid": "1", "id": "f", "x": 1})
    assert evaluate.evaluate(default_rules, cases["NW-001"]) == evaluate.evaluate(default_rules, cases["NW-001"])


def test_exceptions_in_actions_are_swallowed_by_durable_but_surfaced_by_qi(default_rules, cases, monkeypatch):
    host = BareHost()

    def boom(c):
        raise ValueError("boom")

    host.register_rulesets({"trap6": {"r": {"all": [{"m": {"$and": [{"x": 1}]}}], "run": boom}}})
    host.assert_fact("trap6", {"sid": "1", "id": "f", "x": 1})  # returns normally: the error is lost

    class FailingTracer(tracer.Tracer):
        def rule_fired(self, rule_index):
            raise ValueError("recording failed")

    with pytest.raises(evaluate.EngineError, match="recording failed"):
        evaluate.evaluate(default_rules, cases["NW-001"], FailingTracer())


def test_every_emitted_condition_object_has_one_key(default_rules):
    """A condition object with two keys silently tests only the first."""
    for chunk in default_rules.definitions():
        for rule in chunk["rules"].values():
            for expression in walk(rule["all"][0]["m"]):
                assert len(expression) == 1, expression


def test_facts_are_typed_and_constants_match_their_types(default_rules, cases):
    """Type coercion ("1" == 1, 1 == true): every attribute keeps one type, and so do constants."""
    attributes = cases["NW-005"]
    assert attributes["mappa_category"] == 2 and attributes["mappa"] is True
    assert isinstance(attributes["flag_domestic_abuse"], bool) and attributes["a_3_1_a"] == "yes"
    for chunk in default_rules.definitions():
        for rule in chunk["rules"].values():
            for expression in walk(rule["all"][0]["m"]):
                for key, value in expression.items():
                    if not key.startswith("$") and key in default_rules.schema.domains:
                        domain_types = {type(v) for v in default_rules.schema.domains[key]}
                        assert type(value) in domain_types, (key, value)


def test_more_than_64_satisfied_siblings_fail_in_durable_but_not_in_qi(compile_rules, make_case):
    host = BareHost()
    rules = {f"r{i}": {"all": [{"m": {"$and": [{f"y{i}": 1}]}}], "run": _noop} for i in range(100)}
    host.register_rulesets({"trap10": rules})
    with pytest.raises(Exception, match="303"):
        host.assert_fact("trap10", {"sid": "1", "id": "f", **{f"y{i}": 1 for i in range(100)}})
    items = [f"{c}.{letter}" for c in ("3.1", "3.3") for letter in "abcdefghi"]
    text = "rules:\n" + "".join(
        f"  - {{id: r{n}, title: R, rationale: x, cites: [{item}], when: {{answer: {{item: {item}, in: [\"yes\"]}}}}, "
        f"then: [{{finding: {{criterion: \"3.1\", value: sufficient}}}}]}}\n"
        for n, item in enumerate(items * 4))
    compiled = compile_rules(text)
    case = make_case(compiled, evidence={item: "yes" for item in items})
    assert len(pipeline.evaluate_case(compiled, case)[0].fired) == len(items) * 4


def test_registering_does_not_mutate_definitions_and_is_idempotent(default_rules):
    """Ruleset.__init__ deletes 'run' from the dict it is given: qi registers deep copies."""
    before = json.dumps(default_rules.definitions(), sort_keys=True)
    for chunks in default_rules.phases:
        for chunk in chunks:
            evaluate.Engine.for_process().register(chunk)
            evaluate.Engine.for_process().register(chunk)
    assert json.dumps(default_rules.definitions(), sort_keys=True) == before
    assert not any("run" in rule for chunk in default_rules.definitions() for rule in chunk["rules"].values())


_THREADS = textwrap.dedent("""
    import threading
    from engine.run import pipeline
    from engine.compile import facts
    from engine.check import sample
    from engine.evaluate import evaluate
    compiled = pipeline.compiled_rules("rules/hmip-qi-adult-2.0.yaml")
    loaded = sample.load("cases/north-west-2016")
    before = threading.active_count()
    for case in loaded.cases:
        evaluate.evaluate(compiled, facts.case_attributes(case.load().model, loaded.framework, compiled.schema))
    print(before, threading.active_count())
""")


def test_the_host_starts_no_timer_threads():
    result = subprocess.run([sys.executable, "-c", _THREADS], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after = map(int, result.stdout.split())
    assert before == after == 1


def test_evaluation_in_a_forked_worker(default_rules, cases):
    import multiprocessing

    expected = evaluate.evaluate(default_rules, cases["NW-008"])
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(evaluate.evaluate, (default_rules, cases["NW-008"])) == expected
