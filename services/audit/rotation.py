"""A change of the audit trail's signing key is recorded in the trail itself: when the audit
service starts with a key other than the one that signed the newest checkpoint, it first
seals a record saying so (action ``key_rotation``, the new key's id in ``key_id``, the old
in the reason), signed under the new key with its batch. ``infoshare audit verify`` then
holds each key to its period: a checkpoint signed by a key before the record that brought
it in is a forgery (what a leaked new key would be used for, backdated)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from services.audit.chain import Checkpoint
from services.audit.models import AuditCheckpoint
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord

ROTATION_ACTION = "key_rotation"


def record_rotation(store: AuditStore) -> str | None:
    """Seal the record of a new signing key if the newest checkpoint was signed by another;
    the key it replaced, or None."""
    with Session(store.engine) as session:
        newest = session.exec(
            select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size).desc()).limit(1)
        ).first()
    new = store.sealing.key_id
    if newest is None or newest.key_id == new:
        return None
    store.add_batch(
        [
            AuditRecord(
                audit_id=str(uuid.uuid4()),
                recorded_at=datetime.now(UTC),
                action=ROTATION_ACTION,
                decision=AuditOutcome.RECORDED,
                reason_code="audit.signing_key_rotated",
                reason=f"checkpoints are signed by {new} from here on; {newest.key_id} "
                "signed those before",
                actor="infoshare-audit",
                key_id=new,
            )
        ]
    )
    return newest.key_id


def announced(content: Mapping[str, Any]) -> str | None:
    """The signing key a sealed record brings in, if it is a rotation record."""
    return str(content.get("key_id")) if content.get("action") == ROTATION_ACTION else None


def out_of_period(checkpoints: Iterable[Checkpoint], since: Mapping[str, int]) -> str | None:
    """A checkpoint signed by a key before the record (``since``: key id -> its sequence
    number) that brought the key in."""
    for cp in sorted(checkpoints, key=lambda c: c.tree_size):
        start = since.get(cp.key_id)
        if start is not None and cp.tree_size < start:
            return (
                f"the checkpoint of {cp.tree_size} records is signed by {cp.key_id!r}, which "
                f"the trail brought in only at record {start}"
            )
    return None
