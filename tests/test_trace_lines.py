"""A run keeps each case's result as a line (``trace.case_line``): the conclusions and what the case's
traces saw, while what every trace repeats (a rule's title, rationale and position, each
condition's text) is the run's rule table, once, in report.json. Expanding a line with the table
gives the full result ``qi evaluate`` prints — nothing a reviewer reads is lost — and the line is a
fraction of its size."""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path

import orjson
import pytest

from engine.compile import conditions, facts
from engine.judge import trace
from engine.run import pipeline, run
from engine.tools import generate
from tests.conftest import ROOT, SAMPLE, case_results, walk

RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"


@pytest.fixture(scope="module")
def compiled():
    return pipeline.compiled_rules(RULES)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from click.testing import CliRunner

    import cli

    folder = tmp_path_factory.mktemp("published")
    result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(folder / "out"), "--db", str(folder / "qi.db")])
    assert result.exit_code == 0, result.output
    return folder


def _plain(data):
    return orjson.loads(orjson.dumps(data))


def test_every_line_of_a_run_expands_to_what_evaluate_gives(published, compiled):
    results = case_results(published / "out")
    assert [r["case"] for r in results] == [f"NW-{n:03d}" for n in range(1, 15)]
    for result in results:
        case = pipeline.load_case(ROOT / result["file"], compiled)
        alone = _plain(pipeline.case_result(compiled, case))
        assert result == alone, result["case"]


def test_a_line_holds_no_rule_text_and_the_table_holds_each_rule_once(published, compiled):
    out = published / "out"
    table = json.loads((out / "report.json").read_text())["traces"]["rules"]
    assert set(table["rules"]) == {r.label for r in compiled.rules}
    assert table["ruleset"]["sha256"] == compiled.loaded.sha256
    text = (out / "trace.jsonl").read_text()
    for compiled_rule in compiled.rules:
        rule = compiled_rule.rule
        assert table["rules"][compiled_rule.label]["rationale"] == rule.rationale
        assert rule.rationale not in text  # each rationale is in the table, not repeated per case
    full = sum(len(orjson.dumps(r)) for r in case_results(out))
    assert len(text.encode()) * 3 < full  # the lines are a fraction of the full results


def test_the_audit_store_keeps_lines_and_gives_full_results(published):
    with sqlite3.connect(published / "qi.db") as db:
        stored = {ref: json.loads(zlib.decompress(blob)) for ref, blob in db.execute("SELECT case_ref, result FROM case_results")}
    assert all(trace.is_line(line) for line in stored.values())
    from engine.store import store

    audit = store.Store.open(published / "qi.db")
    try:
        by_case = {r["case"]: r for r in case_results(published / "out")}
        for reference in stored:
            assert audit.case_result(1, reference) == by_case[reference]
            assert audit.case_line(1, reference) == stored[reference]
    finally:
        audit.close()


def _condition_nodes(rule_node, condition):
    """(condition form, full node) for every condition a rule node shows, matched by position and text."""
    yield condition, rule_node
    if "children" in rule_node:
        parts = [child for _, child in condition.children()]
        for node in rule_node["children"]:
            match = [p for p in parts if p.describe() == node["text"]]
            if len(match) == 1:
                yield from _condition_nodes(node, match[0])


@pytest.mark.parametrize("seed", [3, 17, 2016])
def test_each_expanded_condition_says_what_the_evaluation_says(tmp_path, compiled, seed):
    """On generated cases: every condition node an expanded line shows holds (or not) as the
    condition does on the fact its phase asserted, and sees the values that fact held; a condition's
    parts shown and not shown add up to its parts. The property the compact form must keep."""
    profile, framework = generate.load_profile(generate.default_profile())
    generate.generate(profile, framework, 8, seed, tmp_path / "sample")
    checked = 0
    for path in sorted((tmp_path / "sample" / "cases").glob("*.yaml")):
        case = pipeline.load_case(path, compiled)
        evaluation, judgement = pipeline.evaluate_case(compiled, case)
        line = _plain(trace.case_line(compiled, case, evaluation, judgement))
        result = trace.expand(line, _plain(trace.rule_table(compiled)))
        by_label = {r.label: r for r in compiled.rules}
        for node in walk(result):
            if "rule" not in node or "condition" not in node or not isinstance(node["condition"], dict):
                continue
            compiled_rule = by_label[node["rule"]]
            fact = {**evaluation.fact, **evaluation.record.derived_in(compiled_rule.phase)}
            for form, shown in _condition_nodes(node["condition"], compiled_rule.rule.when):
                assert shown["holds"] == conditions.holds(compiled.lower(form), fact), (case.model.case, shown["text"])
                if "children" in shown:
                    assert len(shown["children"]) + shown.get("not_shown", 0) == len(list(form.children()))
                elif form.key in ("answer", "any_answer", "all_answers", "at_least"):
                    assert shown["seen"] == {i: fact[facts.answer_attribute(i)] for i in form.item_ids()}
                checked += 1
    assert checked > 500


def test_a_line_another_table_cannot_expand_is_refused(compiled):
    case = pipeline.load_case(SAMPLE / "cases" / "NW-014.yaml", compiled)
    evaluation, judgement = pipeline.evaluate_case(compiled, case)
    line = _plain(trace.case_line(compiled, case, evaluation, judgement))
    table = _plain(trace.rule_table(compiled))
    other = {**table, "ruleset": {**table["ruleset"], "sha256": "0" * 64}}
    with pytest.raises(ValueError, match="another rule set"):
        trace.expand(line, other)
    missing = {**table, "rules": {k: v for k, v in table["rules"].items() if k != line["findings"]["3.3"]["rules"][0]}}
    with pytest.raises(ValueError, match="does not match"):
        trace.expand(line, missing)
    full = trace.expand(line, table)
    assert trace.expand(full, table) is full  # a result stored whole is read as it is


def test_a_stored_line_the_table_cannot_expand_is_a_damaged_store(published, tmp_path, qi):
    import shutil

    db = tmp_path / "qi.db"
    shutil.copy(published / "qi.db", db)
    with sqlite3.connect(db) as connection:
        blob = connection.execute("SELECT result FROM case_results WHERE case_ref = 'NW-014'").fetchone()[0]
        line = json.loads(zlib.decompress(blob))
        line["rules"] = {"no-such-rule": {"fired": True, "condition": {"holds": True}}}
        line["findings"]["3.3"]["rules"] = ["no-such-rule"]
        connection.execute("UPDATE case_results SET result = ? WHERE case_ref = 'NW-014'",
                           (zlib.compress(json.dumps(line).encode()),))
    found = qi("explain", "--run", "1", "--case", "NW-014", "--criterion", "3.3", "--db", db)
    assert found.exit_code == 1 and "Traceback" not in found.output
    assert "damaged" in found.stderr or "changed" in found.stderr, found.stderr


def test_trace_jsonl_is_smaller_than_the_full_results_on_a_generated_sample(tmp_path):
    profile, framework = generate.load_profile(generate.default_profile())
    generate.generate(profile, framework, 20, 5, tmp_path / "sample")
    report = run.run(run.prepare(tmp_path / "sample"))
    lines = list(report.spool.lines())
    full = [orjson.dumps(r) for r in report.spool.results()]
    assert len(lines) == 20 and sum(map(len, lines)) * 3 < sum(map(len, full))
    assert report["traces"]["rules"] == _plain(trace.rule_table(pipeline.compiled_rules(RULES)))
    assert all(Path(r["file"]).name.endswith(".yaml") for r in report.spool.results())
