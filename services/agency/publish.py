"""Publishing a request's canonical events through the outbox.

A route maps its native input to :class:`Outgoing` events and calls
:func:`publish_events`: every event is validated against its schema and keyed by its
subject, then the submission and its encoded records are stored in one database
transaction, and the request is answered 202. The relay publishes them to Kafka; the
answer does not wait for Kafka, so the service accepts while Kafka is down.

``Idempotency-Key`` (optional, IETF httpapi draft): a retried request with the same key
and the same content gets the first answer again (``Idempotent-Replayed: true``) and
publishes nothing more; the same key with different content is refused (422).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request
from opentelemetry import trace
from pydantic import BaseModel, Field

from services.agency.runtime import AgencyRuntime, runtime
from services.backbone import envelope, telemetry
from services.backbone.errors import InputRejected, InputTooLarge
from services.backbone.identifiers import subject_identity
from services.outbox.store import IdempotencyKeyReused, Record
from services.personindex.matching import Presented
from services.personindex.presented import presented_from_subject
from services.personindex.store import Resolution

tracer = trace.get_tracer("infoshare.agency")
IDEMPOTENCY_HEADER = "Idempotency-Key"
OVERRIDE_HEADER = "Safeguarding-Override-Justification"
OVERRIDE_ROLE_HEADER = "Safeguarding-Override-Role"
MAX_IDEMPOTENCY_KEY = 255
MAX_RECORD_BYTES = 900 * 1024
# (shortest, longest) in characters: the events' schemas' limits, checked here too so a
# refusal names the header the caller sent rather than a field of the event.
OVERRIDE_JUSTIFICATION = (20, 2000)
OVERRIDE_ROLE = (2, 80)


class AcceptedEvent(BaseModel):
    id: str = Field(description="the event id (the same for the same record sent again)")
    type: str


class Accepted(BaseModel):
    """The answer to a request whose events were accepted (202)."""

    submission: str = Field(description="GET /submissions/{submission} tells what is published")
    status: str = Field(description="always 'accepted': stored, to be published to Kafka")
    events: list[AcceptedEvent]


@dataclass(frozen=True)
class Outgoing:
    """One canonical event a request asks to publish: its type, its data (validated against
    the type's schema) and the record's id in the agency's own system (plan id, encounter
    id, a CSV row's natural key), from which the event id derives."""

    event_type: str
    data: dict[str, Any]
    native_id: str


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise HTTPException(
            400, detail=f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters"
        )
    return key


async def fingerprint(request: Request) -> str:
    """What makes two requests the same: method, path, query, body and override headers."""
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.url.path.encode(),
        request.url.query.encode(),
        await request.body(),
        request.headers.get(OVERRIDE_HEADER, "").encode(),
        request.headers.get(OVERRIDE_ROLE_HEADER, "").encode(),
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _override(request: Request) -> dict[str, str] | None:
    """A practitioner who shares without consent to safeguard a child says so, and why, in
    the override headers; the events carry it for the protocol to honour (or not), the
    audit and IG review. Both headers or neither (422 naming the header)."""
    justification = request.headers.get(OVERRIDE_HEADER)
    role = request.headers.get(OVERRIDE_ROLE_HEADER)
    if justification is None and role is None:
        return None
    return {
        "justification": _header_text(OVERRIDE_HEADER, justification, OVERRIDE_JUSTIFICATION),
        "role": _header_text(OVERRIDE_ROLE_HEADER, role, OVERRIDE_ROLE),
    }


def _header_text(name: str, value: str | None, length: tuple[int, int]) -> str:
    loc: list[str | int] = ["header", name]
    if value is None:
        other = OVERRIDE_ROLE_HEADER if name == OVERRIDE_HEADER else OVERRIDE_HEADER
        raise InputRejected(loc, f"{name} is required with {other}", "missing")
    shortest, longest = length
    if not shortest <= len(value) <= longest:
        # The rule names pydantic gives a body field's length, so one client check serves.
        rule = "string_too_short" if len(value) < shortest else "string_too_long"
        raise InputRejected(loc, f"{name} must be {shortest} to {longest} characters", rule)
    return value


def _subjects(
    rt: AgencyRuntime, events: Sequence[Outgoing], datas: Sequence[dict[str, Any]]
) -> list[Presented]:
    """Each event's subject as the person index sees it, once every event is valid (a
    request that is refused links nobody)."""
    presented = []
    for i, (out, data) in enumerate(zip(events, datas, strict=True)):
        rt.builder.schemas.get(out.event_type).validate(data)
        subject = data.get("subject") or {}
        try:
            subject_identity(subject, rt.agency)
        except ValueError as exc:
            raise InputRejected(["event", i, "subject"], str(exc), "subject.identifier") from None
        presented.append(
            presented_from_subject(subject, agency=rt.agency, is_authority=rt.is_authority)
        )
    return presented


def _records(
    rt: AgencyRuntime,
    events: Sequence[Outgoing],
    datas: Sequence[dict[str, Any]],
    identities: Sequence[Resolution],
) -> list[Record]:
    records: list[Record] = []
    for out, data, resolved in zip(events, datas, identities, strict=True):
        if resolved.identity is not None:
            data = {**data, "subject": {**data["subject"], "indexed_as": resolved.identity}}
        event = rt.builder.build(
            event_type=out.event_type,
            data=data,
            subject_id=subject_identity(data["subject"], rt.agency),
            native_id=out.native_id,
        )
        with telemetry.producer_span(
            tracer,
            operation="create",
            topic=rt.source_topic,
            event_id=event.id,
            event_type=event.type,
        ):
            key, value, headers = envelope.encode(event, extra_headers=telemetry.inject_headers())
        size = len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers)
        if size > MAX_RECORD_BYTES:
            # Kafka takes up to 1 MiB by default; what it would refuse is refused here.
            raise InputTooLarge(
                ["event", len(records)],
                f"the event would be over {MAX_RECORD_BYTES // 1024} KiB on Kafka: send it in "
                "smaller parts (free text is the usual cause)",
                "event.too_large",
            )
        records.append(Record(event.id, event.type, rt.source_topic, key, value, headers))
    return records


async def publish_events(request: Request, events: Sequence[Outgoing]) -> Accepted:
    """Accept every event of one request into the outbox, or none of them; the answer
    names the submission and its events."""
    rt = runtime(request)
    key = idempotency_key(request)
    override = _override(request)
    datas = [
        e.data if override is None else {**e.data, "safeguarding_override": override}
        for e in events
    ]
    presented = _subjects(rt, events, datas)
    fingerprinted = await fingerprint(request)
    try:
        # A retry is answered before anything else happens: it links nobody again.
        accepted = await asyncio.to_thread(
            rt.outbox.replay, agency=rt.agency, idempotency_key=key, fingerprint=fingerprinted
        )
        if accepted is None:
            identities = await asyncio.to_thread(
                rt.index.resolve_all,
                presented,
                agency=rt.agency,
                event_ids=[rt.builder.event_id(e.event_type, e.native_id) for e in events],
            )
            records = _records(rt, events, datas, identities)
            response = {
                "status": "accepted",
                "events": [{"id": r.event_id, "type": r.event_type} for r in records],
            }
            accepted = await asyncio.to_thread(
                rt.outbox.accept,
                agency=rt.agency,
                key_id=request.state.caller.key_id,
                idempotency_key=key,
                fingerprint=fingerprinted,
                records=records,
                response=response,
                now=datetime.now(UTC),
            )
    except IdempotencyKeyReused as exc:
        raise InputRejected(
            ["header", IDEMPOTENCY_HEADER], str(exc), "idempotency_key.reused"
        ) from None
    if not accepted.replayed:
        request.app.state.agency_metrics.count_accepted(e.event_type for e in events)
    rt.relay.wake.set()
    request.state.response_headers = {
        "Location": f"/submissions/{accepted.submission_id}",
        **({"Idempotent-Replayed": "true"} if accepted.replayed else {}),
    }
    return Accepted.model_validate(accepted.response)


async def publish_event(request: Request, event: Outgoing) -> Accepted:
    """:func:`publish_events` for a request that carries one event."""
    return await publish_events(request, [event])
