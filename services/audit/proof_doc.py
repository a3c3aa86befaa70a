"""The documents an outside verifier is given, pure (no I/O): an inclusion proof of one
record, and the trail's public keys. Checking either needs nothing secret and nothing from
infoshare's store: SHA-256, Ed25519 and RFC 9162's algorithms (proofs.py).

An inclusion proof carries the record's canonical bytes (what its leaf hash covers, its
sequence number included), the signed checkpoint it is proved against, and the audit path.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit.chain import Checkpoint, leaf_hash
from services.audit.proofs import verify_inclusion

PROOF_FORMAT = "infoshare-audit-inclusion-proof/1"
KEYS_FORMAT = "infoshare-audit-public-keys/1"


def inclusion_document(
    audit_id: str, seq: int, canonical: bytes, checkpoint: Checkpoint, path: Sequence[bytes]
) -> dict[str, Any]:
    return {
        "format": PROOF_FORMAT,
        "audit_id": audit_id,
        "leaf_index": seq - 1,
        "record": canonical.decode(),
        "checkpoint": checkpoint.to_json(),
        "path": [p.hex() for p in path],
    }


def check_inclusion(doc: Any, public_keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Why ``doc`` does not prove its record is in the trail signed by one of
    ``public_keys``; None when it does."""
    try:
        if doc.get("format") != PROOF_FORMAT:
            return f"not an inclusion proof (format is not {PROOF_FORMAT})"
        record = str(doc["record"]).encode()
        index = int(doc["leaf_index"])
        checkpoint = Checkpoint.from_json(doc["checkpoint"])
        path = [bytes.fromhex(str(p)) for p in doc["path"]]
        root = bytes.fromhex(checkpoint.root)
        seq = orjson.loads(record).get("seq")
    except (AttributeError, KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return "the proof document is malformed"
    if seq != index + 1:
        return f"the record is number {seq}, the proof is for leaf {index}"
    signer = public_keys.get(checkpoint.key_id)
    if signer is None:
        return f"the checkpoint is signed by key {checkpoint.key_id!r}, not one given"
    if not checkpoint.signature_valid(signer):
        return "the checkpoint's signature does not verify"
    if not verify_inclusion(leaf_hash(record), index, checkpoint.tree_size, path, root):
        return f"the record is not leaf {index} of the signed tree of {checkpoint.tree_size}"
    return None


def public_keys_document(keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    return {
        "format": KEYS_FORMAT,
        "keys": {
            key_id: base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
            for key_id, key in keys.items()
        },
    }


def read_public_keys(doc: Any) -> dict[str, Ed25519PublicKey]:
    """The keys of a public-keys document; ValueError saying what is wrong."""
    if not isinstance(doc, Mapping) or doc.get("format") != KEYS_FORMAT:
        raise ValueError(f"not a public keys document (format is not {KEYS_FORMAT})")
    keys = doc.get("keys")
    if not isinstance(keys, Mapping) or not keys:
        raise ValueError("the document holds no keys")
    found = {}
    for key_id, text in keys.items():
        try:
            found[str(key_id)] = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(text)))
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r} is not an Ed25519 public key") from None
    return found
