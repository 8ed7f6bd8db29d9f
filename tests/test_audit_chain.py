"""People's records are as strongly chained as runs: decisions and sign-offs are links of the
store's one chain, keyed when the store is keyed, their order hashed, the head the newest link of
any kind. Each attack below — made as someone with write access to the database file but without
the key would make it — is detected by `qi runs verify` with its code, and no tampered store makes
any command exit with anything but 0 or 1.

Every attack runs on both backends (tests/stores.py). On PostgreSQL, a shared store, only accounts
record: there the module's ``qi`` runs ``review`` as a reviewer's account and ``runs signoff`` as a
QA lead's, where a test gives no ``--as`` (on SQLite they record the operating-system user)."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from engine.base.canonical import canonical
from engine.store import accounts, review, store
from tests import stores
from tests.conftest import SAMPLE
from tests.stores import sql, tamper

#: Who records through the API on a store without accounts (the CLI finds the operating-system user).
LOCAL = accounts.Actor("R. Patel", None, accounts.OS_USER)
#: On PostgreSQL: the accounts that record, and their password.
REVIEWER, QA_LEAD, PASSWORD = "r.patel", "qa.lead", "a long team password"


def recorder(db) -> accounts.Actor:
    """Who records through the API: the operating-system user, or on a shared store an account."""
    return accounts.Actor(REVIEWER, "reviewer", accounts.ACCOUNT) if stores.is_postgres(db) else LOCAL


def as_account(args: list, password_file) -> list:
    """A review or sign-off on a shared store, run as the team's reviewer or QA lead."""
    words = [str(a) for a in args]
    db = words[words.index("--db") + 1] if "--db" in words else ""
    if not db.startswith("postgresql://") or "--as" in words:
        return args
    if words[0] == "review":
        return [*args, "--as", REVIEWER, "--password-file", password_file]
    if words[:2] == ["runs", "signoff"]:
        return [*args, "--as", QA_LEAD, "--password-file", password_file]
    return args


@pytest.fixture
def qi(qi, tmp_path):
    (tmp_path / "team-password").write_text(PASSWORD + "\n")

    def run(*args, **options):
        return qi(*as_account(list(args), tmp_path / "team-password"), **options)

    return run

KEY = "a-long-store-key-kept-outside-the-db"


@pytest.fixture(scope="module", params=stores.BACKENDS)
def reviewed(request, tmp_path_factory):
    """A keyed store with one run, an override, a challenge then an agree on one finding, and a
    sign-off; and the same unkeyed (made once on each backend; tests work on copies)."""
    from click.testing import CliRunner

    import cli
    folder = tmp_path_factory.mktemp("reviewed")
    (folder / "store.key").write_text(KEY + "\n")
    (folder / "team-password").write_text(PASSWORD + "\n")
    made = {}
    for name, key in (("keyed", ["--key-file", str(folder / "store.key")]), ("plain", [])):
        db = stores.empty_store(request.param, folder, f"{name}.db")

        def qi(*args):
            result = CliRunner().invoke(cli.cli, [str(a) for a in as_account(list(args), folder / "team-password")],
                                        catch_exceptions=False)
            assert result.exit_code == 0, result.stderr
            return result

        qi("run", SAMPLE, "--out", folder / f"out-{name}", "--db", db, "-q", *key)
        if stores.is_postgres(db):
            for account, role in ((REVIEWER, "reviewer"), (QA_LEAD, "qa_lead")):
                qi("users", "add", account, "--role", role, "--password-file", folder / "team-password", "--db", db)
        qi("review", "1", "--db", db, "--case", "NW-014", "--criterion", "3.3", "--decision", "override",
           "--finding", "sufficient", "--reason", "The restraining order manages the risk",
           *key)
        qi("review", "1", "--db", db, "--case", "NW-007", "--criterion", "3.1", "--decision", "challenge",
           "--reason", "Check the victim's views", *key)
        qi("review", "1", "--db", db, "--case", "NW-007", "--criterion", "3.1", "--decision", "agree",
           *key)
        qi("review", "1", "--db", db, "--case", "NW-001", "--criterion", "3.2", "--decision", "agree",
           *key)
        qi("runs", "signoff", "1", "--db", db, *key)
        made[name] = db
    yield folder, made
    for db in made.values():
        if stores.is_postgres(db):
            stores.drop(db)


@pytest.fixture
def keyed(reviewed, tmp_path):
    folder, made = reviewed
    (tmp_path / "store.key").write_bytes((folder / "store.key").read_bytes())
    db = stores.copy(made["keyed"], tmp_path, "keyed.db")
    yield db
    if stores.is_postgres(db):
        stores.drop(db)


@pytest.fixture
def plain(reviewed, tmp_path):
    db = stores.copy(reviewed[1]["plain"], tmp_path, "plain.db")
    yield db
    if stores.is_postgres(db):
        stores.drop(db)


def _codes(result) -> list[str]:
    return sorted({line.split(": ")[1] for line in result.stderr.splitlines() if line.count(": ") >= 2
                   and not line.startswith("verify failed")})


def _verify(qi, db, *extra):
    result = qi("runs", "verify", "--db", db, *extra)
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def key_args(tmp_path):
    return ["--key-file", tmp_path / "store.key"]


def _forge(db, table: str, values: dict) -> None:
    """Insert a review record as the next link, its hash recomputed as plain sha256: what someone
    with the database but without the key can do."""
    connection = stores.connect(db)
    newest = max((row for t in ("runs", "decisions", "signoffs")
                  for row in connection.execute(f"SELECT link, hash FROM {t}")), key=lambda r: r[0])
    run_hash = connection.execute("SELECT hash FROM runs WHERE seq = 1").fetchone()[0]
    row_id = connection.execute(f"SELECT max(id) FROM {table}").fetchone()[0] + 1
    link = newest[0] + 1
    if table == "decisions":
        record = review._decision_record(1, values["case_ref"], values["criterion"], values["decision"],
                                         values.get("finding"), values.get("reason"), values["reviewer"],
                                         "2026-12-01T10:00:00+00:00", row_id, link)
    else:
        record = review._signoff_record(1, values["reviewer"], "2026-12-01T10:00:00+00:00", row_id, link,
                                        values["report_sha256"])
    digest = hashlib.sha256(newest[1].encode() + run_hash.encode() + canonical(record)).hexdigest()
    columns = {**values, "id": row_id, "seq": 1, "created_at": "2026-12-01T10:00:00+00:00", "link": link,
               "previous_hash": newest[1], "hash": digest}
    connection.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                       list(columns.values()))
    connection.commit()
    connection.close()


def test_an_untouched_reviewed_store_verifies_keyed_and_plain(qi, keyed, plain, key_args):
    result = _verify(qi, keyed, *key_args)
    assert result.exit_code == 0, result.stderr
    assert _verify(qi, plain).exit_code == 0
    without = _verify(qi, keyed)
    assert without.exit_code == 1 and "key_required" in _codes(without)


def test_a_decision_forged_without_the_key_is_caught_and_would_have_changed_the_report(qi, keyed, tmp_path, key_args):
    _forge(keyed, "decisions", {"case_ref": "NW-001", "criterion": "3.2", "decision": "override",
                                "finding": "sufficient", "reason": "forged", "reviewer": "R. Patel"})
    result = _verify(qi, keyed, *key_args)
    assert result.exit_code == 1 and "review_mismatch" in _codes(result)
    assert "decision 5 (run 1, NW-001 3.2): its stored content no longer matches its hash" in result.stderr
    # what it would have done: the forged override is a final finding in the re-rendered report
    assert qi("report", "1", "--out", tmp_path / "r", "--db", keyed).exit_code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert next(c for c in report["cases"] if c["case"] == "NW-001")["findings"]["3.2"]["final"] == "sufficient"


def test_a_signoff_forged_without_the_key_is_caught(qi, keyed, key_args):
    _forge(keyed, "signoffs", {"reviewer": "Chief Inspector", "report_sha256": "0" * 64})
    result = _verify(qi, keyed, *key_args)
    assert result.exit_code == 1 and "review_mismatch" in _codes(result)
    assert "sign-off 2 (run 1, Chief Inspector)" in result.stderr


def test_swapping_two_decisions_on_one_finding_is_caught(qi, keyed, plain, key_args):
    for db, extra in ((keyed, key_args), (plain, [])):
        before = qi("runs", "show", "1", "--db", db, "--format", "json")
        assert json.loads(before.stdout)["review"]["open"] == []
        # the challenge (2) becomes the latest decision on NW-007 3.1, so it is open again
        sql(db, "UPDATE decisions SET id = -1 WHERE id = 2", "UPDATE decisions SET id = 2 WHERE id = 3",
             "UPDATE decisions SET id = 3 WHERE id = -1")
        after = json.loads(qi("runs", "show", "1", "--db", db, "--format", "json").stdout)["review"]["open"]
        assert [(o["case"], o["criterion"]) for o in after] == [("NW-007", "3.1")]
        result = _verify(qi, db, *extra)
        assert result.exit_code == 1 and "order_changed" in _codes(result), result.stderr


def test_deleting_the_newest_decision_is_caught_against_the_head(qi, plain):
    qi("review", "1", "--db", plain, "--case", "NW-001", "--criterion", "3.2", "--decision", "agree",
       )
    head = qi("runs", "head", "--db", plain).stdout.strip()
    newest = stores.rows(plain, "SELECT link, hash FROM decisions ORDER BY id DESC LIMIT 1")[0]
    assert head == f"{newest[0]}:{newest[1]}"  # the head is the newest link of any kind
    sql(plain, "DELETE FROM decisions WHERE id = (SELECT max(id) FROM decisions)")
    assert "records_lost" in _codes(_verify(qi, plain))  # the id counter remembers it
    sql(plain, "UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM decisions) WHERE name = 'decisions'")
    assert _verify(qi, plain).exit_code == 0  # ... unless it is edited too: that is what the head is for
    result = _verify(qi, plain, "--expect-head", head)
    assert result.exit_code == 1 and _codes(result) == ["runs_lost"]


def test_the_head_in_report_json_and_runs_head_move_with_every_record(qi, plain, tmp_path):
    heads = [qi("runs", "head", "--db", plain).stdout.strip()]
    qi("review", "1", "--db", plain, "--case", "NW-001", "--criterion", "3.2", "--decision", "agree",
       )
    heads.append(qi("runs", "head", "--db", plain).stdout.strip())
    assert qi("run", SAMPLE, "--out", tmp_path / "second", "--db", plain, "-q").exit_code == 0
    written = json.loads((tmp_path / "second" / "report.json").read_text())["store"]["head"]
    heads.append(qi("runs", "head", "--db", plain).stdout.strip())
    assert [int(h.split(":")[0]) for h in heads] == [6, 7, 8] and written == heads[-1]
    for head in heads:
        assert _verify(qi, plain, "--expect-head", head).exit_code == 0


def test_a_decision_on_a_finding_the_run_does_not_have_is_caught_and_never_crashes(qi, plain, tmp_path):
    _forge(plain, "decisions", {"case_ref": "NW-999", "criterion": "3.2", "decision": "agree", "reviewer": "X"})
    result = _verify(qi, plain)
    assert result.exit_code == 1 and _codes(result) == ["unknown_finding"]
    for args in (("runs", "show", "1"), ("report", "1", "--out", tmp_path / "r")):
        shown = qi(*args, "--db", plain)
        assert shown.exit_code == 1 and "unknown_finding" in shown.stderr and "Traceback" not in shown.stderr


def test_a_record_with_values_qi_never_writes_is_caught(qi, plain):
    _forge(plain, "decisions", {"case_ref": "NW-001", "criterion": "3.2", "decision": "override",
                                "reviewer": "X", "reason": "r"})  # an override without its finding
    result = _verify(qi, plain)
    assert result.exit_code == 1 and _codes(result) == ["invalid_record"]


#: On PostgreSQL a trigger runs a function: this one drops the row (as SQLite's RAISE(IGNORE)).
_DROP_ROW = "CREATE FUNCTION drop_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
DROP_CHALLENGES = {
    "sqlite": "CREATE TRIGGER drop_challenges BEFORE INSERT ON decisions WHEN NEW.decision = 'challenge' "
              "BEGIN SELECT RAISE(IGNORE); END",
    "postgresql": "CREATE TRIGGER drop_challenges BEFORE INSERT ON decisions FOR EACH ROW "
                  "WHEN (NEW.decision = 'challenge') EXECUTE FUNCTION drop_row()"}
TRIGGERS = [
    [DROP_CHALLENGES],
    [{"sqlite": "CREATE TRIGGER rewrite AFTER INSERT ON findings BEGIN UPDATE findings SET value = 'sufficient' "
                "WHERE rowid = NEW.rowid; END",
      "postgresql": "CREATE FUNCTION rewrite() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "NEW.value := 'sufficient'; RETURN NEW; END $$"},
     {"sqlite": "", "postgresql": "CREATE TRIGGER rewrite BEFORE INSERT ON findings FOR EACH ROW "
                                  "EXECUTE FUNCTION rewrite()"}],
    ["CREATE VIEW everything AS SELECT * FROM decisions"],
    [{"sqlite": "CREATE TABLE notes (x)", "postgresql": "CREATE TABLE notes (x TEXT)"}],
    ["CREATE INDEX by_reviewer ON decisions(reviewer)"],
    [{"sqlite": "", "postgresql": "CREATE RULE quiet AS ON INSERT TO signoffs DO INSTEAD NOTHING"}],
    [{"sqlite": "", "postgresql": "ALTER TABLE decisions ENABLE ROW LEVEL SECURITY"}],
    [{"sqlite": "", "postgresql": "ALTER TABLE decisions ALTER COLUMN reason SET DEFAULT 'fine'"}],
]


@pytest.mark.parametrize("statements", TRIGGERS, ids=range(len(TRIGGERS)))
def test_a_schema_object_qi_did_not_create_is_caught_and_refused_before_any_write(qi, plain, tmp_path, statements):
    if not any(s.get("postgresql" if stores.is_postgres(plain) else "sqlite", s) if isinstance(s, dict) else s
               for s in statements):
        pytest.skip("PostgreSQL only")
    sql(plain, _DROP_ROW if stores.is_postgres(plain) else "", *statements)
    code = "schema_changed" if any("ALTER TABLE" in str(s) for s in statements) else "foreign_schema"  # qi's table altered
    result = _verify(qi, plain)
    assert result.exit_code == 1 and _codes(result) == [code], result.stderr
    before = stores.snapshot(plain)
    for args in (("review", "1", "--case", "NW-001", "--criterion", "3.2", "--decision", "challenge",
                  "--reason", "r"),
                 ("runs", "signoff", "1"),
                 ("run", SAMPLE, "--out", tmp_path / "refused", "-q")):
        refused = qi(*args, "--db", plain)
        assert refused.exit_code == 1 and code in refused.stderr, refused.stderr
    assert stores.snapshot(plain) == before and not (tmp_path / "refused").exists()


def test_a_write_reports_only_what_reads_back_as_stored(plain, monkeypatch):
    """Were a trigger to slip past the schema check, the write reads back what was stored and is
    rolled back when it differs, rather than reporting a decision that was never stored."""
    sql(plain, _DROP_ROW if stores.is_postgres(plain) else "", DROP_CHALLENGES,
        {"sqlite": "CREATE TRIGGER edit AFTER INSERT ON decisions BEGIN UPDATE decisions SET reason = 'edited' "
                   "WHERE id = NEW.id; END",
         "postgresql": "CREATE FUNCTION edit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                       "UPDATE decisions SET reason = 'edited' WHERE id = NEW.id; RETURN NULL; END $$"},
        {"sqlite": "", "postgresql": "CREATE TRIGGER edit AFTER INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION edit()"})
    monkeypatch.setattr(store.Store, "_schema_differences", lambda self: [])
    with store.Store.open(plain, writable=True) as audit:
        count = audit.connection.execute("SELECT count(*) FROM decisions").fetchone()[0]
        for decision in ("challenge", "override"):
            with pytest.raises(store.InputError) as refused:
                review.record_decision(audit, 1, "NW-001", "3.2", decision, recorder(plain), "why",
                                       "sufficient" if decision == "override" else None)
            assert refused.value.diagnostics[0].code == "store_tampered"
        assert audit.connection.execute("SELECT count(*) FROM decisions").fetchone()[0] == count


def test_control_characters_in_reasons_and_names_are_refused_and_escaped(qi, plain):
    refused = qi("review", "1", "--db", plain, "--case", "NW-001", "--criterion", "3.2", "--decision",
                 "challenge", "--reason", "fine\x1b[2J\x1b]0;owned\x07")
    assert refused.exit_code == 1 and refused.stderr.count(": control_character: ") == 1
    with store.Store.open(plain, writable=True) as audit:  # a name qi was given (by the system) is checked too
        for hostile in ("R. \u202ePatel", "QA\x1b[31m lead"):
            with pytest.raises(store.InputError) as named:
                review.signoff(audit, 1, accounts.Actor(hostile, None, accounts.OS_USER))
            assert [d.code for d in named.value.diagnostics] == ["control_character"]
    # one written into the database directly is shown escaped, and flagged by verify
    _forge(plain, "decisions", {"case_ref": "NW-001", "criterion": "3.2", "decision": "challenge",
                                "reason": "a\x1b[2Jb", "reviewer": "Eve\x9b31m"})
    shown = qi("runs", "show", "1", "--db", plain)  # a record qi never writes: refused, never printed raw
    assert shown.exit_code == 1 and ": store_damaged: decision 5 of run 1 holds values qi never writes" in shown.stderr
    assert "\x1b" not in shown.stdout + shown.stderr and "\x9b" not in shown.stdout + shown.stderr
    result = _verify(qi, plain)
    assert result.exit_code == 1 and "invalid_record" in _codes(result) and "\x1b" not in result.stderr


def test_a_fifo_as_the_store_is_refused_unopened(qi, tmp_path):  # an SQLite file's own case
    fifo = tmp_path / "qi.db"
    os.mkfifo(fifo)
    outcome = {}

    def attempt():
        for args in (("runs", "verify"), ("runs", "show", "1"), ("run", SAMPLE, "--out", tmp_path / "o", "-q"),
                     ("review", "1", "--case", "NW-001", "--criterion", "3.2", "--decision", "agree",
                      ), ("serve",)):
            outcome[" ".join(map(str, args))] = qi(*args, "--db", fifo)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "a command opened the FIFO and hung"
    assert len(outcome) == 5
    for result in outcome.values():
        assert result.exit_code == 1 and "not_a_regular_file" in result.stderr, result.stderr


@pytest.mark.parametrize("statement", ["DROP TABLE decisions", "DROP TABLE signoffs", "DROP TABLE findings",
                                       "ALTER TABLE decisions DROP COLUMN link",
                                       "DROP INDEX decisions_run"])
def test_a_dropped_table_or_column_is_a_coded_refusal(qi, plain, tmp_path, statement):
    sql(plain, statement)
    for args in (("runs", "verify"), ("runs", "show", "1"), ("runs", "list"), ("runs", "head"),
                 ("report", "1", "--out", tmp_path / "r"), ("review", "1", "--case", "NW-001", "--criterion", "3.2",
                                                            "--decision", "agree")):
        result = qi(*args, "--db", plain)
        assert result.exit_code == 1 and "schema_changed" in result.stderr and "Traceback" not in result.stderr


TAMPERING = [
    "UPDATE decisions SET case_ref = 'NW-0' || char(27) || '[2J'",
    "UPDATE decisions SET reviewer = 42",
    "UPDATE decisions SET link = 'x'",
    "UPDATE decisions SET decision = 'veto'",
    "UPDATE signoffs SET report_sha256 = NULL",
    "UPDATE runs SET report = x'00'",
    "UPDATE runs SET report = 'text'",
    "UPDATE case_results SET result = x'789c0300000000'",
    "DELETE FROM runs",
    "UPDATE runs SET link = NULL",
    "UPDATE decisions SET link = link + 10",
    "UPDATE decisions SET seq = 7",
    "DELETE FROM migrations WHERE name = '0003-one-chain'",
]


@pytest.mark.parametrize("statement", TAMPERING)
def test_no_tampered_store_gives_anything_but_exit_0_or_1(qi, plain, tmp_path, statement):
    tamper(plain, "PRAGMA foreign_keys = OFF", statement)
    commands = [("runs", "verify"), ("runs", "show", "1"), ("runs", "show", "1", "--format", "json"),
                ("runs", "list"), ("runs", "head"), ("report", "1", "--out", tmp_path / "r"),
                ("explain", "--run", "1", "--case", "NW-014", "--criterion", "3.3"),
                ("export", "1", "--to", tmp_path / "x.xlsx"),
                ("review", "1", "--case", "NW-001", "--criterion", "3.2", "--decision", "agree"),
                ("runs", "signoff", "1")]
    for args in commands:
        result = qi(*args, "--db", plain)
        assert result.exit_code in (0, 1), (args, result.exit_code, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
    assert _verify(qi, plain).exit_code == 1


# --- what a hostile review found: writers and readers check the chain, final findings everywhere --

def test_a_writer_with_the_key_refuses_a_chain_holding_a_forgery(qi, keyed, tmp_path, key_args):
    _forge(keyed, "decisions", {"case_ref": "NW-001", "criterion": "3.2", "decision": "override",
                                "finding": "sufficient", "reason": "forged", "reviewer": "R. Patel"})
    before = stores.snapshot(keyed)
    key = key_args
    for args in (("review", "1", "--case", "NW-001", "--criterion", "1.1", "--decision", "agree"),
                 ("runs", "signoff", "1"), ("run", SAMPLE, "--out", tmp_path / "o", "-q"),
                 ("report", "1", "--out", tmp_path / "r"), ("export", "1", "--to", tmp_path / "x.xlsx")):
        refused = qi(*args, "--db", keyed, *key)
        assert refused.exit_code == 1 and ": chain_broken: " in refused.stderr and "review_mismatch" in refused.stderr
    assert stores.snapshot(keyed) == before and not (tmp_path / "r").exists() and not (tmp_path / "o").exists()
    shown = qi("runs", "show", "1", "--db", keyed, *key)  # a view still shows it, saying what is wrong
    assert shown.exit_code == 0 and "warning: review_mismatch: decision 5" in shown.stderr
    unkeyed = qi("runs", "show", "1", "--db", keyed)
    assert "warning: the store is keyed and no key was given" in unkeyed.stderr


def test_an_organisation_override_is_what_every_view_states(qi, plain, tmp_path):
    engine = json.loads(qi("runs", "show", "1", "--db", plain, "--format", "json").stdout)
    nps = next(o for o in engine["organisations"] if o["organisation"] == "NPS")
    criterion = next(c for c, f in nps["findings"].items() if f["value"] == "insufficient")
    assert qi("review", "1", "--db", plain, "--case", "organisation:NPS", "--criterion", criterion, "--decision",
              "override", "--finding", "sufficient", "--reason", "Leadership evidence seen in interviews",
              ).exit_code == 0
    final = json.loads(qi("runs", "show", "1", "--db", plain, "--format", "json").stdout)
    finding = next(o for o in final["organisations"] if o["organisation"] == "NPS")["findings"][criterion]
    assert (finding["engine"], finding["value"]) == ("insufficient", "sufficient")
    assert qi("report", "1", "--out", tmp_path / "r", "--db", plain, "-q").exit_code == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert f'{criterion} <span class="sufficient">sufficient</span> <span class="at">(engine: insufficient)</span>' in html
    assert qi("report", "1", "--out", tmp_path / "red", "--db", plain, "--redact", "-q").exit_code == 0
    for path in (tmp_path / "red").iterdir():
        text = path.read_text(errors="ignore") if path.suffix != ".docx" else ""
        assert "Jo Bloggs" not in text and "Leadership evidence" not in text, path.name
    redacted = json.loads(qi("runs", "show", "1", "--db", plain, "--redact", "--format", "json").stdout)
    shown = next(o for o in redacted["organisations"] if o["organisation"] == "NPS")["findings"][criterion]
    assert shown["value"] == "sufficient" and not {"review", "engine", "final"} & set(shown)


def test_export_gives_the_final_findings(qi, plain, tmp_path):
    assert qi("review", "1", "--db", plain, "--case", "NW-014", "--criterion", "3.3", "--decision", "override",
              "--finding", "sufficient", "--reason", "r").exit_code == 0
    assert qi("export", "1", "--to", tmp_path / "x.csv", "--db", plain).exit_code == 0
    exported = (tmp_path / "x.aggregates.csv").read_text()
    final = json.loads(qi("runs", "show", "1", "--db", plain, "--format", "json").stdout)
    counts = final["aggregates"]["targets"]["3.3"]["groups"]["all"]["counts"]
    assert counts["sufficient"] == final["engine"]["aggregates"]["targets"]["3.3"]["groups"]["all"]["counts"]["sufficient"] + 1
    row = next(line for line in exported.splitlines() if line.startswith("3.3,") and ",all," in line)
    assert f",{counts['sufficient']}," in row


def test_a_name_on_two_lines_is_refused_and_a_reason_s_newline_cannot_forge_a_line(qi, plain):
    with store.Store.open(plain, writable=True) as audit:
        with pytest.raises(store.InputError) as refused:
            review.record_decision(audit, 1, "NW-001", "3.2", "agree",
                                   accounts.Actor("R. Patel\nrun 1: signed off", None, accounts.OS_USER))
        assert [d.code for d in refused.value.diagnostics] == ["control_character"]
    assert qi("review", "1", "--db", plain, "--case", "NW-001", "--criterion", "3.2", "--decision", "challenge",
              "--reason", "ok\n  NW-014 3.3: agree by QA lead").exit_code == 0
    shown = qi("runs", "show", "1", "--db", plain).stdout
    assert "\n  NW-014 3.3: agree by QA lead" not in shown and "ok\\x0a  NW-014 3.3: agree by QA lead" in shown


def test_an_override_can_only_give_a_finding(qi, plain):
    with store.Store.open(plain, writable=True) as audit:
        with pytest.raises(store.InputError) as refused:
            review.record_decision(audit, 1, "NW-001", "3.2", "override", recorder(plain), "r", "not_assessed")
        assert refused.value.diagnostics[0].code == "missing_finding"


@pytest.mark.parametrize("statement", [
    "UPDATE runs SET report = x'789c4b2bc9cdcdcdc90100'",
    "UPDATE decisions SET previous_hash = x'00' WHERE id = 1",
    "UPDATE sqlite_sequence SET seq = 'abc' WHERE name = 'decisions'",
    "UPDATE sqlite_sequence SET seq = 9223372036854775807 WHERE name = 'decisions'",
    "UPDATE decisions SET finding = 'bogus' WHERE decision = 'override'",
    "UPDATE decisions SET case_ref = x'4e572d303134' WHERE id = 1",
    "UPDATE signoffs SET reviewer = x'41'",
    "UPDATE decisions SET reason = 'a' || char(1) || 'b' WHERE id = 1",
    "UPDATE case_results SET result = x'789cabae0500017500f9'",
])
def test_more_tampering_never_crashes_any_command(qi, plain, tmp_path, statement):
    tamper(plain, statement)
    for args in (("runs", "verify"), ("runs", "show", "1"), ("report", "1", "--out", tmp_path / "r"),
                 ("review", "1", "--case", "NW-001", "--criterion", "3.2", "--decision", "agree"),
                 ("runs", "signoff", "1"), ("export", "1", "--to", tmp_path / "x.xlsx"),
                 ("runs", "list"), ("explain", "--run", "1", "--case", "NW-014", "--criterion", "3.3")):
        result = qi(*args, "--db", plain)
        assert result.exit_code in (0, 1), (args, result.stderr[-1500:])
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert _verify(qi, plain).exit_code == 1


@pytest.mark.parametrize("key", ["consistency", "organisations", "aggregates", "ruleset", "sample", "standards",
                                 "framework", "cases"])
def test_a_stored_report_missing_a_part_is_a_coded_refusal(qi, plain, tmp_path, key):
    import zlib
    connection = stores.connect(plain)
    report = json.loads(zlib.decompress(connection.execute("SELECT report FROM runs WHERE seq = 1").fetchone()[0]))
    del report[key]
    connection.execute("UPDATE runs SET report = ? WHERE seq = 1", (zlib.compress(json.dumps(report).encode()),))
    connection.commit()
    connection.close()
    for args in (("runs", "show", "1"), ("report", "1", "--out", tmp_path / "r"), ("export", "1", "--to", tmp_path / "x.csv")):
        result = qi(*args, "--db", plain)
        assert result.exit_code == 1 and ": store_damaged: " in result.stderr, (args, result.stderr[-500:])
