"""Hostile and broken input beyond single files (tests/fixtures/bad*/ hold those): every case
gets a clear diagnostic and exit code, no traceback, and nothing half-written."""

from __future__ import annotations

import shutil
import sqlite3

from tests.conftest import SAMPLE


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_unreadable_case_file(qi, sample_copy, tmp_path):
    (sample_copy / "cases" / "NW-099.yaml").mkdir()  # a folder where a file should be: unreadable
    result = qi("validate", sample_copy)
    assert result.exit_code == 1 and "NW-099.yaml:1:1: unreadable_file:" in result.stderr
    _no_traceback(result)


def test_path_traversal_in_references_and_sample_id(qi, sample_copy, tmp_path):
    manifest = sample_copy / "sample.yaml"
    manifest.write_text(manifest.read_text().replace("id: north-west-2016", "id: ../../../tmp/evil"))
    case = sample_copy / "cases" / "NW-001.yaml"
    case.write_text(case.read_text().replace("case: NW-001", "case: ../NW-001"))
    result = qi("run", sample_copy, "--db", tmp_path / "qi.db", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "sample.yaml:3:5: unsafe_reference" in result.stderr and "NW-001.yaml:3:7: unsafe_reference" in result.stderr
    assert not (tmp_path / "qi.db").exists() and not (tmp_path / "out").exists()  # nothing recorded or written
    assert not (tmp_path / "tmp" / "evil").exists()
    _no_traceback(result)


def test_out_that_is_a_file_is_a_usage_error(qi, tmp_path):
    target = tmp_path / "report"
    target.write_text("not a folder")
    result = qi("run", SAMPLE, "--out", target, "--db", tmp_path / "qi.db")
    assert result.exit_code == 2 and target.read_text() == "not a folder"
    _no_traceback(result)


def test_locked_store_is_a_clear_error_and_records_nothing(qi, tmp_path, monkeypatch):
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--out", tmp_path / "first", "--db", db).exit_code == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setenv("QI_DB_TIMEOUT", "0.2")
    out = tmp_path / "second"
    result = qi("run", SAMPLE, "--out", out, "--db", db)
    holder.execute("ROLLBACK")
    holder.close()
    assert result.exit_code == 1 and "store_unavailable" in result.stderr and "locked" in result.stderr
    assert not any(out.glob("report.*"))
    assert qi("runs", "verify", "--db", db).exit_code == 0
    _no_traceback(result)


def test_a_file_that_is_not_a_database(qi, tmp_path):
    db = tmp_path / "qi.db"
    db.write_bytes(b"this is not an SQLite database, just bytes" * 100)
    result = qi("runs", "list", "--db", db)
    assert result.exit_code == 1 and "store_unavailable" in result.stderr
    _no_traceback(result)


def test_sample_folder_with_stray_files_and_hidden_files(qi, sample_copy):
    (sample_copy / "cases" / "notes.txt").write_text("inspector's scratch notes")
    (sample_copy / "cases" / ".NW-001.yaml.swp").write_bytes(b"\x00\xff")
    result = qi("validate", sample_copy)
    assert result.exit_code == 0, result.stderr  # only *.yaml files are case files


def test_interrupted_run_leaves_nothing(qi, tmp_path, monkeypatch):
    from engine.report import report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    db = tmp_path / "qi.db"
    monkeypatch.setattr(report, "_stage", interrupted)
    out = tmp_path / "out"
    from click.testing import CliRunner

    import cli
    result = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(out), "--db", str(db)])
    assert result.exit_code != 0
    assert not any(out.glob("report.*")) and not any(out.glob(".*tmp"))
    from engine.store import store
    assert store.Store(db).runs() == []


def test_empty_sample_folder(qi, tmp_path):
    shutil.copy(SAMPLE / "sample.yaml", tmp_path / "sample.yaml")
    (tmp_path / "cases").mkdir()
    result = qi("run", tmp_path, "--db", tmp_path / "qi.db", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "no_cases" in result.stderr
