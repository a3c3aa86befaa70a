"""The sealed-field contract between the hub, which seals a field for one recipient, and the
recipient, which opens it: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
HKDF-SHA256, AES-128-GCM, from ``cryptography``.

``hpke1.<base64url(encapsulated key || ciphertext)>``. The ``info`` binds the value to the
recipient and field, so a sealed value moved to another field or recipient does not open.
The hub seals with the recipient's public key (consent/core/sealed.py); only the recipient's
private key opens it (services/agency/sealed.py): not the hub, not another recipient.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hpke

PREFIX = "hpke1"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)


class SealError(ValueError):
    """A sealed value that is malformed or does not open with this key, recipient and field."""


def info(recipient: str, path: str) -> bytes:
    """What binds a sealed value to its recipient and field."""
    return f"infoshare:sealed:{recipient}:{path}".encode()


def wrap(sealed: bytes) -> str:
    """The field's text: the prefix and the HPKE output, base64url without padding."""
    return f"{PREFIX}.{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"


def unwrap(text: str) -> bytes:
    """The HPKE output of a field's text; SealError if it is not a sealed value."""
    prefix, _, body = text.partition(".")
    if prefix != PREFIX or not body:
        raise SealError("not a sealed infoshare value")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SealError("the value does not open for this recipient and field") from None
