"""Logins: who is using the workspace, when the store has accounts.

A login starts a session: a random token in a cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure``
over HTTPS and whenever the workspace is served beyond this machine), known to the server only by
its sha256. Sessions are kept in the server's memory: they end after :data:`IDLE` seconds unused,
:data:`LIFETIME` seconds after login, on logout, and when the server restarts (people log in
again). Every request reads the account again, so an account disabled, given another role or a
new password (``qi users``, from any process) loses its sessions at once.

Login attempts are counted per account name and per client address before the password is
checked (so guesses sent at once are counted as they arrive), and a successful one is uncounted:
after :data:`MAX_FAILURES` failures for a name, or :data:`MAX_CLIENT_FAILURES` from one address,
within :data:`WINDOW` seconds, more attempts are refused until the window has passed. Each failure
is logged (the name tried and the client address; never a password).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import secrets
import threading
import time
from collections.abc import Callable

from engine.store.accounts import Actor

COOKIE = "qi_session"
IDLE = 30 * 60
LIFETIME = 8 * 60 * 60
MAX_FAILURES = 5
#: From one address (an office behind one NAT, or a proxy that does not pass the client's address).
MAX_CLIENT_FAILURES = 20
WINDOW = 15 * 60
#: Names and addresses remembered at most: beyond it the oldest are forgotten.
MAX_KEYS = 10_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclasses.dataclass
class Session:
    actor: Actor
    #: The account's password stamp at login (accounts.current): a new password ends the session.
    stamp: str
    started: float
    seen: float


class Sessions:
    """The workspace's sessions, by the sha256 of their tokens."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, actor: Actor, stamp: str) -> str:
        """A new session for ``actor``: its token, for the cookie."""
        token, now = secrets.token_urlsafe(32), self._clock()
        with self._lock:
            self._expire(now)
            self._sessions[_digest(token)] = Session(actor, stamp, now, now)
        return token

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token`` (its use noted), or None."""
        if not token or len(token) > 100:
            return None
        now = self._clock()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(_digest(token))
            if session is not None:
                session.seen = now
            return session

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def _expire(self, now: float) -> None:
        for digest in [d for d, s in self._sessions.items()
                       if now - s.seen > IDLE or now - s.started > LIFETIME]:
            del self._sessions[digest]


class Throttle:
    """Login attempts that did not succeed, per account name and per client address, within the
    last :data:`WINDOW` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, client: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (f"name:{name.casefold()[:64]}", MAX_FAILURES), (f"client:{client}", MAX_CLIENT_FAILURES)

    def attempt(self, name: str, client: str) -> float:
        """Take an attempt: 0 if it may go ahead (it is counted as failed until :meth:`succeeded`
        says otherwise), else the seconds until one is taken."""
        now = self._clock()
        with self._lock:
            waits = [failures[0] + WINDOW - now for key, most in self._keys(name, client)
                     if len(failures := self._trim(key, now)) >= most]
            if waits:
                return max(waits)
            for key, _ in self._keys(name, client):
                self._failures.setdefault(key, collections.deque()).append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)
            return 0.0

    def succeeded(self, name: str, client: str) -> None:
        """The attempt taken last for ``name`` from ``client`` succeeded: it is not a failure."""
        with self._lock:
            for key, _ in self._keys(name, client):
                failures = self._failures.get(key)
                if failures:
                    failures.pop()

    def _trim(self, key: str, now: float) -> collections.deque[float]:
        failures = self._failures.get(key, collections.deque())
        while failures and now - failures[0] > WINDOW:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures
