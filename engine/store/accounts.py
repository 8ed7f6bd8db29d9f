"""Accounts: the people who decide, with their roles, kept in the audit store.

A store has accounts once one is added (``qi users add``); from then on every decision and
sign-off is recorded by an authenticated account — in the workspace by its login, on the command
line by ``--as NAME --password-file FILE`` — and never by a typed name. A store without accounts is
a single person's local store: what they record is recorded under their operating-system user, and
said to be so.

Passwords are hashed with argon2id (argon2-cffi's defaults); the hash is all that is kept. A failed
login says the same whatever failed (no such account, a wrong password, a disabled account), and
takes as long: it never tells which names exist.

Who may do what is :data:`PERMISSIONS`; :func:`authorise` is the one check, made by the review stage
inside its write transaction, so an account disabled, or moved to another role, cannot record
anything more however it logged in. Once a store has an administrator, only an administrator
changes accounts (its first one is added by whoever can write the store).
"""

from __future__ import annotations

import dataclasses
import datetime
import getpass
import functools
import hashlib
import os
import re
import sys
from pathlib import Path

import argon2

from engine.base import text as texts
from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.store.store import ACCOUNTS, Store

ROLES = ("inspector", "reviewer", "qa_lead", "methodology", "admin")
#: What each action needs. Every role reads runs, cases and traces.
PERMISSIONS = {
    "decide": ("reviewer", "qa_lead"),
    "signoff": ("qa_lead",),
    "try": ("methodology",),
    "users": ("admin",),
}
ACTIONS = {"decide": "record a decision", "signoff": "sign a run off", "try": "try a rule change",
           "users": "manage accounts"}
#: How a record's maker was known: a logged-in account, or the operating-system user of a store
#: that has no accounts.
ACCOUNT, OS_USER = "account", "os-user"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024

_hasher = argon2.PasswordHasher()


@functools.cache
def _unknown() -> str:
    """Checked against when the name is unknown, so a failed login takes as long whatever failed
    (made on first use: hashing costs every other command nothing)."""
    return _hasher.hash("qi: no such account")


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who records a decision or sign-off: a name, the role it held then (None for an
    operating-system user, who has every permission on their own store), and how it was known."""

    name: str
    role: str | None
    via: str

    @property
    def described(self) -> str:
        """How output names it: ``NAME (role)`` or ``NAME (operating-system user, no accounts)``."""
        return (f"{self.name} ({self.role.replace('_', ' ')})" if self.via == ACCOUNT
                else f"{self.name} (operating-system user; the store has no accounts)")


@dataclasses.dataclass(frozen=True)
class Account:
    name: str
    role: str
    disabled: bool
    created_at: str
    updated_at: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _error(store: Store, code: str, message: str, hint: str = "") -> InputError:
    return InputError([Diagnostic(store.where, 1, 1, code, message, hint)])


def _schema(store: Store) -> bool:
    """Whether the store has the accounts table: migrated since it was opened, too (a long-lived
    read-only workspace must see accounts another process added)."""
    if ACCOUNTS not in store.applied:
        store._refresh_applied()
    return ACCOUNTS in store.applied


def enabled(store: Store) -> bool:
    """Whether the store has accounts (any, disabled or not): then nothing is recorded without one."""
    return _schema(store) and store.connection.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def admins(store: Store) -> bool:
    """Whether the store has an enabled administrator: then only one changes accounts."""
    return _schema(store) and store.connection.execute(
        "SELECT 1 FROM users WHERE role = 'admin' AND disabled = 0 LIMIT 1").fetchone() is not None


def accounts(store: Store) -> list[Account]:
    if not _schema(store):
        return []
    return [Account(name, role, bool(disabled), created, updated) for name, role, disabled, created, updated in
            store.connection.execute("SELECT name, role, disabled, created_at, updated_at FROM users ORDER BY name")]


def name_problems(where: str, name: str) -> list[Diagnostic]:
    if NAME.fullmatch(name):
        return []
    return [Diagnostic(where, 1, 1, "invalid_account_name", f"{texts.printable(name)!r} is not an account name",
                       "use letters, digits, '.', '_', '@' and '-' (at most 64, starting with a letter or digit)")]


def _check_name(store: Store, name: str) -> None:
    problems = name_problems(store.where, name)
    if problems:
        raise InputError(problems)


def _check_role(store: Store, role: str) -> None:
    if role not in ROLES:
        raise _error(store, "unknown_role", f"{texts.printable(role)!r} is not a role", did_you_mean(role, list(ROLES)))


def check_password(where: str, password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError([Diagnostic(where, 1, 1, "weak_password",
                                     f"the password has {len(password)} characters; {MIN_PASSWORD} to "
                                     f"{MAX_PASSWORD} are needed", "use a long passphrase or a password manager")])


def read_password(path: str | os.PathLike[str], new: bool = True) -> str:
    """The password in a file (``-``: standard input): its first line, without the line ending. A
    ``new`` password must be long enough; one given to log in is simply checked."""
    where = os.fspath(path)
    limit = MAX_PASSWORD * 4 + 2  # a password's UTF-8 and its line ending: nothing more is read
    try:
        if where == "-":
            raw = sys.stdin.buffer.read(limit)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(limit)
        text = raw.decode("utf-8", errors="strict" if len(raw) < limit else "ignore")
    except OSError as error:
        raise InputError([Diagnostic(where, 1, 1, "password_file", f"cannot read the password file: "
                                     f"{error.strerror or error}", "give a file holding the password")]) from None
    except UnicodeDecodeError:
        raise InputError([Diagnostic(where, 1, 1, "password_file", "the password file is not UTF-8 text",
                                     "write the password as text on the file's first line")]) from None
    password = text.split("\n", 1)[0].removesuffix("\r")  # lines end at \n only: U+2028 is part of it
    if new:
        check_password(where, password)
    return password


def _check_admin(store: Store, by: Actor | None) -> None:
    """Once the store has an enabled administrator, only an administrator changes accounts (read
    inside the write: one disabled meanwhile cannot)."""
    if not admins(store):
        return  # a store's first administrator is added by whoever can write it
    if by is None:
        raise _error(store, "admin_required", "this store has an administrator: only an administrator changes "
                     "accounts", "give --as ADMIN --admin-password-file FILE")
    if by.via == ACCOUNT:
        row = store.connection.execute("SELECT role, disabled FROM users WHERE name = ?", (by.name,)).fetchone()
        if row is not None and row[0] == "admin" and not row[1]:
            return
    raise _error(store, "not_permitted", f"{by.name} is not an administrator: only an administrator changes "
                 "accounts", "ask an administrator")


def add(store: Store, name: str, role: str, password: str, by: Actor | None = None) -> Account:
    """A new account (refused if the name is taken); every problem with it reported at once."""
    where = store.where
    problems = name_problems(where, name)
    for check in (lambda: _check_role(store, role), lambda: check_password(where, password)):
        try:
            check()
        except InputError as error:
            problems += error.diagnostics
    if problems:
        raise InputError(problems)
    hashed, at = _hasher.hash(password), _now()
    with store._write() as db:
        _check_admin(store, by)
        taken = db.execute("SELECT name FROM users WHERE lower(name) = lower(?)", (name,)).fetchone()
        if taken:  # Ann and ann would read as one person in every record
            raise _error(store, "account_exists", f"there is already an account {taken[0]!r}",
                         "choose another name (names differing only in case are one name), or change its "
                         "password with qi users passwd")
        db.execute("INSERT INTO users (name, role, password_hash, disabled, created_at, updated_at) "
                   "VALUES (?, ?, ?, 0, ?, ?)", (name, role, hashed, at, at))
    return Account(name, role, False, at, at)


def _update(store: Store, name: str, sql: str, values: tuple, by: Actor | None) -> None:
    _check_name(store, name)
    with store._write() as db:
        _check_admin(store, by)
        found = db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() if ACCOUNTS in store.applied \
            else None
        if found is None:
            known = [a.name for a in accounts(store)]
            raise _error(store, "unknown_account", f"there is no account {name!r}",
                         did_you_mean(name, known, "accounts") if known else "the store has no accounts yet: "
                         "qi users add NAME --role ROLE --password-file FILE")
        # to the microsecond: two changes in one second (disable, enable) still change a session's stamp
        changed = datetime.datetime.now(datetime.timezone.utc).isoformat()
        db.execute(f"UPDATE users SET {sql}, updated_at = ? WHERE name = ?", (*values, changed, name))


def set_password(store: Store, name: str, password: str, by: Actor | None = None) -> None:
    check_password(store.where, password)
    _update(store, name, "password_hash = ?", (_hasher.hash(password),), by)


def set_disabled(store: Store, name: str, disabled: bool, by: Actor | None = None) -> None:
    _update(store, name, "disabled = ?", (int(disabled),), by)


def set_role(store: Store, name: str, role: str, by: Actor | None = None) -> None:
    _check_role(store, role)
    _update(store, name, "role = ?", (role,), by)


def change(store: Store, name: str, role: str, disabled: bool, by: Actor | None = None) -> None:
    """An account's role and whether it is disabled, set together (one write)."""
    _check_role(store, role)
    _update(store, name, "role = ?, disabled = ?", (role, int(disabled)), by)


def authenticate(store: Store, name: str, password: str) -> Actor:
    """The account ``name`` if ``password`` is its password and it is not disabled; otherwise
    InputError ``login_failed``, the same whatever failed."""
    return log_in(store, name, password)[0]


def log_in(store: Store, name: str, password: str) -> tuple[Actor, str]:
    """:func:`authenticate`, with the account's stamp (as :func:`current` gives it) read from the
    same row: a session starts on exactly the account whose password was checked."""
    row = None
    if ACCOUNTS in store.applied and NAME.fullmatch(name or ""):
        row = store.connection.execute("SELECT role, password_hash, disabled, updated_at FROM users WHERE name = ?",
                                       (name,)).fetchone()
    try:
        _hasher.verify(row[1] if row else _unknown(), password)
        good = row is not None and not row[2]
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        good = False
    if not good:
        raise _error(store, "login_failed", "the account name or password is wrong, or the account is disabled",
                     "check both; an administrator can reset the password with qi users passwd")
    return Actor(name, row[0], ACCOUNT), _stamp(row[1], row[3])


def _stamp(password_hash: str, updated_at: str) -> str:
    return hashlib.sha256(f"{password_hash}\0{updated_at}".encode()).hexdigest()


def local_actor(store: Store) -> Actor:
    """The operating-system user, for a store without accounts; InputError ``account_required``
    when the store has them."""
    if enabled(store):
        raise _error(store, "account_required", "this store has accounts: decisions and sign-offs are recorded "
                     "by an account", "give --as NAME --password-file FILE")
    _refuse_shared(store, "record decisions and sign-offs")
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid {os.getuid()}"
    return Actor(name, None, OS_USER)


def _refuse_shared(store: Store, doing: str) -> None:
    """A shared store (PostgreSQL) is a team's: whoever runs qi on some machine is nobody the
    store knows, so only accounts record there."""
    if store.backend.shared:
        raise _error(store, "account_required", f"this is a shared PostgreSQL store, where only an account may "
                     f"{doing}, and it has none yet", "add them with qi users add NAME --role ROLE "
                     "--password-file FILE, then give --as NAME --password-file FILE")


def authorise(store: Store, actor: Actor, action: str) -> None:
    """Refuse (InputError) an actor who may not do ``action`` now: an account that no longer exists,
    is disabled, or whose role does not allow it; an operating-system user once the store has
    accounts. Read inside the caller's write transaction."""
    if actor.via == OS_USER:
        if enabled(store):
            raise _error(store, "account_required", f"this store has accounts: {action} needs one",
                         "log in, or give --as NAME --password-file FILE")
        _refuse_shared(store, ACTIONS.get(action, action))
        return
    row = store.connection.execute("SELECT role, disabled FROM users WHERE name = ?", (actor.name,)).fetchone() \
        if ACCOUNTS in store.applied else None
    if row is None or row[1] or row[0] != actor.role:
        raise _error(store, "account_changed", f"the account {actor.name!r} no longer exists, is disabled or has "
                     "another role", "log in again")
    if actor.role not in PERMISSIONS[action]:
        allowed = " or ".join(r.replace("_", " ") for r in PERMISSIONS[action])
        raise _error(store, "not_permitted", f"{actor.name} has the role {actor.role.replace('_', ' ')}: only "
                     f"{allowed} may {ACTIONS[action]}", "ask an administrator for the role (qi users role)")


def may(actor: Actor | None, action: str) -> bool:
    """Whether the actor's role allows ``action`` (views use it to show only what can be done)."""
    return actor is not None and (actor.via == OS_USER or actor.role in PERMISSIONS[action])


def current(store: Store, name: str) -> tuple[Actor, str] | None:
    """The account ``name`` as the store holds it now, with a stamp of its password and last change
    (a new password, a disable then enable, a role changed and back: each changes it), or None if
    it is gone or disabled."""
    if ACCOUNTS not in store.applied:
        return None
    row = store.connection.execute("SELECT role, disabled, password_hash, updated_at FROM users WHERE name = ?",
                                   (name,)).fetchone()
    if row is None or row[1]:
        return None
    return Actor(name, row[0], ACCOUNT), _stamp(row[2], row[3])
