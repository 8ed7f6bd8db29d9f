"""Store stage: the audit store, a database of every run, hash-chained against edits: an SQLite
file (the default), or a schema of a PostgreSQL database for a team (engine/store/backend.py keeps
what differs; the schema, the SQL and everything below are the same on both).

Each run is one row of ``runs`` with its report, and one row of ``case_results`` per case with its
full result (traces included), both zlib-compressed; ``findings`` lists each case's finding per
criterion for queries. A run's hash covers everything stored about it and the run before it::

    hash = sha256(previous hash, canonical run record (seq, ids, hashes, inputs, chain mode),
                  the report, every case reference and result in stored order)

With a key (``--key-file``, ``$QI_STORE_KEY_FILE`` or ``$QI_STORE_KEY``; never stored in the
database) the chain is HMAC-SHA256 instead, so rewriting runs and recomputing the chain needs the
key. A store is keyed or not from its first run. :func:`verify` recomputes every hash, derives every
case's findings from its hashed result and compares them with ``findings``, looks for gaps in the
run numbers, rows without a run, and (given the head ``LINK:HASH`` printed by ``qi runs head`` or
recorded in a report) runs lost or rewritten after it.

**One chain.** Runs, reviewers' decisions and sign-offs (engine/store/review.py) are links of one
chain: each record has a ``link`` number (1, 2, 3, … in the order recorded, whatever its kind) and
``previous_hash``, the hash of the link before it; its hash covers both. Under a key, every link is
an HMAC, so nobody without the key can add, reorder or rewrite a decision any more than a run. The
head (``qi runs head``, ``store.head`` in report.json) is the newest link, ``LINK:HASH``. Records
written before links existed (migration ``0003-one-chain``) keep the chains they were made with
(runs to runs, review records to review records), and are checked as such.

Only the schema qi creates is trusted: :func:`verify` reports any other trigger, view, table or
index, and every write refuses a store holding one before writing anything; each write reads back
what it stored and is rolled back if that differs from what was written.

A store is marked as qi's (SQLite's ``application_id``; a ``qi_store`` table on PostgreSQL).
Read-only commands open it read-only and refuse a missing file (or empty database) or one that is
not a qi store without touching it; ``qi run`` creates a new store atomically (a file built beside
the target, then linked into place; tables made in one transaction). Each run is written in one
transaction; concurrent writers queue on one write lock (SQLite's ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock, with a timeout), so two ``qi run`` processes on one store both succeed,
in some order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from engine.base.canonical import canonical
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.judge import trace
from engine.store.backend import DatabaseError, looks_like_url, open_backend, redact

GENESIS = "0" * 64
#: How long a writer waits for another run to finish writing (QI_DB_TIMEOUT seconds overrides it).
BUSY_TIMEOUT_MS = 60_000
#: zlib level for stored results and reports. Measured on a generated 1,000-case sample (case
#: lines of 19 KB): level 3 gives 3.0 KB a case in 0.12 s per 1,000 cases, 6 gives 2.6 KB in
#: 0.22 s, 9 gives 2.6 KB in 0.26 s (and a report a quarter smaller than at 3, in twice the time).
COMPRESSION_LEVEL = 6
#: The keyed chain's key: a file named by --key-file or $QI_STORE_KEY_FILE, else $QI_STORE_KEY itself.
KEY_FILE_VARIABLE, KEY_VARIABLE = "QI_STORE_KEY_FILE", "QI_STORE_KEY"
MIN_KEY_BYTES = 16
PLAIN, KEYED = "sha256", "hmac-sha256"

MIGRATIONS: list[tuple[str, str]] = [
    ("0001-audit-store", """
        CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL UNIQUE,
            content_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            sample_id TEXT NOT NULL,
            framework_id TEXT NOT NULL, framework_version TEXT NOT NULL, framework_sha256 TEXT NOT NULL,
            ruleset_id TEXT NOT NULL, ruleset_version TEXT NOT NULL, ruleset_sha256 TEXT NOT NULL,
            inputs TEXT NOT NULL,
            chain TEXT NOT NULL,
            key_id TEXT NOT NULL,
            report BLOB NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TABLE case_results (
            seq INTEGER NOT NULL REFERENCES runs(seq),
            case_ref TEXT NOT NULL,
            result BLOB NOT NULL,
            PRIMARY KEY (seq, case_ref)
        );
        CREATE TABLE findings (
            seq INTEGER NOT NULL REFERENCES runs(seq),
            case_ref TEXT NOT NULL,
            criterion TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (seq, case_ref, criterion)
        ) WITHOUT ROWID;
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
    # runs, decisions and sign-offs as links of one chain; a sign-off names the final report it signs
    ("0003-one-chain", """
        ALTER TABLE runs ADD COLUMN link INTEGER;
        ALTER TABLE decisions ADD COLUMN link INTEGER;
        ALTER TABLE signoffs ADD COLUMN link INTEGER;
        ALTER TABLE signoffs ADD COLUMN report_sha256 TEXT;
    """),
    # accounts (engine/store/accounts.py); each decision and sign-off names the role its maker held
    # and how they were known (an account, or the operating-system user of a store without accounts)
    ("0004-accounts", """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        ALTER TABLE decisions ADD COLUMN role TEXT;
        ALTER TABLE decisions ADD COLUMN identity TEXT;
        ALTER TABLE signoffs ADD COLUMN role TEXT;
        ALTER TABLE signoffs ADD COLUMN identity TEXT;
    """),
]
#: What every stored report holds at its top (checked as it is read: a report qi did not write
#: is a damaged store, never a crash further on).
REPORT_SHAPE = {"run": dict, "qi": dict, "sample": dict, "framework": dict, "ruleset": dict, "inputs": list,
                "standards": list, "aggregates": dict, "sample_judgement": dict, "organisations": list,
                "cases": list, "consistency": dict, "traces": dict}
#: The largest row number either database stores (a record numbered so could have no successor).
MAX_ROW_ID = 2 ** 63 - 1
#: The tables whose rows are links of the chain, with the column naming each row.
LINKED = (("runs", "seq"), ("decisions", "id"), ("signoffs", "id"))
ONE_CHAIN = "0003-one-chain"
ACCOUNTS = "0004-accounts"

#: The columns of a run that its hash covers, in order (``report`` and the case results follow).
HASHED = ("seq", "run_id", "content_sha256", "created_at", "tool_version", "sample_id", "framework_id",
          "framework_version", "framework_sha256", "ruleset_id", "ruleset_version", "ruleset_sha256", "inputs",
          "chain", "key_id")


def default_path() -> Path | str:
    """``$QI_DB`` (a file, or a ``postgresql://`` URL), else ``$XDG_DATA_HOME/qi/qi.db``, else ``~/.local/share/qi/qi.db``."""
    if os.environ.get("QI_DB"):
        return os.environ["QI_DB"] if looks_like_url(os.environ["QI_DB"]) else Path(os.environ["QI_DB"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qi" / "qi.db"


def shown(location: str | os.PathLike[str]) -> str:
    """A store's location as messages name it (a URL without its password)."""
    return redact(os.fspath(location))


def load_key(key_file: str | os.PathLike[str] | None = None) -> bytes | None:
    """The chain key: from ``key_file``, else the file ``$QI_STORE_KEY_FILE`` names, else
    ``$QI_STORE_KEY``; ``None`` when none is given (the chain is then plain sha256)."""
    path = key_file or os.environ.get(KEY_FILE_VARIABLE)
    where = str(path) if path else f"${KEY_VARIABLE}"
    if path:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as error:
            raise _key_error(where, f"cannot read the store key: {error.strerror or error}") from None
    elif os.environ.get(KEY_VARIABLE):
        key = os.environ[KEY_VARIABLE].strip().encode()
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise _key_error(where, f"the store key is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


def _key_error(where: str, message: str) -> InputError:
    return InputError([Diagnostic(where, 1, 1, "store_key", message,
                                  "keep a long random key in a file outside the store, e.g. "
                                  "head -c 32 /dev/urandom | base64 > ~/.config/qi/store.key")])


def key_id(key: bytes | None) -> str:
    """A fingerprint of the key, kept with each run so a wrong key is noticed before it is used."""
    return hmac.new(key, b"qi audit store key", hashlib.sha256).hexdigest()[:16] if key else ""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    seq: int
    run_id: str
    content_sha256: str
    created_at: str
    sample_id: str
    ruleset: str
    cases: int
    hash: str
    link: int | None = None

    @property
    def head(self) -> str:
        """``LINK:HASH``: the store's head once this run is recorded (``SEQ:HASH`` for a run made
        before links existed, whose link number is its run number)."""
        return f"{self.link if self.link is not None else self.seq}:{self.hash}"


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong: the run it concerns (``None`` for the store as a whole)."""

    seq: int | None
    diagnostic: Diagnostic


@dataclasses.dataclass(frozen=True)
class Link:
    """One record's place in the chain: its table, its row, its link number and hashes."""

    table: str
    row: int
    seq: int
    link: int | None
    previous_hash: str
    hash: str

    @property
    def name(self) -> str:
        kind = {"runs": "run", "decisions": "decision", "signoffs": "sign-off"}[self.table]
        return f"{kind} {self.row}" + (f" (run {self.seq})" if self.table != "runs" else "")


class Store:
    """An open audit store: :meth:`open` to read, :meth:`open_for_writing` to record runs. Use as a
    context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], connection=None, backend=None) -> None:
        """``Store(path)`` is ``Store.open(path, writable=True)``: an existing store, to read and write.
        ``path`` is an SQLite file, or a ``postgresql://`` URL."""
        self.backend = backend or open_backend(path)
        #: The SQLite file (None for a PostgreSQL store); ``where`` names the store in messages
        #: (a URL without its password).
        self.path: Path | None = self.backend.path
        self.where: str = self.backend.where
        #: The schema steps applied (read when the store is opened).
        self.applied: tuple[str, ...] = ()
        #: Each run's rule table, read once (a recorded run never changes; verify says if it did).
        self._tables: dict[int, dict | None] = {}
        if connection is None:
            opened = Store.open(path, writable=True)
            connection, self.applied = opened.connection, opened.applied
        self.connection = connection

    @classmethod
    def open(cls, path: str | os.PathLike[str], writable: bool = False) -> Store:
        """Open an existing store, read-only unless ``writable`` (reviewers' decisions). A missing
        file or empty database, or one that is not a qi store, is an InputError, and it is left
        exactly as it was."""
        backend = open_backend(path)
        if not backend.exists():
            raise cls._missing(backend)
        connection = backend.connect(read_only=True, timeout=_timeout())
        store = cls(path, connection, backend)
        try:
            if backend.kind == "postgresql" and backend.is_empty(connection):
                raise cls._missing(backend)
            store._check_identity()
        except DatabaseError as error:
            connection.close()
            raise store._unavailable(error, "read") from None
        except BaseException:
            connection.close()
            raise
        if writable:
            connection.close()
            applied, store = store.applied, cls(path, backend.connect(read_only=False, timeout=_timeout()), backend)
            store.applied = applied
            try:
                store._migrate()
            except BaseException:
                store.close()
                raise
        return store

    @staticmethod
    def _missing(backend) -> InputError:
        return InputError([Diagnostic(backend.where, 1, 1, "store_missing",
                                      "there is no audit store here" + (" (the database is empty)"
                                                                        if backend.kind == "postgresql" else ""),
                                      "check the path (--db or $QI_DB); qi run creates a store")])

    @classmethod
    def open_for_writing(cls, path: str | os.PathLike[str]) -> Store:
        """Open a store to record runs, creating it (owner-only, atomically; on PostgreSQL in an
        empty database the administrator made) if there is none. An existing file or database that
        is not a qi store is refused untouched."""
        backend = open_backend(path)
        if not backend.might_exist():
            backend.create([_MIGRATIONS_TABLE])
        elif backend.kind == "postgresql":
            connection = backend.connect(read_only=True, timeout=_timeout())
            try:
                empty = backend.is_empty(connection)
            except DatabaseError as error:
                raise InputError([Diagnostic(backend.where, 1, 1, "store_unavailable", "the audit store cannot be "
                                             f"read: {backend.described(error)}", "check the account's rights")]) from None
            finally:
                connection.close()
            if empty:
                backend.create([_MIGRATIONS_TABLE])
        return cls.open(path, writable=True)  # identity checked read-only before anything is written

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    # --- the file and its schema ---

    def _check_identity(self) -> None:
        try:
            why = self.backend.not_ours(self.connection)
            if why:
                raise self._not_a_store(why)
            applied = [row[0] for row in self.connection.execute("SELECT name FROM migrations ORDER BY name")]
        except DatabaseError as error:
            raise self._unavailable(error, "read") from None
        known = [name for name, _ in MIGRATIONS]
        if applied != known[:len(applied)]:
            raise self._not_a_store(f"its schema ({', '.join(applied) or 'none'}) is not one this qi knows")
        self.applied = tuple(applied)
        missing = [f"{kind} {name}" for kind, name, differs in self._schema_differences() if differs != "extra"]
        if missing:
            raise InputError([Diagnostic(self.where, 1, 1, "schema_changed",
                                         f"the store's schema was changed: {', '.join(missing[:5])}",
                                         "qi runs verify cannot check a store with parts of its schema missing "
                                         "or altered; restore the store from a backup")])

    def _schema_differences(self) -> list[tuple[str, str, str]]:
        """Schema objects that differ from what qi's applied migrations create: ``(type, name,
        'missing' | 'altered' | 'extra')``, sorted."""
        actual = self.backend.objects(self.connection)
        expected = _expected_schema(self.backend, self.applied)
        found = [(kind, name, "missing") for (kind, name) in expected if (kind, name) not in actual]
        found += [(kind, name, "altered") for (kind, name), sql in expected.items()
                  if (kind, name) in actual and actual[(kind, name)] != sql]
        found += [(kind, name, "extra") for (kind, name) in actual if (kind, name) not in expected]
        return sorted(found)

    def foreign_objects(self) -> list[str]:
        """Schema objects qi did not create (triggers, views, tables, indexes), as ``type name``."""
        return [f"{kind} {name}" for kind, name, differs in self._schema_differences() if differs == "extra"]

    def _refuse_foreign(self) -> None:
        foreign = self.foreign_objects()
        if foreign:
            raise InputError([Diagnostic(self.where, 1, 1, "foreign_schema",
                                         f"the store holds schema objects qi did not create: {', '.join(foreign[:5])}; "
                                         "nothing was written",
                                         "a trigger or view can change what is stored; qi runs verify lists them; "
                                         "restore the store from a backup")])

    @property
    def linked(self) -> bool:
        """Whether the store has links (migration 0003): a store opened read-only may predate them."""
        return ONE_CHAIN in self.applied

    def _not_a_store(self, why: str) -> InputError:
        return InputError([Diagnostic(self.where, 1, 1, "not_a_store", f"not a qi audit store: {why}",
                                      "it was left unchanged; give the path of a qi store with --db, or a "
                                      "new path for qi run to create one")])

    def _unavailable(self, error: BaseException, doing: str = "written") -> InputError:
        return InputError([Diagnostic(self.where, 1, 1, "store_unavailable",
                                      f"the audit store cannot be {doing}: {self.backend.described(error)}",
                                      "another qi run or a reader may hold it (wait and run again), or it is "
                                      "read-only or damaged; choose another with --db")])

    def _damaged(self, what: str, error: BaseException) -> InputError:
        return InputError([Diagnostic(self.where, 1, 1, "store_damaged", f"{what} is damaged: {error}",
                                      "qi runs verify lists what changed; restore the store from a backup")])

    @contextlib.contextmanager
    def _write(self) -> Iterator:
        """One write transaction: taken up front, so concurrent writers queue rather than fail."""
        try:
            self.backend.begin(self.connection)
        except DatabaseError as error:  # e.g. the lock's wait timed out: the transaction begun is ended
            self._rollback()
            raise self._unavailable(error) from None
        try:
            self._refresh_applied()  # another process may have migrated the store since it was opened
            self._refuse_foreign()  # inside the transaction: nothing can be added before the write
            yield self.connection
            self._commit()
        except DatabaseError as error:
            self._rollback()
            raise self._unavailable(error) from None
        except BaseException:
            self._rollback()
            raise

    def _refresh_applied(self) -> None:
        """Read the applied schema steps again, inside a write transaction: two first runs on a new
        store both find it unmigrated, and the second to get the lock must see what the first made
        as qi's own schema, not as foreign objects."""
        known = [name for name, _ in MIGRATIONS]
        try:
            found = [row[0] for row in self.connection.execute("SELECT name FROM migrations ORDER BY name")]
        except DatabaseError:
            return  # no schema yet
        if found == known[:len(found)]:
            self.applied = tuple(found)

    def _commit(self) -> None:
        self.connection.execute("COMMIT")

    def _rollback(self) -> None:
        with contextlib.suppress(*DatabaseError):
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")

    def _migrate(self) -> None:
        """Apply the schema steps not yet applied (a write transaction only when there are some)."""
        known = [name for name, _ in MIGRATIONS]
        try:
            applied = [row[0] for row in self.connection.execute("SELECT name FROM migrations ORDER BY name")]
        except DatabaseError as error:
            raise self._unavailable(error, "read") from None
        if applied == known:
            return
        with self._write() as db:
            self.backend.making_schema(db)
            applied = {row[0] for row in db.execute("SELECT name FROM migrations")}
            for name, script in MIGRATIONS:
                if name not in applied:
                    for statement in _statements(self.backend, name, script):
                        db.execute(statement)
                    db.execute("INSERT INTO migrations VALUES (?, ?)", (name, _now()))
                    self.applied = (*self.applied, name)

    # --- writing ---

    def record(self, report: dict, results: Iterable[tuple[str, bytes]], key: bytes | None = None,
               before_commit: Callable[[RunSummary], None] | None = None,
               check: Callable[[], None] | None = None) -> RunSummary:
        """Record a run and its case results (``(reference, encoded result line)`` pairs, streamed)
        in one transaction, chained to the previous run.

        ``before_commit`` (staging the report that names the new head) runs inside the transaction:
        if it fails, or COMMIT does, the run is not recorded."""
        chain = KEYED if key else PLAIN
        with self._write() as db:
            self.check_key(key)
            if check is not None:  # the chain this run is appended to checks out (engine.store.review)
                check()
            seq = self.next_id("runs")
            link, previous = self.next_link()
            header = {**_header(report), "seq": seq, "chain": chain, "key_id": key_id(key), "link": link}
            report_text = canonical(dict(report))
            db.execute(f"INSERT INTO runs ({', '.join(HASHED)}, link, report, previous_hash, hash) VALUES "
                       f"({', '.join('?' * (len(HASHED) + 3))}, '')",
                       (*(header[c] for c in HASHED), link, zlib.compress(report_text, COMPRESSION_LEVEL), previous))
            self.backend.note_numbered(db, "runs", seq)
            digest = _chain_start(key, previous, header, report_text)
            count = 0
            for reference, line in results:  # streamed, never all held
                text = line.rstrip(b"\n")
                _chain_add(digest, reference, text)
                db.execute("INSERT INTO case_results (seq, case_ref, result) VALUES (?, ?, ?)",
                           (seq, reference, zlib.compress(text, COMPRESSION_LEVEL)))
                count += 1
            db.execute("UPDATE runs SET hash = ? WHERE seq = ?", (digest.hexdigest(), seq))
            rows = [(seq, c["case"], criterion, f["value"]) for c in report["cases"]
                    for criterion, f in c["findings"].items()]
            db.executemany("INSERT INTO findings (seq, case_ref, criterion, value) VALUES (?, ?, ?, ?)", rows)
            stored = db.execute("SELECT hash, link, previous_hash, (SELECT count(*) FROM case_results WHERE seq = ?),"
                                " (SELECT count(*) FROM findings WHERE seq = ?) FROM runs WHERE seq = ?",
                                (seq, seq, seq)).fetchone()
            if stored != (digest.hexdigest(), link, previous, count, len(rows)):
                raise self.not_as_written(f"run {seq}")
            summary = RunSummary(seq, header["run_id"], header["content_sha256"], header["created_at"],
                                 header["sample_id"], f"{header['ruleset_id']} {header['ruleset_version']}", count,
                                 digest.hexdigest(), link)
            if before_commit is not None:
                before_commit(summary)
        return summary

    def check_key(self, key: bytes | None) -> None:
        """Refuse a write whose key does not fit the store: a keyed store needs its key, and a
        store that is not keyed takes none (a store is keyed or not from its first run)."""
        last = self.connection.execute("SELECT seq, chain, key_id FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
        if last is not None:
            self._check_chain_mode(*last, key)

    def keyed(self) -> bool:
        """Whether the store's chain is keyed (from its first run)."""
        first = self.connection.execute("SELECT chain FROM runs ORDER BY seq LIMIT 1").fetchone()
        return first is not None and first[0] == KEYED

    def next_id(self, table: str) -> int:
        """The id a new row of ``table`` gets: one past any ever issued, so a deleted newest row is
        never silently reused (the backend's numbering remembers it)."""
        column = dict(LINKED)[table]
        last = self.connection.execute(f"SELECT max({column}) FROM {table}").fetchone()[0] or 0
        numbered = self.backend.numbered(self.connection, table) or 0
        if not (isinstance(last, int) and isinstance(numbered, int)) or max(last, numbered) >= MAX_ROW_ID:
            raise self._damaged(f"the numbering of {table}", ValueError(f"{last!r} / {numbered!r} is not a number qi "
                                                                        "gives (or the last one it can)"))
        return max(last, numbered) + 1

    def links(self) -> list[Link]:
        """Every record of the chain, linked records in link order after the records made before
        links existed (``link`` None)."""
        found = []
        for table, column in LINKED:
            seq = "seq" if table != "runs" else column
            link = "link" if self.linked else "NULL"
            for row in self.connection.execute(f"SELECT {column}, {seq}, {link}, previous_hash, hash FROM {table}"):
                if not (all(isinstance(v, int) for v in row[:2]) and isinstance(row[2], (int, type(None)))
                        and all(isinstance(v, str) for v in row[3:])):
                    raise self._damaged(f"the chain ({table} {row[0]!r})",
                                        ValueError("its number, link or hashes are not of their type"))
                found.append(Link(table, *row))
        return sorted(found, key=lambda r: (r.link is not None, r.link or 0, r.table != "runs", r.row))

    def next_link(self) -> tuple[int, str]:
        """The link number and previous hash of a record about to be written: after the newest
        link, or (in a store older than links) after its last run."""
        every = self.links()
        linked = [r for r in every if r.link is not None]
        if linked:
            if linked[-1].link >= MAX_ROW_ID:
                raise self._damaged("the chain", ValueError(f"link {linked[-1].link} is the last number qi can give"))
            return linked[-1].link + 1, linked[-1].hash
        runs = [r for r in every if r.table == "runs"]
        return first_link(runs), runs[-1].hash if runs else GENESIS

    def not_as_written(self, what: str) -> InputError:
        """A write that did not read back as written (something in the database changed it)."""
        return InputError([Diagnostic(self.where, 1, 1, "store_tampered",
                                      f"{what} did not read back as it was written; nothing was recorded",
                                      "something in the database changes what is stored; run qi runs verify "
                                      "and restore the store from a backup")])

    def _check_chain_mode(self, seq: int, chain: str, stored_key_id: str, key: bytes | None) -> None:
        if chain == KEYED and not key:
            problem = "this store's chain is keyed, and no key was given"
            hint = f"give the key with --key-file or ${KEY_FILE_VARIABLE}"
        elif chain != KEYED and key:
            problem = "this store's chain is not keyed; a store is keyed from its first run"
            hint = f"record keyed runs in a new store (--db), or unset ${KEY_FILE_VARIABLE} / ${KEY_VARIABLE}"
        elif key and stored_key_id != key_id(key):
            problem = f"the key given is not the key run {seq} was recorded with"
            hint = "give the store's key"
        else:
            return
        raise InputError([Diagnostic(self.where, 1, 1, "store_key", problem, hint)])

    # --- reading ---

    def runs(self) -> list[RunSummary]:
        try:
            rows = self.connection.execute(
                "SELECT r.seq, r.run_id, r.content_sha256, r.created_at, r.sample_id,"
                " r.ruleset_id || ' ' || r.ruleset_version,"
                " (SELECT count(*) FROM case_results c WHERE c.seq = r.seq), r.hash,"
                f" {'r.link' if self.linked else 'NULL'} FROM runs r ORDER BY r.seq"
            ).fetchall()
        except DatabaseError as error:
            raise self._unavailable(error, "read") from None
        return [RunSummary(*row) for row in rows]

    def head(self) -> str:
        """``LINK:HASH`` of the newest record of any kind — run, decision or sign-off — (``0:000…``
        for an empty store): keep it outside the store, and ``qi runs verify --expect-head`` tells
        whether anything up to it was lost or rewritten since."""
        try:
            every = self.links()
        except DatabaseError as error:
            raise self._unavailable(error, "read") from None
        linked = [r for r in every if r.link is not None]
        if linked:
            return f"{linked[-1].link}:{linked[-1].hash}"
        runs = [r for r in every if r.table == "runs"]
        return f"{runs[-1].row}:{runs[-1].hash}" if runs else f"0:{GENESIS}"

    def find(self, run: str) -> int:
        """The seq of a run named by its number, its run id, or a prefix of its run id (4 or more
        characters, matching one run only)."""
        rows = [(r.seq, r.run_id) for r in reversed(self.runs())]
        for seq, run_id in rows:
            if run == str(seq) or run == run_id:
                return seq
        matches = [(seq, run_id) for seq, run_id in rows if len(run) >= 4 and run_id.startswith(run)]
        if len(matches) == 1:
            return matches[0][0]
        if matches:
            raise InputError([Diagnostic(self.where, 1, 1, "ambiguous_run",
                                         f"{run!r} is the start of {len(matches)} run ids",
                                         "give more of the id: " + ", ".join(i for _, i in matches[:5]))])
        known = ", ".join(f"{seq} ({run_id})" for seq, run_id in rows[:5]) or "none yet"
        raise InputError([Diagnostic(self.where, 1, 1, "unknown_run", f"no run {run!r} in the store",
                                     f"recent runs: {known}")])

    def report(self, seq: int) -> dict:
        """The stored report of a run, with ``store`` (its seq, hash and the head it made) as
        report.json has it. Its full case results are in case_results."""
        row = self._fetch(f"SELECT report, hash, {'link' if self.linked else 'NULL'} FROM runs WHERE seq = ?", (seq,))
        report = self._decode(row[0], f"the report of run {seq}")
        wrong = [key for key, kind in REPORT_SHAPE.items() if not isinstance(report.get(key), kind)]
        if wrong:
            raise self._damaged(f"the report of run {seq}", ValueError(f"it has no {', '.join(wrong[:3])} as qi writes it"))
        report["store"] = store_field(seq, row[1], row[2])
        return report

    def case_result(self, seq: int, case_ref: str) -> dict:
        """A case's full result in run ``seq``: its stored line (:meth:`case_line`) expanded with the
        run's rule table (report.json's ``traces.rules``)."""
        line = self.case_line(seq, case_ref)
        if not trace.is_line(line):
            return line  # stored whole, by a qi from before lines were kept
        if seq not in self._tables:
            if len(self._tables) >= 4:  # a workspace thread's store lives long: keep the latest few
                self._tables.pop(next(iter(self._tables)))
            self._tables[seq] = self.report(seq)["traces"].get("rules")
        try:
            return trace.expand(line, self._tables[seq] or {})
        except ValueError as error:
            raise self._damaged(f"the result of case {case_ref!r} in run {seq}", error) from None

    def case_line(self, seq: int, case_ref: str) -> dict:
        """A case's result in run ``seq`` as stored: its line of trace.jsonl."""
        row = self._fetch("SELECT CAST(result AS BLOB) FROM case_results WHERE seq = ? AND case_ref = ?", (seq, case_ref))
        if row is None:
            refs = [r for (r,) in self.connection.execute("SELECT case_ref FROM case_results WHERE seq = ?", (seq,))]
            raise InputError([Diagnostic(self.where, 1, 1, "unknown_case", f"run {seq} has no case {case_ref!r}",
                                         did_you_mean(case_ref, refs, "cases"))])
        found = self._decode(row[0], f"the result of case {case_ref!r} in run {seq}")
        if not isinstance(found.get("findings"), dict) or not isinstance(found.get("case"), str):
            raise self._damaged(f"the result of case {case_ref!r} in run {seq}", ValueError("it has no findings"))
        return found

    def _fetch(self, query: str, parameters: tuple) -> tuple | None:
        try:
            return self.connection.execute(query, parameters).fetchone()
        except DatabaseError as error:
            raise self._unavailable(error, "read") from None

    def _decode(self, blob: object, what: str) -> dict:
        try:
            data = json.loads(_inflate(blob))
        except (zlib.error, TypeError, ValueError) as error:
            raise self._damaged(what, error) from None
        if not isinstance(data, dict):
            raise self._damaged(what, ValueError("not a JSON object"))
        return data

    # --- verifying ---

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Read the store as of one moment (on PostgreSQL, one repeatable-read transaction), for
        checks made of many statements: ``with store.snapshot(): store.verify(); review.verify(store)``."""
        begun = self.backend.snapshot_begin(self.connection)
        try:
            yield self
        finally:
            if begun:
                self._rollback()

    def verify(self, expect_head: str | None = None, key: bytes | None = None) -> list[Problem]:
        """Everything wrong with the store, first run first: each run's hash, the one chain of runs,
        decisions and sign-offs, findings that do not match the hashed results, missing records and
        rows without a run, schema objects qi did not create, and — given the head ``LINK:HASH``
        recorded earlier — records lost or rewritten since. (The contents of decisions and sign-offs
        are checked by engine.store.review.verify.)"""
        problems: list[Problem] = []

        def problem(seq: int | None, code: str, message: str, hint: str = "") -> None:
            where = f"run {seq}: " if seq is not None else ""
            problems.append(Problem(seq, Diagnostic(self.where, 1, 1, code, where + message, hint)))

        for step in (lambda: self._verify_schema(problem), lambda: self._verify_runs(problem, key),
                     lambda: self._verify_links(problem), lambda: self._verify_rest(problem, expect_head)):
            try:
                step()
            except DatabaseError as error:
                problem(None, "store_unavailable", f"the audit store cannot be read: {self.backend.described(error)}")
            except InputError as error:  # a record too damaged to check further
                problems.extend(Problem(None, d) for d in error.diagnostics)
        return problems

    def chain_problems(self) -> list[Problem]:
        """The cheap part of :meth:`verify`, run before every write: schema objects qi did not
        create, and the chain's links (numbering, order, each pointing at the one before). Run
        contents are not rehashed here (``qi runs verify`` does that)."""
        problems: list[Problem] = []

        def problem(seq: int | None, code: str, message: str, hint: str = "") -> None:
            where = f"run {seq}: " if seq is not None else ""
            problems.append(Problem(seq, Diagnostic(self.where, 1, 1, code, where + message, hint)))

        try:
            self._verify_schema(problem)
            self._verify_links(problem)
        except DatabaseError as error:
            problem(None, "store_unavailable", f"the audit store cannot be read: {self.backend.described(error)}")
        except InputError as error:
            problems.extend(Problem(None, d) for d in error.diagnostics)
        return problems

    def _verify_schema(self, problem) -> None:
        for kind, name, differs in self._schema_differences():
            if differs == "extra":
                problem(None, "foreign_schema", f"the store holds a {kind} qi did not create: {name}",
                        "a trigger or view can change what is stored or read; remove it only after finding "
                        "out who added it, or restore the store from a backup")
            else:
                problem(None, "schema_changed", f"the {kind} {name} is {differs}")

    def _verify_runs(self, problem, key: bytes | None) -> None:
        previous, expected_seq = GENESIS, 1
        columns = ", ".join(HASHED)
        link = "link" if self.linked else "NULL"
        for row in self.connection.execute(
                f"SELECT {columns}, {link}, report, previous_hash, hash FROM runs ORDER BY seq").fetchall():
            header = {**dict(zip(HASHED, row)), "link": row[len(HASHED)]}
            seq, (report_blob, stored_previous, stored_hash) = header["seq"], row[len(HASHED) + 1:]
            if seq != expected_seq:
                problem(seq, "run_missing", f"the runs numbered {expected_seq} to {seq - 1} are missing",
                        "runs were deleted or renumbered")
            if header["link"] is None and stored_previous != previous:  # linked runs: see _verify_links
                problem(seq, "chain_broken", "its previous-run hash does not match the run before it")
            checkable = header["chain"] != KEYED or key is not None
            if not checkable:
                problem(seq, "key_required", "it is keyed: its hash can be checked only with the key",
                        f"give the key with --key-file or ${KEY_FILE_VARIABLE}")
            elif key and (header["chain"] != KEYED or header["key_id"] != key_id(key)):
                problem(seq, "not_keyed", "it was not recorded with this key: the run was rewritten without "
                        "the key, or the key is wrong", "check the key")
            digest = _chain_start(key if header["chain"] == KEYED else None, stored_previous, header,
                                  self._verify_inflate(problem, seq, report_blob, "its report"))
            derived: set[tuple[str, str, str]] = set()
            for case_ref, blob in self.connection.execute(
                    "SELECT case_ref, CAST(result AS BLOB) FROM case_results WHERE seq = ? ORDER BY " + self.backend.stored_order, (seq,)):
                text = self._verify_inflate(problem, seq, blob, f"the result of case {case_ref!r}")
                _chain_add(digest, case_ref, text)
                derived |= _findings_of(case_ref, text)
            if checkable and digest.hexdigest() != stored_hash:
                problem(seq, "hash_mismatch", "its stored content no longer matches its hash",
                        "the run, its report or its case results were changed after it was recorded")
            stored = set(self.connection.execute(
                "SELECT case_ref, criterion, value FROM findings WHERE seq = ?", (seq,)).fetchall())
            if stored != derived:
                changed = sorted(stored ^ derived)[:3]
                problem(seq, "findings_mismatch",
                        f"{len(stored - derived)} findings rows are not in its hashed case results and "
                        f"{len(derived - stored)} are missing (e.g. {', '.join('/'.join(c) for c in changed)})",
                        "the findings table was edited")
            if header["link"] is None:
                previous = stored_hash
            expected_seq = seq + 1

    def _verify_links(self, problem) -> None:
        """The one chain: links numbered 1, 2, 3, … with no gap or repeat, each pointing at the link
        before it, records of each kind in the order of their ids, every review record after its run,
        and no record made before links existed coming after one made since."""
        every = self.links()
        linked = [r for r in every if r.link is not None]
        runs = [r for r in every if r.table == "runs" and r.link is None]
        previous, expected = (runs[-1].hash if runs else GENESIS), first_link(runs)
        last_row: dict[str, int] = {}
        run_links = {r.row: r.link for r in every if r.table == "runs"}
        for record in linked:
            seq = record.seq
            if record.link < expected:
                problem(seq, "chain_broken", f"{record.name} has link {record.link}, which another record has too",
                        "records were renumbered or inserted")
                continue
            if record.link > expected:
                gone = f"link {expected} is" if record.link == expected + 1 else \
                    f"links {expected} to {record.link - 1} are"
                problem(seq, "record_missing", f"{gone} missing: the record before {record.name} was deleted",
                        "records were deleted or renumbered")
            elif record.previous_hash != previous:
                problem(seq, "chain_broken", f"{record.name}: its previous hash does not match link {record.link - 1}")
            if record.row <= last_row.get(record.table, 0):
                problem(seq, "order_changed", f"{record.name} is numbered below a {record.table} record linked "
                        "before it", "ids were swapped or renumbered: which decision is the latest may have changed")
            last_row[record.table] = record.row
            if record.table != "runs" and (run_links.get(seq) or 0) >= record.link:
                problem(seq, "chain_broken", f"{record.name} is linked before its run")
            previous, expected = record.hash, record.link + 1
        linked_runs = {r.row for r in linked if r.table == "runs"}
        first_linked_run = min(linked_runs, default=None)
        for record in every:
            if record.link is not None:
                continue
            late_run = record.table == "runs" and first_linked_run is not None and record.row > first_linked_run
            on_linked_run = record.table != "runs" and record.seq in linked_runs
            if late_run or on_linked_run:
                problem(record.seq, "unlinked_record", f"{record.name} has no link, but "
                        + ("runs after it have" if late_run else "its run was recorded with links"),
                        "a record was inserted without its link; it cannot be told from a forgery")

    def _verify_inflate(self, problem, seq: int, blob: object, what: str) -> bytes:
        try:
            return _inflate(blob)
        except (zlib.error, TypeError) as error:
            problem(seq, "store_damaged", f"{what} cannot be read: {error}")
            return b""

    def _verify_rest(self, problem, expect_head: str | None) -> None:
        db = self.connection
        for table in ("case_results", "findings", "decisions", "signoffs"):
            orphans = db.execute(f"SELECT DISTINCT seq FROM {table} WHERE seq NOT IN (SELECT seq FROM runs)"
                                 " ORDER BY seq").fetchall()
            for (seq,) in orphans:
                problem(seq, "orphan_rows", f"the {table} table has rows for a run that is not in the store",
                        "rows were inserted, or their run was deleted")
        for table, column in LINKED:
            last = db.execute(f"SELECT max({column}) FROM {table}").fetchone()[0] or 0
            numbered = self.backend.numbered(db, table)
            if numbered is not None and not (isinstance(numbered, int) and isinstance(last, int)):
                problem(None, "store_damaged", f"the numbering of {table} holds {numbered!r}, not a number",
                        f"{self.backend.numbering} was edited")
            elif numbered is not None and numbered > last:
                kind = {"runs": "runs", "decisions": "decisions", "signoffs": "sign-offs"}[table]
                problem(None, "runs_lost" if table == "runs" else "records_lost",
                        f"{kind} up to {numbered} were recorded, but the store ends at {last}",
                        f"the last {kind} were deleted")
        applied = [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY name")]
        known = [name for name, _ in MIGRATIONS]
        if applied != known[:len(applied)] or not applied:  # a store not yet migrated is fine: it is read as it is
            problem(None, "schema_changed", f"the schema steps recorded are {', '.join(applied) or 'none'}")
        if expect_head is not None:
            self._verify_head(problem, expect_head)

    def _verify_head(self, problem, expect_head: str) -> None:
        number, expected_hash = parse_head(expect_head)
        if number == 0:
            return
        every = self.links()
        record = next((r for r in every if r.link == number), None)
        if record is None:  # a head printed before links existed names a run by its number
            record = next((r for r in every if r.link is None and r.table == "runs" and r.row == number), None)
        if record is None:
            problem(None, "runs_lost", f"the expected head {number}:{expected_hash[:12]}… is not in the store",
                    "records (runs, decisions or sign-offs) were deleted since that head was recorded")
        elif record.hash != expected_hash:
            problem(record.seq, "head_mismatch", f"{record.name}, link {number}, has hash {record.hash[:12]}…, "
                    f"not the expected head's {expected_hash[:12]}…", "records up to the expected head were rewritten")


_HEAD = re.compile(r"(\d+):([0-9a-f]{64})")


def parse_head(text: str) -> tuple[int, str]:
    """``LINK:HASH`` as printed by ``qi runs head``; a ValueError says what is wrong."""
    match = _HEAD.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not LINK:HASH (a record's link number, a colon and 64 hex digits, "
                         "as qi runs head prints)")
    return int(match.group(1)), match.group(2)


def first_link(legacy_runs: list) -> int:
    """The number of the first link: after the runs recorded before links existed, whose heads
    (``SEQ:HASH``) name them by their numbers, so no head can ever name two records."""
    return (max(r.row for r in legacy_runs) if legacy_runs else 0) + 1


def store_field(seq: int, run_hash: str, link: int | None = None) -> dict:
    """What report.json records of the store: the run's number and hash, the head after it
    (``LINK:HASH``; a run made before links existed is its own link, by its number)."""
    return {"seq": seq, "hash": run_hash, "head": f"{seq if link is None else link}:{run_hash}"}


_SCHEMAS: dict[tuple, dict[tuple[str, str], str | None]] = {}


def _statements(backend, name: str, script: str) -> list[str]:
    """A schema step's statements in the backend's dialect, with what that backend adds to it."""
    found = [backend.statement(sql) for sql in filter(str.strip, script.split(";"))]
    return found + backend.extra_steps.get(name, [])


def _expected_schema(backend, applied: tuple[str, ...]) -> dict[tuple[str, str], str | None]:
    """The schema objects (``(type, name)`` → definition) that the migrations ``applied`` create,
    made in scratch space by running them, as a store built by qi has them."""
    key = (backend.kind, backend.where, applied)
    if key not in _SCHEMAS:
        statements = [_MIGRATIONS_TABLE]
        for name, script in MIGRATIONS:
            if name in applied:
                statements += _statements(backend, name, script)
        _SCHEMAS[key] = backend.scratch_objects(statements)
    return _SCHEMAS[key]


_MIGRATIONS_TABLE = "CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"


def _timeout() -> float:
    """How long a writer waits for another (QI_DB_TIMEOUT seconds overrides BUSY_TIMEOUT_MS)."""
    return float(os.environ.get("QI_DB_TIMEOUT", BUSY_TIMEOUT_MS / 1000))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _header(report: dict) -> dict:
    return {
        "run_id": report["run"]["id"], "content_sha256": report["run"]["content_sha256"],
        "created_at": report["run"]["timestamp"],
        "tool_version": report["qi"]["version"], "sample_id": report["sample"]["id"],
        "framework_id": report["framework"]["id"], "framework_version": report["framework"]["version"],
        "framework_sha256": report["framework"]["sha256"], "ruleset_id": report["ruleset"]["id"],
        "ruleset_version": report["ruleset"]["version"], "ruleset_sha256": report["ruleset"]["sha256"],
        "inputs": canonical(report["inputs"]).decode(),
    }


def _inflate(blob: object) -> bytes:
    if not isinstance(blob, bytes):
        raise TypeError(f"a {type(blob).__name__} where compressed bytes belong")
    return zlib.decompress(blob)


def _findings_of(case_ref: str, text: bytes) -> set[tuple[str, str, str]]:
    """A case's findings as ``findings`` rows, read from its stored result."""
    try:
        findings = json.loads(text)["findings"]
        return {(case_ref, criterion, finding["value"]) for criterion, finding in findings.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def _chain_start(key: bytes | None, previous: str, header: dict, report_text: bytes):
    """The run's hash, begun: the previous run's hash, the run record and the report — sha256, or
    HMAC-SHA256 under the key."""
    digest = hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()
    digest.update(previous.encode())
    hashed = {column: header[column] for column in HASHED}
    if header.get("link") is not None:  # a link of the one chain: its place is hashed with it
        hashed["link"] = header["link"]
    digest.update(canonical(hashed))
    digest.update(len(report_text).to_bytes(8, "big") + report_text)
    return digest


def _chain_add(digest, case_ref: str, text: bytes) -> None:
    """Each case result, in the order stored."""
    digest.update(case_ref.encode() + b"\0" + text + b"\0")
