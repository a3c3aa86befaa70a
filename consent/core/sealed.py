"""Fields encrypted for one recipient: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
HKDF-SHA256, AES-128-GCM, from ``cryptography``.

``hpke1.<base64url(encapsulated key || ciphertext)>``. The ``info`` binds the value to the
recipient and field, so a sealed value moved to another field or recipient does not open.
Only the recipient's private key opens it: not the hub, not another recipient.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

PREFIX = "hpke1"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)


class SealError(ValueError):
    """A sealed value that is malformed or does not open with this key, recipient and field."""


def _info(recipient: str, path: str) -> bytes:
    return f"infoshare:sealed:{recipient}:{path}".encode()


def seal(public_key: X25519PublicKey, *, recipient: str, path: str, value: str) -> str:
    sealed = _SUITE.encrypt(value.encode(), public_key, info=_info(recipient, path))
    return f"{PREFIX}.{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"


def open_sealed(private_key: X25519PrivateKey, *, recipient: str, path: str, sealed: str) -> str:
    prefix, _, body = sealed.partition(".")
    if prefix != PREFIX or not body:
        raise SealError("not a sealed infoshare value")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return _SUITE.decrypt(raw, private_key, info=_info(recipient, path)).decode()
    except (binascii.Error, ValueError, InvalidTag):
        raise SealError("the value does not open for this recipient and field") from None
