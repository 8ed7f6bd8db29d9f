"""Where an audit store lives: an SQLite file (the embedded default) or a PostgreSQL database
(a team's shared store), behind one small interface that engine/store/store.py writes its SQL to.

Both run the same schema steps (SQLite's types written as PostgreSQL's, which adds an ``ordinal``
column) and the same queries (written with ``?`` parameters; the PostgreSQL connection passes them
as ``%s``). What differs is kept here:

* **identity** — SQLite marks the file with qi's ``application_id``; PostgreSQL keeps the mark in
  a ``qi_store`` table of the store's schema;
* **numbering** — SQLite's ``sqlite_sequence`` remembers the highest id ever issued; on PostgreSQL
  qi keeps it in ``qi_numbering``, written in the same transaction as the row;
* **stored order** — SQLite's ``rowid``; PostgreSQL's ``ordinal`` identity column;
* **one writer at a time** — ``BEGIN IMMEDIATE``; on PostgreSQL a transaction-level advisory lock;
* **the schema qi trusts** — both compare every object in the store (SQLite's ``sqlite_master``;
  PostgreSQL's catalogue of the schema: tables with their columns and constraints, indexes,
  sequences, views, triggers, rules, policies, functions, and the database's event triggers) with
  what qi's own steps create, run in scratch space (memory; a rolled-back temporary schema).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
import tempfile
import urllib.parse
from pathlib import Path

import psycopg

from engine.base.diagnostics import Diagnostic, InputError

#: Errors a database raises (connection lost, locked, read-only, damaged …).
DatabaseError = (sqlite3.Error, psycopg.Error)
#: The schemes of a PostgreSQL store's URL.
POSTGRES_SCHEMES = ("postgresql", "postgres")
#: A database URL (scheme://…; a path made of one has lost a slash: scheme:/…).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")
#: A libpq keyword/value connection string ("host=… dbname=…"), which is no file's name.
_KEYWORDS = re.compile(r"^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options)\s*=",
                       re.IGNORECASE)
#: qi's mark on a store: SQLite's application_id ("qiAS"), and on PostgreSQL the advisory lock's key.
APPLICATION_ID = 0x71694153
#: The page size of a new SQLite store.
PAGE_SIZE = 16384
#: The row of qi_store that marks a PostgreSQL schema as a qi audit store.
POSTGRES_MARK = "qi audit store"


def is_postgres(location: str | os.PathLike[str]) -> bool:
    match = _URL.match(os.fspath(location))
    return bool(match) and match.group(1).lower() in POSTGRES_SCHEMES


def check_location(location: str | os.PathLike[str]) -> None:
    """A store is an SQLite file or a ``postgresql://`` URL: any other URL is refused, never taken
    for a file name (which would create a local file named after it)."""
    text = os.fspath(location)
    match = _URL.match(text)
    if not match and _KEYWORDS.match(text):
        raise InputError([Diagnostic(redact(text), 1, 1, "unsupported_store",
                                     "this is a libpq connection string (keyword=value), not a store file's path",
                                     "give the database as postgresql://USER@HOST/DATABASE, its password in "
                                     "~/.pgpass")])
    if not match:
        return
    if match.group(1).lower() in POSTGRES_SCHEMES and text[match.end():].startswith("/"):
        return
    shown = redact(text)
    if match.group(1).lower() in POSTGRES_SCHEMES:
        raise InputError([Diagnostic(shown, 1, 1, "unsupported_store", "this PostgreSQL URL has lost a slash",
                                     "write postgresql://HOST/DATABASE (two slashes)")])
    raise InputError([Diagnostic(shown, 1, 1, "unsupported_store",
                                 f"{match.group(1)!r} is not a kind of store qi keeps; its audit store is an "
                                 "SQLite file or a PostgreSQL database",
                                 "give a store file's path, or postgresql://HOST/DATABASE, with --db (or $QI_DB)")])


def redact(text: str, url: str | None = None) -> str:
    """A URL (or a message quoting one) as shown: without its password. With ``url``, that URL's
    password is taken out of ``text`` wherever it appears."""
    shown = _PASSWORD_PARAMETER.sub(r"\1***", _PASSWORD.sub(r"\1:***@", text))
    if url:
        found = _PASSWORD.search(url)
        secret = found.group(0)[len(found.group(1)) + 1:-1] if found else ""
        for value in {secret, urllib.parse.unquote(secret)} - {""}:
            shown = shown.replace(value, "***")
            if any(value[i:i + 4] in shown for i in range(max(0, len(value) - 3))):  # a piece of it quoted
                return "the URL cannot be used as written (the server library's message is not shown: it quotes " \
                       "part of the password)"
    return shown


#: user:password@ after the scheme: to the last @ (a password may hold an unencoded / or @).
_PASSWORD = re.compile(r"(:/{1,2}[^:/@\s]*):.*@")
_PASSWORD_PARAMETER = re.compile(r"((?:[?&\s]|^)password\s*=\s*)[^&\s]*", re.IGNORECASE)


def looks_like_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is written as a URL (``scheme:/…``), not a file's path."""
    return bool(_URL.match(os.fspath(location)))


def open_backend(location: str | os.PathLike[str]) -> SQLite | PostgreSQL:
    check_location(location)
    return PostgreSQL(os.fspath(location)) if is_postgres(location) else SQLite(Path(location))


class _Backend:
    """What both backends share: diagnostics naming the store as messages show it."""

    where: str
    #: What a backend adds to one of qi's schema steps, by step name.
    extra_steps: dict[str, list[str]] = {}

    def _error(self, code: str, message: str, hint: str) -> InputError:
        return InputError([Diagnostic(self.where, 1, 1, code, message, hint)])


class SQLite(_Backend):
    """An audit store in one SQLite file."""

    kind = "sqlite"
    #: Whether a team shares the store (then only accounts record decisions and sign-offs).
    shared = False
    #: What orders a run's case results as they were stored.
    stored_order = "rowid"
    #: Where the highest id ever issued is kept (named in messages).
    numbering = "sqlite_sequence"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def exists(self) -> bool:
        if not self.path.exists():
            return False
        self._refuse_special()
        return True

    def might_exist(self) -> bool:
        return os.path.lexists(self.path)

    def _refuse_special(self) -> None:
        """Only a regular file is a store: a FIFO, device or socket is refused from its metadata,
        without being opened (opening a FIFO blocks)."""
        try:
            mode = os.stat(self.path).st_mode
        except OSError as error:
            raise self._error("store_unavailable", f"cannot open the audit store: {error.strerror or error}",
                              "check the path and its permissions") from None
        if not stat.S_ISREG(mode):
            what = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "not a regular file")
            raise self._error("not_a_regular_file", f"the audit store path is {what}; qi did not open it",
                              "give the path of a qi store file with --db, or a new path for qi run")

    def connect(self, read_only: bool, timeout: float) -> sqlite3.Connection:
        try:
            if read_only:
                uri = f"file:{urllib.parse.quote(str(self.path.absolute()))}?mode=ro"
                connection = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
            else:
                connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if not read_only:
                connection.execute("PRAGMA foreign_keys = ON")
            return connection
        except (OSError, sqlite3.Error) as error:
            raise self._error("store_unavailable", f"cannot open the audit store: {error}",
                              "check the path and its permissions, or choose another with --db") from None

    def not_ours(self, connection) -> str | None:
        """Why this is not a qi store (None when it is one)."""
        if self.path.stat().st_size == 0:
            return "the file is empty (0 bytes)"
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        if application_id != APPLICATION_ID:
            return ("the file is an SQLite database of another application" if application_id
                    else "the file has no qi application id")
        return None

    def create(self, base: list[str]) -> None:
        """A new, empty store, owner-only: built in a temporary file beside the path and linked
        into place, so no half-made store is ever visible (if another run made one first, it stays)."""
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".new", dir=self.path.parent)
            temporary = Path(name)
            os.fchmod(descriptor, 0o600)
            os.close(descriptor)
            connection = sqlite3.connect(temporary, isolation_level=None)
            try:
                # a case's row (its compressed line, a few KB) leaves most of a default 4 KB page
                # unused; 16 KB pages hold several, a quarter less file per case
                connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for statement in base:
                    connection.execute(statement)
            finally:
                connection.close()
            with contextlib.suppress(FileExistsError):
                os.link(temporary, self.path)
        except (OSError, sqlite3.Error) as error:
            raise self._error("store_unavailable", f"cannot create the audit store: {error}",
                              "check the folder and its permissions, or choose another with --db") from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    temporary.unlink()

    def statement(self, sql: str) -> str:
        """A schema step's statement in this database's dialect (SQLite's own)."""
        return sql

    def begin(self, connection) -> None:
        """One write transaction, taken up front: concurrent writers queue on the write lock."""
        connection.execute("BEGIN IMMEDIATE")

    def making_schema(self, connection) -> None:
        """Inside a write transaction that creates tables: nothing to set on SQLite."""

    def snapshot_begin(self, connection) -> bool:
        """Begin reading as of one moment, if this database needs it said: SQLite's verify reads
        as before (a read transaction held for seconds would hold up every writer's commit)."""
        return False

    def objects(self, connection) -> dict[tuple[str, str], str | None]:
        """Every schema object: ``(type, name)`` → its SQL. ANALYZE's statistics tables run no
        code, and are left out."""
        return {(kind, name): sql for kind, name, sql in connection.execute("SELECT type, name, sql FROM sqlite_master")
                if not (kind == "table" and name.startswith("sqlite_stat"))}

    def scratch_objects(self, statements: list[str]) -> dict[tuple[str, str], str | None]:
        """The objects ``statements`` create, run in memory."""
        connection = sqlite3.connect(":memory:", isolation_level=None)
        try:
            for sql in statements:
                connection.execute(sql)
            return self.objects(connection)
        finally:
            connection.close()

    def usable(self, connection) -> bool:
        """Whether an open connection can still be used (a file's always can)."""
        return True

    def numbered(self, connection, table: str):
        """The highest id ever issued in ``table`` (None if none was)."""
        row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return row[0] if row else None

    def note_numbered(self, connection, table: str, row_id: int) -> None:
        """SQLite's AUTOINCREMENT remembers the id itself."""

    def described(self, error: BaseException) -> str:
        return first_line(error)

    def changed(self, before: tuple | None, now: tuple, age: float) -> bool:
        """Whether the store changed between two signatures taken ``age`` seconds apart."""
        return before != now

    def change_signature(self, connection) -> tuple:
        """Something that changes whenever the store does: the file's and its journal's times and sizes."""
        found = []
        for path in (self.path, Path(f"{self.path}-journal"), Path(f"{self.path}-wal")):
            try:
                s = path.stat()
                found.append((s.st_mtime_ns, s.st_size))
            except OSError:
                found.append(None)
        return tuple(found)


class PostgresConnection:
    """A psycopg connection that takes qi's SQL (``?`` parameters) as sqlite3 does."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self.raw = connection

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s").replace(" AS BLOB)", " AS BYTEA)")

    def execute(self, sql: str, parameters=()) -> psycopg.Cursor:
        return self.raw.execute(self._sql(sql), tuple(parameters))

    def executemany(self, sql: str, rows) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(self._sql(sql), [tuple(row) for row in rows])

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


#: SQLite's types and clauses in qi's schema steps, as PostgreSQL writes them.
_POSTGRES_DIALECT = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID\s*$"), ")"),
)

_RELATION_KINDS = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view",
                   "i": "index", "I": "index", "S": "sequence", "c": "type"}

#: Every object of the store's schema (named by the one parameter, in the ``store`` CTE) as ``(kind,
#: name, definition)``. Names in definitions are written qualified where they could be another
#: schema's (a column's type and collation, a table's parents and children), so nothing shadowing
#: pg_catalog's reads the same; kinds are text (a branch of ``relkind`` alone would make the column
#: PostgreSQL's one-character "char").
_OBJECTS = """
WITH store AS (SELECT oid FROM pg_namespace WHERE nspname = ?)
SELECT c.relkind::text, c.relname::text,
  CASE WHEN c.relkind IN ('r', 'p', 'f') THEN concat_ws(' | ',
    (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' in '
                       || (SELECT t.typnamespace::regnamespace::text FROM pg_type t WHERE t.oid = a.atttypid)
                       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
                       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
                       || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END
                       || coalesce((SELECT ' collate ' || l.collnamespace::regnamespace::text || ':' || l.collname
                                    FROM pg_collation l WHERE l.oid = a.attcollation), ''),
                       ', ' ORDER BY a.attnum)
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
    (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)
       FROM pg_constraint k WHERE k.conrelid = c.oid),
    CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END,
    CASE WHEN c.relrowsecurity THEN 'row security' END, CASE WHEN c.relforcerowsecurity THEN 'forced' END,
    CASE WHEN c.relkind = 'p' THEN 'partitioned' END, CASE WHEN c.relispartition THEN 'a partition' END,
    (SELECT 'parents ' || string_agg(i.inhparent::regclass::text || ' in ' || p.relnamespace::regnamespace::text, ', ')
       FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid),
    (SELECT 'children ' || string_agg(i.inhrelid::regclass::text || ' in ' || h.relnamespace::regnamespace::text, ', ')
       FROM pg_inherits i JOIN pg_class h ON h.oid = i.inhrelid WHERE i.inhparent = c.oid))
  WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid)
  WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid)
  WHEN c.relkind = 'S' THEN (SELECT concat_ws(' ', q.seqtypid::regtype::text, q.seqstart, q.seqincrement, q.seqmax,
                                               q.seqmin, q.seqcache, q.seqcycle) FROM pg_sequence q WHERE q.seqrelid = c.oid)
  ELSE '' END
FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM store) AND c.relkind <> 't'
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = (SELECT oid FROM store) AND NOT t.tgisinternal
UNION ALL
SELECT 'rule', c.relname || '.' || r.rulename, pg_get_ruledef(r.oid) || ' ' || r.ev_enabled::text
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = (SELECT oid FROM store) AND NOT (r.rulename = '_RETURN' AND c.relkind IN ('v', 'm'))
UNION ALL
SELECT 'policy', c.relname || '.' || o.polname, concat_ws(' ', o.polpermissive, o.polcmd,
       pg_get_expr(o.polqual, o.polrelid), pg_get_expr(o.polwithcheck, o.polrelid))
FROM pg_policy o JOIN pg_class c ON c.oid = o.polrelid WHERE c.relnamespace = (SELECT oid FROM store)
UNION ALL
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', md5(p.prosrc)
FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM store)
UNION ALL
SELECT 'operator', o.oprname || '(' || o.oprleft::regtype::text || ', ' || o.oprright::regtype::text || ')', ''
FROM pg_operator o WHERE o.oprnamespace = (SELECT oid FROM store)
UNION ALL
SELECT 'collation', l.collname, '' FROM pg_collation l WHERE l.collnamespace = (SELECT oid FROM store)
UNION ALL
SELECT 'type', t.typname, t.typtype::text FROM pg_type t
WHERE t.typnamespace = (SELECT oid FROM store) AND t.typrelid = 0 AND t.typelem = 0
UNION ALL
SELECT 'event trigger', evtname, evtevent || ' ' || evtenabled::text FROM pg_event_trigger
"""

#: The schema named in a URL's ``options=-csearch_path=…`` (its first), as libpq passes it.
_SEARCH_PATH_OPTION = re.compile(r"(?:^|\s)-c\s*search_path\s*=\s*(\"(?:[^\"]|\"\")+\"|[^\s,]+)")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgreSQL(_Backend):
    """An audit store in one schema of a PostgreSQL database the administrator created: ``public``,
    or the first schema the URL's ``options=-csearch_path=…`` names. Every connection's search path
    is pinned to ``pg_catalog``, that schema, then temporary tables: whatever the database's or
    role's settings, a name in qi's SQL is PostgreSQL's own or the store's."""

    kind = "postgresql"
    shared = True
    stored_order = "ordinal"
    numbering = "qi_numbering"
    #: A verify shown by the workspace is made again after this many seconds when the server has
    #: written anything since: the server's log position moves with any database's writes, so it
    #: cannot say at once that this store changed (qi's own writes are seen at once: the head moves).
    reverify_after = 30.0
    #: What PostgreSQL adds to qi's schema steps (the rest is translated, _POSTGRES_DIALECT).
    extra_steps = {"0001-audit-store": ["ALTER TABLE case_results ADD COLUMN ordinal BIGINT GENERATED ALWAYS "
                                        "AS IDENTITY"]}
    base = ["CREATE TABLE qi_store (application TEXT NOT NULL)",
            f"INSERT INTO qi_store VALUES ('{POSTGRES_MARK}')",
            "CREATE TABLE qi_numbering (name TEXT PRIMARY KEY, last BIGINT NOT NULL)"]

    def __init__(self, url: str) -> None:
        scheme, rest = url.split(":", 1)
        self.url = scheme.lower() + ":" + rest  # libpq takes the scheme in lower case only
        self.path = None
        self.where = redact(url)
        self.schema = self._schema_of(self.url)

    @staticmethod
    def _schema_of(url: str) -> str:
        try:
            options = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
        except psycopg.Error:
            return "public"  # the connection reports what is wrong with the URL
        found = _SEARCH_PATH_OPTION.search(options)
        if not found:
            return "public"
        name = found.group(1)
        return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()

    def connect(self, read_only: bool, timeout: float) -> PostgresConnection:
        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(timeout)))
        except (psycopg.Error, ValueError) as error:
            raise self._error("store_unavailable", f"cannot open the audit store: {self.described(error)}",
                              "check the URL, that the server runs and the database exists (createdb), and "
                              "the account's rights") from None
        try:
            raw.execute(f"SET search_path = pg_catalog, {_quoted(self.schema)}, pg_temp")
            raw.execute("SELECT pg_catalog.set_config('lock_timeout', %s, false)", (f"{int(timeout * 1000)}ms",))
            raw.execute("SET TIME ZONE 'UTC'")
            if read_only:
                raw.execute("SET default_transaction_read_only = on")
            found = raw.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (self.schema,)).fetchone()
        except psycopg.Error as error:
            raw.close()
            raise self._error("store_unavailable", f"cannot open the audit store: {self.described(error)}",
                              "check the account's rights on the database") from None
        if found is None:
            raw.close()
            raise self._error("store_unavailable", f"the database has no schema {self.schema!r} to keep the store in",
                              "create it (CREATE SCHEMA), or name another with options=-csearch_path=NAME")
        return PostgresConnection(raw)

    def described(self, error: BaseException) -> str:
        """A database error as one line, without the URL's password (libpq may quote the URL)."""
        return redact(first_line(error), self.url)

    def exists(self) -> bool:
        return True  # a database exists or the connection fails; an empty one is found by not_ours

    def might_exist(self) -> bool:
        return True

    def is_empty(self, connection) -> bool:
        """Whether the store's schema holds nothing yet (a database made for qi, not yet used; the
        database's event triggers are not the schema's)."""
        return not {key for key in self.objects(connection) if key[0] != "event trigger"}

    def not_ours(self, connection) -> str | None:
        if self.is_empty(connection):
            return None
        found = connection.execute("SELECT 1 FROM pg_class WHERE relname = 'qi_store' AND relnamespace = "
                                   "(SELECT oid FROM pg_namespace WHERE nspname = ?)", (self.schema,)).fetchone()
        if not found:
            return f"the database's schema {self.schema} holds tables of another application"
        marks = [row[0] for row in connection.execute("SELECT application FROM qi_store")]
        return None if marks == [POSTGRES_MARK] else "its qi_store table does not mark it as a qi store"

    def create(self, base: list[str]) -> None:
        """qi's first tables in an empty schema, in one transaction (if another run made them
        first, they stay)."""
        connection = self.connect(read_only=False, timeout=60)
        try:
            self.begin(connection)
            try:
                if self.is_empty(connection):
                    self.making_schema(connection)
                    for statement in [*self.base, *base]:
                        connection.execute(statement)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except psycopg.Error as error:
            raise self._error("store_unavailable", f"cannot create the audit store: {self.described(error)}",
                              "the account needs the right to create tables in the database's schema") from None
        finally:
            connection.close()

    def statement(self, sql: str) -> str:
        for pattern, replacement in _POSTGRES_DIALECT:
            sql = pattern.sub(replacement, sql)
        return sql

    def begin(self, connection) -> None:
        """One write transaction; qi's writers take one advisory lock on it, so they queue. Read
        committed, whatever the database's default: each statement after the lock sees what the
        writer before committed (under repeatable read the snapshot would predate the wait)."""
        connection.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
        connection.execute(f"SELECT pg_catalog.pg_advisory_xact_lock(CAST({APPLICATION_ID} AS bigint))")

    def snapshot_begin(self, connection) -> bool:
        """Begin reading as of one moment: verify's many statements see one state of the store,
        not a writer's commit between two of them (which would look like a lost record)."""
        if connection.in_transaction:
            return False
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return True

    def making_schema(self, connection) -> None:
        """Inside a write transaction that creates qi's tables: they go into the store's schema (its
        search path otherwise names pg_catalog first, where nothing may be created)."""
        connection.execute(f"SET LOCAL search_path = {_quoted(self.schema)}, pg_catalog, pg_temp")

    def objects(self, connection, schema: str | None = None) -> dict[tuple[str, str], str | None]:
        schema = schema or self.schema
        rows = connection.execute(_OBJECTS, (schema,)).fetchall()
        qualifier = re.compile(r"(?<![\w\"])(?:" + re.escape(_quoted(schema)) + "|" + re.escape(schema) + r")\.")
        if schema.startswith("pg_temp_"):  # the scratch schema is written pg_temp too
            qualifier = re.compile(r"(?<![\w\"])(?:pg_temp|" + re.escape(schema) + r")\.")
        return {(_RELATION_KINDS.get(kind, kind), name): qualifier.sub("", definition or "")
                for kind, name, definition in rows}

    def scratch_objects(self, statements: list[str]) -> dict[tuple[str, str], str | None]:
        """The objects ``statements`` create, run in this session's temporary schema inside a
        transaction that is rolled back."""
        connection = self.connect(read_only=False, timeout=60)
        try:
            connection.execute("BEGIN READ WRITE")
            try:
                connection.execute("SET LOCAL search_path = pg_temp, pg_catalog")  # pg_temp first: tables go there
                for sql in [*self.base, *statements]:
                    connection.execute(sql)
                schema = connection.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()"
                                            ).fetchone()[0]
                connection.execute(f"SET LOCAL search_path = pg_catalog, {_quoted(schema)}")
                found = self.objects(connection, schema)
                return {key: value for key, value in found.items() if key[0] != "event trigger"}
            finally:
                connection.execute("ROLLBACK")
        except psycopg.Error as error:
            raise self._error("store_unavailable", "cannot check the store's schema: qi builds its own in a temporary "
                              f"schema, and this connection cannot ({self.described(error)})",
                              "qi needs a primary server (not a standby) and the TEMPORARY right on the "
                              "database") from None
        finally:
            connection.close()

    def usable(self, connection) -> bool:
        """Whether the connection is still open: the server may have restarted or dropped it."""
        raw = connection.raw
        return not (raw.closed or raw.broken) and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    def numbered(self, connection, table: str):
        row = connection.execute("SELECT last FROM qi_numbering WHERE name = ?", (table,)).fetchone()
        return row[0] if row else None

    def note_numbered(self, connection, table: str, row_id: int) -> None:
        connection.execute("INSERT INTO qi_numbering VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                           "SET last = GREATEST(qi_numbering.last, EXCLUDED.last)", (table, row_id))

    def changed(self, before: tuple | None, now: tuple, age: float) -> bool:
        """qi's own writes at once; anything else the server wrote, after :attr:`reverify_after`."""
        if before is None or before[:-1] != now[:-1]:
            return True
        return before[-1] != now[-1] and age >= self.reverify_after

    def change_signature(self, connection) -> tuple:
        """What changes at once with qi's own writes (the newest link of each kind, the accounts),
        and the server's log position, which moves with any write (see :attr:`reverify_after`)."""
        return tuple(connection.execute(
            "SELECT (SELECT max(link) FROM runs), (SELECT max(link) FROM decisions), (SELECT max(link) FROM signoffs),"
            " (SELECT count(*) FROM users), (SELECT max(updated_at) FROM users), pg_current_wal_lsn()::text"
        ).fetchone())


def first_line(error: BaseException) -> str:
    """A database error as one line of a message (PostgreSQL's carry the query's text on more)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
