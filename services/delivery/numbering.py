"""The numbering rules of subscriptions, as pure functions.

Every subscription counts the events it has been given from 1 (R5
``eventsSinceSubscriptionStart``). The store applies :func:`assign_numbers` inside the one
database transaction that also stores the deliveries and advances the Kafka offsets, so a
crash at any point neither skips nor repeats a number.

A recall notice (services/backbone/recall.py) is numbered like any delivery, but who is given
it is :func:`takes_notice`'s to say: the recipient must be told through whichever channel
told it of what is withdrawn, whatever that subscription's types and filters.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from services.backbone.recall import RECALLED
from services.delivery.errors import AckBeyondLast
from services.delivery.filters import Filter, matches
from services.delivery.model import Delivered, Status
from services.delivery.recalls import Withdrawal, recalled_type

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


def takes_notice(
    sub: Subscriber, agency: str, notice: Delivered, *, given: Set[str] | None
) -> bool:
    """Whether ``sub`` is given a recall ``notice`` to ``agency``. ``given``: the
    subscriptions the store gave the delivery withdrawn, or None if it does not hold it.

    Each subscription given the delivery is told, even one switched off (it waits in its
    queue, as anything queued does) and whatever its types and filters. One that asked for
    notices by type is told of every one. When the store does not hold the delivery (purged
    already, never stored), it cannot know who was given it: every active subscription to
    the type withdrawn (or to every type) is told. No content filter drops a notice: it
    would keep the withdrawal from a recipient that holds what is withdrawn."""
    if sub.agency != agency:
        return False
    if given is not None and sub.id in given:
        return True
    if sub.status is not Status.ACTIVE:
        return False
    if RECALLED in sub.event_types:
        return True
    if given is not None:
        return False
    return not sub.event_types or recalled_type(notice) in sub.event_types


def assign_numbers(
    subs: Sequence[Subscriber],
    deliveries: Sequence[tuple[str, Delivered]],
    *,
    withdrawals: Sequence[Withdrawal] = (),
) -> list[Numbered]:
    """Number a batch of ``(agency, event)`` in order: each subscription that wants an event
    gets it under its next number, continuing from ``events_since_start``. A recall notice
    goes to the subscriptions :func:`takes_notice` names, from its ``withdrawals`` entry
    (recalls.withdrawals; a notice without one withdraws nothing the store holds)."""
    last = {s.id: s.events_since_start for s in subs}
    by_notice = {w.notice: w for w in withdrawals}
    watched = {w.earlier for w in withdrawals if w.earlier is not None}
    given: dict[int, set[str]] = {}  # of a delivery a later notice in the batch withdraws
    out: list[Numbered] = []
    for index, (agency, event) in enumerate(deliveries):
        if event.recalls is None:
            takers = [sub for sub in subs if wants(sub, agency, event)]
        else:
            w = by_notice.get(index)
            had: Set[str] | None = None
            if w is not None and w.found:
                had = w.notified if w.earlier is None else given[w.earlier]
            takers = [sub for sub in subs if takes_notice(sub, agency, event, given=had)]
        for sub in takers:
            last[sub.id] += 1
            out.append(Numbered(sub.id, last[sub.id], index))
        if index in watched:
            given[index] = {sub.id for sub in takers}
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
