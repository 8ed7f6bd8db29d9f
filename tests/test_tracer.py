"""Traces are recorded while the engine evaluates — one tracer for case, organisation and sample
rules — and every reader (reasoning trees, rule coverage) reads the record instead of running the
rules again. Recording survives a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.check import sample
from engine.compile import facts
from engine.evaluate import evaluate, tracer
from engine.judge import judge, trace
from engine.run import pipeline, run
from engine.tools import ruletest
from tests.conftest import ROOT, SAMPLE, walk

RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


@pytest.fixture(scope="module")
def compiled():
    return pipeline.compiled_rules(RULES)


@pytest.fixture(scope="module")
def nw014(compiled):
    return pipeline.load_case(SAMPLE / "cases" / "NW-014.yaml", compiled)


def _well_formed(record: tracer.Record, compiled) -> None:
    """Phases in order, each closed, fired rules sorted and of this section; plain JSON data."""
    assert [p.phase for p in record.phases] == list(range(len(record.phases)))
    assert len(record.phases) <= len(compiled.phases)
    for phase in record.phases:
        assert list(phase.fired) == sorted(set(phase.fired))
        assert all(compiled.rules[i].phase == phase.phase for i in phase.fired)
    json.dumps(record.as_dict())


def test_the_record_is_what_the_engine_did_phase_by_phase(compiled, nw014):
    attributes = facts.case_attributes(nw014.model, compiled.loaded.framework, compiled.schema)
    evaluation = evaluate.evaluate(compiled, attributes)
    record = evaluation.record
    _well_formed(record, compiled)
    assert record.complete and record.error is None and record.section == "rules"
    assert len(record.phases) == len(compiled.phases)
    assert record.fired == evaluation.fired
    # the first phase asserted no derived fact; later phases assert the facts derived before them
    assert not any(record.phases[0].derived.values())
    assert record.phases[-1].derived == evaluate.derived_attributes(compiled, {
        i for p in record.phases[:-1] for i in p.fired})


def test_an_exception_in_a_rule_action_leaves_a_well_formed_trace(compiled, nw014):
    attributes = facts.case_attributes(nw014.model, compiled.loaded.framework, compiled.schema)
    expected = evaluate.evaluate(compiled, attributes)

    class FailsOnThirdFiring(tracer.Tracer):
        seen = 0
        recorded: set = set()

        def rule_fired(self, rule_index: int) -> None:
            FailsOnThirdFiring.seen += 1
            if FailsOnThirdFiring.seen == 3:
                raise RuntimeError("action failed")
            FailsOnThirdFiring.recorded.add(rule_index)
            super().rule_fired(rule_index)

    failing = FailsOnThirdFiring()
    with pytest.raises(evaluate.EngineError, match="action failed"):
        evaluate.evaluate(compiled, attributes, failing)
    record = failing.record()
    _well_formed(record, compiled)
    assert not record.complete and "action failed" in record.error
    assert record.phases[-1].error is not None  # the phase under way is closed with the reason
    assert all(p.error is None for p in record.phases[:-1])
    # every firing reported before and after the failing one (durable_rules runs the chunk's other
    # actions) is in the record; the failing one is not
    assert set(record.fired) == FailsOnThirdFiring.recorded and set(record.fired) < set(expected.fired)
    # the engine is left usable: the next case evaluates as before
    assert evaluate.evaluate(compiled, attributes) == expected


def test_a_durable_rules_failure_also_leaves_a_well_formed_trace(compiled, nw014, monkeypatch):
    attributes = facts.case_attributes(nw014.model, compiled.loaded.framework, compiled.schema)
    engine = evaluate.Engine.for_process()
    calls = []

    def broken(name, fact):
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("error code: 303")
        return type(engine.host).assert_fact(engine.host, name, fact)

    monkeypatch.setattr(engine.host, "assert_fact", broken)
    recording = tracer.Tracer()
    with pytest.raises(evaluate.EngineError, match="303"):
        engine.evaluate(compiled, attributes, recording)
    record = recording.record()
    _well_formed(record, compiled)
    assert not record.complete and "303" in record.phases[-1].error


def test_the_trace_tree_is_read_from_the_record_without_running_the_engine(compiled, nw014, monkeypatch):
    attributes = facts.case_attributes(nw014.model, compiled.loaded.framework, compiled.schema)
    evaluation = evaluate.evaluate(compiled, attributes)
    judgement = judge.judge(compiled, evaluation)

    def no_engine(*args, **kwargs):
        raise AssertionError("the trace ran the rules engine again")

    monkeypatch.setattr(evaluate.Engine, "assert_into", no_engine)
    result = trace.case_result(compiled, nw014, evaluation, judgement)
    fired_nodes = [n for n in walk(result) if "fired" in n and "rule" in n]
    assert fired_nodes
    index = {r.rule.id: r.index for r in compiled.rules}
    for node in fired_nodes:
        assert node["fired"] == (index[node["rule"]] in evaluation.record.fired)


def test_one_trace_class_reads_case_organisation_and_sample_records():
    observed = []
    prepared = run.prepare(SAMPLE)
    run.run(prepared, observe=lambda compiled, evaluation, *rest: observed.append((compiled.section, evaluation)))
    sections = [section for section, _ in observed]
    assert sections.count("rules") == len(prepared.sample.cases)
    assert sections.count("organisation_rules") == len(prepared.sample.organisations)
    assert sections.count("sample_rules") == 1
    for _, evaluation in observed:
        assert evaluation.record.complete and evaluation.record.fired == evaluation.fired



SAMPLE_TEST = """rules: {rules}
tests:
  - note: a small sample
    sample:
      cases:
        - {{count: 6, provider: CRC, evidence: {{3.1.a: "no"}}}}
        - {{count: 6, provider: NPS, evidence: {{3.1.a: "yes"}}}}
    expect:
      recommendations: []
"""


def test_coverage_reads_recorded_evaluations_and_runs_nothing_twice(tmp_path, monkeypatch):
    path = tmp_path / "sample-test.yaml"
    path.write_text(SAMPLE_TEST.format(rules=RULES), encoding="utf-8")
    counted = []
    original = evaluate.Engine.evaluate

    def counting(self, compiled, *args, **kwargs):
        counted.append(compiled.section)
        return original(self, compiled, *args, **kwargs)

    monkeypatch.setattr(evaluate.Engine, "evaluate", counting)
    ruletest.run_file(path)
    without = list(counted)
    counted.clear()
    coverage = ruletest.Coverage()
    ruletest.run_file(path, coverage)
    assert counted == without  # 12 cases and the sample, evaluated once each either way
    assert without.count("rules") == 12 and without.count("sample_rules") == 1
    assert any(coverage.rules.values()) and coverage.conditions


def test_coverage_counts_what_the_records_say_fired(tmp_path):
    path = tmp_path / "case-test.yaml"
    path.write_text(f"""rules: {RULES}
tests:
  - note: children at risk and not assessed
    case: {{flags: [child_safeguarding], evidence: {{3.1.a: "no", 3.1.b: "no"}}}}
    expect: {{findings: {{"3.1": insufficient}}}}
""", encoding="utf-8")
    coverage = ruletest.Coverage()
    [outcome] = ruletest.run_file(path, coverage)
    fired = {rule_id for (_, rule_id), was_fired in coverage.rules.items() if was_fired}
    assert fired == set(outcome.fired)


def test_a_case_handle_reads_its_file_only_when_asked(monkeypatch):
    loaded = sample.load(SAMPLE)
    handle = loaded.cases[0]
    reads = []
    from engine.load import source
    original = source.read  # every file qi reads is read by source.read, whether its content was cached or not
    monkeypatch.setattr(source, "read", lambda *a, **k: reads.append(a) or original(*a, **k))
    assert handle.reference and handle.sha256 and handle.display  # what a handle knows without reading
    assert not hasattr(handle, "model") and not hasattr(handle, "document")
    assert reads == []
    assert handle.load().model.case == handle.reference and len(reads) == 1


def test_qi_run_reads_each_case_file_once(monkeypatch, tmp_path):
    from engine.load import source
    reads: dict[str, int] = {}
    original = source.read  # every file qi reads is read by source.read, whether its content was cached or not

    def counting(path, *args, **kwargs):
        reads[str(path)] = reads.get(str(path), 0) + 1
        return original(path, *args, **kwargs)

    monkeypatch.setattr(source, "read", counting)
    prepared = run.prepare(SAMPLE)
    report = run.run(prepared)
    case_reads = {p: n for p, n in reads.items() if "/cases/north-west-2016/cases/" in p}
    assert len(case_reads) == report["sample"]["cases"]
    # a case that was second-marked is read again to set its first marking beside the second
    remarked = {m.model.case for m in prepared.sample.moderation}
    assert remarked and len(remarked) < len(case_reads)
    assert {n for p, n in case_reads.items() if Path(p).stem not in remarked} == {1}


def test_the_report_is_a_typed_model_not_a_dict_with_a_hidden_spool():
    report = run.run(run.prepare(SAMPLE))
    assert type(report.content) is dict and not hasattr(report.content, "spool")
    assert report.run_id == report.content["run"]["id"]
    assert json.loads(json.dumps(report.content)) == dict(report)
    references = [json.loads(line)["case"] for line in report.spool.lines()]
    assert references == sorted(references) == [c["case"] for c in report["cases"]]


def test_the_spool_gives_lines_in_case_order_whatever_order_they_came_in():
    from engine.report.model import CaseSpool
    import hashlib
    spool = CaseSpool()
    for reference in ("NW-3", "NW-1", "NW-2"):
        spool.add(reference, f'{{"case": "{reference}"}}\n'.encode())
    assert list(spool.lines()) == [b'{"case": "NW-1"}\n', b'{"case": "NW-2"}\n', b'{"case": "NW-3"}\n']
    assert spool.references == ["NW-1", "NW-2", "NW-3"]
    assert spool.sha256 == hashlib.sha256(b"".join(spool.lines())).hexdigest()


def test_a_trace_gives_the_reason_not_every_alternative(compiled, nw014):
    """An `any` that holds shows the parts that hold, an `all` that fails the parts that fail, and
    counts the rest; every node shown still says whether it held."""
    result = pipeline.case_result(compiled, nw014)
    evaluation, judgement = pipeline.evaluate_case(compiled, nw014)
    why_not = trace.Trace(compiled, evaluation, nw014).why_not("3.1", "sufficient", judgement.findings["3.1"])
    nodes = [n for n in walk([result, why_not]) if isinstance(n.get("condition"), str) and "children" in n]
    assert any(n["condition"] == "all" and n["holds"] is False and n.get("not_shown") for n in nodes)
    pruned = [n for n in nodes if n.get("not_shown")]
    assert pruned  # NW-014's traces have alternatives that did not decide anything
    for node in nodes:
        children = node["children"]
        if node["condition"] == "any" and node["holds"] is True:
            assert all(c["holds"] is True for c in children)
        if node["condition"] == "all" and node["holds"] is False:
            assert all(c["holds"] is False for c in children)
    text = pipeline.case_result(compiled, nw014)  # the same again: deterministic
    assert text == result


def test_alternatives_reading_a_diversity_value_are_all_shown(tmp_path):
    """Showing only the alternative that held would say which diversity value the case has, which
    redaction hides: such a condition keeps every part."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("""\
id: t
title: T
version: "1"
framework: {id: hmip-qi-adult, version: "2.0"}
rules:
  - id: women-or-young
    title: Women or young adults
    rationale: A test.
    cites: [1.1.a]
    when:
      all:
        - answer: {item: 1.1.a, in: ["no"]}
        - any:
            - diversity: {field: gender, in: [female]}
            - diversity: {field: age_band, in: [18-24]}
    then: [{finding: {criterion: "1.1", value: insufficient}}]
""", encoding="utf-8")
    compiled = pipeline.compiled_rules(rules_file)
    case = tmp_path / "W-1.yaml"
    case.write_text("case: W-1\nprovider: NPS\nsentence: {type: community_order, start: 2016-01-04}\n"
                    "risk_of_serious_harm: low\ndiversity: {gender: female, age_band: 35-49}\n"
                    "evidence:\n  1.1.a: {answer: \"no\"}\n", encoding="utf-8")
    result = pipeline.case_result(compiled, pipeline.load_case(case, compiled))
    either = next(n for n in walk(result["findings"]["1.1"]) if n.get("condition") == "any")
    assert either["holds"] is True and len(either["children"]) == 2 and "not_shown" not in either


def test_attributes_without_the_rule_sets_own_say_what_is_missing(compiled, nw014):
    """Attributes built without the compiled schema lack what condition forms added: a clear
    engine error naming the attribute, not a KeyError from inside the engine."""
    bare = facts.case_attributes(nw014.model, compiled.loaded.framework)
    assert set(facts.case_attributes(nw014.model, compiled.loaded.framework, compiled.schema)) > set(bare)
    with pytest.raises(evaluate.EngineError, match="attributes lack .*schema"):
        evaluate.evaluate(compiled, bare)


def _outline_of(node: dict) -> dict:
    """A trace's rule node as coverage reads it: place, text and outcome of the conditions shown."""
    def condition(c: dict) -> dict:
        found = {"text": c["text"], "at": c["at"], "holds": c["holds"]}
        if "children" in c:
            found["children"] = [condition(child) for child in c["children"]]
        return found
    return {"rule": node["rule"], "at": node["at"], "fired": node["fired"], "condition": condition(node["condition"])}


def test_coverage_outlines_are_what_the_full_trace_shows(sample_copy):
    """Coverage reads outlines, built without what conditions saw, evidence or derivations: on
    every case, organisation and the sample of the example, they are the full trace's nodes cut
    down to places, texts and outcomes, rule by rule."""
    seen = []
    prepared = run.prepare(sample_copy)
    run.run(prepared, observe=lambda compiled, evaluation, subject=None, aggregates=None:
            seen.append(trace.Trace(compiled, evaluation, subject, aggregates)))
    assert len(seen) >= 14 + 2 + 1
    for tracer in seen:
        full = [_outline_of(node) for node in tracer.every_rule()]
        assert tracer.outlines() == full
