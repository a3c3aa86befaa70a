"""Reversible tokens: deterministic authenticated encryption (AES-SIV, RFC 5297).

``tok1.<key id>.<base64url ciphertext>``. The same value gives the same token for one
recipient and field (so a recipient can link its records), different tokens for another
recipient or field (the recipient and path are the associated data). Only the hub, holding
the key the token names, can reverse it; keys are rotated by adding a new active key and
keeping old ones until every token under them has expired.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from services.backbone.keyed import Key

PREFIX = "tok1"


class TokenError(ValueError):
    """A token that is malformed, names an unknown key, or does not authenticate."""


def token_domain(recipient: str, path: str) -> bytes:
    return f"token:{recipient}:{path}".encode()


def tokenise(key: Key, *, recipient: str, path: str, value: str) -> str:
    sealed = AESSIV(key.secret).encrypt(value.encode(), [token_domain(recipient, path)])
    body = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
    return f"{PREFIX}.{key.key_id}.{body}"


def key_id_of(token: str) -> str:
    parts = token.split(".")
    if len(parts) < 3 or parts[0] != PREFIX:
        raise TokenError("not an infoshare token")
    return ".".join(parts[1:-1])


def detokenise(keys: Mapping[str, Key], *, recipient: str, path: str, token: str) -> str:
    """The value behind ``token`` as given to ``recipient`` for ``path``."""
    key_id = key_id_of(token)
    key = keys.get(key_id)
    if key is None:
        # Not quoted: the message may be answered to the caller, who never sees input echoed.
        raise TokenError("the token names a key the keyring does not hold (retired?)")
    body = token.rsplit(".", 1)[1]
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return AESSIV(key.secret).decrypt(sealed, [token_domain(recipient, path)]).decode()
    except (binascii.Error, ValueError, InvalidTag):
        raise TokenError("the token does not authenticate for this recipient and field") from None
