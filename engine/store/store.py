"""Store stage: the audit store, an SQLite database of every run, hash-chained against edits.

Each run is written in one transaction (an interrupted run leaves nothing behind), with the hash
of the run before it: ``hash = sha256(previous hash + canonical run record + every case's
result)``. ``verify`` recomputes the chain and names the first run whose stored bytes no longer
match. Concurrent writers queue on SQLite's write lock (``BEGIN IMMEDIATE`` with a busy timeout),
so two ``qi run`` processes on one store both succeed, in some order.

The schema is created and migrated by qi: each migration is a named step, applied once and
recorded in ``migrations``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from engine.base.canonical import canonical
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean

GENESIS = "0" * 64
#: How long a writer waits for another run to finish writing (QI_DB_TIMEOUT seconds overrides it).
BUSY_TIMEOUT_MS = 60_000

MIGRATIONS: list[tuple[str, str]] = [
    ("0001-runs", """
        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            sample_id TEXT NOT NULL,
            framework_id TEXT NOT NULL, framework_version TEXT NOT NULL, framework_sha256 TEXT NOT NULL,
            ruleset_id TEXT NOT NULL, ruleset_version TEXT NOT NULL, ruleset_sha256 TEXT NOT NULL,
            inputs TEXT NOT NULL,
            report TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX runs_run_id ON runs(run_id);
        CREATE TABLE case_results (
            seq INTEGER NOT NULL REFERENCES runs(seq),
            case_ref TEXT NOT NULL,
            result TEXT NOT NULL,
            PRIMARY KEY (seq, case_ref)
        );
        CREATE TABLE findings (
            seq INTEGER NOT NULL REFERENCES runs(seq),
            case_ref TEXT NOT NULL,
            criterion TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (seq, case_ref, criterion)
        );
    """),
    # reviewers' decisions and sign-offs (engine/store/review.py), hash-chained to the runs
    ("0002-review", """
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL REFERENCES runs(seq),
            case_ref TEXT NOT NULL,
            criterion TEXT NOT NULL,
            decision TEXT NOT NULL,
            finding TEXT,
            reason TEXT,
            reviewer TEXT NOT NULL,
            created_at TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX decisions_run ON decisions(seq, case_ref, criterion);
        CREATE TABLE signoffs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL REFERENCES runs(seq),
            reviewer TEXT NOT NULL,
            created_at TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
    """),
]


def default_path() -> Path:
    """``$QI_DB``, else ``$XDG_DATA_HOME/qi/qi.db``, else ``~/.local/share/qi/qi.db``."""
    if os.environ.get("QI_DB"):
        return Path(os.environ["QI_DB"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qi" / "qi.db"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    seq: int
    run_id: str
    created_at: str
    sample_id: str
    ruleset: str
    cases: int
    hash: str


class Store:
    """An open audit store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            timeout_ms = int(float(os.environ.get("QI_DB_TIMEOUT", BUSY_TIMEOUT_MS / 1000)) * 1000)
            self.connection = sqlite3.connect(self.path, timeout=timeout_ms / 1000, isolation_level=None)
            self.connection.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            self.connection.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as error:
            raise InputError([Diagnostic(str(self.path), 1, 1, "store_unavailable",
                                         f"cannot open the audit store: {error}",
                                         "check the path and its permissions, or choose another with --db")]) from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: taken up front, so concurrent writers queue rather than fail."""
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise self._unavailable(error) from None
        try:
            yield self.connection
        except sqlite3.Error as error:
            self.connection.execute("ROLLBACK")
            raise self._unavailable(error) from None
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        try:
            self.connection.execute("COMMIT")
        except sqlite3.Error as error:
            self.connection.execute("ROLLBACK")
            raise self._unavailable(error) from None

    def _unavailable(self, error: sqlite3.Error) -> InputError:
        return InputError([Diagnostic(str(self.path), 1, 1, "store_unavailable",
                                      f"the audit store cannot be written: {error}",
                                      "another qi run may hold it (wait and run again), or it is read-only or "
                                      "damaged; choose another with --db")])

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            applied = {row[0] for row in db.execute("SELECT name FROM migrations")}
            for name, script in MIGRATIONS:
                if name not in applied:
                    for statement in filter(str.strip, script.split(";")):
                        db.execute(statement)
                    db.execute("INSERT INTO migrations VALUES (?, datetime('now'))", (name,))

    # --- writing ---

    def record(self, report: dict, before_commit=None) -> RunSummary:
        """Record a run and its case results in one transaction, chained to the previous run.

        ``before_commit`` (writing the report files) runs inside the transaction: if it fails, the
        run is not recorded."""
        header = _header(report)
        cases = report["cases"]
        with self._write() as db:
            row = db.execute("SELECT hash FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
            previous = row[0] if row else GENESIS
            report_text = canonical(dict(report)).decode()
            cursor = db.execute(
                "INSERT INTO runs (run_id, created_at, tool_version, sample_id, framework_id, framework_version,"
                " framework_sha256, ruleset_id, ruleset_version, ruleset_sha256, inputs, report, previous_hash, hash)"
                " VALUES (:run_id, :created_at, :tool_version, :sample_id, :framework_id, :framework_version,"
                " :framework_sha256, :ruleset_id, :ruleset_version, :ruleset_sha256, :inputs, :report, :previous,"
                " '')", {**header, "report": report_text, "previous": previous})
            seq = cursor.lastrowid
            digest = _chain_start(previous, header, report_text)
            for reference, line in zip(report.spool.references, report.spool.lines()):  # streamed, never all held
                text = line.decode().rstrip("\n")
                _chain_add(digest, reference, text)
                db.execute("INSERT INTO case_results VALUES (?, ?, ?)", (seq, reference, text))
            db.execute("UPDATE runs SET hash = ? WHERE seq = ?", (digest.hexdigest(), seq))
            db.executemany("INSERT INTO findings VALUES (?, ?, ?, ?)",
                           [(seq, c["case"], criterion, f["value"]) for c in cases
                            for criterion, f in c["findings"].items()])
            if before_commit is not None:
                before_commit()
        return RunSummary(seq, header["run_id"], header["created_at"], header["sample_id"],
                          f"{header['ruleset_id']} {header['ruleset_version']}", len(cases), digest.hexdigest())

    # --- reading ---

    def runs(self) -> list[RunSummary]:
        rows = self.connection.execute(
            "SELECT r.seq, r.run_id, r.created_at, r.sample_id, r.ruleset_id || ' ' || r.ruleset_version,"
            " (SELECT count(*) FROM case_results c WHERE c.seq = r.seq), r.hash FROM runs r ORDER BY r.seq")
        return [RunSummary(*row) for row in rows]

    def find(self, run: str) -> int:
        """The seq of a run named by its run id (or a prefix of it, the latest such run) or its number."""
        rows = self.connection.execute("SELECT seq, run_id FROM runs ORDER BY seq DESC").fetchall()
        for seq, run_id in rows:
            if run == str(seq) or (len(run) >= 4 and run_id.startswith(run)):
                return seq
        known = ", ".join(f"{seq} ({run_id})" for seq, run_id in rows[:5]) or "none yet"
        raise InputError([Diagnostic(str(self.path), 1, 1, "unknown_run", f"no run {run!r} in the store",
                                     f"recent runs: {known}")])

    def report(self, seq: int) -> dict:
        """The stored report of a run (its full case results are in case_results)."""
        row = self.connection.execute("SELECT report FROM runs WHERE seq = ?", (seq,)).fetchone()
        return json.loads(row[0])

    def case_result(self, seq: int, case_ref: str) -> dict:
        row = self.connection.execute("SELECT result FROM case_results WHERE seq = ? AND case_ref = ?",
                                      (seq, case_ref)).fetchone()
        if row is None:
            refs = [r for (r,) in self.connection.execute("SELECT case_ref FROM case_results WHERE seq = ?", (seq,))]
            raise InputError([Diagnostic(str(self.path), 1, 1, "unknown_case", f"run {seq} has no case {case_ref!r}",
                                         did_you_mean(case_ref, refs, "cases"))])
        return json.loads(row[0])

    def verify(self) -> list[str]:
        """Recompute every run's hash and the chain; returns the problems, first mismatch first."""
        problems = []
        previous = GENESIS
        for row in self.connection.execute(
                "SELECT seq, run_id, created_at, tool_version, sample_id, framework_id, framework_version,"
                " framework_sha256, ruleset_id, ruleset_version, ruleset_sha256, inputs, report, previous_hash,"
                " hash FROM runs ORDER BY seq"):
            seq, run_id = row[0], row[1]
            header = dict(zip(("run_id", "created_at", "tool_version", "sample_id", "framework_id",
                               "framework_version", "framework_sha256", "ruleset_id", "ruleset_version",
                               "ruleset_sha256", "inputs"), row[1:12]))
            report_text, stored_previous, stored_hash = row[12], row[13], row[14]
            digest = _chain_start(stored_previous, header, report_text)
            for case_ref, text in self.connection.execute(
                    "SELECT case_ref, result FROM case_results WHERE seq = ? ORDER BY rowid", (seq,)):
                _chain_add(digest, case_ref, text)
            if stored_previous != previous:
                problems.append(f"run {seq} ({run_id}): its previous-run hash does not match run {seq - 1}")
            if digest.hexdigest() != stored_hash:
                problems.append(f"run {seq} ({run_id}): its stored content no longer matches its hash")
            previous = stored_hash
        return problems


def _header(report: dict) -> dict:
    return {
        "run_id": report["run"]["id"], "created_at": report["run"]["timestamp"],
        "tool_version": report["qi"]["version"], "sample_id": report["sample"]["id"],
        "framework_id": report["framework"]["id"], "framework_version": report["framework"]["version"],
        "framework_sha256": report["framework"]["sha256"], "ruleset_id": report["ruleset"]["id"],
        "ruleset_version": report["ruleset"]["version"], "ruleset_sha256": report["ruleset"]["sha256"],
        "inputs": canonical(report["inputs"]).decode(),
    }


def _chain_start(previous: str, header: dict, report_text: str):
    """The run's hash, begun: the previous run's hash, the run record and the report."""
    digest = hashlib.sha256()
    digest.update(previous.encode())
    digest.update(canonical(header))
    digest.update(report_text.encode())
    return digest


def _chain_add(digest, case_ref: str, text: str) -> None:
    """Each case result, in the order stored."""
    digest.update(case_ref.encode() + b"\0" + text.encode() + b"\0")
