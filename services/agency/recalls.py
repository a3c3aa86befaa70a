"""An agency recalls one of its submissions (services/backbone/recall.py has the contract):
the use case, with plain arguments; the HTTP edge is in routes.py.

The recall is itself a submission of the agency: one ``infoshare.recall.requested`` event per
child, under the record key its events were published with (kept in the outbox for this),
stored in the outbox in one transaction and published by the relay after the events it
recalls. Its idempotency key names the submission and the events recalled, so the same
recall sent again is answered as before and publishes nothing; the same events recalled
again for another reason are refused. Refused, with nothing stored: a submission that is
itself a recall, events not in the submission, events published before recalls were
possible or longer ago than the recall window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.agency.submission import Intake
from services.backbone import envelope, telemetry
from services.backbone.errors import InputRejected
from services.backbone.recall import RECALL_REQUESTED, RECALL_WINDOW_DAYS, RecallReason
from services.backbone.topics import TRANSIT_RETENTION_MS
from services.outbox.store import Accepted, IdempotencyKeyReused, NewSubmission, Record
from services.outbox.tables import OutboxRow

# What the processor remembers, less the longest a record may wait on Kafka for it (an
# outage the system survives): a recall accepted here always finds its recipients.
WINDOW = timedelta(days=RECALL_WINDOW_DAYS) - timedelta(milliseconds=TRANSIT_RETENTION_MS)


class NoSuchSubmission(Exception):
    """No submission of this agency has the id."""


class RecalledAlready(Exception):
    """These events were recalled already, for another reason."""


class CannotRecall(Exception):
    """What is named cannot be recalled through infoshare (the message says why)."""


@dataclass(frozen=True)
class Recall:
    submission_id: str
    reason: RecallReason
    event_ids: Sequence[str] = ()  # empty: every event of the submission
    key_id: str = ""  # the API key that asked


def recall(intake: Intake, ask: Recall, *, now: datetime | None = None) -> Accepted:
    """Store the recall of ``ask``'s events in the outbox (or answer as before, for the same
    recall sent again); raises NoSuchSubmission, InputRejected, CannotRecall or
    RecalledAlready, having stored nothing."""
    now = now or datetime.now(UTC)
    found = intake.outbox.submission(intake.agency, ask.submission_id)
    if found is None:
        raise NoSuchSubmission(ask.submission_id)
    _, rows = found
    chosen = _chosen(rows, ask.event_ids)
    idempotency_key = "recall:" + _digest(ask.submission_id, *sorted(r.event_id for r in chosen))
    fingerprint = _digest(ask.reason.value)
    try:
        earlier = intake.outbox.replay(
            agency=intake.agency, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
    except IdempotencyKeyReused:
        raise RecalledAlready(ask.submission_id) from None
    if earlier is not None:
        return earlier
    _recallable(chosen, now)
    records = _records(intake, ask, chosen, idempotency_key)
    answer = {
        "status": "accepted",
        "recalls": ask.submission_id,
        "events": [{"id": r.event_id, "type": r.event_type} for r in records],
    }
    new = NewSubmission(
        agency=intake.agency,
        key_id=ask.key_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        records=records,
        response=answer,
    )
    (stored,) = intake.outbox.accept_all([new], now=now)
    if isinstance(stored, IdempotencyKeyReused):
        raise RecalledAlready(ask.submission_id)
    if isinstance(stored, Exception):
        raise stored
    intake.published()
    return stored


def purge_outbox(intake: Intake, now: datetime) -> int:
    """Delete the outbox's records published before anything can recall them (their
    content went at publication); how many."""
    return intake.outbox.purge_published(now - WINDOW)


def _chosen(rows: Sequence[OutboxRow], event_ids: Sequence[str]) -> list[OutboxRow]:
    if any(r.event_type == RECALL_REQUESTED for r in rows):
        raise InputRejected(
            ["path", "submission_id"], "a recall cannot be recalled", "recall.of_a_recall"
        )
    if not event_ids:
        return list(rows)
    held = {r.event_id: r for r in rows}
    for i, event_id in enumerate(event_ids):
        if event_id not in held:
            raise InputRejected(
                ["body", "events", i], "no event of this submission has this id", "recall.unknown"
            )
    return [held[e] for e in dict.fromkeys(event_ids)]


def _recallable(rows: Sequence[OutboxRow], now: datetime) -> None:
    for row in rows:
        if row.failed_at is None and row.record_key is None:
            raise CannotRecall(
                "its events were published before infoshare kept what a recall needs: an IG "
                "officer finds their recipients in the disclosure report"
            )
        published = row.published_at
        if published is not None and _utc(published) < now - WINDOW:
            raise CannotRecall(
                f"its events were published more than {WINDOW.days} days ago, past "
                "the recall window: an IG officer finds their recipients in the disclosure "
                "report"
            )


def _records(
    intake: Intake, ask: Recall, rows: Sequence[OutboxRow], idempotency_key: str
) -> list[Record]:
    """One recall event per record key (per child), naming that child's events."""
    by_key: dict[bytes, list[OutboxRow]] = {}
    for row in rows:
        if row.record_key is not None:  # none: refused by the broker, never published
            by_key.setdefault(row.record_key, []).append(row)
    schema = intake.builder.schemas.get(RECALL_REQUESTED)
    records = []
    for n, (key, named) in enumerate(by_key.items()):
        data = {
            "submission": ask.submission_id,
            "recalled": [{"id": r.event_id, "type": r.event_type} for r in named],
            "reason": ask.reason.value,
        }
        schema.validate(data)
        event = envelope.CloudEvent(
            id=intake.builder.event_id(RECALL_REQUESTED, f"{idempotency_key}:{n}"),
            type=RECALL_REQUESTED,
            source=envelope.agency_source(intake.agency),
            data=data,
            key=key.decode(),
            dataschema=schema.uri,
        )
        k, value, headers = envelope.encode(event, extra_headers=telemetry.inject_headers())
        records.append(Record(event.id, event.type, intake.source_topic, k, value, headers))
    if not records:
        raise CannotRecall("none of its events was published: there is nothing to recall")
    return records


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
