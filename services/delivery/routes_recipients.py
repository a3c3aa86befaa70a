"""Routes under ``/recipients/{agency}``: subscriptions (create, list, read, switch on or
off, delete), one delivered event by id, and the all-deliveries inbox view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response

from services.backbone.bearer import AgencyAuthorization
from services.backbone.openapi_responses import answers
from services.backbone.recall import RECALLED
from services.delivery import subscriptions
from services.delivery.api_models import (
    InboxPage,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
    SubscriptionUpdate,
)
from services.delivery.auth import require_agency
from services.delivery.endpoints import check_endpoint
from services.delivery.errors import DeliveryNotFound, EndpointRefused, InvalidSubscription
from services.delivery.filters import parse_filters
from services.delivery.model import Channel
from services.delivery.numbering import MAX_NUMBER
from services.delivery.runtime import Runtime
from services.delivery.signing import new_secret
from services.delivery.store import delivered

SUBS = "subscriptions"
AUTH = "Bearer token of the recipient agency (`agency-tokens/<agency>.token`)"
NO_SUBSCRIPTION = answers({404: "no subscription has this id"})


async def _spec(
    rt: Runtime, agency: str, body: SubscriptionCreate
) -> subscriptions.NewSubscription:
    for i, event_type in enumerate(body.event_types):
        if event_type not in rt.event_types:
            raise InvalidSubscription(
                ("event_types", i), "event_type.unknown", "not an event type the registry knows"
            )
    endpoint = None
    if body.endpoint is not None:
        endpoint = check_endpoint(
            body.endpoint,
            allow_http_loopback=rt.guard.policy.allow_loopback,
            allow_private=agency in rt.guard.policy.private_agencies,
        )
        try:  # resolved, never contacted: the caller learns nothing of what answers there
            await rt.guard.addresses(endpoint, agency=agency)
        except EndpointRefused as exc:
            raise InvalidSubscription(("endpoint",), exc.rule, exc.message) from None
    webhook = body.channel is Channel.WEBHOOK
    return subscriptions.NewSubscription(
        agency=agency,
        event_types=body.event_types,
        filters=parse_filters([f.model_dump() for f in body.filters]),
        content=body.content,
        channel=body.channel,
        endpoint=endpoint,
        heartbeat_period_s=body.heartbeat_period,
        secret=new_secret() if webhook else None,
    )


def recipient_routes(rt: Runtime) -> APIRouter:
    router = APIRouter(prefix="/recipients/{agency}")

    async def _own(agency: str, sub_id: str, authorization: str | None) -> None:
        require_agency(authorization, rt.keyring, agency)
        row = await rt.db(subscriptions.get, rt.store, sub_id)
        if row.agency != agency:
            raise HTTPException(403, detail="this subscription belongs to another agency")

    @router.post(
        "/subscriptions",
        status_code=201,
        response_model=SubscriptionCreated,
        tags=[SUBS],
        summary="Subscribe to this recipient's deliveries (webhook or inbox)",
        description="Events delivered after this call that are of one of `event_types` and "
        "pass every filter get numbered 1, 2, 3 ... for this subscription. A recall notice "
        f"(`{RECALLED}`) is numbered for every subscription that was given the delivery it "
        "withdraws, whatever its types and filters (or, for one no longer held, for every "
        "subscription to the type withdrawn), and the withdrawn delivery leaves its queue. A "
        "webhook subscription's signing secret is in this answer only. " + AUTH,
    )
    async def create(
        agency: str, body: SubscriptionCreate, authorization: AgencyAuthorization
    ) -> SubscriptionCreated:
        require_agency(authorization, rt.keyring, agency)
        spec = await _spec(rt, agency, body)
        row = await rt.db(subscriptions.create, rt.store, spec, now=datetime.now(UTC))
        rt.changes.notify()
        return SubscriptionCreated(**SubscriptionPublic.of(row).model_dump(), secret=spec.secret)

    @router.get(
        "/subscriptions",
        response_model=list[SubscriptionPublic],
        tags=[SUBS],
        summary="This recipient's subscriptions",
        description="Every subscription of the agency, oldest first, without secrets. " + AUTH,
    )
    async def list_all(agency: str, authorization: AgencyAuthorization) -> list[SubscriptionPublic]:
        require_agency(authorization, rt.keyring, agency)
        rows = await rt.db(subscriptions.of_agency, rt.store, agency)
        return [SubscriptionPublic.of(r) for r in rows]

    @router.get(
        "/subscriptions/{sub_id}",
        response_model=SubscriptionPublic,
        tags=[SUBS],
        summary="One subscription",
        responses=NO_SUBSCRIPTION,
        description="The subscription as stored, with its event count; never its secret. " + AUTH,
    )
    async def read(
        agency: str, sub_id: str, authorization: AgencyAuthorization
    ) -> SubscriptionPublic:
        await _own(agency, sub_id, authorization)
        return SubscriptionPublic.of(await rt.db(subscriptions.get, rt.store, sub_id))

    @router.patch(
        "/subscriptions/{sub_id}",
        response_model=SubscriptionPublic,
        tags=[SUBS],
        summary="Switch a subscription on (active) or off",
        responses=NO_SUBSCRIPTION,
        description="While off it is given no new events (and no numbers); what is queued "
        "for a webhook waits until it is active again. " + AUTH,
    )
    async def update(
        agency: str,
        sub_id: str,
        authorization: AgencyAuthorization,
        body: SubscriptionUpdate,
    ) -> SubscriptionPublic:
        await _own(agency, sub_id, authorization)
        row = await rt.db(
            subscriptions.set_status, rt.store, sub_id, body.status, now=datetime.now(UTC)
        )
        rt.changes.notify()
        return SubscriptionPublic.of(row)

    @router.delete(
        "/subscriptions/{sub_id}",
        status_code=204,
        tags=[SUBS],
        summary="Delete a subscription and its notification log",
        responses=NO_SUBSCRIPTION,
        description="The deliveries themselves stay (other subscriptions may hold them). " + AUTH,
    )
    async def remove(agency: str, sub_id: str, authorization: AgencyAuthorization) -> Response:
        await _own(agency, sub_id, authorization)
        await rt.db(subscriptions.remove, rt.store, sub_id)
        rt.changes.notify()
        return Response(status_code=204)

    @router.get(
        "/deliveries/{event_id}",
        tags=["deliveries"],
        summary="One delivered event by id (what id-only notifications point to)",
        responses=answers({404: "this recipient has no delivery with this id"}),
        description="The event exactly as delivered, in CloudEvents JSON (a recall notice "
        "with its `recalls` extension). A delivery its publisher recalled is gone: 404. " + AUTH,
    )
    async def fetch(
        agency: str, event_id: str, authorization: AgencyAuthorization
    ) -> dict[str, Any]:
        require_agency(authorization, rt.keyring, agency)
        row = await rt.db(rt.store.delivery, agency, event_id)
        if row is None:
            raise DeliveryNotFound(event_id)
        return delivered(row).cloudevent()

    @router.get(
        "/inbox",
        response_model=InboxPage,
        tags=["deliveries"],
        summary="Every delivery for one recipient after a cursor, in order",
        responses=answers({404: "no recipient has this agency id"}),
        description="All of the recipient's deliveries numbered in arrival order, "
        "duplicates dropped by event id; page with `after`. A recalled delivery is no longer "
        f"listed, and its number is not given again; the recall notice (`{RECALLED}`, whose "
        "data names it in `recalls`) is listed in its place. Subscriptions are the way to be "
        "told of new ones. " + AUTH,
    )
    async def inbox(
        agency: str,
        authorization: AgencyAuthorization,
        after: int = Query(0, ge=0, le=MAX_NUMBER, description="the last number already seen"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> InboxPage:
        require_agency(authorization, rt.keyring, agency)
        if agency not in rt.agencies:
            raise HTTPException(404, detail="unknown recipient")
        rows = await rt.db(rt.store.deliveries_after, agency, after, limit)
        items = [{"number": r.number, **_inbox_item(delivered(r).cloudevent())} for r in rows]
        return InboxPage(agency=agency, items=items, next_cursor=rows[-1].number if rows else after)

    return router


def _inbox_item(event: dict[str, Any]) -> dict[str, Any]:
    """The walking skeleton's item shape, which agency views and the demo read."""
    return {
        "id": event["id"],
        "type": event["type"],
        "source": event["source"],
        "time": event["time"],
        "protocol": event.get("protocol"),
        "identity_level": event.get("identitylevel"),
        "supersedes": event.get("supersedes"),
        "data": event["data"],
    }
