"""Authorization codes (OAuth 2.0, RFC 6749 4.1; PKCE, RFC 7636): random, held in memory
for a minute, each bound to the client, redirect URI, code challenge, nonce and person it
was issued for, and usable once: redeeming takes the code away whatever the outcome, so a
code presented twice, or first with a wrong verifier, is refused the second time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CODE_TTL_S = 60.0
# RFC 7636 4.1: 43 to 128 unreserved characters (a verifier; an S256 challenge is 43).
PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


@dataclass(frozen=True)
class Grant:
    """What a code stands for: who signed in, for which client, and how to prove it."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    user: str
    auth_time: int


class CodeStore:
    def __init__(self, clock: Callable[[], float] = time.time, ttl_s: float = CODE_TTL_S) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._held: dict[str, tuple[Grant, float]] = {}  # by the code's SHA-256, with expiry
        self._lock = threading.Lock()

    def issue(self, grant: Grant) -> str:
        """A new code for ``grant``, valid for the store's time to live."""
        code = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            for key in [k for k, (_, expiry) in self._held.items() if expiry <= now]:
                del self._held[key]
            self._held[_key(code)] = (grant, now + self._ttl_s)
        return code

    def redeem(self, code: str) -> Grant | None:
        """The grant ``code`` stands for, if it was issued here and is unexpired; the code
        is gone afterwards either way."""
        with self._lock:
            held = self._held.pop(_key(code), None)
        if held is None or self._clock() >= held[1]:
            return None
        return held[0]


def _key(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)), unpadded: the S256 code challenge (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` is well formed and hashes to ``challenge`` (RFC 7636 4.6)."""
    if not PKCE_VALUE.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
