"""An agency's submission, as a use case with plain arguments: every event of one request is
accepted into the outbox, or none of them.

Each event is validated against its schema and its subject checked (an identifier, and a
child on the event's date: children.py), before anything is
stored or anybody linked; a retry under a known idempotency key gets the first answer and
does nothing else; otherwise the person index resolves each subject (in one transaction),
each event is built and encoded as its Kafka record, and the submission with its records is
committed to the outbox in one transaction. The relay publishes them; the answer does not
wait for Kafka, so an agency's system learns of a refusal at once and of nothing that
depends on Kafka's health.

The HTTP edge (``services/agency/publish.py``) only reads the request into a
:class:`Submission` and the :class:`Accepted` back into a response.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from opentelemetry import trace

from services.agency.children import ADULT_AGE, NotAChild, check_child
from services.agency.versions import RecordVersions, Versioned
from services.backbone import envelope, telemetry
from services.backbone.batcher import Batcher
from services.backbone.errors import InputRejected, InputTooLarge
from services.backbone.identifiers import subject_identity
from services.backbone.publisher import EventBuilder
from services.outbox.store import (
    Accepted,
    IdempotencyKeyReused,
    NewSubmission,
    OutboxStore,
    Record,
)
from services.personindex.matching import Presented
from services.personindex.presented import presented_from_subject
from services.personindex.store import PersonIndex, Resolution

tracer = trace.get_tracer("infoshare.agency")
MAX_RECORD_BYTES = 900 * 1024
# An upload's events are checked this many at a time, the event loop let go between: 2,000
# events' schemas and subjects take a tenth of a second or more, which at once would hold up
# every other request of the service. (Checked in a thread instead, the handing of the GIL
# back and forth cost bulk CSV uploads a tenth of their events/s.)
CHECK_SLICE = 100


@dataclass(frozen=True)
class Outgoing:
    """One canonical event a request asks to publish: its type, its data (validated against
    the type's schema) and the record's id in the agency's own system (plan id, encounter
    id, a CSV row's natural key), from which the event id derives."""

    event_type: str
    data: dict[str, Any]
    native_id: str


@dataclass(frozen=True)
class Override:
    """A practitioner's safeguarding override: shared without consent, and why."""

    justification: str
    role: str


@dataclass(frozen=True)
class Submission:
    """One request's events and what the edge read around them."""

    events: Sequence[Outgoing]
    key_id: str  # the API key that sent it
    fingerprint: str  # what makes two requests the same (for the idempotency key)
    idempotency_key: str | None = None
    override: Override | None = None


@dataclass
class Intake:
    """What one agency's submissions go through: its event builder, outbox and the person
    index; ``published`` is told when records are waiting (it wakes the relay)."""

    agency: str
    is_authority: bool  # a local authority: its person ids are identifiers
    source_topic: str
    builder: EventBuilder
    outbox: OutboxStore
    index: PersonIndex
    published: Callable[[], None] = lambda: None
    # The age from which a subject is refused (children.py): 18, or social care's care
    # leavers' age where the service is configured so.
    oldest: int = ADULT_AGE
    # Submissions that arrive together are stored together: one thread hop per request,
    # one commit per store for all of them.
    batcher: Batcher[_Taken, Accepted] = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(partial(_store_all, self), name=f"intake-{self.agency}")


@dataclass(frozen=True)
class _Taken:
    """A valid submission on its way to the stores, with the request's context (its
    trace, which the records' headers carry)."""

    submission: Submission
    datas: Sequence[dict[str, Any]]
    presented: Sequence[Presented]
    context: contextvars.Context


async def submit(intake: Intake, submission: Submission) -> Accepted:
    """Accept every event of ``submission`` into the outbox, or none of them (InputRejected,
    InputTooLarge, or IdempotencyKeyReused for a key used for another request); the answer
    names the submission and its events."""
    datas = [_with_override(e.data, submission.override) for e in submission.events]
    presented: list[Presented] = []
    for first in range(0, len(datas), CHECK_SLICE):
        if first:
            await asyncio.sleep(0)  # what else is ready runs meanwhile
        last = first + CHECK_SLICE
        presented += _subjects(intake, submission.events[first:last], datas[first:last], first)
    taken = _Taken(submission, datas, presented, contextvars.copy_context())
    accepted = await intake.batcher.run(taken)
    intake.published()
    return accepted


def _store_all(intake: Intake, batch: Sequence[_Taken]) -> list[Accepted | Exception]:
    """:func:`_store_batch` under one span linked to every request it stores, so each
    request's trace leads to the group commit that stored it (counts only, no ids)."""
    links = [trace.Link(t.context.run(trace.get_current_span).get_span_context()) for t in batch]
    with telemetry.span(
        tracer,
        "agency.store_batch",
        links=[link for link in links if link.context.is_valid],
        attributes={"infoshare.batch.submissions": len(batch)},
    ):
        try:
            return _store_batch(intake, batch)
        finally:
            intake.builder.forget_ids()


def _store_batch(intake: Intake, batch: Sequence[_Taken]) -> list[Accepted | Exception]:
    """Each submission of ``batch`` as :func:`submit` promises, in three steps for all of
    them: a retry is answered before anything else happens (it links nobody again); the
    person index resolves every subject in one transaction; the outbox takes every
    submission's records in one more. A request whose key an earlier one of the batch
    carries waits for that one's answer, and is then answered as a retry is."""
    answers: dict[int, Accepted | Exception] = {}
    todo: list[int] = []
    keys: set[str] = set()
    later: list[int] = []  # the same key as one before it in this batch
    for n, taken in enumerate(batch):
        sub = taken.submission
        if sub.idempotency_key is not None:
            if sub.idempotency_key in keys:
                later.append(n)
                continue
            keys.add(sub.idempotency_key)
        try:
            earlier = intake.outbox.replay(
                agency=intake.agency,
                idempotency_key=sub.idempotency_key,
                fingerprint=sub.fingerprint,
            )
        except IdempotencyKeyReused as exc:
            answers[n] = exc
            continue
        if earlier is not None:
            answers[n] = earlier
        else:
            todo.append(n)
    new: dict[int, NewSubmission] = {}
    versions = RecordVersions(
        intake.builder,
        intake.outbox,
        intake.agency,
        [(e.event_type, e.native_id) for n in todo for e in batch[n].submission.events],
    )
    for n, identities in zip(todo, _resolve_all(intake, [batch[n] for n in todo]), strict=True):
        taken = batch[n]
        try:
            if isinstance(identities, Exception):
                raise identities
            # The content as the agency's system sent it: an override said in headers is
            # not a change of the record.
            events = taken.submission.events
            versioned, changes = versions.of(
                [(e.event_type, e.native_id) for e in events], [e.data for e in events]
            )
            records = taken.context.run(
                _records, intake, taken.submission.events, taken.datas, identities, versioned
            )
        except Exception as exc:
            answers[n] = exc
            continue
        new[n] = NewSubmission(
            agency=intake.agency,
            key_id=taken.submission.key_id,
            idempotency_key=taken.submission.idempotency_key,
            fingerprint=taken.submission.fingerprint,
            records=records,
            response={
                "status": "accepted",
                "events": [_answered(r, v) for r, v in zip(records, versioned, strict=True)],
            },
            versions=changes,
        )
    stored = intake.outbox.accept_all(list(new.values()), now=datetime.now(UTC)) if new else []
    answers.update(zip(new, stored, strict=True))
    for n in later:  # now a retry of a stored request, or (if that one failed) a first try
        (answers[n],) = _store_batch(intake, [batch[n]])
    return [answers[n] for n in range(len(batch))]


def _resolve_all(intake: Intake, batch: Sequence[_Taken]) -> list[Sequence[Resolution] | Exception]:
    """Every subject of ``batch`` resolved in one transaction, split back by submission; if
    that fails, each submission's alone, so a failure is only its own."""
    if not batch:
        return []

    def event_ids(taken: _Taken) -> list[str]:
        return [intake.builder.event_id(e.event_type, e.native_id) for e in taken.submission.events]

    try:
        together = intake.index.resolve_all(
            [p for taken in batch for p in taken.presented],
            agency=intake.agency,
            event_ids=[i for taken in batch for i in event_ids(taken)],
        )
    except Exception as exc:
        if len(batch) == 1:
            return [exc]
    else:
        out: list[Sequence[Resolution] | Exception] = []
        for taken in batch:
            out.append(together[: len(taken.presented)])
            together = together[len(taken.presented) :]
        return out
    alone: list[Sequence[Resolution] | Exception] = []
    for taken in batch:
        try:
            alone.append(
                intake.index.resolve_all(
                    taken.presented, agency=intake.agency, event_ids=event_ids(taken)
                )
            )
        except Exception as exc:
            alone.append(exc)
    return alone


def _with_override(data: dict[str, Any], override: Override | None) -> dict[str, Any]:
    """The events carry an override for the protocol to honour (or not), the audit and IG
    review."""
    if override is None:
        return data
    return {
        **data,
        "safeguarding_override": {
            "justification": override.justification,
            "role": override.role,
        },
    }


def _subjects(
    intake: Intake, events: Sequence[Outgoing], datas: Sequence[dict[str, Any]], first: int = 0
) -> list[Presented]:
    """Each event's subject as the person index sees it, once every event is valid (a
    request that is refused links nobody); ``first``: the request's number of the first."""
    presented = []
    for i, (out, data) in enumerate(zip(events, datas, strict=True), start=first):
        intake.builder.schemas.get(out.event_type).validate(data)
        try:
            check_child(
                out.event_type, data, received=datetime.now(UTC).date(), oldest=intake.oldest
            )
        except NotAChild as exc:
            raise InputRejected(["event", i, "subject"], str(exc), "subject.not_a_child") from None
        subject = data.get("subject") or {}
        try:
            subject_identity(subject, intake.agency)
        except ValueError as exc:
            raise InputRejected(["event", i, "subject"], str(exc), "subject.identifier") from None
        presented.append(
            presented_from_subject(subject, agency=intake.agency, is_authority=intake.is_authority)
        )
    return presented


def _records(
    intake: Intake,
    events: Sequence[Outgoing],
    datas: Sequence[dict[str, Any]],
    identities: Sequence[Resolution],
    versions: Sequence[Versioned],
) -> list[Record]:
    records: list[Record] = []
    for out, data, resolved, v in zip(events, datas, identities, versions, strict=True):
        if resolved.identity is not None:
            data = {**data, "subject": {**data["subject"], "indexed_as": resolved.identity}}
        event = intake.builder.build(
            event_type=out.event_type,
            data=data,
            subject_id=subject_identity(data["subject"], intake.agency),
            native_id=out.native_id,
            record_version=v.version,
            supersedes=v.supersedes,
        )
        traced = telemetry.created(
            tracer, topic=intake.source_topic, event_id=event.id, event_type=event.type
        )
        key, value, headers = envelope.encode(event, extra_headers=traced)
        size = len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers)
        if size > MAX_RECORD_BYTES:
            # Kafka takes up to 1 MiB by default; what it would refuse is refused here.
            raise InputTooLarge(
                ["event", len(records)],
                f"the event would be over {MAX_RECORD_BYTES // 1024} KiB on Kafka: send it in "
                "smaller parts (free text is the usual cause)",
                "event.too_large",
            )
        records.append(Record(event.id, event.type, intake.source_topic, key, value, headers))
    return records


def _answered(record: Record, v: Versioned) -> dict[str, Any]:
    """An event as the agency is answered: an amendment says which event it supersedes."""
    answer: dict[str, Any] = {"id": record.event_id, "type": record.event_type}
    if v.supersedes is not None:
        answer |= {"version": v.version, "supersedes": v.supersedes}
    return answer
