"""`infoshare dlq list|show|retry` against the real broker, on dead letters written exactly as
the processor writes them (consent/processor/handle.py ``dead_letter``)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from consent.policy.load import load_protocols
from consent.processor.handle import Context, dead_letter
from deploy.cli.main import app
from deploy.devstack.demo import scenario
from deploy.devstack.ports import free_port
from services.backbone import envelope, kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from tests.integration.kafka_helpers import end_offsets, read_topic

pytestmark = pytest.mark.kafka
ED = "nhs-riverside-ed"
CHILDREN = (scenario.ON_PLAN, scenario.NOT_ON_PLAN, scenario.THIRD)
REASONS = ("subject.nhs_number: check digit", "missing ce_dataschema", "subject.nhs_number: length")


def _secrets(child: scenario.Child, key: str) -> list[str]:
    """What must never appear in the command's output."""
    return [child.nhs_number, child.given_name, child.family_name, child.postcode, key]


async def _invoke(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    # The commands run their own event loop, so they run on a thread of their own here.
    def invoke() -> Result:
        return CliRunner().invoke(app, args, input=stdin, env=env, catch_exceptions=False)

    return await asyncio.to_thread(invoke)


@pytest.fixture
async def letters(
    kafka_access: KafkaAccess,
    namespace: str,
    keyring: Keyring,
    directory: Directory,
) -> dict[str, Any]:
    """Three of the processor's dead letters (with their dead_letter audit records), each
    written in a transaction as the processor does, so offsets have gaps (commit markers)."""
    topics = Topics(namespace=namespace, partitions=1)
    await kafka.ensure_topics(kafka_access, topics.all_specs(directory))
    schemas = SchemaRegistry.load()
    ctx = Context.from_keyring(
        topics=topics,
        protocols=load_protocols(None, directory=directory, schemas=schemas),
        schemas=schemas,
        directory=directory,
        keyring=keyring,
    )
    producer = kafka.producer(kafka_access, transactional_id=f"{namespace}writer")
    await producer.start()
    keys = []
    try:
        for n, (child, reason) in enumerate(zip(CHILDREN, REASONS, strict=True)):
            event = envelope.CloudEvent(
                type=ATTENDANCE,
                source=envelope.agency_source(ED),
                data=attendance_from_bundle(scenario.attendance_bundle(child)),
                key=routing_key(keyring.require_routing(), f"nhs:{child.nhs_number}"),
            )
            key, value, headers = envelope.encode(event, extra_headers=[("tracestate", b"v=1")])
            keys.append(key.decode())
            rec = ReadRecord(topics.source(ED), 0, 40 + n, key, value, headers)
            handled = dead_letter(rec, ctx, reason, now=datetime.now(UTC), trace_id=None)
            async with producer.transaction():
                for out in handled.records:
                    await producer.send_and_wait(
                        out.topic, out.value, key=out.key, headers=out.headers
                    )
    finally:
        await producer.stop()
    dead = await read_topic(topics.dlq("processor"), kafka_access, until=lambda r: len(r) == 3)
    return {
        "topics": topics,
        "offsets": [r.offset for r in dead],
        "records": dead,
        "keys": keys,
        "env": {
            "INFOSHARE_KAFKA_BOOTSTRAP": kafka_access.bootstrap,
            "INFOSHARE_TOPIC_NAMESPACE": namespace,
            "COLUMNS": "400",
        },
    }


def _no_personal_data(output: str, keys: list[str]) -> None:
    for child, key in zip(CHILDREN, keys, strict=True):
        for secret in _secrets(child, key):
            assert secret not in output


async def test_list_shows_every_dead_letter_and_no_personal_data(letters: dict[str, Any]) -> None:
    env, offsets, topics = letters["env"], letters["offsets"], letters["topics"]
    human = await _invoke(["dlq", "list"], env)
    assert human.exit_code == 0, human.output
    assert "Dead letters (3)" in human.output
    assert f"{topics.source(ED)}[0]@41" in human.output
    for reason in REASONS:
        assert reason in human.output
    _no_personal_data(human.output, letters["keys"])

    machine = await _invoke(["dlq", "list", "--stage", "processor", "--json", "--limit", "2"], env)
    assert machine.exit_code == 0, machine.output
    doc = orjson.loads(machine.stdout)
    assert doc["total"] == 3
    assert [(r["stage"], r["offset"], r["reason"]) for r in doc["dead_letters"]] == [
        ("processor", offsets[0], REASONS[0]),
        ("processor", offsets[1], REASONS[1]),
    ]
    first = doc["dead_letters"][0]
    assert first["origin"] == {"topic": topics.source(ED), "partition": 0, "offset": 40}
    assert first["ce_type"] == ATTENDANCE
    assert first["ce_id"] == dict(letters["records"][0].headers)["ce_id"].decode()
    _no_personal_data(machine.output, letters["keys"])

    empty = await _invoke(["dlq", "list", "--stage", "audit"], env)
    assert empty.exit_code == 0 and "no dead letters" in empty.output


async def test_show_gives_headers_and_shape_never_values(letters: dict[str, Any]) -> None:
    env, offsets = letters["env"], letters["offsets"]
    human = await _invoke(["dlq", "show", "processor", str(offsets[1])], env)
    assert human.exit_code == 0, human.output
    assert REASONS[1] in human.output
    size = len(letters["keys"][1])
    assert re.search(rf"key\s+present \({size} bytes, not shown\)", human.output)
    assert re.search(r"subject\.nhs_number[\s│]+string \(10 chars\)", human.output)
    assert re.search(r"tracestate[\s│]+\(not shown: 3 bytes\)", human.output)
    _no_personal_data(human.output, letters["keys"])

    shown = await _invoke(["dlq", "show", "processor", str(offsets[0]), "--json"], env)
    machine = orjson.loads(shown.stdout)
    headers = {h["name"]: h for h in machine["headers"]}
    assert headers["ce_type"]["value"] == ATTENDANCE
    assert headers["dlq_offset"]["value"] == "40"
    assert headers["tracestate"] == {"name": "tracestate", "value": None, "bytes": 3}
    assert machine["key"] == {"present": True, "bytes": len(letters["keys"][0])}
    paths = {f["path"]: f["type"] for f in machine["payload"]["fields"]}
    assert paths["attendance.site.name"] == "string (29 chars)"

    missing = await _invoke(["dlq", "show", "processor", str(offsets[0] + 1)], env)
    assert missing.exit_code == 2  # a transaction marker: no dead letter there
    assert "no dead letter at" in missing.output


async def test_retry_republishes_and_audits_in_one_transaction(
    letters: dict[str, Any], kafka_access: KafkaAccess
) -> None:
    env, offsets, topics = letters["env"], letters["offsets"], letters["topics"]
    source, dlq = topics.source(ED), topics.dlq("processor")
    before = {t: await end_offsets(t, kafka_access) for t in (source, topics.audit_activity)}

    dry = await _invoke(["dlq", "retry", "processor", "--all", "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert "3 dead letter(s) would be retried; nothing published" in dry.output
    declined = await _invoke(["dlq", "retry", "processor", str(offsets[0])], env, stdin="n\n")
    assert declined.exit_code == 1 and "nothing retried" in declined.output
    assert {t: await end_offsets(t, kafka_access) for t in before} == before

    retried = await _invoke(
        ["dlq", "retry", "processor", "--all", "--reason-contains", "NHS_NUMBER", "--yes"], env
    )
    assert retried.exit_code == 0, retried.output
    assert "retried 2 dead letter(s)" in retried.output
    assert f"passed over {dlq}@{offsets[1]}" in retried.output
    _no_personal_data(retried.output, letters["keys"])

    back = await read_topic(source, kafka_access, until=lambda r: len(r) == 2)
    for rec, original, offset in zip(back, letters["records"][::2], offsets[::2], strict=True):
        assert (rec.key, rec.value, rec.partition) == (original.key, original.value, 0)
        names = [k for k, _ in rec.headers]
        assert not [n for n in names if n.startswith("dlq_")]
        assert dict(rec.headers)["infoshare_retry_of"] == f"{dlq}@{offset}".encode()
        kept = [h for h in original.headers if not h[0].startswith("dlq_")]
        assert list(rec.headers)[:-1] == kept

    audits = await read_topic(
        topics.audit_activity,
        kafka_access,
        until=lambda r: sum(b'"dlq_retry"' in (x.value or b"") for x in r) == 2,
    )
    retries = [
        a
        for a in (AuditRecord.model_validate_json(x.value or b"") for x in audits)
        if a.action == "dlq_retry"
    ]
    for audit, original, offset in zip(retries, letters["records"][::2], offsets[::2], strict=True):
        assert audit.decision is AuditOutcome.RETRIED
        assert audit.audit_id == audit_id_for(
            topic=dlq, partition=0, offset=offset, recipient=None, protocol="dlq-retry"
        )
        assert audit.event_id == dict(original.headers)["ce_id"].decode()
        assert audit.event_type == ATTENDANCE
        assert audit.actor.startswith("infoshare-cli:")
        assert f"{dlq}@{offset}" in audit.reason and f"{source}[0]@" in audit.reason
        assert (audit.topic_in, audit.offset_in, audit.topic_out) == (dlq, offset, source)
        assert audit.source_agency == ED
        _no_personal_data(audit.model_dump_json(), letters["keys"])


async def test_retry_refuses_delivery_and_unknown_offsets(letters: dict[str, Any]) -> None:
    env, offsets = letters["env"], letters["offsets"]
    delivery = await _invoke(["dlq", "retry", "delivery", "0", "--yes"], env)
    assert delivery.exit_code == 2
    assert "POST /subscriptions/{id}/resend" in delivery.output
    unknown = await _invoke(["dlq", "retry", "processor", str(offsets[2] + 50), "--yes"], env)
    assert unknown.exit_code == 2 and "no dead letter at offset(s)" in unknown.output


async def test_the_readme_commands_run(letters: dict[str, Any]) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("### Dead letters", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].split() for line in block.splitlines()]
    commands = [c[1:] for c in commands if c[:2] == ["infoshare", "dlq"]]
    assert len(commands) >= 4
    for args in commands:
        result = await _invoke(args, letters["env"], stdin="n\n")
        # Each does its work (0), but for a retry that asks first, answered no (1).
        asks = args[1] == "retry" and not {"--dry-run", "--yes"} & set(args)
        assert result.exit_code == (1 if asks else 0), (args, result.output)
        if asks:
            assert "nothing retried" in result.output


async def test_no_broker_at_the_address_exits_3() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = await _invoke(["dlq", "list", "--bootstrap", bootstrap], {})
    assert result.exit_code == 3
    assert f"cannot reach Kafka at {bootstrap}" in result.output
