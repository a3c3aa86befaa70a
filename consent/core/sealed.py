"""Sealing a field for one recipient (the hub's side of services/backbone/sealed.py): only
the recipient's private key opens it, not the hub, not another recipient."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from services.backbone.sealed import SUITE, info, wrap


def seal(public_key: X25519PublicKey, *, recipient: str, path: str, value: str) -> str:
    """``value`` sealed to ``recipient``'s public key, bound to the field ``path``."""
    return wrap(SUITE.encrypt(value.encode(), public_key, info=info(recipient, path)))
