"""The outbox relay against a real broker: what an agency service accepted reaches its
source topic in the order it was accepted, with no identifier in key or headers; and with
Kafka stopped while requests arrive, every accepted request is still accepted, and
published exactly once after Kafka returns."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from deploy.devstack.broker import BrokerNode
from deploy.devstack.demo import scenario
from deploy.devstack.ports import free_port
from deploy.devstack.postgres import PostgresNode
from services.agency.runtime import AgencyRuntime
from services.backbone import envelope, kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from tests import backends
from tests.integration.agency_helpers import (
    SERVICES,
    bearer,
    client_of,
    runtime_of,
    settings_for,
    token,
)
from tests.integration.kafka_helpers import end_offsets, read_topic

SOCIALCARE = SERVICES["socialcare"]


def plan(i: int) -> bytes:
    return json.dumps(scenario.plan_started(scenario.ON_PLAN, plan_id=f"CPP-T-{i:05d}")).encode()


@asynccontextmanager
async def running_service(
    *,
    access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
    database_url: str | None = None,
    topics_access: KafkaAccess | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, AgencyRuntime]]:
    """The social care service; its topics made through ``topics_access`` (default:
    ``access``, which the service itself uses)."""
    settings = settings_for(
        SOCIALCARE,
        keyring_path=keyring_path,
        database_url=database_url or f"sqlite:///{tmp_path / 'outbox.db'}",
        **access.settings(),
        topic_namespace=namespace,
    )
    await kafka.ensure_topics(topics_access or access, settings.topics().all_specs(directory))
    app = SOCIALCARE.factory(settings)
    async with app.router.lifespan_context(app), client_of(app) as api:
        yield api, runtime_of(app)


async def send(api: httpx.AsyncClient, keyring_path: Path, first: int, count: int) -> list[str]:
    ids: list[str] = []
    for i in range(first, first + count):
        got = await api.post(
            SOCIALCARE.sample.path,
            content=plan(i),
            headers={
                "content-type": "application/json",
                **bearer(token(keyring_path, SOCIALCARE.agency)),
            },
        )
        assert got.status_code == 202, got.text
        ids.extend(e["id"] for e in got.json()["events"])
    return ids


async def until(what: str, check: Callable[[], bool], wait_s: float = 90.0) -> None:
    deadline = time.monotonic() + wait_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {wait_s}s: {what}")
        await asyncio.sleep(0.05)


async def test_accepted_events_reach_the_source_topic_in_order(
    kafka_access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
) -> None:
    async with running_service(
        access=kafka_access,
        namespace=namespace,
        keyring_path=keyring_path,
        tmp_path=tmp_path,
        directory=directory,
    ) as (api, rt):
        ids = await send(api, keyring_path, 0, 30)
        await until(
            "the outbox is drained", lambda: rt.outbox.backlog(rt.source_topic).pending == 0
        )
        records = await read_topic(
            rt.source_topic, kafka_access, until=lambda r: len(r) >= len(ids)
        )
    decoded = [envelope.decode(r.key, r.value, list(r.headers)) for r in records]
    assert [e.id for e in decoded] == ids  # one child: one partition, in accepted order
    for r in records:
        names = dict(r.headers)
        for leak in (scenario.ON_PLAN.nhs_number, scenario.ON_PLAN.person_id):
            assert leak.encode() not in (r.key or b"")
            assert all(leak.encode() not in (v or b"") for v in names.values())


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerNode]:
    """A broker of this test's own: it is stopped on purpose, so it cannot be the shared one."""
    node = backends.start_kafka(tmp_path / "kafka")
    try:
        yield node
    finally:
        node.stop()


async def test_kafka_down_requests_are_accepted_and_published_once_when_it_returns(
    own_broker: BrokerNode,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
) -> None:
    async with running_service(
        access=own_broker.admin_access(),
        namespace=namespace,
        keyring_path=keyring_path,
        tmp_path=tmp_path,
        directory=directory,
    ) as (api, rt):
        before = await send(api, keyring_path, 0, 10)
        await until(
            "the first requests are published",
            lambda: rt.outbox.backlog(rt.source_topic).pending == 0,
        )

        await asyncio.to_thread(own_broker.stop)
        during = await send(api, keyring_path, 10, 25)  # every one still answered 202
        health = (await api.get("/healthz")).json()
        assert health["outbox"]["pending"] == 25
        await until("the relay notices", lambda: not rt.relay.connected)

        await asyncio.to_thread(own_broker.start)
        await until(
            "the backlog is published",
            lambda: rt.outbox.backlog(rt.source_topic).pending == 0,
            wait_s=120,
        )
        ids = before + during
        records = await read_topic(
            rt.source_topic, own_broker.admin_access(), until=lambda r: len(r) >= len(ids)
        )
    published = [envelope.decode(r.key, r.value, list(r.headers)).id for r in records]
    assert sorted(published) == sorted(ids)  # none lost
    assert published == ids  # in the order they were accepted
    ends = await end_offsets(rt.source_topic, own_broker.admin_access())
    assert sum(ends.values()) == len(ids)  # and none twice: nothing after them either


async def test_what_was_accepted_before_a_restart_is_published_once_after_it(
    kafka_access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
) -> None:
    """The service stops with records still in its outbox (here its broker was never
    reachable); the next start, on the same database, publishes every one of them once,
    in the order they were accepted, before what it accepts itself."""
    nowhere = dataclasses.replace(kafka_access, bootstrap=f"127.0.0.1:{free_port()}")
    service = functools.partial(
        running_service,
        namespace=namespace,
        keyring_path=keyring_path,
        tmp_path=tmp_path,
        directory=directory,
        topics_access=kafka_access,
    )
    async with service(access=nowhere) as (api, rt):
        before = await send(api, keyring_path, 0, 12)
        assert rt.outbox.backlog(rt.source_topic).pending == 12
    # Stopped; started again on the same outbox, with a broker it can reach.
    async with service(access=kafka_access) as (api, rt):
        after = await send(api, keyring_path, 12, 3)
        await until(
            "the outbox is drained", lambda: rt.outbox.backlog(rt.source_topic).pending == 0
        )
        ids = before + after
        records = await read_topic(
            rt.source_topic, kafka_access, until=lambda r: len(r) >= len(ids)
        )
    published = [envelope.decode(r.key, r.value, list(r.headers)).id for r in records]
    assert published == ids  # none lost, none twice, in the order accepted
    ends = await end_offsets(rt.source_topic, kafka_access)
    assert sum(ends.values()) == len(ids)


async def test_a_record_the_broker_refuses_for_good_is_dead_lettered_not_retried(
    kafka_access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
) -> None:
    """The source topic takes records of at most 1,500 bytes: a plan with a long lead
    practitioner's role is refused (not retriable). It goes to dlq.outbox with why and is
    audited; the records before and after it are published, in order."""
    from aiokafka.admin import NewTopic

    topics = settings_for(
        SOCIALCARE, keyring_path=keyring_path, database_url="sqlite://", topic_namespace=namespace
    ).topics()
    admin = kafka.admin(kafka_access)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    topics.source(SOCIALCARE.agency),
                    3,
                    1,
                    topic_configs={"max.message.bytes": "1500"},
                )
            ]
        )
    finally:
        await admin.close()
    big = scenario.plan_started(scenario.ON_PLAN, plan_id="CPP-BIG")
    big["leadPractitioner"] = {"name": "Sam Worker", "role": "social worker " * 150}
    async with running_service(
        access=kafka_access,
        namespace=namespace,
        keyring_path=keyring_path,
        tmp_path=tmp_path,
        directory=directory,
    ) as (api, rt):
        auth = {
            "content-type": "application/json",
            **bearer(token(keyring_path, SOCIALCARE.agency)),
        }
        small = [plan(1), json.dumps(big).encode(), plan(2)]
        ids = []
        for body in small:
            got = await api.post(SOCIALCARE.sample.path, content=body, headers=auth)
            assert got.status_code == 202, got.text
            ids.append(got.json()["events"][0]["id"])
        await until(
            "the outbox is settled", lambda: rt.outbox.backlog(rt.source_topic).pending == 0
        )
        assert rt.outbox.backlog(rt.source_topic).failed == 1
        health = (await api.get("/healthz")).json()["outbox"]
        assert health["dead_lettered"] == 1
        published = await read_topic(rt.source_topic, kafka_access, until=lambda r: len(r) >= 2)
        dead = await read_topic(topics.dlq("outbox"), kafka_access, until=lambda r: len(r) >= 1)
        audit = await read_topic(
            topics.audit_activity,
            kafka_access,
            until=lambda r: any(b"refused_by_broker" in (x.value or b"") for x in r),
        )
    assert [envelope.decode(r.key, r.value, list(r.headers)).id for r in published] == [
        ids[0],
        ids[2],
    ]
    (letter,) = dead
    assert dict(letter.headers)["dlq_reason"].startswith(b"the broker refused the record for good")
    assert dict(letter.headers)["ce_id"] == ids[1].encode()
    (record,) = [json.loads(x.value) for x in audit if b"refused_by_broker" in (x.value or b"")]
    assert record["decision"] == "dead_lettered" and record["event_id"] == ids[1]
    assert scenario.ON_PLAN.nhs_number not in json.dumps(record)


async def test_two_replicas_publish_each_record_once_in_order_as_one_stops(
    kafka_access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
    postgres: PostgresNode,
) -> None:
    """Two replicas of one agency's service share an outbox on PostgreSQL and both accept
    requests; one relay publishes at a time. The one publishing stops half-way; the other
    takes over. Every accepted event is on the topic once, in the order accepted."""
    url = postgres.ensure_database(f"t{uuid.uuid4().hex[:12]}")
    replica = functools.partial(
        running_service,
        access=kafka_access,
        namespace=namespace,
        keyring_path=keyring_path,
        tmp_path=tmp_path,
        directory=directory,
        database_url=url,
    )
    stacks = (contextlib.AsyncExitStack(), contextlib.AsyncExitStack())
    try:
        a, b = [await s.enter_async_context(replica()) for s in stacks]
        ids: list[str] = []
        for i in range(10):  # accepted by each in turn
            ids += await send((a, b)[i % 2][0], keyring_path, i, 1)
        source = a[1].source_topic
        await until("the first ten published", lambda: a[1].outbox.backlog(source).pending == 0)
        assert a[1].relay.standing_by != b[1].relay.standing_by, "not exactly one relay at work"
        publishing = 1 if a[1].relay.standing_by else 0
        other = (a, b)[1 - publishing]
        await stacks[publishing].aclose()  # the relay at work stops; its lease is released
        for i in range(10, 20):
            ids += await send(other[0], keyring_path, i, 1)
        await until("the other took over", lambda: not other[1].relay.standing_by)
        await until("all published", lambda: other[1].outbox.backlog(source).pending == 0)
    finally:
        for stack in stacks:
            await stack.aclose()
        postgres.drop_database(url.rsplit("/", 1)[-1])
    records = await read_topic(source, kafka_access, until=lambda r: len(r) >= len(ids))
    published = [envelope.decode(r.key, r.value, list(r.headers)).id for r in records]
    assert published == ids  # each once, in the order accepted
