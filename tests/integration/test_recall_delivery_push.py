"""Recall and the webhook push, on SQLite and PostgreSQL, with a scripted endpoint instead of
HTTP: a queued notification of a recalled delivery is never pushed, the notice is pushed in
its place like any delivery (signed, numbered, its ``recalls`` extension in full content),
and a recall that lands while the delivery's push is in flight leaves the queue whole."""

from __future__ import annotations

from typing import Any

import orjson

from services.backbone import recall
from services.delivery import queue, subscriptions
from services.delivery.store import DeliveryStore
from services.delivery.webhook import PushOutcome
from tests.integration.test_delivery_dispatcher import OK, Endpoint, Letters, _dispatcher
from tests.integration.test_recall_delivery_store import (
    ATT,
    OF_TYPE,
    _delivery,
    _ingest,
    _notice,
    _queue,
    _store,
    _subscribe,
)


class Bodies(Endpoint):
    """Takes every push, keeping what each said."""

    def __init__(self, *outcomes: PushOutcome) -> None:
        super().__init__(*outcomes)
        self.bodies: list[dict[str, Any]] = []

    async def post(self, url: str, body: bytes, **kw: Any) -> PushOutcome:
        self.bodies.append(orjson.loads(body))
        return await super().post(url, body, **kw)


def _pushed(endpoint: Bodies) -> list[tuple[int, str, str | None]]:
    """(number, event type, recalls) of each event pushed, in order."""
    return [
        (e["event_number"], e["event"]["type"], e["event"].get("recalls"))
        for body in endpoint.bodies
        for e in body["notification_events"]
    ]


async def _push_all(endpoint: Bodies, store: DeliveryStore, sub_id: str) -> None:
    dispatcher = _dispatcher(store, endpoint, Letters())
    for _ in range(10):
        window = queue.window(store, sub_id, 10)
        if not window:
            return
        assert await dispatcher._push_window(subscriptions.get(store, sub_id), window, None)
    raise AssertionError("the queue did not drain")


async def test_a_queued_notification_of_a_recalled_delivery_is_never_pushed(
    database_url: str,
) -> None:
    store = _store(database_url)
    hook = _subscribe(store, [ATT], webhook=True, filters=OF_TYPE)
    withdrawn = _delivery(0)
    _ingest(store, withdrawn)
    notice = _notice(withdrawn, 1)
    _ingest(store, notice)

    endpoint = Bodies(OK)
    await _push_all(endpoint, store, hook)
    assert _pushed(endpoint) == [(2, recall.RECALLED, withdrawn.event.event_id)]
    assert endpoint.bodies[0]["events_since_subscription_start"] == 2


async def test_a_recall_during_the_push_of_its_delivery_leaves_the_queue_whole(
    database_url: str,
) -> None:
    store = _store(database_url)
    hook = _subscribe(store, [ATT], webhook=True)
    withdrawn = _delivery(0)
    _ingest(store, withdrawn)
    notice = _notice(withdrawn, 1)
    endpoint = Bodies(OK, OK)

    def recalled() -> None:  # the notice lands while the delivery's push is out
        endpoint.during = None
        _ingest(store, notice)

    endpoint.during = recalled

    await _push_all(endpoint, store, hook)
    assert _pushed(endpoint) == [
        (1, ATT, None),  # out before the notice came
        (2, recall.RECALLED, withdrawn.event.event_id),  # so the recipient is told
    ]
    assert _queue(store, hook) == [(2, notice.event.event_id)]
    assert subscriptions.get(store, hook).acked_through == 2
