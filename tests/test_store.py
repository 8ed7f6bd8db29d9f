"""The audit store and publication, attacked: a failing COMMIT, a report's place taken by a folder,
a killed run's leftovers, edits, deletions and insertions in every table, truncation, renumbering,
a recomputed chain, files that are not qi stores, damaged rows. Each gives exit 1 and a coded
diagnostic, and nothing new is visible or recorded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from engine.report import report as reports
from engine.store import backend, store
from tests import stores
from tests.conftest import ROOT, SAMPLE
from tests.stores import sql

KEY = "a-long-store-key-kept-outside-the-db"


@pytest.fixture(scope="module", params=stores.BACKENDS)
def recorded(request, tmp_path_factory):
    """A store with three runs of the example sample, on each backend (made once; tests work on
    copies): the folder of its reports, and the store."""
    folder = tmp_path_factory.mktemp("recorded")
    made = stores.empty_store(request.param, folder)
    from click.testing import CliRunner

    import cli
    for n in range(3):
        result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(folder / f"out{n}"),
                                              "--db", str(made)], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    yield folder, made
    if stores.is_postgres(made):
        stores.drop(made)


@pytest.fixture
def db(recorded, tmp_path):
    """A copy of the recorded store (an SQLite file or a PostgreSQL database)."""
    made = stores.copy(recorded[1], tmp_path)
    yield made
    if stores.is_postgres(made):
        stores.drop(made)


@pytest.fixture
def file_db(tmp_path_factory, tmp_path):
    """An SQLite store file with three runs, for what only a file can suffer (locks, truncation, modes)."""
    folder = tmp_path_factory.getbasetemp() / "recorded-file"
    if not (folder / "qi.db").exists():
        from click.testing import CliRunner

        import cli
        folder.mkdir(exist_ok=True)
        for n in range(3):
            result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(folder / f"out{n}"),
                                                  "--db", str(folder / "qi.db"), "-q"], catch_exceptions=False)
            assert result.exit_code == 0, result.stderr
    return stores.copy(folder / "qi.db", tmp_path)


def _codes(result) -> list[str]:
    return [line.split(": ")[1] for line in result.stderr.splitlines() if line.count(": ") >= 2]


def _verify(qi, db: Path, *extra: str):
    result = qi("runs", "verify", "--db", db, *extra)
    assert "Traceback" not in result.stderr
    return result


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- publication: all or nothing ---------------------------------------------------------------


def test_a_commit_blocked_by_a_reader_leaves_no_reports_and_no_run(qi, file_db, tmp_path, monkeypatch):
    db = file_db
    out = tmp_path / "out"
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM runs").fetchall()  # a shared lock: COMMIT cannot take the file
    monkeypatch.setenv("QI_DB_TIMEOUT", "0.3")
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    reader.execute("ROLLBACK")
    reader.close()
    assert result.exit_code == 1, result.stderr
    assert "store_unavailable" in result.stderr and "locked" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()  # not a report, not a temporary file, not even the folder
    assert len(store.Store(db).runs()) == 3 and store.Store(db).verify() == []


def test_a_commit_failing_on_a_full_disk_leaves_the_previous_reports_and_no_run(qi, db, recorded, tmp_path,
                                                                                 monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(recorded[0] / "out0", out)
    before = _snapshot(out)

    def disk_full(self):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store.Store, "_commit", disk_full)
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    assert result.exit_code == 1 and "store_unavailable" in result.stderr and "disk is full" in result.stderr
    assert _snapshot(out) == before and sorted(p.name for p in out.iterdir()) == sorted(before)
    monkeypatch.undo()
    assert len(store.Store(db).runs()) == 3


def test_a_folder_where_report_html_goes_replaces_nothing_and_records_nothing(qi, db, recorded, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(recorded[0] / "out0", out)
    (out / "report.html").unlink()
    (out / "report.html").mkdir()
    before = _snapshot(out)
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f"{out / 'report.html'}:1:1: report_blocked:" in result.stderr
    assert _snapshot(out) == before and sorted(p.name for p in out.iterdir()) == sorted([*before, "report.html"])
    assert len(store.Store(db).runs()) == 3


def test_a_failed_rename_puts_the_previous_reports_back(recorded, tmp_path, monkeypatch):
    """Publishing renames four files; if the third fails, the first two are undone."""
    out = tmp_path / "out"
    shutil.copytree(recorded[0] / "out0", out)
    before = _snapshot(out)
    staged = reports.Staged(out, {"x": 1}, created=False)
    for name in reports.FILES:
        staged.add(name, lambda handle: handle.write("new\n"))
    real_replace, calls = os.replace, []

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="Input/output"):
        staged.publish()
    monkeypatch.undo()
    assert _snapshot(out) == before


def test_the_next_run_removes_what_a_killed_run_left(qi, db, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys; from pathlib import Path; from engine.report import report;"
         "report._stage(Path(sys.argv[1]), 'report.json', lambda h: h.write('{half')); os._exit(9)", str(out)],
        cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == 9
    leftovers = list(out.glob(".report.json.qi*.tmp"))
    assert len(leftovers) == 1
    someone_elses = out / ".notes.tmp"
    someone_elses.write_text("not qi's")
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    assert result.exit_code == 0, result.stderr
    assert not leftovers[0].exists() and someone_elses.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([*reports.FILES, ".notes.tmp"])


def test_report_json_records_the_head_after_its_run(qi, db, tmp_path):
    out = tmp_path / "out"
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    head = qi("runs", "head", "--db", db).stdout.strip()
    written = json.loads((out / "report.json").read_text())
    assert written["store"]["head"] == head == f"4:{written['store']['hash']}"
    assert f"store head {head}" in result.stdout
    shown = json.loads(qi("runs", "show", "4", "--db", db, "--format", "json").stdout)
    del shown["review"]  # runs show adds the review state
    assert shown == written


# --- verify covers every table -----------------------------------------------------------------


def test_verify_passes_an_untouched_store_and_the_head_it_printed(qi, db):
    head = qi("runs", "head", "--db", db).stdout.strip()
    result = _verify(qi, db, "--expect-head", head)
    assert result.exit_code == 0 and "3 runs verified" in result.stdout


@pytest.mark.parametrize("statement", [
    "UPDATE findings SET value = 'sufficient' WHERE seq = 2 AND case_ref = 'NW-006' AND value = 'insufficient'",
    "DELETE FROM findings WHERE seq = 2 AND case_ref = 'NW-006' AND criterion = '3.1'",
    "INSERT INTO findings VALUES (2, 'NW-006', '9.9', 'sufficient')",
    "INSERT INTO findings VALUES (2, 'NW-999', '3.1', 'insufficient')",
])
def test_verify_detects_edits_deletions_and_insertions_in_findings(qi, db, statement):
    sql(db, statement)
    result = _verify(qi, db)
    assert result.exit_code == 1 and "findings_mismatch" in _codes(result)
    assert "first mismatch at run 2" in result.stderr


@pytest.mark.parametrize(("statement", "code"), [
    ("INSERT INTO findings VALUES (9, 'NW-001', '3.1', 'sufficient')", "orphan_rows"),
    ("INSERT INTO case_results SELECT 9, case_ref, result FROM case_results WHERE seq = 1", "orphan_rows"),
    ("INSERT INTO case_results SELECT 2, 'NW-100', result FROM case_results WHERE seq = 2 AND case_ref = 'NW-001'",
     "hash_mismatch"),
    ("DELETE FROM case_results WHERE seq = 2 AND case_ref = 'NW-003'", "hash_mismatch"),
    ("UPDATE runs SET inputs = replace(inputs, 'NW-001', 'NW-01X') WHERE seq = 1", "hash_mismatch"),
    ("UPDATE runs SET previous_hash = hash WHERE seq = 2", "chain_broken"),
    ("DELETE FROM migrations", "schema_changed"),
])
def test_verify_detects_changes_in_every_table(qi, db, statement, code):
    sql(db, statement)
    result = _verify(qi, db)
    assert result.exit_code == 1 and code in _codes(result), result.stderr


def test_the_report_column_is_covered_by_the_hash(qi, db):
    """Leaving ``report`` out of a run's hash would let this edit pass."""
    connection = stores.connect(db)
    stored = json.loads(zlib.decompress(connection.execute("SELECT report FROM runs WHERE seq = 2").fetchone()[0]))
    stored["sample_judgement"]["recommendations"] = []
    connection.execute("UPDATE runs SET report = ? WHERE seq = 2", (zlib.compress(store.canonical(stored)),))
    connection.commit()
    connection.close()
    result = _verify(qi, db)
    assert result.exit_code == 1 and _codes(result) == ["hash_mismatch"] and "run 2" in result.stderr


def test_verify_detects_the_last_run_deleted(qi, db):
    head = qi("runs", "head", "--db", db).stdout.strip()
    sql(db, "DELETE FROM findings WHERE seq = 3", "DELETE FROM case_results WHERE seq = 3",
         "DELETE FROM runs WHERE seq = 3")
    assert "runs_lost" in _codes(_verify(qi, db))  # the run counter remembers run 3
    sql(db, "UPDATE sqlite_sequence SET seq = 2 WHERE name = 'runs'")  # ... unless it is edited too
    result = _verify(qi, db, "--expect-head", head)
    assert result.exit_code == 1 and _codes(result) == ["runs_lost"] and f"expected head {head[:14]}" in result.stderr


def test_verify_detects_every_run_deleted(qi, db):
    head = qi("runs", "head", "--db", db).stdout.strip()
    sql(db, "DELETE FROM findings", "DELETE FROM case_results", "DELETE FROM runs",
        "DELETE FROM sqlite_sequence")
    result = _verify(qi, db, "--expect-head", head)
    assert result.exit_code == 1 and _codes(result) == ["runs_lost"]


def test_verify_detects_renumbered_runs(qi, db):
    sql(db, "PRAGMA foreign_keys = OFF", "DELETE FROM findings WHERE seq = 1", "DELETE FROM case_results WHERE seq = 1",
         "DELETE FROM runs WHERE seq = 1", "UPDATE runs SET seq = seq - 1", "UPDATE case_results SET seq = seq - 1",
         "UPDATE findings SET seq = seq - 1")
    result = _verify(qi, db)
    assert result.exit_code == 1 and {"hash_mismatch", "record_missing"} <= set(_codes(result))


def test_a_store_truncated_to_nothing_is_refused(qi, file_db):
    db = file_db
    head = qi("runs", "head", "--db", db).stdout.strip()
    db.write_bytes(b"")
    result = _verify(qi, db, "--expect-head", head)
    assert result.exit_code == 1 and "not_a_store" in result.stderr and "empty" in result.stderr
    assert db.read_bytes() == b""


def _rewrite_chain(db, key: bytes | None = None) -> None:
    """What an attacker who knows qi does: change a finding everywhere and recompute every hash."""
    connection = stores.connect(db)
    order = "ordinal" if stores.is_postgres(db) else "rowid"
    blob = connection.execute("SELECT result FROM case_results WHERE seq = 2 AND case_ref = 'NW-006'").fetchone()[0]
    result = json.loads(zlib.decompress(blob))
    criterion = next(c for c, f in result["findings"].items() if f["value"] == "insufficient")
    result["findings"][criterion]["value"] = "sufficient"
    connection.execute("UPDATE case_results SET result = ? WHERE seq = 2 AND case_ref = 'NW-006'",
                       (zlib.compress(store.canonical(result)),))
    connection.execute("UPDATE findings SET value = 'sufficient' WHERE seq = 2 AND case_ref = 'NW-006' AND criterion = ?",
                       (criterion,))
    previous = store.GENESIS
    for row in connection.execute(f"SELECT {', '.join(store.HASHED)}, link, report FROM runs ORDER BY seq").fetchall():
        header = {**dict(zip(store.HASHED, row)), "link": row[-2]}
        header["chain"], header["key_id"] = (store.KEYED, store.key_id(key)) if key else (store.PLAIN, "")
        digest = store._chain_start(key, previous, header, zlib.decompress(row[-1]))
        for case_ref, blob in connection.execute("SELECT case_ref, result FROM case_results WHERE seq = ? "
                                                 f"ORDER BY {order}", (header["seq"],)).fetchall():
            store._chain_add(digest, case_ref, zlib.decompress(blob))
        connection.execute("UPDATE runs SET previous_hash = ?, hash = ?, chain = ?, key_id = ? WHERE seq = ?",
                           (previous, digest.hexdigest(), header["chain"], header["key_id"], header["seq"]))
        previous = digest.hexdigest()
    connection.commit()
    connection.close()


def test_a_recomputed_chain_is_caught_by_the_head_kept_outside(qi, db):
    head = qi("runs", "head", "--db", db).stdout.strip()
    _rewrite_chain(db)
    assert _verify(qi, db).exit_code == 0  # a plain chain cannot tell on its own: that is what the head is for
    result = _verify(qi, db, "--expect-head", head)
    assert result.exit_code == 1 and _codes(result) == ["head_mismatch"]


@pytest.fixture(params=stores.BACKENDS)
def keyed(request, tmp_path, monkeypatch, qi):
    key_file = tmp_path / "store.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("QI_STORE_KEY_FILE", str(key_file))
    db = stores.empty_store(request.param, tmp_path, "keyed.db")
    for n in range(2):
        assert qi("run", SAMPLE, "--out", tmp_path / f"out{n}", "--db", db).exit_code == 0
    monkeypatch.delenv("QI_STORE_KEY_FILE")
    yield db
    if stores.is_postgres(db):
        stores.drop(db)


def test_a_keyed_chain_verifies_only_with_its_key(qi, keyed, tmp_path, monkeypatch):
    key_file = tmp_path / "store.key"
    assert _verify(qi, keyed, "--key-file", key_file).exit_code == 0
    without = _verify(qi, keyed)
    assert without.exit_code == 1 and set(_codes(without)) == {"key_required"}
    (tmp_path / "wrong.key").write_text("another-long-key-of-someone-else")
    wrong = _verify(qi, keyed, "--key-file", tmp_path / "wrong.key")
    assert wrong.exit_code == 1 and "not_keyed" in _codes(wrong)
    monkeypatch.setenv("QI_STORE_KEY", KEY)
    assert _verify(qi, keyed).exit_code == 0  # the key from the environment


def test_a_keyed_chain_rewritten_without_the_key_is_caught(qi, keyed, tmp_path):
    _rewrite_chain(keyed)  # recomputed as a plain chain
    result = _verify(qi, keyed, "--key-file", tmp_path / "store.key")
    assert result.exit_code == 1 and "not_keyed" in _codes(result)
    _rewrite_chain(keyed, key=b"a-guessed-key-that-is-not-it")
    result = _verify(qi, keyed, "--key-file", tmp_path / "store.key")
    assert result.exit_code == 1 and {"not_keyed", "hash_mismatch"} <= set(_codes(result))


def test_a_keyed_store_refuses_runs_without_its_key(qi, keyed, tmp_path, monkeypatch):
    before = stores.snapshot(keyed)
    result = qi("run", SAMPLE, "--out", tmp_path / "new", "--db", keyed)
    assert result.exit_code == 1 and "store_key" in result.stderr and not (tmp_path / "new").exists()
    (tmp_path / "wrong.key").write_text("another-long-key-of-someone-else")
    result = qi("run", SAMPLE, "--out", tmp_path / "new", "--db", keyed, "--key-file", tmp_path / "wrong.key")
    assert result.exit_code == 1 and "is not the key run 2 was recorded with" in result.stderr
    assert stores.snapshot(keyed) == before
    (tmp_path / "short.key").write_text("short")
    result = qi("run", SAMPLE, "--out", tmp_path / "new", "--db", keyed, "--key-file", tmp_path / "short.key")
    assert result.exit_code == 1 and "short.key:1:1: store_key:" in result.stderr


def test_verify_expect_head_must_be_seq_colon_hash(qi, db):
    result = qi("runs", "verify", "--db", db, "--expect-head", "3:abc")
    assert result.exit_code == 2 and "LINK:HASH" in result.stderr


# --- read-only commands never create or alter a store ------------------------------------------

READ_ONLY = [("runs", "list"), ("runs", "show", "1"), ("runs", "verify"), ("runs", "head"),
             ("explain", "--run", "1", "--case", "NW-001", "--criterion", "3.1")]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_read_only_commands_never_create_a_store(qi, tmp_path, command):
    missing = tmp_path / "typo.sqlite"
    result = qi(*command, "--db", missing)
    assert result.exit_code == 1 and "store_missing" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_read_only_commands_refuse_a_database_of_another_application_untouched(qi, tmp_path, command):
    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE runs (seq INTEGER, note TEXT)")
    connection.execute("INSERT INTO runs VALUES (1, 'mine')")
    connection.commit()
    connection.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    result = qi(*command, "--db", other)
    assert result.exit_code == 1 and "not_a_store" in result.stderr
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before and list(tmp_path.iterdir()) == [other]


def test_run_refuses_a_database_of_another_application_untouched(qi, tmp_path):
    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.commit()
    connection.close()
    before = other.read_bytes()
    result = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", other)
    assert result.exit_code == 1 and "not_a_store" in result.stderr
    assert other.read_bytes() == before and not (tmp_path / "out").exists()


def test_read_only_commands_leave_a_qi_store_byte_for_byte(qi, db, tmp_path):
    before = stores.snapshot(db)
    for command in READ_ONLY:
        assert qi(*command, "--db", db).exit_code == 0
    assert stores.snapshot(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if stores.is_postgres(db) else ["qi.db"])


# --- run ids, and store failures as diagnostics ------------------------------------------------


def test_identical_runs_get_their_own_ids_and_share_the_content_hash(qi, db):
    listed = json.loads(qi("runs", "list", "--db", db, "--format", "json").stdout)
    assert len({r["run_id"] for r in listed}) == 3 and len({r["content_sha256"] for r in listed}) == 1
    for row in listed:
        shown = json.loads(qi("runs", "show", row["run_id"], "--db", db, "--format", "json").stdout)
        assert shown["store"]["seq"] == row["seq"] and shown["run"]["content_sha256"] == row["content_sha256"]


def test_a_read_only_store_file_is_a_diagnostic(qi, file_db, tmp_path, monkeypatch):
    db = file_db
    db.chmod(0o400)
    if os.geteuid() == 0:  # root writes through file modes: open it as SQLite opens a read-only file
        real_connect = backend.SQLite.connect
        monkeypatch.setattr(backend.SQLite, "connect", lambda self, read_only, timeout: real_connect(self, True, timeout))
    before = db.read_bytes()
    result = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db)
    assert result.exit_code == 1 and "store_unavailable" in result.stderr and "readonly" in result.stderr
    assert db.read_bytes() == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", [b"not compressed", zlib.compress(b"{not json"), zlib.compress(b"[1, 2]")])
def test_a_damaged_row_is_a_diagnostic(qi, db, damage):
    sql(db, "UPDATE case_results SET result = ? WHERE seq = 1 AND case_ref = 'NW-001'", parameters=(damage,))
    sql(db, "UPDATE runs SET report = ? WHERE seq = 1", parameters=(damage,))
    for command in (("explain", "--run", "1", "--case", "NW-001", "--criterion", "3.1"), ("runs", "show", "1")):
        result = qi(*command, "--db", db)
        assert result.exit_code == 1 and "store_damaged" in result.stderr and "Traceback" not in result.stderr
    result = _verify(qi, db)
    assert result.exit_code == 1 and "run 1" in result.stderr


def test_a_run_refused_by_a_locked_store_can_be_retried(qi, file_db, tmp_path, monkeypatch):
    db = file_db
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setenv("QI_DB_TIMEOUT", "0.2")
    for command in (("run", SAMPLE, "--out", tmp_path / "out"), ("runs", "list"), ("runs", "verify")):
        result = qi(*command, "--db", db)
        assert result.exit_code == 1 and "locked" in result.stderr and "Traceback" not in result.stderr
    holder.execute("ROLLBACK")
    holder.close()
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db).exit_code == 0


@pytest.mark.parametrize("url, says", [
    ("sqlite:///tmp/x.db", "'sqlite' is not a kind of store qi keeps"),
    ("mysql+pymysql://h/db", "'mysql+pymysql' is not a kind of store qi keeps"),
    ("HTTPS://u:secret@h/db", "'HTTPS' is not a kind of store qi keeps"),
    ("postgresql:/qi@127.0.0.1/qi", "this PostgreSQL URL has lost a slash"),
])
def test_a_database_url_qi_does_not_keep_is_refused_never_taken_for_a_file_name(qi, tmp_path, monkeypatch, url, says):
    """--db takes an SQLite store file or a postgresql:// URL: any other URL (or one that lost a
    slash) is a coded refusal, its password never shown, and no local file named after it is created."""
    monkeypatch.chdir(tmp_path)
    for args in (["run", SAMPLE, "--out", tmp_path / "out", "-q"], ["runs", "list"], ["runs", "verify"],
                 ["review", "1", "--case", "X", "--criterion", "1.1", "--decision", "agree"]):
        result = qi(*args, "--db", url)
        assert result.exit_code == 1 and f"unsupported_store: {says}" in result.stderr, result.stderr
        assert "secret" not in result.stderr and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # neither reports nor a file or folder named after the URL
    monkeypatch.setenv("QI_DB", url)
    assert "unsupported_store" in qi("runs", "list").stderr


@pytest.mark.parametrize("kind", stores.BACKENDS)
def test_a_store_another_process_migrated_after_this_one_opened_it_is_not_foreign(tmp_path, kind):
    """Two first runs on a new store both find it without a schema; the one that gets the write
    lock second must take the first one's schema for qi's own (the race test_run's two concurrent
    runs meet), never as foreign objects."""
    db = stores.empty_store(kind, tmp_path)
    where = backend.open_backend(db)
    where.create([store._MIGRATIONS_TABLE])
    late = store.Store(db, where.connect(read_only=False, timeout=5), where)  # opened before any schema existed
    assert late.applied == ()
    store.Store.open_for_writing(db).close()  # the other process migrates and commits first
    with late._write():  # what record() and the review writes open: refused as foreign before the fix
        pass
    assert late.applied == tuple(name for name, _ in store.MIGRATIONS)
    late.close()
    if stores.is_postgres(db):
        stores.drop(db)


# --- PostgreSQL: what a shared database adds ---------------------------------------------------


@pytest.fixture
def database():
    """An empty PostgreSQL database, as an administrator makes one for qi (createdb)."""
    made = stores.new_database()
    yield made
    stores.drop(made)


def test_a_new_postgresql_database_becomes_a_store_on_the_first_run_and_reads_refuse_it_before(qi, database, tmp_path):
    for command in READ_ONLY:
        result = qi(*command, "--db", database)
        assert result.exit_code == 1 and "store_missing: there is no audit store here (the database is empty)" \
            in result.stderr, result.stderr
    assert stores.snapshot(database) == {}  # nothing was created by a read
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", database, "-q").exit_code == 0
    assert {"runs", "case_results", "findings", "decisions", "signoffs", "users", "migrations", "qi_store",
            "qi_numbering"} == set(stores.snapshot(database))
    assert qi("runs", "verify", "--db", database).exit_code == 0
    # a case's results are read back in the order stored, which the run's hash covers
    ordered = [ref for (ref,) in stores.rows(database, "SELECT case_ref FROM case_results ORDER BY ordinal")]
    traced = [json.loads(line)["case"] for line in (tmp_path / "out" / "trace.jsonl").read_text().splitlines()]
    assert ordered == traced and len(ordered) == 14


def test_a_postgresql_database_of_another_application_is_refused_untouched(qi, database, tmp_path):
    stores.sql(database, "CREATE TABLE runs (seq BIGINT, note TEXT)", "INSERT INTO runs VALUES (1, 'mine')")
    before = stores.snapshot(database)
    for command in [*READ_ONLY, ("run", SAMPLE, "--out", tmp_path / "out", "-q"),
                    ("users", "add", "ann", "--role", "reviewer", "--password-file", tmp_path / "pw")]:
        (tmp_path / "pw").write_text("a long enough password\n")
        result = qi(*command, "--db", database)
        assert result.exit_code == 1 and "not_a_store: not a qi audit store: the database's schema public holds " \
            "tables of another application" in result.stderr, result.stderr
    assert stores.snapshot(database) == before and not (tmp_path / "out").exists()


def test_a_postgresql_writer_waits_for_another_then_is_refused_and_can_retry(qi, db, tmp_path, monkeypatch):
    if not stores.is_postgres(db):
        pytest.skip("the SQLite file's lock: test_a_run_refused_by_a_locked_store_can_be_retried")
    import psycopg

    holder = psycopg.connect(str(db), autocommit=True)
    holder.execute("BEGIN")
    holder.execute(f"SELECT pg_advisory_xact_lock({backend.APPLICATION_ID})")  # another qi, mid-write
    monkeypatch.setenv("QI_DB_TIMEOUT", "0.3")
    before = stores.snapshot(db)
    (tmp_path / "pw").write_text("a long enough password\n")
    for command in (("run", SAMPLE, "--out", tmp_path / "out", "-q"),
                    ("users", "add", "ann", "--role", "reviewer", "--password-file", tmp_path / "pw")):
        result = qi(*command, "--db", db)
        assert result.exit_code == 1 and "store_unavailable" in result.stderr and "lock timeout" in result.stderr, \
            result.stderr
        assert "Traceback" not in result.stderr
    assert qi("runs", "list", "--db", db).exit_code == 0  # readers never wait for a writer
    holder.execute("ROLLBACK")
    holder.close()
    assert stores.snapshot(db) == before and not (tmp_path / "out").exists()
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db, "-q").exit_code == 0


def test_a_postgresql_url_s_password_is_never_shown(qi, tmp_path):
    unreachable = "postgresql://qi:s3cret-pass@127.0.0.1:1/qi"  # nothing listens on port 1
    for command in (("runs", "list"), ("run", SAMPLE, "--out", tmp_path / "out", "-q"), ("serve",)):
        result = qi(*command, "--db", unreachable)
        assert result.exit_code == 1 and "store_unavailable: cannot open the audit store" in result.stderr
        assert "s3cret" not in result.stdout + result.stderr and "postgresql://qi:***@127.0.0.1:1/qi" in result.stderr


def test_a_shared_store_records_decisions_by_accounts_only(qi, db, tmp_path):
    if not stores.is_postgres(db):
        pytest.skip("a local SQLite store without accounts records its operating-system user")
    before = stores.snapshot(db)
    for command in (("review", "1", "--case", "NW-001", "--criterion", "3.2", "--decision", "agree"),
                    ("runs", "signoff", "1")):
        result = qi(*command, "--db", db)
        assert result.exit_code == 1 and "account_required: this is a shared PostgreSQL store" in result.stderr
    served = qi("serve", "--db", db)
    assert served.exit_code == 1 and "accounts_required: a shared PostgreSQL store is served" in served.stderr
    assert stores.snapshot(db) == before


# --- PostgreSQL attacked through its own features (a hostile review's findings, by class) --------

#: A schema of someone else's, and the database told to search it (what any owner can do).
ELSEWHERE = ["CREATE SCHEMA util", "ALTER DATABASE {db} SET search_path = public, util"]

PG_ATTACKS = {
    # a function qi would call, shadowed in a schema the database's own search path names
    "lock shadowed": (ELSEWHERE + ["CREATE FUNCTION util.pg_advisory_xact_lock(integer) RETURNS void "
                                   "LANGUAGE sql AS 'SELECT NULL::void'"], None),
    "current_schema shadowed": (ELSEWHERE + ["CREATE FUNCTION util.current_schema() RETURNS name LANGUAGE sql "
                                             "AS $$SELECT 'util'::name$$",
                                             "CREATE FUNCTION public.keep() RETURNS trigger LANGUAGE plpgsql AS "
                                             "$$BEGIN NEW.disabled := 0; RETURN NEW; END$$",
                                             "CREATE TRIGGER keep BEFORE UPDATE ON public.users FOR EACH ROW "
                                             "EXECUTE FUNCTION public.keep()"], "foreign_schema"),
    "operator in the schema": (["CREATE FUNCTION public.never(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT false'",
                                "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.never)"],
                               "foreign_schema"),
    "event trigger": (["CREATE SCHEMA evt", "CREATE FUNCTION evt.noop() RETURNS event_trigger LANGUAGE plpgsql AS "
                       "$$BEGIN END$$", "CREATE EVENT TRIGGER spy ON ddl_command_end EXECUTE FUNCTION evt.noop()"],
                      "foreign_schema"),
    "collation": (["CREATE COLLATION public.\"default\" (provider = icu, locale = 'und-u-ks-level2', "
                   "deterministic = false)",
                   "ALTER TABLE users ALTER COLUMN name TYPE text COLLATE public.\"default\""], "schema_changed"),
    "identity sequence": (["ALTER TABLE case_results ALTER COLUMN ordinal SET INCREMENT BY -1"], "schema_changed"),
    "unlogged": (["ALTER TABLE decisions SET UNLOGGED"], "schema_changed"),
    "a child table elsewhere": (["CREATE SCHEMA evt", "CREATE TABLE evt.more () INHERITS (public.users)"],
                                "schema_changed"),
    "a type shadowing text": (["CREATE DOMAIN public.text AS pg_catalog.text CHECK (VALUE <> 'x')"],
                              "foreign_schema"),
}


@pytest.mark.parametrize("attack", PG_ATTACKS, ids=list(PG_ATTACKS))
def test_postgresql_s_own_features_cannot_hide_a_change_or_turn_off_the_write_lock(qi, db, tmp_path, monkeypatch,
                                                                                     attack):
    if not stores.is_postgres(db):
        pytest.skip("PostgreSQL's search path, functions, operators, collations and event triggers")
    statements, code = PG_ATTACKS[attack]
    try:
        stores.sql(db, *[statement.replace("{db}", f'"{db.name}"') for statement in statements])
        result = _verify(qi, db)
        if code is None:  # the shadowed lock: qi still takes PostgreSQL's, and waits for another writer
            assert result.exit_code == 0, result.stderr
            import psycopg

            holder = psycopg.connect(str(db), autocommit=True)
            holder.execute("BEGIN")
            holder.execute(f"SELECT pg_catalog.pg_advisory_xact_lock({backend.APPLICATION_ID})")
            monkeypatch.setenv("QI_DB_TIMEOUT", "0.3")
            waited = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db, "-q")
            holder.execute("ROLLBACK")
            holder.close()
            assert waited.exit_code == 1 and "lock timeout" in waited.stderr, waited.stderr
            return
        assert result.exit_code == 1 and code in _codes(result), result.stderr
        before = stores.snapshot(db)
        refused = qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db, "-q")
        assert refused.exit_code == 1 and (code in refused.stderr) and "Traceback" not in refused.stderr
        assert stores.snapshot(db) == before
    finally:
        stores.sql(db, "DROP EVENT TRIGGER IF EXISTS spy")  # an event trigger is the database's, beyond this test


def test_a_schema_named_after_the_database_user_does_not_take_the_store_s_place(qi, db):
    if not stores.is_postgres(db):
        pytest.skip("PostgreSQL's \"$user\" schema")
    user = stores.rows(db, "SELECT current_user")[0][0]
    stores.sql(db, f'CREATE SCHEMA "{user}"')  # first on PostgreSQL's default search path
    listed = qi("runs", "list", "--db", db, "--format", "json")
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 3
    assert _verify(qi, db).exit_code == 0


def test_a_store_in_a_named_schema_and_coded_errors_for_what_postgresql_refuses(qi, database, tmp_path):
    url = f"{database}?options=-csearch_path%3D%22Audit%22"
    missing = qi("runs", "list", "--db", url)
    assert missing.exit_code == 1 and "no schema 'Audit'" in missing.stderr
    stores.sql(database, 'CREATE SCHEMA "Audit"')
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", url, "-q").exit_code == 0
    assert qi("runs", "verify", "--db", url).exit_code == 0
    assert stores.rows(database, "SELECT count(*) FROM \"Audit\".runs") == [(1,)]
    assert stores.snapshot(database) == {}  # public holds nothing
    stores.sql(database, f'ALTER DATABASE "{database.name}" SET statement_timeout = 1')
    for command in (("runs", "verify"), ("run", SAMPLE, "--out", tmp_path / "again", "-q")):
        timed_out = qi(*command, "--db", url)
        assert timed_out.exit_code == 1 and "store_unavailable" in timed_out.stderr, timed_out.stderr
        assert "Traceback" not in timed_out.stderr and "internal error" not in timed_out.stderr


@pytest.mark.parametrize("given", [
    "POSTGRESQL://qi:S3CRET-pw@127.0.0.1:1/qi",
    "postgresql://qi:S3C%RET-pw@127.0.0.1:1/qi",
    "postgresql://qi:S3/CR@ET-pw@127.0.0.1:1/qi",
    "postgresql://qi@[::1/qi?password=S3CRET-pw",
    "host=127.0.0.1 port=1 password=S3CRET-pw dbname=qi",
])
def test_no_way_of_writing_a_database_shows_its_password_or_makes_a_file(qi, tmp_path, monkeypatch, given):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pw").write_text("a long enough password\n")
    for command in (("runs", "list"), ("run", SAMPLE, "--out", tmp_path / "out", "-q"),
                    ("users", "add", "not a name!", "--role", "reviewer", "--password-file", tmp_path / "pw")):
        result = qi(*command, "--db", given)
        assert result.exit_code == 1 and any(code in result.stderr for code in (
            "store_unavailable", "unsupported_store", "invalid_account_name")), result.stderr
        assert "S3C" not in result.stdout + result.stderr and "Traceback" not in result.stderr, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["pw"]


def test_a_reader_without_the_temporary_right_gets_a_coded_refusal(qi, db):
    """qi checks a PostgreSQL store's schema against its own, built in a temporary schema: a role
    that may not make temporary tables (or a standby) is told so, never shown a traceback."""
    if not stores.is_postgres(db):
        pytest.skip("PostgreSQL's TEMPORARY right")
    role = f"reader_{db.name}"[:60]
    stores.sql(db, f'CREATE ROLE "{role}" LOGIN', f'REVOKE TEMPORARY ON DATABASE "{db.name}" FROM PUBLIC',
               f'GRANT USAGE ON SCHEMA public TO "{role}"', f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        as_reader = db.replace("://qi@", f"://{role}@")
        for command in (("runs", "list"), ("runs", "verify")):
            result = qi(*command, "--db", as_reader)
            assert result.exit_code == 1 and "cannot check the store's schema" in result.stderr, result.stderr
            assert "TEMPORARY right" in result.stderr and "Traceback" not in result.stderr
    finally:
        stores.sql(db, f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"',
                   f'REVOKE ALL ON SCHEMA public FROM "{role}"')
        stores.drop(db)
        stores.sql(stores.Database(stores.SERVER), f'DROP ROLE IF EXISTS "{role}"')


def test_a_write_that_waited_too_long_leaves_its_connection_usable(db, monkeypatch):
    """A writer whose wait for the lock times out ends the transaction it began: the same open
    store (a workspace thread's) records the next decision once the lock is free."""
    if not stores.is_postgres(db):
        pytest.skip("PostgreSQL's lock timeout inside a begun transaction")
    import psycopg

    from engine.store import accounts, review

    monkeypatch.setenv("QI_DB_TIMEOUT", "0.3")
    with store.Store(db) as audit:
        accounts.add(audit, "ann", "reviewer", "a long enough password")
        ann = accounts.authenticate(audit, "ann", "a long enough password")
        holder = psycopg.connect(str(db), autocommit=True)
        holder.execute("BEGIN")
        holder.execute(f"SELECT pg_catalog.pg_advisory_xact_lock({backend.APPLICATION_ID})")
        with pytest.raises(store.InputError) as waited:
            review.record_decision(audit, 1, "NW-001", "3.2", "agree", ann)
        assert waited.value.diagnostics[0].code == "store_unavailable"
        holder.execute("ROLLBACK")
        holder.close()
        assert not audit.connection.in_transaction
        assert review.record_decision(audit, 1, "NW-001", "3.2", "agree", ann).id == 1


def test_a_new_sqlite_store_has_pages_that_hold_several_case_rows(qi, tmp_path):
    """A case's row (its compressed line, a few KB) would leave most of a 4 KB page empty: a new
    store is made with 16 KB pages, and the rows of the example's 14 cases share pages."""
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db).exit_code == 0
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA page_size").fetchone()[0] == backend.PAGE_SIZE == 16384
        rows = connection.execute("SELECT count(*), sum(length(result)) FROM case_results").fetchone()
    assert rows[0] == 14 and rows[1] / rows[0] < backend.PAGE_SIZE / 2
