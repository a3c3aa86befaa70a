"""The sealed-field contract between the hub, which seals a field for one recipient, and the
recipient, which opens it. Only the recipient's private key opens a sealed value: not the
hub, not another recipient. The hub seals (consent/core/sealed.py); the recipient opens
(services/agency/sealed.py).

Two formats, both base64url without padding:

- ``env1.<key id>.<wrapped data key>.<nonce || ciphertext>`` (written since issue 18). The
  value is AES-256-GCM under a data key the hub draws per recipient and reuses for a window
  bounded by count and time. The data key is wrapped once per window with HPKE (RFC 9180)
  base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, to the recipient's public
  key, with ``info`` naming the recipient and the key id; the wrapped key travels in every
  value, so each value opens on its own. The nonce is the window's counter: unique per data
  key. The associated data binds the value to its recipient, field and key id, so a value
  moved to another field or recipient does not open. A recipient caches unwrapped data keys
  by (key id, wrapped key): one HPKE opening per window instead of one per value.
- ``hpke1.<encapsulated key || ciphertext>``: one HPKE seal per value, ``info`` binding
  recipient and field. Written before issue 18; still opened.

docs/decisions.md gives the security argument.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hpke

PREFIX = "hpke1"
ENVELOPE_PREFIX = "env1"
DATA_KEY_BYTES = 32  # AES-256-GCM
NONCE_BYTES = 12
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)


class SealError(ValueError):
    """A sealed value that is malformed or does not open with this key, recipient and field."""


def info(recipient: str, path: str) -> bytes:
    """What binds a sealed value to its recipient and field."""
    return f"infoshare:sealed:{recipient}:{path}".encode()


def data_key_info(recipient: str, key_id: str) -> bytes:
    """What binds a wrapped data key to its recipient and id."""
    return f"infoshare:data-key:{recipient}:{key_id}".encode()


def envelope_aad(recipient: str, path: str, key_id: str) -> bytes:
    """What binds a value sealed under a data key to its recipient, field and key id."""
    return info(recipient, path) + b"\x1f" + key_id.encode()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    """The bytes of unpadded base64url; SealError if it is not that."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealError("the value does not open for this recipient and field") from None


def is_sealed(text: str) -> bool:
    """Whether a field's text is a sealed value of either format."""
    return text.startswith((f"{PREFIX}.", f"{ENVELOPE_PREFIX}."))


def wrap(sealed: bytes) -> str:
    """The field's text: the prefix and the HPKE output, base64url without padding."""
    return f"{PREFIX}.{b64(sealed)}"


def unwrap(text: str) -> bytes:
    """The HPKE output of a field's text; SealError if it is not a sealed value."""
    prefix, _, body = text.partition(".")
    if prefix != PREFIX or not body:
        raise SealError("not a sealed infoshare value")
    return unb64(body)
