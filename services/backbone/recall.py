"""The recall contract: one home for what an agency's recall request, the processor's notice
to each recipient and the stores' purges say to each other.

1. An agency recalls a submission through its service (``POST /submissions/{id}/recall``).
   The service publishes, on its own source topic, one ``infoshare.recall.requested`` event
   per child the submission was about: the events recalled, the reason (a code, never free
   text to a recipient) and just enough of the subject to key it (its identifiers, the same
   routing key as the events it recalls, so it follows them on their partition).
2. The processor sends every recipient that received one of those events an
   ``infoshare.record.recalled`` notice on its ``deliver.<recipient>`` topic, under the
   delivery's own record key (after it, in order) and with the extension ``recalls``: the
   recipient's own id of the delivery withdrawn. Each notice is audited (``recall``).
3. The delivery service and each agency inbox, on reading a notice, delete the delivery it
   names and keep the notice in its place; each purge is audited on ``audit.activity``
   (``recall_purge``), naming the recipient, the notice's id and what it found.

Pure: names, codes and the notice's reading; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.backbone import envelope
from services.backbone.audit_contract import AuditOutcome, AuditRecord, protocol_parts

RECALL_REQUESTED = "infoshare.recall.requested"
"""Published by an agency service on its own source topic; never delivered to anyone."""
RECALLED = "infoshare.record.recalled"
"""The notice a recipient gets on its channel (topic, webhook, pull inbox, agency inbox)."""
NOTICE_SOURCE = "/infoshare/processor"  # the hub made the notice, on the publisher's word

AUDIT_ACTION = "recall"  # the processor's record of each notice (or of a recall that found none)
PURGE_ACTION = "recall_purge"  # a store's record of deleting what a notice withdrew
REASON_CODE_PREFIX = "recall."
NOTHING_HELD = "recall.nothing_shared"  # the processor knew of no recipient of the event
RECALLED_BEFORE = "recall.not_shared_again"  # a recalled event read again: suppressed
PURGED = "recall_purge.deleted"
NOT_HELD = "recall_purge.not_held"  # the store did not hold it (purged already, never stored)

RECALL_WINDOW_DAYS = 365
"""How long the processor remembers who received each event, so that a recall can reach
them. A year: errors in what was shared are found well within it, and the memory is held in
the processor's RAM (docs/decisions.md). An agency service refuses to recall what it
published longer ago; an IG officer finds its recipients in the disclosure report."""
RECALL_WINDOW_MS = RECALL_WINDOW_DAYS * 24 * 3600 * 1000


class RecallReason(StrEnum):
    """Why a record is recalled: a code the recipient is told. Free text stays with the
    publisher and the audit trail (the ``note``), since it can name anyone."""

    SHARED_IN_ERROR = "shared_in_error"  # it should not have been shared at all
    WRONG_SUBJECT = "wrong_subject"  # it is about another child
    INACCURATE = "inaccurate"  # its content is wrong, and no correction is coming
    NO_LAWFUL_BASIS = "no_lawful_basis"  # the grounds it was shared on did not hold

    def describe(self) -> str:
        return _DESCRIBED[self]


_DESCRIBED = {
    RecallReason.SHARED_IN_ERROR: "it was shared in error",
    RecallReason.WRONG_SUBJECT: "it is about another child",
    RecallReason.INACCURATE: "its content is inaccurate",
    RecallReason.NO_LAWFUL_BASIS: "the grounds it was shared on did not hold",
}

SUBJECT_KEYS = ("indexed_as", "nhs_number", "upn", "la_person_id")
"""What of a recalled event's subject its recall carries: the identifiers it is keyed and
found by in the trail, nothing else (no name, date of birth or address)."""


def recall_subject(subject: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an event's subject its recall carries."""
    return {k: subject[k] for k in SUBJECT_KEYS if subject.get(k) is not None}


@dataclass(frozen=True)
class Notice:
    """A recall notice as a recipient's store reads it: the id of the delivery it withdraws
    (the recipient's own) and why."""

    recalls: str
    reason: str


def notice_of(
    event_type: str, extensions: Mapping[str, str], data: Mapping[str, Any]
) -> Notice | None:
    """The notice a delivered event is, or None if it is not one. A notice whose extension
    and data disagree, or name nothing, is not taken as one (nothing is deleted on its word)."""
    if event_type != RECALLED:
        return None
    named = extensions.get(envelope.EXT_RECALLS) or ""
    if not named or data.get("recalls") != named:
        return None
    return Notice(recalls=named, reason=str(data.get("reason") or ""))


def purge_audit(
    *,
    coordinates: tuple[str, int, int],
    store: str,
    recipient: str,
    at: datetime,
    found: bool,
    reason: str,
    actor: str,
    notice_id: str,
    recalled_type: str | None,
    protocol: str | None,
) -> AuditRecord:
    """A store's ``recall_purge`` record (for ``audit.activity``) of what a notice read at
    ``coordinates`` (topic, partition, offset) deleted. Its id comes from those, the
    recipient and ``store`` (a word per store: the delivery store and an agency inbox read
    the same notice), so the same notice read or sent again keeps it. Names the notice (as
    its event and delivery: the disclosure report finds it by that), the type and protocol
    withdrawn; never a key, a payload or an identifier."""
    topic, partition, offset = coordinates
    protocol_id, version = protocol_parts(protocol)
    return AuditRecord.about(
        topic=topic,
        partition=partition,
        offset=offset,
        recipient=recipient,
        protocol=store,
        recorded_at=at,
        occurred_at=at,
        action=PURGE_ACTION,
        decision=AuditOutcome.RECORDED,
        reason_code=PURGED if found else NOT_HELD,
        reason=reason,
        actor=actor,
        event_id=notice_id,
        event_type=recalled_type if recalled_type and len(recalled_type) <= _TEXT else None,
        protocol_id=protocol_id if protocol_id and len(protocol_id) <= _TEXT else None,
        protocol_version=version if protocol_id and len(protocol_id) <= _TEXT else None,
        delivery_id=notice_id,
    )


_TEXT = 128  # the trail's event_type and protocol_id
