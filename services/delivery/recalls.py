"""Recall notices in the delivery store, as pure rules (the contract is
services/backbone/recall.py): what each notice in a batch withdraws, and the audit record of
each purge. The store deletes and logs in the batch's transaction (recall_purge.py);
numbering.py decides which subscriptions are told.

A notice withdraws the recipient's delivery it names if the store holds it: stored before
the batch, or earlier in the same batch (the processor writes a notice after the delivery,
on its partition, so both can be read at once). A delivery is withdrawn once: a second
notice naming it finds it gone, and is logged as not held.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.backbone import recall
from services.backbone.audit_contract import AuditRecord, audit_id_for
from services.delivery.deadletter import ACTOR
from services.delivery.model import Delivered

Key = tuple[str, str]  # (recipient agency, its delivery id)
_TYPE_LENGTH = 128  # the audit record's (and the log's) event_type and protocol_id


@dataclass(frozen=True)
class Withdrawal:
    """What the notice at ``notice`` (its index in the batch) withdraws from ``agency``."""

    notice: int
    agency: str
    recalls: str  # the recipient's id of the delivery withdrawn
    found: bool  # held: before the batch, or earlier in it
    earlier: int | None = None  # found earlier in the batch: its index there
    notified: frozenset[str] = frozenset()  # found before: the subscriptions given it


def withdrawals(
    deliveries: Sequence[tuple[str, Delivered]], held: Mapping[Key, frozenset[str]]
) -> list[Withdrawal]:
    """For each notice in a batch of new ``(agency, event)``, in order, what it withdraws.
    ``held``: the deliveries the store held before the batch that its notices name, each
    with the subscriptions that were given it."""
    before = dict(held)
    here: dict[Key, int] = {}
    out: list[Withdrawal] = []
    for index, (agency, event) in enumerate(deliveries):
        if event.recalls is None:
            here[(agency, event.event_id)] = index
            continue
        key = (agency, event.recalls)
        earlier = here.pop(key, None)
        notified = before.pop(key, None)
        found = earlier is not None or notified is not None
        out.append(
            Withdrawal(index, agency, event.recalls, found, earlier, notified or frozenset())
        )
        here[(agency, event.event_id)] = index  # a notice may itself be recalled
    return out


def recalled_type(notice: Delivered) -> str | None:
    """The type of the delivery withdrawn, as the notice says, if it says one the log and
    the audit record can hold."""
    said = notice.data.get("recalled_type")
    return said if isinstance(said, str) and 0 < len(said) <= _TYPE_LENGTH else None


def purge_audit_id(*, topic: str, partition: int, offset: int, agency: str) -> str:
    """A purge's id (its log's and its audit record's): the notice's Kafka coordinates and
    recipient, as :meth:`AuditRecord.about` makes it. The same notice read again gives the
    same id, so neither the log nor the trail keeps it twice."""
    return audit_id_for(
        topic=topic,
        partition=partition,
        offset=offset,
        recipient=agency,
        protocol=recall.PURGE_ACTION,
    )


class PurgeLog(typing.Protocol):
    """One purge as the store logs it (tables.RecallPurgeRow)."""

    id: str
    agency: str
    notice_id: str
    recalled_type: str | None
    protocol: str | None
    found: bool
    notifications: int
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int
    purged_at: datetime


def purge_reason(*, found: bool, notifications: int) -> str:
    """The purge in words: counts only, never an id or a value."""
    if not found:
        return (
            "the delivery store did not hold the delivery the recall names (purged already "
            "or never stored); it keeps the notice"
        )
    queued = "notification" if notifications == 1 else "notifications"
    return (
        "the delivery store deleted the delivery the recall names, and its "
        f"{notifications} {queued} to subscriptions; it keeps the notice in its place"
    )


def purge_audit(log: PurgeLog) -> AuditRecord:
    """The ``recall_purge`` audit record of a logged purge (for ``audit.activity``), under
    the log's id: sent again after a crash, the trail keeps it once."""
    at = log.purged_at if log.purged_at.tzinfo else log.purged_at.replace(tzinfo=UTC)
    return recall.purge_audit(
        coordinates=(log.kafka_topic, log.kafka_partition, log.kafka_offset),
        store=recall.PURGE_ACTION,
        recipient=log.agency,
        at=at,
        found=log.found,
        reason=purge_reason(found=log.found, notifications=log.notifications),
        actor=ACTOR,
        notice_id=log.notice_id,
        recalled_type=log.recalled_type,
        protocol=log.protocol,
    )
