"""Subscriptions in the store: create, read, switch on and off, delete, acknowledge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, update
from sqlmodel import col, select

from services.delivery.errors import SubscriptionNotFound, WrongChannel
from services.delivery.filters import Filter
from services.delivery.model import Channel, Content, State, Status
from services.delivery.numbering import acknowledge as next_ack
from services.delivery.store import DeliveryStore, db_time
from services.delivery.tables import NotificationRow, SubscriptionRow, WebhookSecretRow
from services.delivery.webhook_secrets import sealed_row


@dataclass(frozen=True)
class NewSubscription:
    """A subscription request already checked (event types known, filters and endpoint
    valid)."""

    agency: str
    event_types: Sequence[str]
    filters: Sequence[Filter]
    content: Content
    channel: Channel
    endpoint: str | None = None
    heartbeat_period_s: int | None = None
    # webhook only: its fresh signing secret (signing.new_secret()), which the caller shows
    # to the subscriber once; stored encrypted
    secret: str | None = field(default=None, repr=False)


def create(store: DeliveryStore, spec: NewSubscription, *, now: datetime) -> SubscriptionRow:
    """Store a new active subscription, a webhook one with its secret sealed."""
    webhook = spec.channel is Channel.WEBHOOK
    if webhook and not spec.secret:
        raise ValueError("a webhook subscription needs its secret")
    stamp = db_time(now)
    row = SubscriptionRow(
        id=str(uuid.uuid4()),
        agency=spec.agency,
        status=Status.ACTIVE.value,
        channel=spec.channel.value,
        content=spec.content.value,
        event_types=list(dict.fromkeys(spec.event_types)),
        filters=[f.as_dict() for f in spec.filters],
        endpoint=spec.endpoint,
        heartbeat_period_s=spec.heartbeat_period_s,
        created_at=stamp,
        updated_at=stamp,
    )
    with store.write() as s:
        s.add(row)
        if webhook and spec.secret:
            s.add(sealed_row(store, row.id, spec.secret))
    return row


def get(store: DeliveryStore, sub_id: str) -> SubscriptionRow:
    with store.read() as s:
        row = s.get(SubscriptionRow, sub_id)
    if row is None:
        raise SubscriptionNotFound(sub_id)
    return row


def of_agency(store: DeliveryStore, agency: str) -> list[SubscriptionRow]:
    with store.read() as s:
        stmt = (
            select(SubscriptionRow)
            .where(col(SubscriptionRow.agency) == agency)
            .order_by(col(SubscriptionRow.created_at))
        )
        return list(s.exec(stmt).all())


def set_status(
    store: DeliveryStore, sub_id: str, status: Status, *, now: datetime, error: str | None = None
) -> SubscriptionRow:
    """Switch a subscription on or off. While off it is given no events (and no numbers);
    what was queued waits until it is on again, and then starts afresh: no attempts, no
    wait, its retry horizon counting again from when it next becomes the head."""
    with store.write() as s:
        row = s.get(SubscriptionRow, sub_id)
        if row is None:
            raise SubscriptionNotFound(sub_id)
        if status is Status.ACTIVE and row.status != Status.ACTIVE.value:
            s.exec(
                update(NotificationRow)
                .where(
                    col(NotificationRow.subscription_id) == sub_id,
                    col(NotificationRow.state) == State.PENDING.value,
                )
                .values(attempts=0, next_attempt_at=None, queued_at=db_time(now))
            )
        row.status = status.value
        row.updated_at = db_time(now)
        if error is not None or status is Status.ACTIVE:
            row.last_error = error
        s.add(row)
    return row


def remove(store: DeliveryStore, sub_id: str) -> None:
    """Delete a subscription and its notification log (the deliveries stay)."""
    with store.write() as s:
        row = s.get(SubscriptionRow, sub_id)
        if row is None:
            raise SubscriptionNotFound(sub_id)
        s.exec(sql_delete(NotificationRow).where(col(NotificationRow.subscription_id) == sub_id))
        s.exec(sql_delete(WebhookSecretRow).where(col(WebhookSecretRow.subscription_id) == sub_id))
        s.delete(row)


def acknowledge(store: DeliveryStore, sub_id: str, through: int, *, now: datetime) -> int:
    """Acknowledge an inbox subscription's events up to ``through``; the new cursor."""
    with store.write() as s:
        row = s.get(SubscriptionRow, sub_id)
        if row is None:
            raise SubscriptionNotFound(sub_id)
        if row.channel != Channel.INBOX.value:
            raise WrongChannel("a webhook subscription is acknowledged by its endpoint's 2xx")
        acked = next_ack(through, acknowledged=row.acked_through, last=row.events_since_start)
        if acked > row.acked_through:
            s.exec(
                update(NotificationRow)
                .where(
                    col(NotificationRow.subscription_id) == sub_id,
                    col(NotificationRow.event_number) > row.acked_through,
                    col(NotificationRow.event_number) <= acked,
                )
                .values(acknowledged=True, state=State.DELIVERED.value, settled_at=db_time(now))
            )
            row.acked_through = acked
            row.updated_at = db_time(now)
            s.add(row)
    return acked


def counts(store: DeliveryStore, sub_id: str) -> dict[str, int]:
    """How many of a subscription's notifications are in each state."""
    with store.read() as s:
        stmt = (
            select(NotificationRow.state, func.count())
            .where(col(NotificationRow.subscription_id) == sub_id)
            .group_by(col(NotificationRow.state))
        )
        found = {str(state): int(n) for state, n in s.exec(stmt)}
    return {state.value: found.get(state.value, 0) for state in State}
