"""The routes every agency service has besides its native formats: its submissions (what
it sent, and whether the relay has published it yet) and its inbox (what it received)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from services.agency.inbox_view import open_fields
from services.agency.recalls import (
    CannotRecall,
    NoSuchSubmission,
    Recall,
    RecalledAlready,
    recall,
)
from services.agency.runtime import AgencyRuntime, runtime
from services.backbone.recall import RecallReason

MAX_CURSOR = 2**63 - 1  # inbox numbers are 64-bit integers in every database

router = APIRouter()


class SubmittedEvent(BaseModel):
    id: str
    type: str
    published_at: datetime | None


class Submission(BaseModel):
    submission: str
    received_at: datetime
    events: list[SubmittedEvent]


class InboxItem(BaseModel):
    number: int
    id: str
    type: str
    source: str
    time: datetime
    protocol: str | None
    identity_level: str | None
    data: dict[str, Any]
    decrypted_fields: list[str]
    sealed_fields: list[str]
    supersedes: str | None = Field(
        None, description="an amended record: the id of the item it supersedes (its `id`)"
    )


class InboxPage(BaseModel):
    agency: str
    items: list[InboxItem]
    next_cursor: int


def health(rt: AgencyRuntime) -> dict[str, Any]:
    backlog = rt.outbox.backlog(rt.source_topic)
    age = (datetime.now(UTC) - backlog.oldest).total_seconds() if backlog.oldest else 0.0
    return {
        "agency": rt.agency,
        "received": rt.inbox.count(),
        "outbox": {
            "pending": backlog.pending,
            "oldest_pending_s": round(age, 3),
            "dead_lettered": backlog.failed,
            "kafka_connected": rt.relay.connected,
        },
    }


@router.get(
    "/submissions/{submission_id}",
    tags=["submissions"],
    summary="One of this agency's submissions, and whether each event is published yet",
    response_model=Submission,
    responses={404: {"description": "no submission of this agency has this id"}},
)
async def submission(request: Request, submission_id: str = Path(max_length=36)) -> Submission:
    rt = runtime(request)
    found = await asyncio.to_thread(rt.outbox.submission, rt.agency, submission_id)
    if found is None:
        raise HTTPException(404, detail="no submission of this agency has this id")
    sub, rows = found
    return Submission(
        submission=sub.id,
        received_at=sub.received_at,
        events=[
            SubmittedEvent(id=r.event_id, type=r.event_type, published_at=r.published_at)
            for r in rows
        ],
    )


class RecallRequest(BaseModel):
    reason: RecallReason = Field(
        description="why: shared_in_error (it should not have been shared), wrong_subject (it "
        "is about another child), inaccurate (its content is wrong, and no correction is "
        "coming), no_lawful_basis (the grounds it was shared on did not hold). Recipients are "
        "told the code; free text is not taken, since it can name anyone"
    )
    events: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="the ids of the submission's events to recall; none: every one of them",
    )


class RecallEvent(BaseModel):
    id: str = Field(description="the recall's event id (infoshare.recall.requested)")
    type: str


class RecallAccepted(BaseModel):
    submission: str = Field(description="the recall's own submission: GET it to see it published")
    status: str = Field(description="always 'accepted': stored, to be published to Kafka")
    recalls: str = Field(description="the submission recalled")
    events: list[RecallEvent] = Field(description="one recall event per child")


@router.post(
    "/submissions/{submission_id}/recall",
    tags=["submissions"],
    status_code=202,
    summary="Recall a submission shared in error: every recipient is told, and the hub's copies "
    "are deleted",
    description="Every recipient that received one of the submission's events (or of the "
    "events named) gets an infoshare.record.recalled notice on its channel naming its own id "
    "for the delivery, and the delivery is deleted from the delivery store and the agency "
    "inboxes infoshare keeps; each step is audited and shown in the child's disclosure "
    "report. Sent again with the same body: the first answer, nothing more "
    "(Idempotent-Replayed: true). A plan started in error ends with its recall. A recalled "
    "event is never shared again under its id: send a corrected record as a new version.",
    response_model=RecallAccepted,
    responses={
        404: {"description": "no submission of this agency has this id"},
        409: {
            "description": "recalled already for another reason, published before recalls "
            "were possible, or past the recall window"
        },
        422: {"description": "a recall of a recall, or an event not in the submission"},
    },
)
async def recall_submission(
    request: Request, body: RecallRequest, submission_id: str = Path(max_length=36)
) -> RecallAccepted:
    rt = runtime(request)
    ask = Recall(submission_id, body.reason, body.events, key_id=request.state.caller.key_id)
    try:
        accepted = await asyncio.to_thread(recall, rt.intake, ask)
    except NoSuchSubmission:
        raise HTTPException(404, detail="no submission of this agency has this id") from None
    except RecalledAlready:
        raise HTTPException(
            409, detail="these events were recalled already, for another reason"
        ) from None
    except CannotRecall as exc:
        raise HTTPException(409, detail=f"this submission cannot be recalled: {exc}") from None
    request.state.response_headers = {
        "Location": f"/submissions/{accepted.submission_id}",
        **({"Idempotent-Replayed": "true"} if accepted.replayed else {}),
    }
    return RecallAccepted.model_validate(accepted.response)


@router.get(
    "/inbox",
    tags=["inbox"],
    summary="What this agency has received, in order, with fields encrypted to it opened",
    response_model=InboxPage,
)
async def inbox(
    request: Request,
    after: int = Query(0, ge=0, le=MAX_CURSOR, description="cursor: the last number already seen"),
    limit: int = Query(100, ge=1, le=1000),
) -> InboxPage:
    rt = runtime(request)
    items = []
    for r in await asyncio.to_thread(rt.inbox.after, after, limit):
        data, opened, sealed = open_fields(
            r.data, agency=rt.agency, key=rt.private_key, cache=rt.data_keys
        )
        items.append(
            InboxItem(
                number=r.number,
                id=r.event_id,
                type=r.type,
                source=r.source,
                time=r.time,
                protocol=r.protocol,
                identity_level=r.identity_level,
                data=data,
                decrypted_fields=opened,
                sealed_fields=sealed,
                supersedes=r.supersedes,
            )
        )
    return InboxPage(
        agency=rt.agency, items=items, next_cursor=items[-1].number if items else after
    )
