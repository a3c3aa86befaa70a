"""Two replicas of the delivery service share one store on PostgreSQL: one reads the
delivery topics and each subscription is pushed by one replica at a time, so every
notification reaches the webhook once and in order; when the replica at work stops, the
other carries on."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from deploy.devstack.postgres import PostgresNode
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from tests.integration.kafka_helpers import eventually
from tests.integration.test_delivery_harness import (
    ATTENDANCE,
    LA,
    Receiver,
    delivery,
    fast_settings,
    publish,
    running,
    token,
)


async def test_two_replicas_push_each_notification_once_in_order(
    tmp_path: Path,
    keyring_path: Path,
    kafka_access: KafkaAccess,
    namespace: str,
    postgres: PostgresNode,
) -> None:
    name = f"t{uuid.uuid4().hex[:12]}"
    settings = fast_settings(
        tmp_path=tmp_path,
        keyring_path=keyring_path,
        access=kafka_access,
        namespace=namespace,
        delivery_database_url=postgres.ensure_database(name),
    )
    topic, la = Topics(namespace=namespace).deliver(LA), token(keyring_path, LA)
    published = [delivery(n=i) for i in range(12)]
    receiver = Receiver()
    await receiver.start()
    replicas = (contextlib.AsyncExitStack(), contextlib.AsyncExitStack())

    async def kept(n: int) -> bool:
        return len(receiver.kept) >= n

    try:
        a = await replicas[0].enter_async_context(running(settings))
        body = {
            "event_types": [ATTENDANCE],
            "channel": "webhook",
            "endpoint": receiver.url,
            "content": "full",
        }
        created = await a.post(f"/recipients/{LA}/subscriptions", headers=la, json=body)
        assert created.status_code == 201, created.text
        receiver.secret = created.json()["secret"]
        await publish(kafka_access, topic, [r for _, r in published[:4]])
        await eventually("the first four pushed by the one replica", lambda: kept(4))
        # A second replica joins: it stands by while the first holds the work.
        await replicas[1].enter_async_context(running(settings))
        await publish(kafka_access, topic, [r for _, r in published[4:8]])
        await eventually("four more pushed, with two replicas up", lambda: kept(8))
        await replicas[0].aclose()  # the replica at work stops; the other takes over
        await publish(kafka_access, topic, [r for _, r in published[8:]])
        await eventually("the rest pushed by the other", lambda: kept(12))
    finally:
        for r in replicas:
            await r.aclose()
        await receiver.stop()
        postgres.drop_database(name)

    keys = [r.key for r in receiver.requests]
    assert len(keys) == len(set(keys)) == 12, "a notification was pushed twice"
    events = [n["notification_events"][0] for n in receiver.kept.values()]
    assert [e["event_number"] for e in events] == list(range(1, 13))
    assert [e["event"]["id"] for e in events] == [e.id for e, _ in published]
