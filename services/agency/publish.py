"""The HTTP edge of an agency's submission: a route maps its native input to
:class:`Outgoing` events and calls :func:`publish_events`, which reads the request into a
:class:`~services.agency.submission.Submission`, runs the use case and answers 202.

``Idempotency-Key`` (optional, IETF httpapi draft): a retried request with the same key
and the same content gets the first answer again (``Idempotent-Replayed: true``) and
publishes nothing more; the same key with different content is refused (422).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field

from services.agency.runtime import runtime
from services.agency.submission import Outgoing, Override, Submission, submit
from services.backbone.errors import InputRejected
from services.outbox.store import AmendedMeanwhile, IdempotencyKeyReused

IDEMPOTENCY_HEADER = "Idempotency-Key"
OVERRIDE_HEADER = "Safeguarding-Override-Justification"
OVERRIDE_ROLE_HEADER = "Safeguarding-Override-Role"
MAX_IDEMPOTENCY_KEY = 255
# (shortest, longest) in characters: the events' schemas' limits, checked here too so a
# refusal names the header the caller sent rather than a field of the event.
OVERRIDE_JUSTIFICATION = (20, 2000)
OVERRIDE_ROLE = (2, 80)
# The role is shown as it came in the audit trail, the disclosure report (CSV, PDF) and the
# IG review queue: a job title, in letters, digits, spaces and - _ . only, beginning with a
# letter or digit (so never a spreadsheet formula, a control character or markup).
OVERRIDE_ROLE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"


class AcceptedEvent(BaseModel):
    id: str = Field(description="the event id (the same for the same record sent again)")
    type: str
    version: int | None = Field(
        None, description="an amended record (changed content, same id): its version, 2 on"
    )
    supersedes: str | None = Field(None, description="the event an amended record supersedes")


class Accepted(BaseModel):
    """The answer to a request whose events were accepted (202)."""

    submission: str = Field(description="GET /submissions/{submission} tells what is published")
    status: str = Field(description="always 'accepted': stored, to be published to Kafka")
    events: list[AcceptedEvent]


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


def override(request: Request) -> Override | None:
    """A practitioner who shares without consent to safeguard a child says so, and why, in
    the override headers. Both headers or neither (422 naming the header)."""
    justification = request.headers.get(OVERRIDE_HEADER)
    role = request.headers.get(OVERRIDE_ROLE_HEADER)
    if justification is None and role is None:
        return None
    return Override(
        justification=_header_text(OVERRIDE_HEADER, justification, OVERRIDE_JUSTIFICATION),
        role=_role(_header_text(OVERRIDE_ROLE_HEADER, role, OVERRIDE_ROLE)),
    )


def _role(value: str) -> str:
    if not re.fullmatch(OVERRIDE_ROLE_PATTERN, value):
        raise InputRejected(
            ["header", OVERRIDE_ROLE_HEADER],
            f"{OVERRIDE_ROLE_HEADER} may hold only letters, digits, spaces and - _ . "
            "and must begin with a letter or digit",
            "string_pattern_mismatch",
        )
    return value


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


async def publish_events(request: Request, events: Sequence[Outgoing]) -> Accepted:
    """Accept every event of one request into the outbox, or none of them; the answer
    names the submission and its events."""
    rt = runtime(request)
    submission = Submission(
        events=events,
        key_id=request.state.caller.key_id,
        idempotency_key=idempotency_key(request),
        override=override(request),
        fingerprint=await fingerprint(request),
    )
    try:
        accepted = await submit(rt.intake, submission)
    except IdempotencyKeyReused as exc:
        raise InputRejected(
            ["header", IDEMPOTENCY_HEADER], str(exc), "idempotency_key.reused"
        ) from None
    except AmendedMeanwhile:
        raise HTTPException(
            409,
            detail="another request amended the same record at the same moment; nothing of "
            "this one was stored: send it again",
        ) from None
    if not accepted.replayed:
        request.app.state.agency_metrics.count_accepted(e.event_type for e in events)
    request.state.response_headers = {
        "Location": f"/submissions/{accepted.submission_id}",
        **({"Idempotent-Replayed": "true"} if accepted.replayed else {}),
    }
    return Accepted.model_validate(accepted.response)


async def publish_event(request: Request, event: Outgoing) -> Accepted:
    """:func:`publish_events` for a request that carries one event."""
    return await publish_events(request, [event])
