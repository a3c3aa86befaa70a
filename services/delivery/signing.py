"""Webhook signatures, as Standard Webhooks (https://www.standardwebhooks.com) makes them.

Every POST carries three headers:

- ``webhook-id``: the message id, the same on every retry of one notification (receivers
  drop repeats by it; ``Idempotency-Key`` carries the same value);
- ``webhook-timestamp``: when it was sent, in unix seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of f"{id}.{timestamp}." + body>`` under the
  subscription's secret. Several space-separated ``v1,`` entries may come (one per secret
  while secrets are rotated): any one matching is enough.

The secret is ``whsec_`` and the base64 of 32 random bytes; those bytes are the HMAC key. A
receiver verifies with any Standard Webhooks library, e.g. Python's ``standardwebhooks``:
``Webhook(secret).verify(raw_body, headers)``, which also refuses a timestamp more than five
minutes off (so a replay is refused).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random
from collections.abc import Sequence

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PREFIX = "whsec_"
SCHEME = "v1"
SECRET_BYTES = 32
_URL_SAFE = str.maketrans("-_", "+/")


def new_secret() -> str:
    """A fresh per-subscription secret (256 random bits), shown to the subscriber once."""
    return PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for. Secrets made before Standard Webhooks signing are
    in the URL-safe base64 alphabet without padding; they name their bytes the same way
    (a receiver turns ``-`` into ``+``, ``_`` into ``/`` and pads with ``=``)."""
    text = secret.removeprefix(PREFIX).translate(_URL_SAFE)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ and base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secrets: str | Sequence[str], body: bytes, *, msg_id: str, timestamp: int) -> str:
    """The ``webhook-signature`` value of ``body`` sent as ``msg_id`` at ``timestamp``: one
    ``v1,`` entry per secret (several while they are rotated), space-separated."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    macs = (hmac.new(secret_key(s), signed, hashlib.sha256).digest() for s in keys)
    return " ".join(f"{SCHEME},{base64.b64encode(mac).decode()}" for mac in macs)


def signature_headers(
    secrets: str | Sequence[str], body: bytes, *, msg_id: str, timestamp: int
) -> dict[str, str]:
    """The three Standard Webhooks headers of one POST."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secrets, body, msg_id=msg_id, timestamp=timestamp),
    }


def idempotency_key(subscription_id: str, event_number: int) -> str:
    """Stable for one notification however often it is sent: receivers drop repeats."""
    return f"{subscription_id}:{event_number}"
