"""The documents an outside verifier is given, pure (no I/O): an inclusion proof of one
record, and the trail's public keys. Checking either needs nothing secret and nothing from
infoshare's store: SHA-256, Ed25519 and RFC 9162's algorithms (proofs.py).

An inclusion proof carries the record's canonical bytes (what its leaf hash covers, its
sequence number included), the signed checkpoint it is proved against, and the audit path.
A consistency proof carries two signed checkpoints and the RFC 9162 proof that the older
tree is the start of the newer: nothing signed before was changed or removed.
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
from services.audit.proofs import verify_consistency, verify_inclusion

PROOF_FORMAT = "infoshare-audit-inclusion-proof/1"
GROWTH_FORMAT = "infoshare-audit-consistency-proof/1"
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


def consistency_document(old: Checkpoint, new: Checkpoint, path: Sequence[bytes]) -> dict[str, Any]:
    return {
        "format": GROWTH_FORMAT,
        "old": old.to_json(),
        "new": new.to_json(),
        "path": [p.hex() for p in path],
    }


def check_consistency(doc: Any, public_keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Why ``doc`` does not prove that its newer signed checkpoint extends its older one;
    None when it does."""
    try:
        old, new = Checkpoint.from_json(doc["old"]), Checkpoint.from_json(doc["new"])
        path = [bytes.fromhex(str(p)) for p in doc["path"]]
        roots = bytes.fromhex(old.root), bytes.fromhex(new.root)
    except (AttributeError, KeyError, TypeError, ValueError):
        return "the proof document is malformed"
    for which, checkpoint in (("older", old), ("newer", new)):
        signer = public_keys.get(checkpoint.key_id)
        if signer is None:
            return f"the {which} checkpoint is signed by key {checkpoint.key_id!r}, not one given"
        if not checkpoint.signature_valid(signer):
            return f"the {which} checkpoint's signature does not verify"
    if not verify_consistency(old.tree_size, new.tree_size, *roots, path):
        return (
            f"the signed tree of {old.tree_size} records is not the start of the signed tree "
            f"of {new.tree_size}: the trail was rewritten between them"
        )
    return None


def check_document(doc: Any, public_keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Check a proof of either kind (by its ``format``); None when it proves what it says."""
    kind = doc.get("format") if isinstance(doc, Mapping) else None
    if kind == GROWTH_FORMAT:
        return check_consistency(doc, public_keys)
    if kind == PROOF_FORMAT:
        return check_inclusion(doc, public_keys)
    return f"not a proof (format is neither {PROOF_FORMAT} nor {GROWTH_FORMAT})"


def proved(doc: Mapping[str, Any]) -> str:
    """What a proof that checked shows, in a sentence."""
    if doc["format"] == GROWTH_FORMAT:
        old, new = doc["old"], doc["new"]
        return (
            f"the trail of {old['tree_size']} records signed at {old['created_at']} is the "
            f"start of the trail of {new['tree_size']} signed at {new['created_at']}: it only grew"
        )
    cp = doc["checkpoint"]
    return (
        f"record {doc['leaf_index'] + 1} ({doc['audit_id']}) is in the trail of "
        f"{cp['tree_size']} records signed at {cp['created_at']} by {cp['key_id']}"
    )


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
