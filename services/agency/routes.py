"""The routes every agency service has besides its native formats: its submissions (what
it sent, and whether the relay has published it yet) and its inbox (what it received)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from services.agency.inbox_view import open_fields
from services.agency.runtime import AgencyRuntime, runtime

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
