"""Routes under ``/subscriptions/{id}``: the pull inbox (notifications after a cursor and
acknowledgements), R5 ``$status`` and ``$events`` for any channel, resending a range to a
webhook; and ``/recipients/{agency}/alerts``, what could not be delivered to an agency."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from services.backbone.bearer import AgencyAuthorization
from services.backbone.openapi_responses import answers
from services.backbone.recall import RECALLED
from services.delivery import queue, subscriptions
from services.delivery.api_models import (
    AckIn,
    AckOut,
    AlertOut,
    NotificationOut,
    ResendOut,
    StatusOut,
)
from services.delivery.auth import require_agency
from services.delivery.endpoints import breaker_key
from services.delivery.errors import WrongChannel
from services.delivery.model import Channel, Content, NotificationType, Status
from services.delivery.notifications import Entry, notification
from services.delivery.numbering import MAX_NUMBER, event_range
from services.delivery.runtime import Runtime
from services.delivery.store import delivered, headers_of, utc
from services.delivery.tables import SubscriptionRow

INBOX, R5 = "pull inbox", "subscription status and events"
AUTH = "Bearer token of the agency holding the subscription."
NO_SUBSCRIPTION = {404: "no subscription has this id"}
REVERSED = {422: "since is after until"}


def _reversed() -> RequestValidationError:
    """A range that ends before it starts, in the shape of every other 422."""
    problem = {"loc": ("query", "since"), "msg": "since must not be after until"}
    return RequestValidationError([{**problem, "type": "range.reversed"}])


def _page(
    rt: Runtime, row: SubscriptionRow, found: list[queue.Queued], kind: NotificationType
) -> NotificationOut:
    entries = [
        Entry(q.notification.event_number, utc(q.notification.created_at), delivered(q.delivery))
        for q in found
    ]
    body = notification(
        subscription_id=row.id,
        kind=kind,
        status=row.status,
        events_since_start=row.events_since_start,
        entries=entries,
        content=Content(row.content),
        agency=row.agency,
        base_url=rt.settings.delivery_public_url,
    )
    return NotificationOut(**body)


def channel_routes(rt: Runtime) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/subscriptions/{sub_id}/notifications",
        response_model=NotificationOut,
        tags=[INBOX],
        summary="An inbox subscription's notifications after a cursor",
        responses=answers(
            {**NO_SUBSCRIPTION, 409: "a webhook subscription (read it again with $events)"}
        ),
        description="Events numbered after `after` (default: the last acknowledged), in "
        "order, at most `limit`. Reading does not acknowledge; `next_after` is the cursor "
        "for the next page. A delivery its publisher recalled leaves a gap in the numbers; "
        f"its recall notice (`{RECALLED}`) comes under a number of its own. " + AUTH,
    )
    async def notifications(
        sub_id: str,
        authorization: AgencyAuthorization,
        after: int | None = Query(
            None, ge=0, le=MAX_NUMBER, description="default: last acknowledged"
        ),
        limit: int = Query(100, ge=1, le=1000),
    ) -> NotificationOut:
        row = await rt.owned(authorization, sub_id)
        if row.channel != Channel.INBOX.value:
            raise WrongChannel("a webhook subscription is pushed; read it again with $events")
        cursor = row.acked_through if after is None else after
        last = min(cursor + limit, MAX_NUMBER)
        found = (
            await rt.db(queue.entries, rt.store, sub_id, cursor + 1, last) if cursor < last else []
        )
        if rt.telemetry is not None:
            pulled = [(q.delivery.kafka_topic, headers_of(q.delivery)) for q in found]
            rt.telemetry.pulled(row.agency, pulled)
        page = _page(rt, row, found, NotificationType.EVENT)
        page.next_after = found[-1].notification.event_number if found else cursor
        return page

    @router.post(
        "/subscriptions/{sub_id}/ack",
        response_model=AckOut,
        tags=[INBOX],
        summary="Acknowledge an inbox subscription's events up to a number",
        responses=answers({**NO_SUBSCRIPTION, 409: "beyond the last event number"}),
        description="Monotonic: acknowledging an older number changes nothing; beyond the "
        "last event number is a 409. The default cursor of `notifications` follows. " + AUTH,
    )
    async def ack(sub_id: str, body: AckIn, authorization: AgencyAuthorization) -> AckOut:
        row = await rt.owned(authorization, sub_id)
        acked = await rt.db(
            subscriptions.acknowledge, rt.store, sub_id, body.through, now=datetime.now(UTC)
        )
        if rt.telemetry is not None:
            rt.telemetry.acknowledged(row.agency, acked - row.acked_through)
        return AckOut(subscription=sub_id, last_acknowledged=acked)

    @router.get(
        "/subscriptions/{sub_id}/status",
        response_model=StatusOut,
        tags=[R5],
        summary="R5 $status: where a subscription stands",
        responses=answers(NO_SUBSCRIPTION),
        description="Its event count, last acknowledged number, notifications per state; "
        "for a webhook also the last push error and its endpoint's circuit breaker. " + AUTH,
    )
    async def status(sub_id: str, authorization: AgencyAuthorization) -> StatusOut:
        row = await rt.owned(authorization, sub_id)
        per_state = await rt.db(subscriptions.counts, rt.store, sub_id)
        breaker = None
        if row.channel == Channel.WEBHOOK.value and row.endpoint:
            breaker = (
                rt.breakers.get(breaker_key(row.agency, row.endpoint)).state(time.monotonic()).value
            )
        return StatusOut(
            subscription=row.id,
            status=Status(row.status),
            channel=Channel(row.channel),
            events_since_subscription_start=row.events_since_start,
            last_acknowledged=row.acked_through,
            notifications=per_state,
            last_error=row.last_error,
            breaker=breaker,
        )

    @router.get(
        "/subscriptions/{sub_id}/events",
        response_model=NotificationOut,
        tags=[R5],
        summary="R5 $events: fetch any range of a subscription's events again",
        responses=answers({**NO_SUBSCRIPTION, **REVERSED}),
        description="For any channel: a recipient that sees a gap in event numbers asks for "
        "it here. `since` and `until` are inclusive (defaults: 1 and the last number). " + AUTH,
    )
    async def events(
        sub_id: str,
        authorization: AgencyAuthorization,
        since: int | None = Query(None, ge=1, le=MAX_NUMBER),
        until: int | None = Query(None, ge=1, le=MAX_NUMBER),
        limit: int = Query(100, ge=1, le=1000),
    ) -> NotificationOut:
        row = await rt.owned(authorization, sub_id)
        if since is not None and until is not None and since > until:
            raise _reversed()
        span = event_range(since, until, last=row.events_since_start, limit=limit)
        found = await rt.db(queue.entries, rt.store, sub_id, *span) if span else []
        return _page(rt, row, found, NotificationType.QUERY_EVENT)

    @router.post(
        "/subscriptions/{sub_id}/resend",
        response_model=ResendOut,
        tags=[R5],
        summary="Push a range of a webhook subscription's events again",
        responses=answers(
            {**NO_SUBSCRIPTION, **REVERSED, 409: "an inbox subscription (read it with $events)"}
        ),
        description="Queues `since`..`until` (inclusive; defaults 1 and the last number), "
        "dead-lettered ones included, with a fresh retry horizon. They go out in number "
        "order with their original Idempotency-Key. " + AUTH,
    )
    async def resend(
        sub_id: str,
        authorization: AgencyAuthorization,
        since: int | None = Query(None, ge=1, le=MAX_NUMBER),
        until: int | None = Query(None, ge=1, le=MAX_NUMBER),
    ) -> ResendOut:
        row = await rt.owned(authorization, sub_id)
        if row.channel != Channel.WEBHOOK.value:
            raise WrongChannel("an inbox subscription is pulled; read it again with $events")
        low, high = since or 1, until or row.events_since_start
        if low > high:
            raise _reversed()
        count = await rt.db(queue.requeue, rt.store, sub_id, low, high, now=datetime.now(UTC))
        rt.changes.notify()
        return ResendOut(subscription=sub_id, requeued=count)

    @router.get(
        "/recipients/{agency}/alerts",
        response_model=list[AlertOut],
        tags=["operations"],
        summary="This recipient's notifications given up on (dead-lettered), newest first",
        description="Ids, numbers and reasons only, never a payload, and only the agency's "
        "own subscriptions. Each is also on dlq.delivery and audited as undeliverable; "
        "/healthz shows only their total count. Bearer token of the agency.",
    )
    async def alerts(
        agency: str,
        authorization: AgencyAuthorization,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[AlertOut]:
        require_agency(authorization, rt.keyring, agency)
        found = await rt.db(queue.alerts, rt.store, agency=agency, limit=limit)
        return [
            AlertOut(
                subscription=a.subscription_id,
                recipient=a.agency,
                event_number=a.event_number,
                delivery_id=a.event_id,
                dead_lettered_at=utc(a.dead_lettered_at) if a.dead_lettered_at else None,
                reason=a.reason,
            )
            for a in found
        ]

    return router
