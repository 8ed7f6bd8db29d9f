"""Logins: who is using the workspace, when the store has accounts.

A login starts a session: a random token in a cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure``
over HTTPS and whenever the workspace is served beyond this machine), known to the server only by
its sha256. Sessions are kept in the server's memory: they end after :data:`IDLE` seconds unused,
:data:`LIFETIME` seconds after login, on logout, and when the server restarts (people log in
again). Every request reads the account again, so an account disabled, given another role or a
new password (``qi users``, from any process) loses its sessions at once.

Failed logins are counted per account name and per client address: after :data:`MAX_FAILURES`
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
WINDOW = 15 * 60


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
    """Failed logins, per account name and per client address, within the last :data:`WINDOW` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def _keys(self, name: str, client: str) -> tuple[str, str]:
        return f"name:{name.casefold()[:64]}", f"client:{client}"

    def wait(self, name: str, client: str) -> float:
        """Seconds until another attempt is taken (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [0.0]
            for key in self._keys(name, client):
                failures = self._trim(key, now)
                if len(failures) >= MAX_FAILURES:
                    waits.append(failures[0] + WINDOW - now)
            return max(waits)

    def failed(self, name: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(name, client):
                self._trim(key, now).append(now)

    def _trim(self, key: str, now: float) -> collections.deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] > WINDOW:
            failures.popleft()
        if not failures:
            del self._failures[key]
            failures = self._failures[key]
        return failures
