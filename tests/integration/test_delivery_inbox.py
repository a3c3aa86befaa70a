"""The delivery service on the real broker: exactly-once numbering across a restart and a
crash mid-transaction, the pull inbox's cursor and acknowledgements, per-agency auth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from services.delivery import queue, subscriptions
from services.delivery.kafka_edge import DeadLetters, ingest
from services.delivery.model import Content
from services.delivery.settings import DeliverySettings
from services.delivery.store import DeliveryStore
from services.delivery.tables import NotificationRow
from tests.integration.kafka_helpers import eventually, read_topic
from tests.integration.test_delivery_harness import (
    ATTENDANCE,
    ED,
    LA,
    PLAN,
    delivery,
    fast_settings,
    inbox_subscription,
    publish,
    running,
    token,
)

pytestmark = pytest.mark.kafka

POISON = (
    b"k1",
    b"{not json",
    [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"poison-1"),
        ("ce_source", b"/agencies/nhs-riverside-ed"),
        ("ce_type", ATTENDANCE.encode()),
    ],
)


def _count(n: int) -> Callable[[list[Any]], bool]:
    return lambda records: len(records) >= n


@pytest.fixture
def settings(
    tmp_path: Path, keyring_path: Path, kafka_access: KafkaAccess, namespace: str
) -> DeliverySettings:
    return fast_settings(
        tmp_path=tmp_path, keyring_path=keyring_path, access=kafka_access, namespace=namespace
    )


async def _status(api: httpx.AsyncClient, sub_id: str, auth: dict[str, str]) -> dict[str, Any]:
    response = await api.get(f"/subscriptions/{sub_id}/status", headers=auth)
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


async def _subscribe(api: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> str:
    response = await api.post(f"/recipients/{LA}/subscriptions", headers=auth, json=body)
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["id"]
    return sub_id


async def test_numbers_have_no_gap_and_no_duplicate_across_a_restart(
    settings: DeliverySettings, keyring_path: Path, kafka_access: KafkaAccess, namespace: str
) -> None:
    topics = Topics(namespace=namespace)
    la = token(keyring_path, LA)
    early = [delivery(n=i) for i in range(2)]
    first = [delivery(n=i, site="RVR01" if i % 2 == 0 else "OTHER1") for i in range(4)]
    plan = delivery(PLAN, n=4)
    second = [delivery(n=5 + i) for i in range(4)]

    async with running(settings) as api:

        async def seen(n: int) -> bool:
            page = await api.get(f"/recipients/{LA}/inbox", headers=la)
            return len(page.json()["items"]) >= n

        await publish(kafka_access, topics.deliver(LA), [r for _, r in early])
        await eventually("the deliveries before any subscription", lambda: seen(2))
        every = await _subscribe(api, la, event_types=[ATTENDANCE], channel="inbox")
        rvr01 = await _subscribe(
            api,
            la,
            event_types=[ATTENDANCE, PLAN],
            channel="inbox",
            content="full",
            filters=[{"path": "data.attendance.site.ods_code", "op": "eq", "value": "RVR01"}],
        )
        await publish(kafka_access, topics.deliver(LA), [*(r for _, r in [*first, plan]), POISON])

        async def counted(sub_id: str, n: int) -> bool:
            return int((await _status(api, sub_id, la))["events_since_subscription_start"]) >= n

        await eventually("the first four attendances", lambda: counted(every, 4))

    # While the service is down: the same delivery again (a replay keeps its event id) and
    # four new ones, all on one partition (one key) so they are read in this order.
    again = first[0][1]
    await publish(kafka_access, topics.deliver(LA), [again, *(r for _, r in second)])

    async with running(settings) as api:
        await eventually("every attendance after the restart", lambda: counted(every, 8))
        page = (await api.get(f"/subscriptions/{every}/events", headers=la)).json()
        numbers = [e["event_number"] for e in page["notification_events"]]
        ids = [e["focus"]["id"] for e in page["notification_events"]]
        assert numbers == list(range(1, 9))
        assert ids == [e.id for e, _ in [*first, *second]]  # not the two before it existed
        assert page["events_since_subscription_start"] == 8

        filtered = (await api.get(f"/subscriptions/{rvr01}/events", headers=la)).json()
        events = filtered["notification_events"]
        assert [e["event_number"] for e in events] == list(range(1, 7))
        assert [e["event"]["id"] for e in events] == [
            e.id for e, _ in [first[0], first[2], *second]
        ]
        assert events[0]["event"]["data"] == dict(first[0][0].data)  # full content

        inbox = (await api.get(f"/recipients/{LA}/inbox?limit=1000", headers=la)).json()
        assert [i["number"] for i in inbox["items"]] == list(range(1, 12))  # 2+5+4, no repeat

    # The record that is not a CloudEvent was dead-lettered, audited, and read past.
    (dead,) = await read_topic(topics.dlq("delivery"), kafka_access, until=_count(1))
    assert dead.value == POISON[1]
    headers = dict(dead.headers)
    assert (
        b"not JSON" in headers["dlq_reason"] and headers["dlq_topic"] == topics.deliver(LA).encode()
    )
    audit = await read_topic(topics.audit_activity, kafka_access, until=_count(1))
    record = orjson.loads(audit[0].value)
    assert (record["decision"], record["action"], record["recipient"]) == (
        "dead_lettered",
        "dead_letter",
        LA,
    )


class CrashOnce(DeliveryStore):
    """Dies at the last moment of the first transaction that numbers anything."""

    crashed = False

    def _before_commit(self, session: Session) -> None:
        numbered = session.exec(select(func.count()).select_from(NotificationRow)).one()
        if not self.crashed and numbered:
            self.crashed = True
            raise RuntimeError("simulated crash before commit")


async def test_a_crash_inside_the_transaction_neither_skips_nor_repeats_a_number(
    database_url: str, kafka_access: KafkaAccess, namespace: str, directory: Directory
) -> None:
    topics = Topics(namespace=namespace)
    topic = topics.deliver(LA)
    await kafka.ensure_topics(kafka_access, topics.all_specs(directory))
    store = CrashOnce(database_url)
    store.create_schema()
    sub = inbox_subscription(store, content=Content.ID_ONLY)
    published = [delivery(n=i) for i in range(5)]
    await publish(kafka_access, topic, [r for _, r in published])
    producer = kafka.producer(kafka_access)
    await producer.start()
    letters = DeadLetters(
        producer, dlq_topic=topics.dlq("delivery"), audit_topic=topics.audit_activity
    )
    try:
        stop = asyncio.Event()
        with pytest.raises(RuntimeError, match="simulated crash"):
            await asyncio.wait_for(
                ingest(
                    store,
                    topics={topic: LA},
                    access=kafka_access,
                    dead_letters=letters,
                    stop=stop,
                ),
                30,
            )
        assert store.offsets() == {}  # nothing of the failed batch was kept
        assert subscriptions.get(store, sub.id).events_since_start == 0

        reader = asyncio.create_task(
            ingest(
                store,
                topics={topic: LA},
                access=kafka_access,
                dead_letters=letters,
                stop=stop,
            )
        )

        async def all_numbered() -> bool:
            return subscriptions.get(store, sub.id).events_since_start >= 5

        await eventually("the batch read again after the crash", all_numbered)
        stop.set()
        await reader
    finally:
        await producer.stop()
    rows = queue.entries(store, sub.id, 1, 100)
    assert [q.notification.event_number for q in rows] == [1, 2, 3, 4, 5]
    assert [q.delivery.event_id for q in rows] == [e.id for e, _ in published]


async def test_the_inbox_cursor_follows_acknowledgements(
    settings: DeliverySettings, keyring_path: Path, kafka_access: KafkaAccess, namespace: str
) -> None:
    topics = Topics(namespace=namespace)
    la, ed = token(keyring_path, LA), token(keyring_path, ED)
    published = [delivery(n=i) for i in range(5)]
    async with running(settings) as api:
        sub = await _subscribe(api, la, event_types=[ATTENDANCE], channel="inbox", content="empty")
        await publish(kafka_access, topics.deliver(LA), [r for _, r in published])

        async def numbered() -> bool:
            return int((await _status(api, sub, la))["events_since_subscription_start"]) >= 5

        await eventually("five notifications", numbered)
        url = f"/subscriptions/{sub}/notifications"

        async def numbers(params: dict[str, Any] | None = None) -> tuple[list[int], int]:
            body = (await api.get(url, params=params, headers=la)).json()
            return [e["event_number"] for e in body["notification_events"]], body["next_after"]

        assert await numbers({"limit": 2}) == ([1, 2], 2)
        assert await numbers({"limit": 2}) == ([1, 2], 2)  # reading acknowledges nothing
        first = (await api.get(url, params={"limit": 1}, headers=la)).json()
        assert first["notification_events"] == [{"event_number": 1, "type": ATTENDANCE}]

        async def ack(through: int) -> httpx.Response:
            return await api.post(
                f"/subscriptions/{sub}/ack", json={"through": through}, headers=la
            )

        assert (await ack(2)).json()["last_acknowledged"] == 2
        assert await numbers() == ([3, 4, 5], 5)
        assert (await ack(1)).json()["last_acknowledged"] == 2  # monotonic
        beyond = await ack(6)
        assert beyond.status_code == 409 and "last event number is 5" in beyond.text
        assert "through" not in beyond.text  # the number asked for is not echoed
        assert (await ack(5)).json()["last_acknowledged"] == 5
        assert await numbers() == ([], 5)
        assert await numbers({"after": 3}) == ([4, 5], 5)
        status = await _status(api, sub, la)
        assert status["last_acknowledged"] == 5
        assert status["notifications"] == {"pending": 0, "delivered": 5, "dead_lettered": 0}

        ranged = (await api.get(f"/subscriptions/{sub}/events?since=2&until=3", headers=la)).json()
        assert [e["event_number"] for e in ranged["notification_events"]] == [2, 3]
        assert ranged["type"] == "query-event"

        event_id = published[0][0].id
        fetched = await api.get(f"/recipients/{LA}/deliveries/{event_id}", headers=la)
        assert fetched.status_code == 200
        assert fetched.json()["data"] == orjson.loads(published[0][1][1])
        assert fetched.json()["protocol"] == "cpis-attendance@1"

        # Another agency's token: 403 everywhere; none: 401; the wrong channel: 409.
        assert (
            await api.get(f"/recipients/{LA}/deliveries/{event_id}", headers=ed)
        ).status_code == 403
        assert (await api.get(url, headers=ed)).status_code == 403
        assert (await api.get(f"/recipients/{LA}/subscriptions", headers=ed)).status_code == 403
        assert (await api.get(url)).status_code == 401
        assert (await api.post(f"/subscriptions/{sub}/resend", headers=la)).status_code == 409
        missing = await api.get(f"/recipients/{LA}/deliveries/no-such-id", headers=la)
        assert missing.status_code == 404


async def test_an_over_long_attribute_is_dead_lettered_and_the_partition_moves_on(
    database_url: str, kafka_access: KafkaAccess, namespace: str, directory: Directory
) -> None:
    # A ce_type longer than the store's column fails the insert on PostgreSQL, which would
    # roll the batch back and replay it forever: it must be refused before the store.
    topics = Topics(namespace=namespace)
    topic = topics.deliver(LA)
    await kafka.ensure_topics(kafka_access, topics.all_specs(directory))
    store = DeliveryStore(database_url)
    store.create_schema()
    sub = inbox_subscription(store, content=Content.ID_ONLY)
    key, value, headers = delivery()[1]
    long_type = [(n, b"x" * 129 if n == "ce_type" else v) for n, v in headers]
    good = [delivery(n=i) for i in range(2)]
    await publish(kafka_access, topic, [good[0][1], (key, value, long_type), good[1][1]])
    producer = kafka.producer(kafka_access)
    await producer.start()
    letters = DeadLetters(
        producer, dlq_topic=topics.dlq("delivery"), audit_topic=topics.audit_activity
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(
        ingest(store, topics={topic: LA}, access=kafka_access, dead_letters=letters, stop=stop)
    )
    try:

        async def both_numbered() -> bool:
            return subscriptions.get(store, sub.id).events_since_start >= 2

        await eventually("the good deliveries on both sides of the bad one", both_numbered)
        (dead,) = await read_topic(topics.dlq("delivery"), kafka_access, until=_count(1))
        assert dead.value == value
        assert b"event_type is longer than 128" in dict(dead.headers)["dlq_reason"]
        audit = await read_topic(topics.audit_activity, kafka_access, until=_count(1))
        assert orjson.loads(audit[0].value)["decision"] == "dead_lettered"
    finally:
        stop.set()
        await reader
        await producer.stop()
    rows = queue.entries(store, sub.id, 1, 100)
    assert [q.delivery.event_id for q in rows] == [e.id for e, _ in good]
    assert store.delivered_count() == 2
    assert max(store.offsets().values()) == 3  # read past all three
