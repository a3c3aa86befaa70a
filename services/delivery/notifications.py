"""The notification body, pushed to webhooks and answered to pulls alike.

It is FHIR R5's SubscriptionStatus in plain JSON (R5 name in brackets)::

    {
      "subscription": "<id>",                         (subscription.reference)
      "type": "event-notification" | "heartbeat" | "query-event",          (type)
      "status": "active" | "off",                                          (status)
      "events_since_subscription_start": 7,      (eventsSinceSubscriptionStart)
      "notification_events": [                                  (notificationEvent)
        {"event_number": 7,                                   (eventNumber)
         "timestamp": "...",          when the service received it (timestamp)
         "focus": {"id": ..., "type": ..., "url": ...},               (focus)
         "event": {CloudEvents JSON}}              (the R5 bundle's resource entry)
      ]
    }

What an entry holds depends on the subscription's content (R5 payload content):
``empty`` gives ``event_number`` and the event ``type`` only; ``id-only`` adds ``focus``
(the event id, type and the URL that fetches it with the recipient's token); ``full``
adds ``event``, the delivered CloudEvent itself. A heartbeat has no entries and does not
change ``events_since_subscription_start``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from services.delivery.model import Content, Delivered, NotificationType


@dataclass(frozen=True)
class Entry:
    event_number: int
    received_at: datetime
    event: Delivered


def fetch_path(agency: str, event_id: str) -> str:
    """Where a recipient fetches one delivered event (``GET``, its bearer token)."""
    return f"/recipients/{quote(agency, safe='')}/deliveries/{quote(event_id, safe='')}"


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def notification_event(
    entry: Entry, *, content: Content, agency: str, base_url: str = ""
) -> dict[str, Any]:
    """One ``notification_events`` entry under ``content``."""
    if content is Content.EMPTY:
        return {"event_number": entry.event_number, "type": entry.event.type}
    item: dict[str, Any] = {
        "event_number": entry.event_number,
        "timestamp": _time(entry.received_at),
        "focus": {
            "id": entry.event.event_id,
            "type": entry.event.type,
            "url": base_url.rstrip("/") + fetch_path(agency, entry.event.event_id),
        },
    }
    if content is Content.FULL:
        item["event"] = entry.event.cloudevent()
    return item


def notification(
    *,
    subscription_id: str,
    kind: NotificationType,
    status: str,
    events_since_start: int,
    entries: Sequence[Entry] = (),
    content: Content = Content.ID_ONLY,
    agency: str = "",
    base_url: str = "",
) -> dict[str, Any]:
    """A whole notification (R5 SubscriptionStatus with its events)."""
    return {
        "subscription": subscription_id,
        "type": kind.value,
        "status": status,
        "events_since_subscription_start": events_since_start,
        "notification_events": [
            notification_event(e, content=content, agency=agency, base_url=base_url)
            for e in entries
        ],
    }
