"""An agency service's inbox reader on the real broker: an item, then the processor's recall
notice for it (same key, after it), on the agency's delivery topic. The item ends deleted,
the notice listed in its place, and the purge's audit record sent once; one that could not
be sent (the broker away from the audit path) is sent once it can be, under the same id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.agency import inbox as inbox_reader
from services.agency.inbox import consume_into
from services.agency.inbox_store import Inbox
from services.backbone import envelope, kafka, recall
from services.backbone.database import engine_for
from services.backbone.envelope import EXT_PROTOCOL, EXT_RECALLS, CloudEvent
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics, TopicSpec
from tests.integration.kafka_helpers import eventually
from tests.integration.sent_audits import Sent

pytestmark = pytest.mark.kafka

LA, ED = "la-northshire", "nhs-riverside-ed"
FLAG = "health.flag.raised"


def _item() -> CloudEvent:
    return CloudEvent(
        type=FLAG,
        source=f"/agencies/{ED}",
        data={"flag": "child protection plan"},
        key="key-of-the-child",
        extensions={EXT_PROTOCOL: "flag@1"},
    )


def _notice(of: CloudEvent) -> CloudEvent:
    return CloudEvent(
        type=recall.RECALLED,
        source=recall.NOTICE_SOURCE,
        data={
            "recalls": of.id,
            "recalled_type": of.type,
            "reason": "shared_in_error",
            "recalled_at": datetime.now(UTC).isoformat(),
        },
        key=of.key,
        extensions={EXT_RECALLS: of.id, EXT_PROTOCOL: "flag@1", "identitylevel": "identified"},
    )


async def _publish(access: KafkaAccess, topic: str, events: list[CloudEvent]) -> None:
    producer = kafka.producer(access)
    await producer.start()
    try:
        for event in events:
            key, value, headers = envelope.encode(event)
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


@pytest.fixture
async def topic(kafka_access: KafkaAccess, namespace: str) -> AsyncIterator[str]:
    name = Topics(namespace=namespace).deliver(LA)
    await kafka.ensure_topics(kafka_access, [TopicSpec(name, partitions=1)])
    yield name


async def _reading(
    inbox: Inbox, access: KafkaAccess, sent: Sent
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(consume_into(inbox, access=access, stop=stop, send=sent))
    return stop, task


async def test_a_notice_read_deletes_its_item_and_its_purge_is_audited_once(
    tmp_path: Path, kafka_access: KafkaAccess, topic: str
) -> None:
    inbox = Inbox(engine_for(f"sqlite:///{tmp_path / 'outbox.db'}"), topic)
    inbox.create_schema()
    assert inbox.agency == LA
    withdrawn, kept = _item(), _item()
    notice = _notice(withdrawn)
    await _publish(kafka_access, topic, [withdrawn, kept, notice])
    sent = Sent()
    stop, task = await _reading(inbox, kafka_access, sent)
    try:

        async def settled() -> bool:
            ids = [i.event_id for i in await asyncio.to_thread(inbox.after, 0, 10)]
            return ids == [kept.id, notice.id] and len(sent.records) == 1

        await eventually("the item deleted, the notice kept and audited", settled)
    finally:
        stop.set()
        await task
    (record,) = sent.records
    assert (record.action, record.reason_code) == (recall.PURGE_ACTION, recall.PURGED)
    assert (record.recipient, record.delivery_id) == (LA, notice.id)
    assert (record.topic_in, record.partition_in, record.offset_in) == (topic, 0, 2)
    assert withdrawn.id not in record.model_dump_json()


async def test_a_purge_audit_the_broker_refused_is_sent_once_it_is_back(
    tmp_path: Path, kafka_access: KafkaAccess, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_reader, "RESEND_AFTER_S", 0.0)  # the test's clock is the poll
    inbox = Inbox(engine_for(f"sqlite:///{tmp_path / 'outbox.db'}"), topic)
    inbox.create_schema()
    withdrawn = _item()
    await _publish(kafka_access, topic, [withdrawn, _notice(withdrawn)])
    sent = Sent(down=True)
    stop, task = await _reading(inbox, kafka_access, sent)
    try:

        async def refused() -> bool:
            return sent.refused > 0

        await eventually("a send refused", refused)
        assert [i.type for i in await asyncio.to_thread(inbox.after, 0, 10)] == [recall.RECALLED]
        sent.down = False

        async def delivered() -> bool:
            return len(sent.records) == 1

        await eventually("the audit record sent", delivered)
    finally:
        stop.set()
        await task
    assert len(sent.records) == 1
