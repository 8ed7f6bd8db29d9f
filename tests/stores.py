"""Audit stores for tests, on either backend: an SQLite file, or a database of the PostgreSQL
server named by ``$QI_TEST_POSTGRES`` (an administrator's URL, e.g.
``postgresql://qi@127.0.0.1:54329/postgres``; ``.ci/run`` starts one). A store is what ``--db``
takes: a ``Path``, or a :class:`Database` (a ``str``, its URL).

The helpers act as someone with direct access to the database would — the file's owner, or a
PostgreSQL superuser — to tamper with a store and to see whether anything changed.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest

#: The administrator's URL of the test server (unset: PostgreSQL tests are skipped, or fail when
#: $QI_REQUIRE_POSTGRES is set, as in CI).
SERVER = os.environ.get("QI_TEST_POSTGRES", "")
BACKENDS = ("sqlite", "postgresql")
_counter = itertools.count(1)


class Database(str):
    """A PostgreSQL store: its URL, as ``--db`` takes it."""

    @property
    def name(self) -> str:
        return self.rsplit("/", 1)[1]


def require_server() -> None:
    if not SERVER:
        if os.environ.get("QI_REQUIRE_POSTGRES"):
            pytest.fail("QI_REQUIRE_POSTGRES is set but QI_TEST_POSTGRES names no server")
        pytest.skip("no PostgreSQL server for tests: set QI_TEST_POSTGRES=postgresql://USER@HOST:PORT/postgres")


def _admin():
    import psycopg

    return psycopg.connect(SERVER, autocommit=True)


def new_database(template: Database | None = None) -> Database:
    """An empty database (or a copy of ``template``) on the test server."""
    require_server()
    name = f"qi_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template.name}"' if template else ""))
    return Database(SERVER.rsplit("/", 1)[0] + "/" + name)


def drop(database: Database) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


def empty_store(backend: str, folder: Path, name: str = "qi.db"):
    """Where a new store goes: a file path not yet made, or a new empty database."""
    return folder / name if backend == "sqlite" else new_database()


def copy(store, folder: Path, name: str = "qi.db"):
    """A copy of ``store`` to change in one test."""
    if isinstance(store, Database):
        return new_database(template=store)
    shutil.copy(store, folder / name)
    return folder / name


def is_postgres(store) -> bool:
    return isinstance(store, Database)


def connect(store):
    """A connection to the store as its owner has one, taking ``?`` parameters on either backend;
    on PostgreSQL, with foreign keys and triggers off for the session (as a superuser can)."""
    if not is_postgres(store):
        return sqlite3.connect(store)
    import psycopg

    connection = psycopg.connect(str(store))
    connection.execute("SET session_replication_role = replica")
    return _Translating(connection)


class _Translating:
    def __init__(self, connection) -> None:
        self.raw = connection

    def execute(self, statement: str, parameters=()):
        from engine.store.backend import PostgresConnection

        return self.raw.execute(PostgresConnection._sql(statement), tuple(parameters))

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, *rest) -> None:
        (self.raw.commit if kind is None else self.raw.rollback)()
        self.raw.close()


def sql(store, *statements, parameters: tuple = ()) -> None:
    """Run SQL on a store as its owner would: each statement, then commit. Statements are written
    for SQLite; on PostgreSQL the few SQLite forms tests use are rewritten (:func:`postgres_form`),
    and a statement may be a dict ``{"sqlite": …, "postgresql": …}`` where more differs."""
    connection = connect(store)
    try:
        for statement in statements:
            if isinstance(statement, dict):
                statement = statement["postgresql" if is_postgres(store) else "sqlite"]
            elif is_postgres(store):
                statement = postgres_form(statement)
            if statement:
                connection.execute(statement, parameters if "?" in statement else ())
        connection.commit()
    finally:
        connection.close()


def tamper(store, *statements) -> None:
    """:func:`sql`, for an edit PostgreSQL's column types may refuse (text where a number goes,
    bytes where text goes): then the test is skipped on PostgreSQL, which cannot be so damaged."""
    try:
        sql(store, *statements)
    except Exception as error:  # psycopg's DataError / DatatypeMismatch
        import psycopg

        if is_postgres(store) and isinstance(error, (psycopg.errors.DataError, psycopg.errors.DatatypeMismatch)):
            pytest.skip(f"PostgreSQL's column types refuse this edit: {str(error).splitlines()[0]}")
        raise


def postgres_form(statement: str) -> str:
    """An SQLite statement as PostgreSQL writes it: blob literals (``x'00'``), ``char()``, the
    numbering table (``sqlite_sequence``, kept as ``qi_numbering``); a PRAGMA is nothing there."""
    if statement.lstrip().upper().startswith("PRAGMA"):
        return ""
    statement = re.sub(r"\bx'([0-9a-fA-F]*)'", r"'\\x\1'::bytea", statement)
    statement = re.sub(r"\bchar\(", "chr(", statement)
    if "sqlite_sequence" in statement:
        statement = re.sub(r"\bseq\b", "last", statement.replace("sqlite_sequence", "qi_numbering"))
    return statement


def rows(store, query: str, parameters: tuple = ()) -> list[tuple]:
    connection = connect(store)
    try:
        return [tuple(row) for row in connection.execute(query, parameters).fetchall()]
    finally:
        connection.close()


def snapshot(store):
    """Everything the store holds, to tell whether a refused command changed anything: the
    file's bytes, or every row of every table of the database."""
    if not is_postgres(store):
        return store.read_bytes() if store.exists() else None
    connection = connect(store)
    try:
        tables = [name for (name,) in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").fetchall()]
        return {table: sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"').fetchall()))
                for table in tables}
    finally:
        connection.close()
