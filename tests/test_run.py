"""The whole-sample run through the CLI: reports, determinism, parallelism, the audit store."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from engine.base import diagnostics
from engine.base.diagnostics import InputError
from engine.load import source
from engine.report import report as reports
from engine.run import run
from engine.store import review, store
from tests import stores
from tests.conftest import ROOT, SAMPLE, case_results, walk


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "audit" / "qi.db"


def _without_timestamp(path: Path) -> dict:
    """report.json without what differs between two runs of the same inputs: the time, the run id
    (unique per execution) and the store's head after the run."""
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["run"]["timestamp"], data["run"]["id"], data["store"]
    return data


def _varying_lines_removed(text: str) -> str:
    lines = text[:text.index(',\n "store": {')].splitlines()  # the store's head comes last
    assert lines[2].startswith('  "id": ') and lines[4].startswith('  "timestamp": ')
    return "\n".join(lines[:2] + lines[3:4] + lines[5:])


def test_run_writes_four_owner_only_reports_and_records_the_run(qi, tmp_path, db):
    out = tmp_path / "out"
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    assert result.exit_code == 0, result.stderr
    for name in reports.FILES:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    lines = (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["case"] for line in lines] == [f"NW-{n:03d}" for n in range(1, 15)]
    listed = qi("runs", "list", "--db", db, "--format", "json")
    runs = json.loads(listed.stdout)
    assert len(runs) == 1 and runs[0]["cases"] == 14
    report = json.loads((out / "report.json").read_text())
    assert runs[0]["run_id"] == report["run"]["id"]
    assert f"run {report['run']['id']} (#1)" in result.stdout
    # no progress bar when stderr is not a terminal; the warnings found judging the cases, each at
    # its answer's position and all of them in report.json too
    lines = result.stderr.splitlines()
    assert lines and all(re.match(r"^\S+\.yaml:\d+:\d+: \w+: warning: ", line) for line in lines)
    assert sorted(lines) == sorted(diagnostics.Diagnostic(**w).render()
                                   for w in json.loads((out / "report.json").read_text())["warnings"])
    standard_3 = report["aggregates"]["targets"]["standard 3"]["groups"]["all"]["percent"]
    assert re.search(rf"^  3\s+{standard_3}%\s+[\d\[]", result.stdout, re.M)  # the headline: no band


def test_report_json_is_identical_apart_from_the_timestamp_and_jobs_do_not_matter(qi, tmp_path, db):
    assert qi("run", SAMPLE, "--out", tmp_path / "a", "--db", db).exit_code == 0
    assert qi("run", SAMPLE, "--out", tmp_path / "b", "--db", db, "--jobs", "2").exit_code == 0
    first = (tmp_path / "a" / "report.json").read_text()
    second = (tmp_path / "b" / "report.json").read_text()
    assert first.splitlines()[2] != second.splitlines()[2]  # run ids are unique per execution
    assert _varying_lines_removed(first) == _varying_lines_removed(second)
    assert _without_timestamp(tmp_path / "a" / "report.json") == _without_timestamp(tmp_path / "b" / "report.json")
    assert (tmp_path / "a" / "trace.jsonl").read_bytes() == (tmp_path / "b" / "trace.jsonl").read_bytes()


def test_report_records_inputs_and_hashes(tmp_path, qi, db):
    out = tmp_path / "out"
    qi("run", SAMPLE, "--out", out, "--db", db)
    report = json.loads((out / "report.json").read_text())
    import hashlib
    paths = {entry["path"]: entry["sha256"] for entry in report["inputs"]}
    assert len(paths) == 1 + 14 + 2 + 2  # manifest, cases, organisations, second markings
    for path, digest in paths.items():
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest
    rules_file = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
    assert report["ruleset"]["sha256"] == hashlib.sha256(rules_file.read_bytes()).hexdigest()
    assert report["framework"]["sha256"] == hashlib.sha256(
        (ROOT / "framework" / "hmip-qi-adult-2.0.yaml").read_bytes()).hexdigest()


def test_percentages_and_groups_match_counts_recomputed_from_the_case_files(tmp_path, qi, db):
    """Recount, independently of engine/aggregate.py, from trace.jsonl and the case files."""
    out = tmp_path / "out"
    qi("run", SAMPLE, "--out", out, "--db", db)
    report = json.loads((out / "report.json").read_text())
    findings = {}
    for line in (out / "trace.jsonl").read_text().splitlines():
        case = json.loads(line)
        findings[case["case"]] = {c: f["value"] for c, f in case["findings"].items()}
    context = {}
    for path in sorted((SAMPLE / "cases").glob("*.yaml")):
        data = source.load(path).data
        context[data["case"]] = {"provider": data["provider"], "sentence_type": data["sentence"]["type"],
                                 "risk_of_serious_harm": data["risk_of_serious_harm"],
                                 **{k: v for k, v in data.get("diversity", {}).items()}}
    checked = 0
    for criterion, target in report["aggregates"]["targets"].items():
        if target["kind"] != "criterion":
            continue
        for key, group in target["groups"].items():
            if key == "all":
                members = list(findings)
            else:
                grouping, value = key.split(":", 1)
                members = [ref for ref, ctx in context.items() if ctx.get(grouping, "not_given") == value]
            values = [findings[ref][criterion] for ref in members]
            sufficient, insufficient = values.count("sufficient"), values.count("insufficient")
            assert group["counts"]["sufficient"] == sufficient, (criterion, key)
            assert group["counts"]["insufficient"] == insufficient, (criterion, key)
            assert group["counts"]["not_applicable"] == values.count("not_applicable")
            assert group["applicable"] == sufficient + insufficient
            expected = round(100 * sufficient / (sufficient + insufficient), 1) if sufficient + insufficient else None
            assert group["percent"] == expected, (criterion, key)
            assert group["small"] == (sufficient + insufficient < report["aggregates"]["min_group_size"])
            checked += 1
    assert checked > 15 * 10


def test_gaps_compare_only_groups_of_the_minimum_size(tmp_path, qi, db):
    out = tmp_path / "out"
    qi("run", SAMPLE, "--out", out, "--db", db)
    report = json.loads((out / "report.json").read_text())
    minimum = report["aggregates"]["min_group_size"]
    for target in report["aggregates"]["targets"].values():
        for gap in target["gaps"].values():
            for key in gap["compared"]:
                assert target["groups"][key]["applicable"] >= minimum
            for key in gap["not_compared"]:  # too small, no applicable case, or not recorded
                assert (target["groups"][key]["small"] or target["groups"][key]["percent"] is None
                        or key.endswith((":not_recorded", ":not_given"))), key
            if gap["points"] is not None:
                high, low = target["groups"][gap["highest"]], target["groups"][gap["lowest"]]
                assert abs(gap["points"] - (high["exact_percent"] - low["exact_percent"])) < 0.06


def test_invalid_sample_gives_diagnostics_and_no_run(qi, sample_copy, tmp_path, db):
    (sample_copy / "cases" / "NW-003.yaml").write_text("case: NW-003\nprovider: NSP\n")
    out = tmp_path / "out"
    result = qi("run", sample_copy, "--out", out, "--db", db)
    assert result.exit_code == 1
    assert "NW-003.yaml:2:11: unknown_value" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    assert not db.exists() or store.Store(db).runs() == []


def test_a_run_that_fails_while_writing_reports_records_nothing(qi, tmp_path, db, monkeypatch):
    qi("run", SAMPLE, "--out", tmp_path / "first", "--db", db)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports, "_stage", full_disk)
    out = tmp_path / "second"
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    assert result.exit_code == 1 and "no space left on device" in result.stderr.lower()
    assert "no run was recorded" in result.stderr
    assert len(store.Store(db).runs()) == 1
    assert not any(out.glob("report.*"))


def test_verify_detects_a_changed_byte_and_names_the_run(qi, tmp_path, db):
    for name in ("a", "b", "c"):
        assert qi("run", SAMPLE, "--out", tmp_path / name, "--db", db).exit_code == 0
    assert qi("runs", "verify", "--db", db).exit_code == 0
    connection = sqlite3.connect(db)
    blob = connection.execute("SELECT result FROM case_results WHERE seq = 2 AND case_ref = 'NW-006'").fetchone()[0]
    text = zlib.decompress(blob).decode()
    index = text.index("insufficient")
    changed = text[:index] + "Insufficient" + text[index + len("insufficient"):]  # one byte
    connection.execute("UPDATE case_results SET result = ? WHERE seq = 2 AND case_ref = 'NW-006'",
                       (zlib.compress(changed.encode()),))
    connection.commit()
    connection.close()
    result = qi("runs", "verify", "--db", db)
    assert result.exit_code == 1
    assert "first mismatch at run 2" in result.stderr


def test_verify_detects_a_removed_run(qi, tmp_path, db):
    for name in ("a", "b"):
        qi("run", SAMPLE, "--out", tmp_path / name, "--db", db)
    connection = sqlite3.connect(db)
    connection.execute("DELETE FROM case_results WHERE seq = 1")
    connection.execute("DELETE FROM findings WHERE seq = 1")
    connection.execute("DELETE FROM runs WHERE seq = 1")
    connection.commit()
    result = qi("runs", "verify", "--db", db)
    assert result.exit_code == 1 and "run 2" in result.stderr


@pytest.fixture(params=stores.BACKENDS)
def any_db(request, tmp_path):
    """A new store on each backend: a file not yet made, or an empty PostgreSQL database."""
    made = stores.empty_store(request.param, tmp_path / "audit")
    yield made
    if stores.is_postgres(made):
        stores.drop(made)


def test_two_runs_writing_to_one_store_at_once_both_succeed(tmp_path, any_db):
    db = any_db
    env = {**os.environ, "QI_DB": str(db)}
    processes = [subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "run", str(SAMPLE), "--out",
                                   str(tmp_path / f"out{n}")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for n in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    audit = store.Store(db)
    assert [r.seq for r in audit.runs()] == [1, 2]
    assert audit.verify() == []


def test_the_same_run_gives_the_same_reports_and_stored_results_on_either_backend(qi, tmp_path):
    """report.json, report.md and trace.jsonl of one sample are the same recorded in an SQLite file
    or a PostgreSQL database (apart from the run's time and id and the store's head), and so is
    everything the store gives back: the report and every case result in the stored order."""
    recorded = {}
    for kind in stores.BACKENDS:
        db = stores.empty_store(kind, tmp_path / kind)
        try:
            assert qi("run", SAMPLE, "--out", tmp_path / kind / "out", "--db", db, "-q").exit_code == 0
            shown = json.loads(qi("runs", "show", "1", "--db", db, "--format", "json").stdout)
            with store.Store.open(db) as audit:
                results = [audit.case_result(1, c["case"]) for c in shown["cases"]]
                spooled = list(review.final_report(audit, 1).spool.lines())
            del shown["run"], shown["store"]
            recorded[kind] = (_without_timestamp(tmp_path / kind / "out" / "report.json"), shown, results, spooled,
                              (tmp_path / kind / "out" / "trace.jsonl").read_bytes())
        finally:
            if stores.is_postgres(db):
                stores.drop(db)
    assert recorded["sqlite"] == recorded["postgresql"]


def test_explain_from_the_store_matches_explain_from_the_case_file(qi, tmp_path, db):
    qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db)
    stored = qi("explain", "--run", "1", "--case", "NW-014", "--criterion", "3.3", "--db", db)
    fresh = qi("explain", SAMPLE / "cases" / "NW-014.yaml", "--criterion", "3.3")
    assert stored.exit_code == 0 and stored.stdout == fresh.stdout
    run_id = json.loads((tmp_path / "out" / "report.json").read_text())["run"]["id"]
    by_id = qi("explain", "--run", run_id[:8], "--case", "NW-014", "--criterion", "3.3", "--db", db)
    assert by_id.stdout == stored.stdout
    missing = qi("explain", "--run", "1", "--case", "NW-999", "--criterion", "3.3", "--db", db)
    assert missing.exit_code == 1 and "unknown_case" in missing.stderr
    assert qi("explain", "--run", "7", "--case", "NW-014", "--criterion", "3.3", "--db", db).exit_code == 1


def test_runs_show(qi, tmp_path, db):
    qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db)
    text = qi("runs", "show", "1", "--db", db)
    assert text.exit_code == 0 and "rule set hmip-qi-adult-2.0-default 2.1.0 sha256:" in text.stdout
    assert "cases/north-west-2016/cases/NW-001.yaml" in text.stdout
    shown = json.loads(qi("runs", "show", "1", "--db", db, "--format", "json").stdout)
    assert shown.pop("review")["decisions"] == []  # the review state, beside the stored report
    assert shown == json.loads((tmp_path / "out" / "report.json").read_text())


def test_store_is_migrated_once_and_reopened(db):
    store.Store.open_for_writing(db).close()
    audit = store.Store.open_for_writing(db)
    names = [row[0] for row in audit.connection.execute("SELECT name FROM migrations")]
    assert names == [name for name, _ in store.MIGRATIONS]


def test_unwritable_store_is_a_clear_error(qi, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", blocker / "qi.db")
    assert result.exit_code == 1 and "store_unavailable" in result.stderr
    assert blocker.read_text() == "not a folder" and not (tmp_path / "out").exists()


def test_default_store_path_follows_qi_db_and_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("QI_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert store.default_path() == tmp_path / "qi" / "qi.db"
    monkeypatch.setenv("QI_DB", str(tmp_path / "x.db"))
    assert store.default_path() == tmp_path / "x.db"


def test_sample_judgement_in_the_report(tmp_path):
    prepared = run.prepare(SAMPLE, ROOT / "rules" / "hmip-qi-adult-2.0-banded.yaml")  # bands are an option
    report = run.run(prepared)
    ratings = {(r["target"], r["group"]): r["band"] for r in report["sample_judgement"]["ratings"]}
    targets = report["aggregates"]["targets"]
    for criterion in ("1.1", "3.1", "3.3"):
        percent = targets[criterion]["groups"]["all"]["exact_percent"]
        expected = ("outstanding" if percent >= 80 else "good" if percent >= 65 else
                    "requires_improvement" if percent >= 50 else "inadequate")
        assert ratings[(criterion, "all")] == expected
    order = ["outstanding", "good", "requires_improvement", "inadequate"]
    for standard in ("1", "3", "5"):
        lowest = max((ratings[(c, "CRC")] for c in targets if targets[c]["standard"] == standard
                      and targets[c]["kind"] == "criterion"), key=order.index)
        assert ratings[(f"standard {standard}", "CRC")] == lowest
    # the sample barrier counts the cases where the barrier can arise: 3 of the 5 with child
    # safeguarding concerns; neither provider has the 5 such cases its own recommendation needs
    barrier = next(b for b in report["sample_judgement"]["barriers"] if b["id"] == "children-safeguarding-gaps")
    counted = barrier["trace"]["because"][0]["condition"]["aggregates"][0]
    assert counted["factor"] == "barrier:children-risk-unassessed"
    assert counted["references"] == ["NW-001", "NW-006", "NW-014"]
    assert (counted["cases"], counted["of"], counted["among"]) == (3, 5, "cases with child safeguarding concerns")
    assert "child-safeguarding-enquiries" not in [r["id"] for r in report["sample_judgement"]["recommendations"]]
    assert [o["organisation"] for o in report["organisations"]] == ["CRC", "NPS"]
    assert report["organisations"][0]["findings"]["6.2"]["value"] == "insufficient"


def test_case_text_is_escaped_in_html_and_kept_verbatim_in_markdown_and_json(sample_copy, tmp_path, qi, db):
    hostile = '<script>alert(1)</script><b onmouseover="x()">bold</b>'
    case = sample_copy / "cases" / "NW-014.yaml"
    case.write_text(case.read_text().replace('"One further shop theft in month 3; nothing since."', repr(hostile)))
    out = tmp_path / "out"
    assert qi("run", sample_copy, "--out", out, "--db", db).exit_code == 0
    html = (out / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "<b onmouseover" not in html
    notes = [e["note"] for result in case_results(out)
             for f in result["findings"].values() for n in walk(f["trace"])
             for e in n.get("evidence", [])]
    assert hostile in notes


def _rule_set(tmp_path, name: str, window: str) -> Path:
    text = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text()
    text = text.replace("id: hmip-qi-adult-2.0-default", f"id: {name}", 1)
    text = text.replace("in_force: {from: 2015-06-01, to: 2018-05-31}", f"in_force: {window}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_the_rule_set_in_force_for_the_period_is_chosen(tmp_path):
    from engine.run import pipeline
    old = _rule_set(tmp_path, "old", "{from: 2014-01-01, to: 2016-03-30}")
    new = _rule_set(tmp_path, "new", "{from: 2016-03-31}")
    import datetime
    assert pipeline.in_force([old, new], datetime.date(2016, 3, 31)) == new
    assert pipeline.in_force([old, new], datetime.date(2015, 1, 1)) == old
    with pytest.raises(InputError) as none:
        pipeline.in_force([old, new], datetime.date(2013, 1, 1))
    assert none.value.diagnostics[0].code == "no_ruleset_in_force"
    both = _rule_set(tmp_path, "both", "{from: 2010-01-01}")
    with pytest.raises(InputError) as two:
        pipeline.in_force([old, new, both], datetime.date(2016, 3, 31))
    assert two.value.diagnostics[0].code == "ambiguous_ruleset" and "new" in two.value.diagnostics[0].message


def test_run_errors_clearly_when_no_rule_set_is_in_force(qi, sample_copy, tmp_path, db, monkeypatch):
    from engine.run import pipeline
    monkeypatch.setattr(pipeline, "bundled_rules", lambda: {"old": _rule_set(tmp_path, "old", "{from: 2000-01-01, to: 2001-01-01}")})
    result = qi("run", sample_copy, "--out", tmp_path / "out", "--db", db)
    assert result.exit_code == 1 and "no_ruleset_in_force: no rule set is in force on 2016-03-31" in result.stderr


def test_run_records_the_rule_set_version_used(qi, tmp_path, db):
    qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db)
    listed = json.loads(qi("runs", "list", "--db", db, "--format", "json").stdout)
    assert listed[0]["ruleset"] == "hmip-qi-adult-2.0-default 2.1.0"


def test_redact_removes_notes_and_small_diversity_groups(qi, tmp_path, db):
    out = tmp_path / "out"
    assert qi("run", SAMPLE, "--out", out, "--db", db, "--redact").exit_code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["redacted"] is True
    minimum = report["aggregates"]["min_group_size"]
    for target in report["aggregates"]["targets"].values():
        for key, group in target["groups"].items():
            if key.split(":")[0] in ("gender", "ethnicity", "age_band", "disability", "religion"):
                assert group["applicable"] >= minimum, key
    assert "gender:female" not in report["aggregates"]["group_sizes"]  # 4 women in the sample
    everything = "\n".join((out / name).read_text() for name in ("report.json", "report.md", "report.html"))
    for path in sorted((SAMPLE / "cases").glob("*.yaml")):
        for note in source.load(path).data["evidence"].values():
            if note.get("note") and len(note["note"]) > 25:
                assert note["note"] not in everything, note["note"]
    assert not (out / "trace.jsonl").exists()  # case traces are not published
    stored = store.Store(db).case_result(1, "NW-014")  # the audit store keeps the full run
    assert "Risk to the partner's children" in json.dumps(stored)


def test_info_logs_name_runs_and_counts_never_case_content(qi, tmp_path, db):
    result = qi("--log-level", "info", "--log-format", "json", "run", SAMPLE, "--out", tmp_path / "out", "--db", db)
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "run recorded" and e["cases"] == 14 for e in events)
    for path in sorted((SAMPLE / "cases").glob("*.yaml")):
        data = source.load(path).data
        for entry in data["evidence"].values():
            if entry.get("note"):
                assert entry["note"] not in result.stderr
        # not even pseudonymous references in the log (diagnostics name the file, as qi validate does)
        assert data["case"] not in "\n".join(line for line in result.stderr.splitlines() if line.startswith("{"))
