"""The audit service's ingester on the real broker: valid records are stored once however
often they arrive; a record that is not an audit record is parked on dlq.audit, untouched,
and the trail says so."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from services.audit.ingest import NOT_AN_AUDIT_RECORD, ingest
from services.audit.sealing import sealing_from
from services.audit.store import AuditQuery, AuditStore
from services.backbone import kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics, TopicSpec
from tests.integration.kafka_helpers import eventually, read_topic


async def test_records_are_stored_once_and_garbage_is_dead_lettered_and_audited(
    kafka_bootstrap: str, namespace: str, keyring: Keyring, tmp_path: Path
) -> None:
    topics = Topics(namespace=namespace)
    await kafka.ensure_topics(
        kafka_bootstrap, [TopicSpec(topics.audit, 1), TopicSpec(topics.dlq("audit"), 1)]
    )
    store = AuditStore(
        f"sqlite:///{tmp_path / 'audit.db'}", sealing_from(keyring, tmp_path / "cp.jsonl")
    )
    store.create_schema()
    good = AuditRecord.about(
        topic="source.x",
        partition=0,
        offset=1,
        recorded_at=datetime.now(UTC),
        action="disclose",
        decision=AuditOutcome.WITHHELD,
        reason_code="withheld.no_protocol",
        reason="no protocol covers it",
        actor="test",
    ).model_dump_json()
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    try:
        for value in (good.encode(), b"{not json", good.encode()):
            await producer.send_and_wait(topics.audit, value, key=b"k")
    finally:
        await producer.stop()

    stop = asyncio.Event()
    task = asyncio.create_task(
        ingest(
            store,
            topic=topics.audit,
            bootstrap=kafka_bootstrap,
            group_id=namespace + "audit",
            dlq_topic=topics.dlq("audit"),
            stop=stop,
        )
    )
    try:
        (parked,) = await read_topic(
            topics.dlq("audit"), kafka_bootstrap, until=lambda r: len(r) >= 1
        )

        async def both_stored() -> bool:
            return store.search(AuditQuery())[1] >= 2

        await eventually("the record and the dead letter's record stored", both_stored)
    finally:
        stop.set()
        await task
    assert parked.value == b"{not json"
    assert dict(parked.headers)["dlq_reason"] == NOT_AN_AUDIT_RECORD.encode()
    rows, total = store.search(AuditQuery())
    assert total == 2  # the good record once, and the dead letter's own record
    (dead,) = [r for r in rows if r.decision == AuditOutcome.DEAD_LETTERED]
    assert (dead.topic_in, dead.offset_in, dead.topic_out) == (topics.audit, 1, topics.dlq("audit"))
