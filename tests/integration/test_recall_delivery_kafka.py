"""Recall through the delivery service's reader, on the real broker: a delivery and then its
notice on ``deliver.<agency>``, as the processor writes them, leave the notice in the store
in the delivery's place; the purge's audit record goes out after the batch, and one the
broker could not take is sent when the reader starts again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.backbone import envelope, kafka, recall
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from services.delivery import queue, recall_audit
from services.delivery.kafka_edge import DeadLetters, ingest
from services.delivery.store import DeliveryStore
from tests.integration.kafka_helpers import eventually
from tests.integration.sent_audits import Sent
from tests.integration.test_delivery_dispatcher import Letters
from tests.integration.test_delivery_harness import (
    LA,
    delivery,
    inbox_subscription,
    publish,
)

pytestmark = pytest.mark.kafka


def _notice(recalled: envelope.CloudEvent) -> tuple[bytes | None, bytes, envelope.Headers]:
    event = envelope.CloudEvent(
        type=recall.RECALLED,
        source=recall.NOTICE_SOURCE,
        data={
            "recalls": recalled.id,
            "recalled_type": recalled.type,
            "reason": recall.RecallReason.SHARED_IN_ERROR.value,
            "recalled_at": "2026-11-21T09:00:00Z",
        },
        key=recalled.key,
        id=str(uuid.uuid4()),
        extensions={
            envelope.EXT_RECALLS: recalled.id,
            envelope.EXT_PROTOCOL: "cpis-attendance@1",
            envelope.EXT_IDENTITY: "identified",
        },
    )
    return envelope.encode(event)


async def test_the_reader_withdraws_and_audits_once_sent_again_after_a_restart(
    tmp_path: Path, kafka_access: KafkaAccess, namespace: str, directory: Directory
) -> None:
    topics = Topics(namespace=namespace)
    topic = topics.deliver(LA)
    await kafka.ensure_topics(
        kafka_access, [s for s in topics.all_specs(directory) if s.name == topic]
    )
    store = DeliveryStore(f"sqlite:///{tmp_path / 'delivery.db'}")
    store.create_schema()
    sub = inbox_subscription(store)
    withdrawn, record = delivery()
    notice = _notice(withdrawn)
    await publish(kafka_access, topic, [record])
    await publish(kafka_access, topic, [notice])
    letters: DeadLetters = Letters()
    sent = Sent()
    sent.down = True

    async def read_until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
        stop = asyncio.Event()
        reader = asyncio.create_task(
            ingest(
                store,
                topics={topic: LA},
                access=kafka_access,
                dead_letters=letters,
                stop=stop,
                send_audit=sent,
            )
        )
        try:
            await eventually(what, check)
        finally:
            stop.set()
            await reader

    async def logged() -> bool:
        return bool(await asyncio.to_thread(recall_audit.unaudited, store))

    await read_until("the notice read and its purge logged", logged)
    assert store.delivery(LA, withdrawn.id) is None
    (held,) = queue.entries(store, sub.id, 1, 10)
    assert held.delivery.event_type == recall.RECALLED
    assert held.delivery.recalls == withdrawn.id and held.delivery.record_key == b"k1"
    assert sent.records == []  # the broker was away: owed, and the reader read on

    sent.down = False

    async def audited() -> bool:
        return bool(sent.records)

    await read_until("the owed audit record sent at start", audited)
    (audit,) = sent.records
    assert (audit.action, audit.reason_code, audit.recipient) == (
        recall.PURGE_ACTION,
        recall.PURGED,
        LA,
    )
    assert (audit.delivery_id, audit.offset_in) == (
        held.delivery.event_id,
        held.delivery.kafka_offset,
    )
    assert recall_audit.unaudited(store) == []
