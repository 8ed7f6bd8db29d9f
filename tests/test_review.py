"""Reviewers' decisions and sign-off in the audit store: the loop end to end through the CLI,
append-only history, tamper evidence, redaction, and the public API web forms build on — on an
SQLite store without accounts (the operating-system user records) and on a shared PostgreSQL store,
where accounts record (tests/stores.py)."""

from __future__ import annotations

import json

import pytest

from engine.base.diagnostics import InputError
from engine.store import accounts, review, store
from tests import stores
from tests.conftest import ME, SAMPLE, local

PASSWORD = "a long enough test password"
#: The accounts of the shared store: the reviewer and QA lead the CLI steps run as, and the API's.
TEAM = {"ann": "reviewer", "quinn": "qa_lead", "A": "reviewer", "B": "reviewer", "C": "qa_lead"}
#: Each shared store's password file.
PASSWORD_FILES: dict = {}


@pytest.fixture(params=stores.BACKENDS)
def stored_run(request, qi, tmp_path):
    db = stores.empty_store(request.param, tmp_path)
    result = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db)
    assert result.exit_code == 0, result.stderr
    if stores.is_postgres(db):
        (tmp_path / "pw").write_text(PASSWORD + "\n")
        PASSWORD_FILES[db] = tmp_path / "pw"
        for name, role in TEAM.items():
            assert qi("users", "add", name, "--role", role, "--password-file", tmp_path / "pw", "--db", db).exit_code == 0
    yield db
    if stores.is_postgres(db):
        stores.drop(db)


def _as(db, name: str) -> list:
    """Who a CLI step records as: nobody named on SQLite (the operating-system user), an account on PostgreSQL."""
    return ["--as", name, "--password-file", PASSWORD_FILES[db]] if stores.is_postgres(db) else []


def _review(qi, db, *args):
    return qi("review", "1", "--db", db, *args, *_as(db, "ann"))


def _signoff(qi, db):
    return qi("runs", "signoff", "1", "--db", db, *_as(db, "quinn"))


def who(db, name: str) -> accounts.Actor:
    """The API's maker: the operating-system user ``name``, or on PostgreSQL the account."""
    return accounts.Actor(name, TEAM[name], accounts.ACCOUNT) if stores.is_postgres(db) else local(name)


def maker(db) -> tuple[str, str]:
    """How views name the CLI steps' reviewer and QA lead."""
    if stores.is_postgres(db):
        return "ann (reviewer)", "quinn (qa lead)"
    return f"{ME} (operating-system user)", f"{ME} (operating-system user)"


def test_the_review_loop_end_to_end(qi, stored_run, tmp_path):
    db = stored_run
    reviewer, lead = maker(db)
    refused = _signoff(qi, db)
    assert refused.exit_code == 1
    assert "NW-007 3.1 is open" in refused.stderr and "NW-014 3.3 is open" in refused.stderr
    assert "NW-001 3.2 is open" in refused.stderr
    assert _review(qi, db, "--case", "NW-001", "--criterion", "3.2", "--decision", "agree").exit_code == 0

    assert _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "override", "--finding",
                   "sufficient", "--reason", "The restraining order manages the risk").exit_code == 0
    assert _review(qi, db, "--case", "NW-007", "--criterion", "3.1", "--decision", "challenge", "--reason",
                   "Check whether the victim's views were sought elsewhere").exit_code == 0
    still = _signoff(qi, db)
    assert still.exit_code == 1 and f"NW-007 3.1 is open (challenged by {reviewer}: no later decision)" in still.stderr
    assert "NW-014" not in still.stderr

    assert _review(qi, db, "--case", "NW-007", "--criterion", "3.1", "--decision", "agree").exit_code == 0
    signed = _signoff(qi, db)
    assert signed.exit_code == 0 and "signed off by " + (lead if stores.is_postgres(db) else
                                                         f"{ME} (operating-system user; the store has no accounts)") \
        in signed.stdout

    shown = qi("runs", "show", "1", "--db", db).stdout
    assert f"NW-014 3.3: engine insufficient, inspector sufficient [override by {reviewer}]" in shown
    assert "4 decisions recorded" in shown and f"signed off by {lead}" in shown
    assert "open: 0" in shown

    out = tmp_path / "again"
    assert qi("report", "1", "--out", out, "--db", db).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    finding = next(c for c in report["cases"] if c["case"] == "NW-014")["findings"]["3.3"]
    assert (finding["engine"], finding["value"], finding["final"]) == ("insufficient", "sufficient", "sufficient")
    assert finding["review"]["reason"] == "The restraining order manages the risk"
    assert [d["decision"] for d in report["review"]["history"]] == ["agree", "override", "challenge", "agree"]
    markdown = (out / "report.md").read_text()
    assert "engine insufficient, final sufficient — \"The restraining order manages the risk\"" in markdown
    trace = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    assert next(c for c in trace if c["case"] == "NW-014")["findings"]["3.3"]["final"] == "sufficient"
    assert qi("runs", "verify", "--db", db).exit_code == 0


def test_bad_decisions_are_refused_with_codes_and_nothing_recorded(qi, stored_run):
    db = stored_run
    result = _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "override")
    assert result.exit_code == 1 and "missing_finding" in result.stderr and "missing_reason" in result.stderr
    result = _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "challenge")
    assert result.exit_code == 1 and "missing_reason" in result.stderr
    result = _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "agree", "--finding", "sufficient")
    assert result.exit_code == 1 and "unexpected_finding" in result.stderr
    result = _review(qi, db, "--case", "NW-41", "--criterion", "9.9", "--decision", "agree")
    assert result.exit_code == 1 and "unknown_case" in result.stderr and "NW-014" in result.stderr
    result = _review(qi, db, "--case", "NW-014", "--criterion", "9.9", "--decision", "agree")
    assert result.exit_code == 1 and "unknown_criterion" in result.stderr
    assert _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "maybe").exit_code == 2
    with store.Store(db) as audit:
        assert review.decisions_for_run(audit, 1, history=True) == []


def test_later_decisions_supersede_and_history_stays(stored_run):
    with store.Store(stored_run) as audit:
        first = review.record_decision(audit, 1, "NW-014", "3.3", "challenge", who(stored_run, "A"), reason="why")
        second = review.record_decision(audit, 1, "NW-014", "3.3", "agree", who(stored_run, "B"))
        organisation = review.record_decision(audit, 1, "organisation:NPS", "6.1", "agree", who(stored_run, "B"))
        assert review.decisions_for_run(audit, 1) == [second, organisation]
        assert review.decisions_for_run(audit, 1, history=True) == [first, second, organisation]
        assert [i["case"] for i in review.open_items(audit, 1)] == ["NW-001", "NW-007"]
        with pytest.raises(review.OpenItems) as refused:
            review.signoff(audit, 1, who(stored_run, "C"))
        assert [i["criterion"] for i in refused.value.items] == ["3.2", "3.1"]
        assert review.signoffs(audit, 1) == []


@pytest.mark.parametrize("tamper, expected", [
    ("UPDATE decisions SET reason = 'edited' WHERE id = 1", "decision 1 (run 1, NW-014 3.3): its stored content"),
    ("UPDATE decisions SET decision = 'agree', finding = NULL WHERE id = 2", "decision 2"),
    ("DELETE FROM decisions WHERE id = 1", "record_missing: run 1: link 2 is missing: the record before decision 2"),
    ("UPDATE signoffs SET reviewer = 'someone else'", "sign-off 1"),
])
def test_a_changed_or_deleted_decision_is_detected(qi, stored_run, tamper, expected):
    db = stored_run
    _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "override", "--finding", "sufficient",
            "--reason", "r")
    _review(qi, db, "--case", "NW-007", "--criterion", "3.1", "--decision", "override", "--finding", "sufficient",
            "--reason", "r")
    _review(qi, db, "--case", "NW-001", "--criterion", "3.2", "--decision", "agree")
    assert _signoff(qi, db).exit_code == 0
    assert qi("runs", "verify", "--db", db).exit_code == 0
    stores.sql(db, tamper)
    result = qi("runs", "verify", "--db", db)
    assert result.exit_code == 1 and expected in result.stderr


def test_redact_removes_reasons_and_notes_from_every_view(qi, stored_run, tmp_path):
    db = stored_run
    _review(qi, db, "--case", "NW-014", "--criterion", "3.3", "--decision", "override", "--finding", "sufficient",
            "--reason", "Confidential reviewer reasoning")
    shown = qi("runs", "show", "1", "--db", db, "--redact")
    as_json = qi("runs", "show", "1", "--db", db, "--redact", "--format", "json")
    qi("report", "1", "--out", tmp_path / "published", "--db", db, "--redact")
    assert not (tmp_path / "published" / "trace.jsonl").exists()
    views = [shown.stdout, as_json.stdout] + [(tmp_path / "published" / name).read_text()
                                               for name in ("report.json", "report.md", "report.html")]
    for text in views:
        assert "Confidential reviewer reasoning" not in text
        assert "restraining order and unpaid work" not in text  # the inspector's judgement note
    assert "Confidential reviewer reasoning" in qi("runs", "show", "1", "--db", db).stdout


def test_signoff_of_an_unknown_run_or_without_a_name_fails(qi, stored_run):
    assert qi("runs", "signoff", "99", "--db", stored_run, *_as(stored_run, "quinn")).exit_code == 1
    with store.Store(stored_run) as audit, pytest.raises(InputError):
        review.signoff(audit, 1, local("  "))
