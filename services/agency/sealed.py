"""Opening a field the hub sealed for this agency (the recipient's side of
services/backbone/sealed.py), with the agency's own private key."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.backbone.sealed import SUITE, SealError, info, unwrap


def open_sealed(private_key: X25519PrivateKey, *, recipient: str, path: str, sealed: str) -> str:
    """The clear value of a field sealed to ``recipient`` at ``path``; SealError if it is not
    one, or does not open with this key, recipient and field."""
    raw = unwrap(sealed)
    try:
        return SUITE.decrypt(raw, private_key, info=info(recipient, path)).decode()
    except (ValueError, InvalidTag):
        raise SealError("the value does not open for this recipient and field") from None
