"""Webhook signatures: what the sender adds and what a receiver checks.

Every POST carries ``Infoshare-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 under the subscription's secret of ``f"{t}.".encode() + body``. The timestamp is
signed too, so a receiver that refuses old timestamps refuses replays. A receiver needs only
this module (standard library only) or the three lines of :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Infoshare-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
MAX_TIMESTAMP_DIGITS = 12  # unix seconds for the next 30,000 years


def new_secret() -> str:
    """A fresh per-subscription secret (256 random bits), shown to the subscriber once."""
    return "whsec_" + secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The ``Infoshare-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` under ``secret``, made within
    ``tolerance_s`` of ``now`` (unix seconds) either way. Use the raw body bytes as
    received, before any JSON parsing. Several ``v1=`` entries are allowed (any may match),
    so a sender can sign with an old and a new secret while they are rotated."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        # ASCII digits only (str.isdigit also takes "²"), and few: int() of a huge number
        # is slow, and float arithmetic on it overflows.
        if name == "t" and value.isascii() and value.isdigit():
            if len(value) > MAX_TIMESTAMP_DIGITS:
                return False
            timestamp = int(value)
        elif name == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body)
    # Compare with every candidate, in constant time each, and without an early exit.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(expected.encode(), candidate.encode())
    return found


def idempotency_key(subscription_id: str, event_number: int) -> str:
    """Stable for one notification however often it is sent: receivers drop repeats."""
    return f"{subscription_id}:{event_number}"
