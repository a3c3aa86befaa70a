"""`infoshare status` against the real broker: lag from committed offsets (transaction
markers not counted as records), dead-letter depth, components that answer, report a
problem, or do not answer at all; and the health payloads of the delivery and audit
services it reads, from their real stores."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from typer.testing import CliRunner, Result

from deploy.cli.main import app
from deploy.devstack.ports import free_port
from services.audit.health import audit_health
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone import kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from services.delivery.breaker import BreakerBoard
from services.delivery.endpoints import breaker_key
from services.delivery.health import delivery_health
from services.delivery.store import DeliveryStore
from tests.integration.kafka_helpers import eventually

pytestmark = pytest.mark.kafka
LA, SCHOOL = "la-northshire", "school-oakfield"


class Stub:
    """A component's stand-in on loopback: answers GET ``path`` with ``body`` (JSON)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = stub.answers.get(self.path)
                payload = b"# metrics\n" if found == "metrics" else orjson.dumps(found)
                self.send_response(200 if found is not None else 404)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@contextlib.contextmanager
def stubs(**answers: dict[str, Any]) -> Iterator[dict[str, Stub]]:
    running = {name: Stub(a) for name, a in answers.items()}
    try:
        yield running
    finally:
        for stub in running.values():
            with contextlib.suppress(OSError):
                stub.stop()


def healthy(**fields: Any) -> dict[str, Any]:
    return {"/healthz": {"status": "ok", **fields}}


async def status(args: list[str], namespace: str, access: KafkaAccess) -> Result:
    # The command runs its own event loop: on a thread of its own here.
    def invoke() -> Result:
        return CliRunner().invoke(
            app,
            ["status", "--bootstrap", access.bootstrap, "--namespace", namespace, *args],
            catch_exceptions=False,
        )

    return await asyncio.to_thread(invoke)


def urls(running: dict[str, Stub], nowhere: str) -> list[str]:
    """--url for every component: the stubs' or one where nothing listens."""
    names = ("processor", "audit", "consent", "delivery", "socialcare", "health", "education")
    return [f"--url={n}={running[n].url if n in running else nowhere}" for n in names]


async def _commit(access: KafkaAccess, group: str, tp: TopicPartition, offset: int) -> None:
    committer = kafka.consumer(access=access, group_id=group)
    await committer.start()
    try:
        committer.assign([tp])
        await committer.commit({tp: offset})
    finally:
        await committer.stop()


async def _produce(
    access: KafkaAccess, topic: str, batches: list[int], *, txid: str | None
) -> None:
    """``batches`` of records to partition 0, each batch a transaction when ``txid``."""
    producer = kafka.producer(access, transactional_id=txid)
    await producer.start()
    try:
        for size in batches:
            if txid is None:
                for n in range(size):
                    await producer.send_and_wait(topic, b"v%d" % n, key=b"k", partition=0)
                continue
            async with producer.transaction():
                for n in range(size):
                    await producer.send(topic, b"v%d" % n, key=b"k", partition=0)
    finally:
        await producer.stop()


def _by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


@pytest.fixture
def delivery_body(tmp_path: Path, namespace: str) -> dict[str, Any]:
    """The delivery service's /healthz answer, made by its own health module from a real
    store: it reads deliver.<school> from offset 0, and one circuit is open."""
    store = DeliveryStore(f"sqlite:///{tmp_path / 'delivery.db'}")
    store.create_schema()
    store.ingest([], {(Topics(namespace=namespace).deliver(SCHOOL), 0): 0}, now=datetime.now(UTC))
    board = BreakerBoard(failure_threshold=1, cooldown_s=60)
    board.get(breaker_key(LA, "https://la.example/hook?token=s3cret")).record_failure(
        time.monotonic()
    )
    board.get(breaker_key(SCHOOL, "https://school.example/hook"))
    return {"status": "ok", **delivery_health(store, board)}


async def test_lag_depth_and_each_component_as_it_answers(
    kafka_access: KafkaAccess,
    namespace: str,
    directory: Directory,
    delivery_body: dict[str, Any],
) -> None:
    topics = Topics(namespace=namespace, partitions=1)
    await kafka.ensure_topics(kafka_access, topics.all_specs(directory))
    source, audit = topics.source(LA), topics.audit
    # The processor's group read 2 of 5 plain records.
    await _produce(kafka_access, source, [5], txid=None)
    await _commit(kafka_access, f"{namespace}infoshare-processor", TopicPartition(source, 0), 2)
    # The audit group read the first transaction (3 records + its marker: offsets 0-3) and
    # not the second (2 records + marker: 4-6): 2 records behind, though 4 offsets.
    await _produce(kafka_access, audit, [3, 2], txid=f"{namespace}audit-writer")
    await _commit(kafka_access, f"{namespace}infoshare-audit", TopicPartition(audit, 0), 3)
    await _produce(kafka_access, topics.dlq("processor"), [2], txid=f"{namespace}dlq-writer")
    await _produce(kafka_access, topics.deliver(SCHOOL), [1], txid=f"{namespace}deliverer")

    outbox = {"pending": 2, "oldest_pending_s": 5.0, "dead_lettered": 0, "kafka_connected": False}
    checkpoint = {"tree_size": 10, "created_at": "2026-11-26T10:00:00+00:00", "age_s": 30.0}
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with stubs(
        audit=healthy(records=12, last_checkpoint=checkpoint),
        delivery={"/healthz": delivery_body},
        socialcare=healthy(agency=LA, outbox=outbox),
        health=healthy(),
        education={"/healthz": {"status": "starting"}},
    ) as running:
        result = await status(["--json", *urls(running, nowhere)], namespace, kafka_access)
        screen = await status(["--partitions", *urls(running, nowhere)], namespace, kafka_access)

    assert result.exit_code == 3, result.output
    doc = orjson.loads(result.output)
    assert doc["healthy"] is False and doc["kafka"]["reachable"] is True
    components = _by(doc["components"], "name")
    assert {n: c["state"] for n, c in components.items()} == {
        "processor": "down",  # /metrics not answering, no member in its group
        "audit": "up",
        "consent": "down",
        "delivery": "up",
        "socialcare": "degraded",
        "health": "up",
        "education": "degraded",
    }
    assert components["consent"]["reason"] == "not answering (cannot connect)"
    assert components["socialcare"]["reason"] == "its outbox cannot reach Kafka"
    assert components["processor"]["facts"] == [
        f"group {namespace}infoshare-processor: 0 member(s)"
    ]

    groups = _by(doc["groups"], "reader")
    assert (groups["processor"]["lag"], groups["processor"]["exact"]) == (3, True)
    part = _by(groups["processor"]["partitions"], "topic")[source]
    assert (part["committed"], part["end"], part["lag"]) == (2, 5, 3)
    assert len(groups["processor"]["partitions"]) == len(directory.publishers)
    audit_parts = _by(groups["audit"]["partitions"], "topic")
    assert set(audit_parts) == {audit, topics.audit_activity}  # it reads both
    part = audit_parts[audit]
    assert (part["committed"], part["end"], part["lag"], part["exact"]) == (3, 7, 2, True)
    delivery = _by(groups["delivery"]["partitions"], "topic")
    assert delivery[topics.deliver(SCHOOL)]["lag"] == 1
    assert groups["delivery"]["members"] is None

    depths = _by(doc["dead_letters"], "topic")
    assert (
        depths[topics.dlq("processor")]["records"],
        depths[topics.dlq("processor")]["exact"],
    ) == (
        2,
        True,
    )  # 3 offsets: 2 records and a commit marker
    assert depths[topics.dlq("audit")]["records"] == 0

    circuits = _by(doc["circuits"], "recipient")
    assert circuits[LA]["state"] == "open" and circuits[SCHOOL]["state"] == "closed"
    assert doc["audit"]["tree_size"] == 10 and doc["audit"]["records"] == 12

    assert screen.exit_code == 3
    for shown in ("DOWN", "DEGRADED", "its outbox cannot reach Kafka", "records 1-10 signed"):
        assert shown in screen.output
    assert "s3cret" not in screen.output + result.output
    assert "la.example" not in screen.output + result.output


async def test_all_up_then_a_stopped_component_is_shown_down(
    kafka_access: KafkaAccess, namespace: str, directory: Directory, delivery_body: dict[str, Any]
) -> None:
    topics = Topics(namespace=namespace, partitions=1)
    await kafka.ensure_topics(kafka_access, topics.all_specs(directory))
    # A member in the processor's group and one in the audit group, as when they run.
    members = [
        kafka.consumer(
            *(topics.source(a.id) for a in directory.publishers),
            access=kafka_access,
            group_id=f"{namespace}infoshare-processor",
        ),
        kafka.consumer(topics.audit, access=kafka_access, group_id=f"{namespace}infoshare-audit"),
    ]
    for member in members:
        await member.start()
    try:

        async def joined() -> bool:
            return all(m.assignment() for m in members)

        await eventually("the members to join their groups", joined)
        every = {
            "processor": {"/metrics": "metrics"},
            "audit": healthy(records=0, last_checkpoint=None),
            "consent": healthy(),
            "delivery": {"/healthz": delivery_body},
            **{name: healthy() for name in ("socialcare", "health", "education")},
        }
        with stubs(**every) as running:
            args = urls(running, "unused")
            result = await status(args, namespace, kafka_access)
            assert result.exit_code == 0, result.output
            assert "all healthy" in result.output and "1 member(s)" in result.output
            running["audit"].stop()
            result = await status(["--json", *args], namespace, kafka_access)
    finally:
        for member in members:
            await member.stop()
    assert result.exit_code == 3
    doc = orjson.loads(result.output)
    assert [g["members"] for g in doc["groups"]] == [1, 1, None]
    components = _by(doc["components"], "name")
    assert components["audit"]["state"] == "down"
    assert components["processor"]["state"] == "up"


async def test_kafka_down_still_shows_what_http_says(namespace: str) -> None:
    with stubs(consent=healthy()) as running:
        nowhere = f"http://127.0.0.1:{free_port()}"
        result = await status(
            ["--json", *urls(running, nowhere)], namespace, KafkaAccess.plaintext(nowhere[7:])
        )
    assert result.exit_code == 3, result.output
    doc = orjson.loads(result.output)
    assert doc["kafka"]["reachable"] is False
    assert _by(doc["components"], "name")["consent"]["state"] == "up"
    assert all(not g["known"] for g in doc["groups"])


def test_audit_health_gives_the_newest_checkpoint(tmp_path: Path, keyring: Keyring) -> None:
    sealing = sealing_from(keyring, tmp_path / "checkpoints.jsonl", checkpoint_every=1)
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}", sealing)
    store.create_schema()
    assert audit_health(store) == {"records": 0, "last_checkpoint": None}
    at = datetime.now(UTC)
    records = [
        AuditRecord(
            audit_id=audit_id_for(
                topic="source.x", partition=0, offset=n, recipient=LA, protocol="p@1"
            ),
            recorded_at=at,
            action="disclose",
            decision=AuditOutcome.SHARED,
            reason_code="shared.protocol_allows",
            reason="because",
            actor="test",
            recipient=LA,
        )
        for n in range(3)
    ]
    store.add_batch(records[:2])
    store.add_batch(records[2:])
    later = datetime.now(UTC)
    found = audit_health(store, now=later)
    assert found["records"] == 3
    assert found["last_checkpoint"]["tree_size"] == 3
    assert 0 <= found["last_checkpoint"]["age_s"] <= (later - at).total_seconds() + 1
