"""Recipients' X25519 key pairs for the ``encrypt`` rule, made on the recipient's side.

A recipient makes its own pair (``infoshare keys recipient new``) and keeps the private
half; the hub's operator registers only the public half (``infoshare keys trust``). The
hub never makes, holds or sees a recipient's private key.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from services.backbone.errors import ConfigurationError
from services.backbone.keyring import dump_keyring, parse_keyring, read_keyring_doc, write_private


def new_recipient_key(path: Path, *, overwrite: bool = False) -> str:
    """Write a new private key to ``path`` (0600); returns its public half, base64."""
    if path.exists() and not overwrite:
        raise ConfigurationError(f"{path} exists; refusing to overwrite a key without --force")
    key = X25519PrivateKey.generate()
    write_private(path, base64.b64encode(key.private_bytes_raw()).decode() + "\n")
    return public_text(key.public_key())


def public_text(key: X25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def parse_public(text: str) -> X25519PublicKey:
    """A recipient's public key as it sends it: base64 of 32 raw bytes."""
    try:
        return X25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise ConfigurationError("not a base64 X25519 public key (32 bytes)") from None


def trust_recipient(keyring: Path, agency: str, public: str) -> bool:
    """Register (or replace) ``agency``'s public key in the keyring; whether it replaced
    one. Fields already sealed to the old key open only with the old private key."""
    key = public_text(parse_public(public))
    doc = read_keyring_doc(keyring)
    registered = dict(doc.get("recipient_public") or {})
    replaced = agency in registered and registered[agency] != key
    registered[agency] = key
    doc["recipient_public"] = registered
    parse_keyring(doc)  # never write a keyring that would not load
    write_private(keyring, dump_keyring(doc))
    return replaced
