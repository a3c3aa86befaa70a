"""Inside the broker: on a secured broker each principal may do only what its ACLs allow,
and a refusal is an authorisation error, said at once, never a timeout."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from confluent_kafka import Consumer, KafkaError
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.broker.tls import Tls
from deploy.devstack.principals import StackPrincipals
from services.backbone import kafka
from services.backbone.directory import DEFAULT_FILE, load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics, TopicSpec
from services.ops import kafka_admin
from services.ops.kafka_acls import Principals, acl_rules

pytestmark = pytest.mark.kafka

LA, ED = "la-northshire", "nhs-riverside-ed"
REFUSED = (
    # A principal with no right to write anything may not even start an idempotent producer.
    ClusterAuthorizationFailedError,
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)


@dataclass(frozen=True)
class Deployment:
    topics: Topics
    principals: StackPrincipals
    admin: KafkaAccess

    def as_(self, principal: str) -> KafkaAccess:
        return self.principals.access(self.admin, principal)


@pytest.fixture(scope="module")
def d(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """One deployment's topics and principals for the module (each test reads and writes
    only what it made, or expects to be refused)."""
    namespace = f"acl{uuid.uuid4().hex[:8]}."
    topics, directory = Topics(namespace=namespace), load_directory(None)
    principals = StackPrincipals(tmp_path_factory.mktemp("clients"), namespace)
    kafka_admin.apply_topics(kafka_access, topics.all_specs(directory))
    principals.provision(kafka_access, directory, topics)
    return Deployment(topics, principals, kafka_access)


async def _write(access: KafkaAccess, topic: str, *, transactional_id: str | None = None) -> None:
    producer = kafka.producer(access, transactional_id=transactional_id)
    try:
        await producer.start()
        if transactional_id is None:
            await producer.send_and_wait(topic, b"x", key=b"k")
        else:
            async with producer.transaction():
                await producer.send(topic, b"x", key=b"k")
    finally:
        await producer.stop()


async def _read(access: KafkaAccess, topic: str, *, group: str | None = None) -> int:
    """Read ``topic`` (in ``group``, or assigned) until it answers; how many records."""
    reader = kafka.consumer(topic, access=access, group_id=group)
    try:
        await reader.start()
        batch = await reader.getmany(timeout_ms=2000)
        if group is not None:
            await reader.commit()
        return sum(len(part) for part in batch.values())
    finally:
        await reader.stop()


async def _refused(work: Awaitable[object]) -> None:
    """``work`` fails with an authorisation error within seconds (a timeout fails the test)."""
    with pytest.raises(REFUSED):
        await asyncio.wait_for(work, 20)


async def test_an_agency_service_writes_only_its_own_source_topic(d: Deployment) -> None:
    own = d.as_(d.principals.names.agency(LA))
    await _write(own, d.topics.source(LA))
    await _refused(_write(own, d.topics.source(ED)))


async def test_a_recipient_reads_only_its_own_delivery_topic(d: Deployment) -> None:
    await _write(d.as_(d.principals.names.processor), d.topics.deliver(LA))
    recipient = d.as_(d.principals.names.recipient(LA))
    assert await _read(recipient, d.topics.deliver(LA), group=f"{d.topics.namespace}{LA}.app") >= 1
    await _refused(_read(recipient, d.topics.deliver(ED)))


async def test_a_recipient_joins_no_group_of_another(d: Deployment) -> None:
    recipient = d.as_(d.principals.names.recipient(LA))
    await _refused(_read(recipient, d.topics.deliver(LA), group=f"{d.topics.namespace}{ED}.app"))


async def test_audit_and_consent_records_only_from_their_writers(d: Deployment) -> None:
    names = d.principals.names
    await _refused(_write(d.as_(names.audit), d.topics.audit))  # it keeps the trail only
    await _refused(_write(d.as_(names.recipient(LA)), d.topics.audit))
    # Disclosure decisions are the processor's alone; the others audit on the activity topic.
    for other in (names.consent, names.delivery, names.agency(LA)):
        await _refused(_write(d.as_(other), d.topics.audit))
        await _write(d.as_(other), d.topics.audit_activity)
    await _refused(_write(d.as_(names.agency(LA)), d.topics.consent_records))
    await _refused(_write(d.as_(names.processor), d.topics.consent_records))
    await _write(d.as_(names.consent), d.topics.consent_records)


async def test_the_processor_transacts_only_under_its_own_ids(d: Deployment) -> None:
    processor = d.as_(d.principals.names.processor)
    ns = d.topics.namespace
    await _write(processor, d.topics.audit, transactional_id=f"{ns}infoshare-processor-0")
    await _refused(_write(processor, d.topics.audit, transactional_id=f"{ns}someone-else"))


async def test_a_wrong_password_is_refused_and_said(
    d: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    real = d.principals.access(d.admin, d.principals.names.processor)
    impostor = replace(real, password="not-its-password")
    reader = kafka.consumer(access=impostor, group_id=None)
    with pytest.raises(KafkaConnectionError):  # aiokafka says why in its log
        await asyncio.wait_for(reader.start(), 20)
    await reader.stop()
    assert "invalid credentials" in caplog.text


def test_an_existing_topic_weaker_than_declared_is_refused_by_name(
    kafka_access: KafkaAccess,
) -> None:
    namespace = f"weak{uuid.uuid4().hex[:8]}."
    topics = Topics(namespace=namespace)
    specs = topics.all_specs(load_directory(None))
    audit = next(s for s in specs if s.name == topics.audit)
    # Made by hand with the broker's defaults: one partition, a week's retention.
    kafka_admin.apply_topics(kafka_access, [TopicSpec(audit.name, 1, retention_ms=604800000)])
    with pytest.raises(kafka_admin.AdminError) as refused:
        kafka_admin.apply_topics(kafka_access, specs)
    said = str(refused.value)
    assert f"{audit.name}: 1 partitions, declared 3" in said
    assert "retention.ms 604800000" in said
    # Nothing else was created: the stack refuses to start rather than half start.
    listed = kafka_admin.admin_client(kafka_access).list_topics(timeout=30).topics
    assert {name for name in listed if name.startswith(namespace)} == {audit.name}


async def test_a_recipient_on_mutual_tls_is_the_same_principal_under_the_same_acls(
    d: Deployment,
) -> None:
    # The broker's TLS listener (client port + 2) maps a certificate's CN to the principal.
    assert d.admin.ca_file is not None
    principal = d.principals.names.recipient(LA)
    cert, key = Tls(d.admin.ca_file.parent).issue_client(principal)
    host, port = d.admin.bootstrap.rsplit(":", 1)
    itself = KafkaAccess(
        f"{host}:{int(port) + 2}",
        protocol="SSL",
        ca_file=d.admin.ca_file,
        cert_file=cert,
        key_file=key,
    ).checked()
    await _write(d.as_(d.principals.names.processor), d.topics.deliver(LA))
    group = f"{d.topics.namespace}{LA}.tls-app"
    assert await _read(itself, d.topics.deliver(LA), group=group) >= 1
    await _refused(_read(itself, d.topics.deliver(ED)))


def _read_by_librdkafka(access: KafkaAccess, topic: str, group: str) -> int | KafkaError:
    """Read ``topic`` in ``group`` with librdkafka's consumer, the client most recipients'
    systems use (through confluent-kafka, kcat, Go's or .NET's bindings): the first record's
    offset, or the first error the broker gave."""
    said: list[KafkaError] = []  # what librdkafka reports but retries: a refused login
    conf: dict[str, Any] = access.librdkafka()
    conf |= {"group.id": group, "auto.offset.reset": "earliest", "error_cb": said.append}
    reader = Consumer(conf)
    try:
        reader.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            refused = [e for e in said if e.code() == KafkaError._AUTHENTICATION]
            if refused:
                return refused[0]
            message = reader.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                return error
            offset = message.offset()
            assert offset is not None
            return offset
        raise AssertionError(f"librdkafka read nothing from {topic} in 30 s")
    finally:
        reader.close()


async def test_a_recipient_on_librdkafka_logs_in_by_scram_and_reads_only_its_own(
    d: Deployment,
) -> None:
    # librdkafka before 2.6.1 repeats the client's nonce in SCRAM's final message, and
    # Kafka 4 refuses it as invalid credentials (docs/security.md): this is the one shipped
    # with confluent-kafka, which recipients' systems pin as we do.
    await _write(d.as_(d.principals.names.processor), d.topics.deliver(LA))
    recipient = d.as_(d.principals.names.recipient(LA))
    ns = d.topics.namespace
    own = await asyncio.to_thread(
        _read_by_librdkafka, recipient, d.topics.deliver(LA), f"{ns}{LA}.rdkafka"
    )
    assert isinstance(own, int), own
    other = await asyncio.to_thread(
        _read_by_librdkafka, recipient, d.topics.deliver(ED), f"{ns}{LA}.rdkafka-other"
    )
    assert isinstance(other, KafkaError)
    assert other.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, other


def test_the_acls_command_applies_them_once_and_then_has_nothing_to_do(
    kafka_access: KafkaAccess,
) -> None:
    namespace = f"cli{uuid.uuid4().hex[:8]}."
    kafka_admin.apply_topics(
        kafka_access, Topics(namespace=namespace).all_specs(load_directory(None))
    )
    args = ["kafka", "acls", "--namespace", namespace, "--apply"]
    args += ["--bootstrap", kafka_access.bootstrap]
    first = CliRunner().invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    created = len(acl_rules(load_directory(None), Topics(namespace=namespace)))
    assert f"{created} rule(s) in force; {created} created, 0 deleted" in first.output
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert f"{created} rule(s) in force; 0 created, 0 deleted" in again.output


def test_an_agency_removed_from_the_directory_keeps_neither_rights_nor_login(
    kafka_access: KafkaAccess, tmp_path: Path
) -> None:
    namespace = f"ret{uuid.uuid4().hex[:8]}."
    usual, topics = load_directory(None), Topics(namespace=namespace)
    kafka_admin.apply_topics(kafka_access, topics.all_specs(usual))
    principals = StackPrincipals(tmp_path / "clients", namespace)
    principals.provision(kafka_access, usual, topics)
    school = "school-oakfield"
    gone = [principals.names.agency(school), principals.names.recipient(school)]
    assert set(gone) <= kafka_admin.known_principals(kafka_access)
    # The directory without the school, as an operator would edit it.
    registry = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))
    registry["agencies"] = [a for a in registry["agencies"] if a["id"] != school]
    registry["groups"] = {k: v for k, v in registry["groups"].items() if school not in v}
    smaller = tmp_path / "agencies.yaml"
    smaller.write_text(yaml.safe_dump(registry), encoding="utf-8")

    args = ["kafka", "acls", "--namespace", namespace, "--apply"]
    args += ["--bootstrap", kafka_access.bootstrap]
    env = {"INFOSHARE_AGENCIES_FILE": str(smaller)}
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for principal in gone:
        assert f"retired  User:{principal}" in result.output
    assert "2 principal(s) retired" in result.output
    assert not set(gone) & kafka_admin.known_principals(kafka_access)
    assert kafka_admin.current_acls(kafka_access, gone) == []
    la = principals.names.agency(LA)
    assert kafka_admin.current_acls(kafka_access, [la])  # the others keep theirs

    # A stack of its own namespace, stopping, leaves none of its principals behind.
    retired = principals.retire(kafka_access)
    assert la in retired
    mine = Principals(namespace)
    assert not any(mine.owns(p) for p in kafka_admin.known_principals(kafka_access))
