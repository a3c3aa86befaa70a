"""A witness of the audit trail, pure (no I/O): it holds the last checkpoint it cosigned and
cosigns a newer one only when that one is signed by the trail's key and a consistency proof
(RFC 9162) shows its tree grew from the last: so a trail that was rewritten, forked or cut
short can never gather the witness's signature again. Its cosignature is Ed25519, under the
witness's own key, over the checkpoint's signed bytes.

As Certificate Transparency's witnesses do: a log operator who holds its own signing key
can still sign anything; what it cannot do is show two histories to one witness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.audit.chain import Checkpoint
from services.audit.proofs import verify_consistency

COSIGNATURE_CONTEXT = b"infoshare witness cosignature v1\n"


class Refused(ValueError):
    """The witness will not cosign; the message says why."""


@dataclass(frozen=True)
class Seen:
    """The last checkpoint the witness cosigned (none: it has cosigned nothing yet)."""

    tree_size: int = 0
    root: str = ""


def cosigned_bytes(checkpoint: Checkpoint) -> bytes:
    return COSIGNATURE_CONTEXT + checkpoint.signed_bytes()


def cosign(
    checkpoint: Checkpoint,
    proof: Sequence[bytes],
    *,
    seen: Seen,
    log_keys: Mapping[str, Ed25519PublicKey],
    key: Ed25519PrivateKey,
) -> bytes:
    """The cosignature of ``checkpoint``, or Refused: not signed by the trail's key, smaller
    than what was cosigned, the same size with another root, or no proof that it grew from
    the last one cosigned."""
    signer = log_keys.get(checkpoint.key_id)
    if signer is None or not checkpoint.signature_valid(signer):
        raise Refused("the checkpoint is not signed by the audit trail's key")
    if checkpoint.tree_size < seen.tree_size:
        raise Refused(
            f"the trail went back: {checkpoint.tree_size} records after {seen.tree_size} cosigned"
        )
    if seen.tree_size and checkpoint.tree_size == seen.tree_size:
        if checkpoint.root != seen.root:
            raise Refused(f"a second history of {seen.tree_size} records (the trail forked)")
    elif seen.tree_size and not verify_consistency(
        seen.tree_size,
        checkpoint.tree_size,
        bytes.fromhex(seen.root),
        bytes.fromhex(checkpoint.root),
        proof,
    ):
        raise Refused(
            f"no proof that the trail of {checkpoint.tree_size} records grew from the "
            f"{seen.tree_size} cosigned"
        )
    return key.sign(cosigned_bytes(checkpoint))


def cosignature_valid(checkpoint: Checkpoint, signature: bytes, witness: Ed25519PublicKey) -> bool:
    try:
        witness.verify(signature, cosigned_bytes(checkpoint))
    except InvalidSignature:
        return False
    return True
