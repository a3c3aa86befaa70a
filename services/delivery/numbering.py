"""The numbering rules of subscriptions, as pure functions.

Every subscription counts the events it has been given from 1 (R5
``eventsSinceSubscriptionStart``). The store applies :func:`assign_numbers` inside the one
database transaction that also stores the deliveries and advances the Kafka offsets, so a
crash at any point neither skips nor repeats a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.delivery.errors import AckBeyondLast
from services.delivery.filters import Filter, matches
from services.delivery.model import Delivered, Status

MAX_NUMBER = 2**31 - 1
"""The largest number the store holds (32-bit integer columns on PostgreSQL): a cursor or
range past it is a 422, never a database error."""


@dataclass(frozen=True)
class Subscriber:
    """What numbering needs to know of one subscription."""

    id: str
    agency: str
    status: Status
    event_types: frozenset[str]
    filters: tuple[Filter, ...]
    events_since_start: int


@dataclass(frozen=True)
class Numbered:
    subscription_id: str
    event_number: int
    index: int  # of the delivery in the batch


def wants(sub: Subscriber, agency: str, event: Delivered) -> bool:
    """Whether ``sub`` receives ``event`` delivered to ``agency``: its own agency's events
    only, while active, of a subscribed type, every filter holding."""
    return (
        sub.agency == agency
        and sub.status is Status.ACTIVE
        and event.type in sub.event_types
        and matches(sub.filters, event)
    )


def assign_numbers(
    subs: Sequence[Subscriber], deliveries: Sequence[tuple[str, Delivered]]
) -> list[Numbered]:
    """Number a batch of ``(agency, event)`` in order: each subscription that wants an event
    gets it under its next number, continuing from ``events_since_start``."""
    last = {s.id: s.events_since_start for s in subs}
    out: list[Numbered] = []
    for index, (agency, event) in enumerate(deliveries):
        for sub in subs:
            if wants(sub, agency, event):
                last[sub.id] += 1
                out.append(Numbered(sub.id, last[sub.id], index))
    return out


def acknowledge(through: int, *, acknowledged: int, last: int) -> int:
    """The new acknowledged number. Acknowledging is monotonic (an older number changes
    nothing) and cannot go beyond the last number given out."""
    if through > last:
        raise AckBeyondLast(through, last)
    return max(acknowledged, through)


def event_range(
    since: int | None, until: int | None, *, last: int, limit: int
) -> tuple[int, int] | None:
    """The inclusive range ``$events`` answers: from ``since`` (default 1) to ``until``
    (default the last number), at most ``limit`` events from its start; None when empty."""
    low = max(1, since if since is not None else 1)
    high = min(last, until if until is not None else last, low + limit - 1)
    return (low, high) if low <= high else None
