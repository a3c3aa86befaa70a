"""The console's sign-ins and sessions, held in the audit service's memory (pure: a clock
in, no I/O). A browser holds only a random id; what it names lives here, so signing out, or
a session's expiry, ends it at once, and a restart signs everyone out.

- A **sign-in** begins when the console sends the browser to the identity provider: the
  OAuth state, the OIDC nonce and the PKCE verifier are kept under a random id the browser
  carries in a cookie, so only the browser that began a sign-in can finish it (login CSRF),
  once, within ``SIGN_IN_S``.
- A **session** ends after ``idle_s`` without a request, or ``max_s`` after sign-in,
  whichever comes first. Each has its own CSRF token, sent back with every form.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from services.backbone.people import Person

SIGN_IN_S = 600.0  # a sign-in left at the identity provider's form longer is begun again
IDLE_S = 900.0  # 15 minutes without a request
MAX_S = 8 * 3600.0  # a working day, however busy
MAX_PENDING = 10_000  # sign-ins begun and not finished: the oldest are forgotten first


@dataclass(frozen=True)
class SignIn:
    state: str
    nonce: str
    verifier: str
    began: float


@dataclass(frozen=True)
class Session:
    person: Person
    csrf: str
    began: float
    seen: float


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    def __init__(
        self, clock: Callable[[], float], *, idle_s: float = IDLE_S, max_s: float = MAX_S
    ) -> None:
        self._clock = clock
        self.idle_s = idle_s
        self.max_s = max_s
        self._sign_ins: dict[str, SignIn] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()  # FastAPI runs sync routes on several threads

    def begin_sign_in(self) -> tuple[str, SignIn]:
        """A new sign-in, and the id the browser keeps for it."""
        sign_in = SignIn(new_secret(), new_secret(), new_secret(), self._clock())
        key = new_secret()
        with self._lock:
            self._forget_stale()
            if len(self._sign_ins) >= MAX_PENDING:
                self._sign_ins.pop(next(iter(self._sign_ins)))
            self._sign_ins[key] = sign_in
        return key, sign_in

    def finish_sign_in(self, key: str | None, state: str) -> SignIn | None:
        """The sign-in ``key`` names, once, if ``state`` is its state and it is recent."""
        if not key:
            return None
        with self._lock:
            sign_in = self._sign_ins.pop(key, None)
        if sign_in is None or self._clock() - sign_in.began > SIGN_IN_S:
            return None
        if not secrets.compare_digest(sign_in.state.encode(), state.encode()):
            return None
        return sign_in

    def open(self, person: Person) -> str:
        """A new session for ``person``; its id, for the browser's cookie."""
        now = self._clock()
        key = new_secret()
        with self._lock:
            self._sessions[key] = Session(person, new_secret(), now, now)
        return key

    def get(self, key: str | None) -> Session | None:
        """The live session ``key`` names, its idle time reset; None if none or expired
        (an expired one is forgotten)."""
        if not key:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.seen > self.idle_s or now - session.began > self.max_s:
                del self._sessions[key]
                return None
            session = replace(session, seen=now)
            self._sessions[key] = session
            return session

    def close(self, key: str | None) -> None:
        if key:
            with self._lock:
                self._sessions.pop(key, None)

    def _forget_stale(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sign_ins.items() if now - s.began > SIGN_IN_S]:
            del self._sign_ins[key]
        for key in [
            k
            for k, s in self._sessions.items()
            if now - s.seen > self.idle_s or now - s.began > self.max_s
        ]:
            del self._sessions[key]
