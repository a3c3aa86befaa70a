"""The audit service's ingester on the real broker: valid records are stored once however
often they arrive; a record that is not an audit record, or that the database refuses, is
parked on dlq.audit, untouched, and the trail says so; the rest of its batch is stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.exc import OperationalError

from services.audit.anchoring import file_anchor
from services.audit.ingest import REFUSED_BY_STORE, ingest
from services.audit.models import AuditEntry
from services.audit.prepared import NOT_AN_AUDIT_RECORD, NOT_THE_PROCESSORS
from services.audit.sealing import sealing_from
from services.audit.store import AuditQuery, AuditStore
from services.audit.verification import verify_trail
from services.backbone import kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.offload import Offload
from services.backbone.topics import Topics, TopicSpec
from tests.integration.kafka_helpers import eventually, read_topic


def _decision(offset: int, event_id: str) -> bytes:
    return (
        AuditRecord.about(
            topic="source.x",
            partition=0,
            offset=offset,
            recorded_at=datetime.now(UTC),
            action="disclose",
            decision=AuditOutcome.WITHHELD,
            reason_code="withheld.no_protocol",
            reason="no protocol covers it",
            actor="test",
            event_id=event_id,
        )
        .model_dump_json()
        .encode()
    )


def _store(tmp_path: Path, keyring: Keyring) -> AuditStore:
    store = AuditStore(
        f"sqlite:///{tmp_path / 'audit.db'}", sealing_from(keyring, tmp_path / "cp.jsonl")
    )
    store.create_schema()
    return store


@contextlib.asynccontextmanager
async def _ingesting(
    store: AuditStore,
    kafka_access: KafkaAccess,
    topics: Topics,
    *,
    activity: bool = False,
    workers: int = 0,
) -> AsyncIterator[None]:
    """The ingester running on the decisions topic (and the activity topic) meanwhile,
    preparing batches in ``workers`` worker processes (0: in the test's process)."""
    stop = asyncio.Event()
    preparing = Offload(workers)
    task = asyncio.create_task(
        ingest(
            store,
            topic=topics.audit,
            activity=topics.audit_activity if activity else None,
            access=kafka_access,
            group_id=topics.namespace + "audit",
            dlq_topic=topics.dlq("audit"),
            stop=stop,
            offload=preparing,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await task
        preparing.close()


async def _ingest(
    store: AuditStore,
    kafka_access: KafkaAccess,
    namespace: str,
    values: list[bytes],
    stored: int,
    workers: int = 0,
) -> tuple[ConsumerRecord, list[AuditEntry]]:
    """Publish ``values`` to the audit topic, run the ingester until ``stored`` records are
    in the store; return the one dead letter and what was stored."""
    topics = Topics(namespace=namespace)
    await _publish(kafka_access, topics, values)
    async with _ingesting(store, kafka_access, topics, workers=workers):
        (parked,) = await read_topic(topics.dlq("audit"), kafka_access, until=lambda r: len(r) >= 1)

        async def all_stored() -> bool:
            return store.search(AuditQuery())[1] >= stored

        await eventually(f"{stored} records stored", all_stored)
    rows, total = store.search(AuditQuery())
    assert total == stored
    return parked, rows


@pytest.mark.parametrize("workers", [0, 1], ids=["here", "in-a-worker"])
async def test_records_are_stored_once_and_garbage_is_dead_lettered_and_audited(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring, tmp_path: Path, workers: int
) -> None:
    good = _decision(1, "e1")
    parked, rows = await _ingest(
        _store(tmp_path, keyring), kafka_access, namespace, [good, b"{not json", good], 2, workers
    )
    assert parked.value == b"{not json"
    assert dict(parked.headers)["dlq_reason"] == NOT_AN_AUDIT_RECORD.encode()
    # The good record once, and the dead letter's own record.
    (dead,) = [r for r in rows if r.decision == AuditOutcome.DEAD_LETTERED]
    audit_topic, dlq_topic = Topics(namespace=namespace).audit, Topics(namespace=namespace).dlq
    assert (dead.topic_in, dead.offset_in, dead.topic_out) == (audit_topic, 1, dlq_topic("audit"))


@pytest.mark.parametrize("workers", [0, 1], ids=["here", "in-a-worker"])
async def test_a_record_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring, tmp_path: Path, workers: int
) -> None:
    """One record the database will not take (here a trigger refuses it, as PostgreSQL
    refuses text it cannot store) must not stop the trail: its batch is stored one by one."""
    store = _store(tmp_path, keyring)
    with store.engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_entry "
                "WHEN NEW.event_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    values = [_decision(1, "fine-1"), _decision(2, "poison"), _decision(3, "fine-2")]
    parked, rows = await _ingest(store, kafka_access, namespace, values, 3, workers)
    assert parked.value == values[1]
    assert dict(parked.headers)["dlq_reason"] == f"{REFUSED_BY_STORE} (IntegrityError)".encode()
    assert sorted(r.event_id or r.decision for r in rows) == ["dead_lettered", "fine-1", "fine-2"]


async def test_only_the_processor_decides_and_a_guessed_id_pre_empts_nothing(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring, tmp_path: Path
) -> None:
    """On the activity topic (everyone's but the processor's), a disclosure decision is
    dead-lettered with its reason; a record written there ahead of a decision, with the id
    an outsider could compute for it, does not take the real decision's place: the
    processor's ids are keyed."""
    topics = Topics(namespace=namespace)
    await kafka.ensure_topics(
        kafka_access,
        [TopicSpec(t, 1) for t in (topics.audit, topics.audit_activity, topics.dlq("audit"))],
    )
    where: dict[str, Any] = {
        "topic": "source.x",
        "partition": 0,
        "offset": 7,
        "recipient": "la-northshire",
    }
    fields: dict[str, Any] = {
        "recorded_at": datetime.now(UTC),
        "reason": "the protocol allows it",
        "actor": "infoshare-processor",
        "event_id": "e7",
    }
    real = AuditRecord.about(
        **where,
        protocol="p@1",
        id_key=keyring.require_audit_id().secret,
        action="disclose",
        decision=AuditOutcome.SHARED,
        reason_code="shared.protocol_allows",
        **fields,
    )
    guessed = audit_id_for(**where, protocol="p@1")  # the public recipe, without the key
    assert guessed != real.audit_id
    forged_decision = real.model_copy(update={"audit_id": guessed})
    ahead = AuditRecord(
        **{**fields, "actor": "practitioner:mallory"},
        audit_id=guessed,
        action="consent_record",
        decision=AuditOutcome.RECORDED,
        reason_code="consent.recorded",
    )
    producer = kafka.producer(kafka_access)
    await producer.start()
    try:
        for record in (forged_decision, ahead):
            await producer.send_and_wait(topics.audit_activity, record.model_dump_json().encode())
        await producer.send_and_wait(topics.audit, real.model_dump_json().encode())
    finally:
        await producer.stop()
    store = _store(tmp_path, keyring)
    async with _ingesting(store, kafka_access, topics, activity=True):
        (parked,) = await read_topic(topics.dlq("audit"), kafka_access, until=lambda r: len(r) >= 1)

        async def shared_stored() -> bool:
            return store.search(AuditQuery(decision="shared"))[1] >= 1

        await eventually("the real decision stored", shared_stored)
    assert dict(parked.headers)["dlq_reason"] == NOT_THE_PROCESSORS.encode()
    assert parked.value == forged_decision.model_dump_json().encode()
    (stored,) = store.search(AuditQuery(decision="shared"))[0]
    assert (stored.audit_id, stored.actor) == (real.audit_id, "infoshare-processor")


async def _publish(kafka_access: KafkaAccess, topics: Topics, values: list[bytes]) -> None:
    await kafka.ensure_topics(
        kafka_access, [TopicSpec(topics.audit, 1), TopicSpec(topics.dlq("audit"), 1)]
    )
    producer = kafka.producer(kafka_access)
    await producer.start()
    try:
        for value in values:
            await producer.send(topics.audit, value, key=b"k")
        await producer.flush()
    finally:
        await producer.stop()


async def _committed(kafka_access: KafkaAccess, topics: Topics) -> int | None:
    admin = kafka.admin(kafka_access)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(topics.namespace + "audit")
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topics.audit, 0))
    return None if meta is None else meta.offset


@pytest.fixture
def batches_of_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingester takes ten records at a time: many batches from a few records."""
    monkeypatch.setattr("services.audit.ingest.BATCH_MAX", 10)


@pytest.mark.usefixtures("batches_of_ten")
async def test_batches_prepared_in_a_worker_are_sealed_in_the_order_they_arrived(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring, tmp_path: Path
) -> None:
    """Batches of ten, each prepared in the worker while the one before is written: every
    record is stored once, numbered in the order of its offset (a dead letter in its
    record's place), the trail verifies, and the group's offset ends past the last."""
    topics = Topics(namespace=namespace)
    values = [_decision(i, f"e{i:03d}") for i in range(45)]
    values.insert(23, b"[]")
    await _publish(kafka_access, topics, values)
    store = _store(tmp_path, keyring)
    async with _ingesting(store, kafka_access, topics, workers=1):

        async def all_stored() -> bool:
            return store.search(AuditQuery(limit=1))[1] >= 46

        await eventually("every record stored", all_stored)
    rows, total = store.search(AuditQuery(limit=100))
    assert total == 46
    in_order = [r.event_id if r.decision != AuditOutcome.DEAD_LETTERED else "dead" for r in rows]
    expected = [f"e{i:03d}" for i in range(45)]
    expected.insert(23, "dead")
    assert in_order == expected
    assert [r.seq for r in rows] == list(range(1, 47))
    verdict = verify_trail(
        store.engine,
        public_keys=store.sealing.public_keys(),
        anchors=lambda: [file_anchor(tmp_path / "cp.jsonl")],
        chain_keys=store.sealing.chain_keys(),
    )
    assert verdict.ok and verdict.records == 46, verdict
    assert await _committed(kafka_access, topics) == 46


class _FailingThird(AuditStore):
    """A store whose database goes away at its third batch."""

    batches = 0

    def add_batch(self, records: Any, **kwargs: Any) -> int:
        self.batches += 1
        if self.batches == 3:
            raise OperationalError("INSERT", None, Exception("the disk went away"))
        return super().add_batch(records, **kwargs)


@pytest.mark.usefixtures("batches_of_ten")
async def test_a_batch_not_written_is_not_committed_though_the_next_is_taken(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring, tmp_path: Path
) -> None:
    """The database goes away at the third batch of ten, while the fourth is being
    prepared: the ingester stops (the service restarts), and the group's offset is where
    the second batch ended, not the consumer's position past what it took."""
    topics = Topics(namespace=namespace)
    await _publish(kafka_access, topics, [_decision(i, f"e{i}") for i in range(40)])
    store = _FailingThird(
        f"sqlite:///{tmp_path / 'audit.db'}", sealing_from(keyring, tmp_path / "cp.jsonl")
    )
    store.create_schema()
    preparing = Offload(1)
    try:
        with pytest.raises(OperationalError):
            await ingest(
                store,
                topic=topics.audit,
                access=kafka_access,
                group_id=topics.namespace + "audit",
                dlq_topic=topics.dlq("audit"),
                stop=asyncio.Event(),
                offload=preparing,
            )
    finally:
        preparing.close()
    assert store.search(AuditQuery(limit=1))[1] == 20
    assert await _committed(kafka_access, topics) == 20
