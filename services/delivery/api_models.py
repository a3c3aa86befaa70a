"""What the delivery API takes and answers. Tables are never returned: these are built
from them (``SubscriptionPublic.of``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import StringConstraints, model_validator
from pydantic_core import PydanticCustomError
from sqlmodel import Field, SQLModel

from services.backbone.http import WholeNumber
from services.delivery.errors import InvalidSubscription
from services.delivery.filters import Op, parse_filter
from services.delivery.model import Channel, Content, Status
from services.delivery.numbering import MAX_NUMBER
from services.delivery.store import utc
from services.delivery.tables import SubscriptionRow


class FilterIn(SQLModel):
    path: str = Field(
        max_length=200,
        description="type | source | protocol | identity_level | data.<field>[.<field>...]",
    )
    op: Op = Field(description="eq: equals value; in: one of value (a list); exists")
    value: Any = Field(None, description="scalar for eq, list for in, true/false for exists")

    @model_validator(mode="after")
    def _valid(self) -> FilterIn:
        try:
            parse_filter({"path": self.path, "op": self.op.value, "value": self.value})
        except InvalidSubscription as exc:
            raise PydanticCustomError(exc.rule, exc.message) from None
        return self


class SubscriptionBase(SQLModel):
    event_types: list[Annotated[str, StringConstraints(max_length=128)]] = Field(
        min_length=1, max_length=20, description="CloudEvents types (the schema registry's)"
    )
    filters: list[FilterIn] = Field(
        default_factory=list, max_length=20, description="all must hold (R5 filterBy)"
    )
    content: Content = Field(
        Content.ID_ONLY,
        description="full: the event inline; id-only: id, type and URL; empty: number and type",
    )
    channel: Channel = Field(description="webhook (pushed) or inbox (pulled)")
    endpoint: str | None = Field(
        None, max_length=2048, description="webhook only: the https URL notifications go to"
    )
    heartbeat_period: WholeNumber | None = Field(
        None, ge=1, le=86400, description="webhook only: seconds of silence before a heartbeat"
    )


class SubscriptionCreate(SubscriptionBase):
    @model_validator(mode="after")
    def _channel_fields(self) -> SubscriptionCreate:
        if self.channel is Channel.WEBHOOK and not self.endpoint:
            raise PydanticCustomError("endpoint.required", "a webhook needs an endpoint")
        if self.channel is Channel.INBOX and (self.endpoint or self.heartbeat_period):
            raise PydanticCustomError(
                "channel.inbox_fields", "an inbox has no endpoint and no heartbeat"
            )
        return self


class SubscriptionPublic(SubscriptionBase):
    id: str
    agency: str
    status: Status
    events_since_subscription_start: int
    last_acknowledged: int
    created_at: datetime

    @classmethod
    def of(cls, row: SubscriptionRow) -> SubscriptionPublic:
        return cls(
            id=row.id,
            agency=row.agency,
            status=Status(row.status),
            event_types=row.event_types,
            filters=[FilterIn.model_validate(f) for f in row.filters],
            content=Content(row.content),
            channel=Channel(row.channel),
            endpoint=row.endpoint,
            heartbeat_period=row.heartbeat_period_s,
            events_since_subscription_start=row.events_since_start,
            last_acknowledged=row.acked_through,
            created_at=utc(row.created_at),
        )


class SubscriptionCreated(SubscriptionPublic):
    secret: str | None = Field(
        None,
        description="webhook only: the Standard Webhooks signing secret (whsec_...) of the "
        "webhook-signature header. Shown this once: store it now",
    )


class SubscriptionUpdate(SQLModel):
    status: Status


class AckIn(SQLModel):
    # A JSON number: true is not the number 1 (pydantic's lax mode would take it as one).
    through: WholeNumber = Field(
        ge=0, le=MAX_NUMBER, description="acknowledge every event numbered up to this"
    )


class AckOut(SQLModel):
    subscription: str
    last_acknowledged: int


class NotificationOut(SQLModel):
    """R5 SubscriptionStatus with its events (see the README for the field mapping)."""

    subscription: str
    type: str
    status: str
    events_since_subscription_start: int
    notification_events: list[dict[str, Any]]
    next_after: int | None = Field(None, description="inbox: the cursor for the next page")


class StatusOut(SQLModel):
    """R5 $status."""

    subscription: str
    type: str = "query-status"
    status: Status
    channel: Channel
    events_since_subscription_start: int
    last_acknowledged: int
    notifications: dict[str, int] = Field(description="how many are in each state")
    last_error: str | None = Field(None, description="webhook: the last push failure")
    breaker: str | None = Field(None, description="webhook: its endpoint's circuit breaker")


class ResendOut(SQLModel):
    subscription: str
    requeued: int


class AlertOut(SQLModel):
    subscription: str
    recipient: str
    event_number: int
    delivery_id: str
    dead_lettered_at: datetime | None
    reason: str | None


class InboxPage(SQLModel):
    agency: str
    items: list[dict[str, Any]]
    next_cursor: int
