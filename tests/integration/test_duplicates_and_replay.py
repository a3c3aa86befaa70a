"""On the real broker: the same event published twice is delivered once and the copy audited
as suppressed, across a restart; a replay decides a range again under today's protocols,
audited as that run, without touching state."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from consent.processor.access_back import ACCESS_BACK
from consent.processor.main import context
from consent.processor.replay import ReplayRange, for_run, plan_offsets, replay
from deploy.cli.main import app
from deploy.devstack.demo import scenario
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from services.socialcare import mapping
from tests.integration.kafka_helpers import (
    Running,
    at_least,
    plan_data,
    publish_event,
    read_all,
    read_topic,
)

pytestmark = pytest.mark.kafka
LA, ED, PH = "la-northshire", "nhs-riverside-ed", "ph-northshire"


def _id(rec: Any) -> Any:
    return rec


def _type(rec: Any) -> str:
    return str(dict(rec.headers)["ce_type"].decode())


def _audits(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


async def test_a_duplicate_is_delivered_once_and_audited_as_suppressed_even_after_a_restart(
    stack: Running, kafka_access: KafkaAccess, namespace: str, keyring: Keyring
) -> None:
    topics = Topics(namespace=namespace)
    common: dict[str, Any] = {"namespace": namespace, "access": kafka_access}
    plan = plan_data()
    await publish_event(LA, mapping.PLAN_STARTED, plan, keyring=keyring, native_id="n1", **common)
    await read_topic(topics.deliver(ED), kafka_access, until=at_least(1))

    await stack.halt()  # the memory of seen events must come back from its changelog
    await stack.start()
    await publish_event(LA, mapping.PLAN_STARTED, plan, keyring=keyring, native_id="n1", **common)
    audits = _audits(await read_topic(topics.audit, kafka_access, until=at_least(3)))
    assert [(a["decision"], a["action"]) for a in audits] == [
        ("shared", "disclose"),
        ("shared", "access_back"),  # the authority asked to be told (deploy/agencies.yaml)
        ("suppressed", "suppress_duplicate"),
    ]
    assert audits[2]["reason_code"] == "duplicate.identical"
    assert audits[0]["event_id"] == audits[2]["event_id"]
    assert len(await read_all(topics.deliver(ED), kafka_access, _id)) == 1, "delivered twice"
    assert len(await read_all(topics.deliver(LA), kafka_access, _id)) == 1, "told twice"


async def test_a_replay_decides_again_under_todays_protocols_and_is_audited_as_its_run(
    stack: Running, kafka_access: KafkaAccess, namespace: str, keyring: Keyring
) -> None:
    topics = Topics(namespace=namespace)
    common: dict[str, Any] = {"namespace": namespace, "access": kafka_access}
    await publish_event(LA, mapping.PLAN_STARTED, plan_data(), keyring=keyring, **common)
    await read_topic(topics.deliver(ED), kafka_access, until=at_least(1))  # plan in force
    attendance = attendance_from_bundle(scenario.attendance_bundle(scenario.ON_PLAN))
    await publish_event(ED, ATTENDANCE, attendance, keyring=keyring, **common)
    first = await read_topic(topics.deliver(PH), kafka_access, until=at_least(1))
    await read_topic(topics.audit, kafka_access, until=at_least(5))  # 2 (plan) + 3
    await stack.halt()

    ctx = context(stack.settings)
    what = ReplayRange(topic=topics.source(ED))
    assert sum(b - a for a, b in (await plan_offsets(kafka_access, what)).values()) == 1

    # Today public health may receive it: same delivery id as before, marked as the replay.
    report = await replay(for_run(ctx, "run-a"), access=kafka_access, what=what, recipient=PH)
    assert (report.read, dict(report.outcomes)) == (1, {(PH, "shared"): 1})
    again = await replay(for_run(ctx, "run-a"), access=kafka_access, what=what)
    assert (again.read, again.resumed) == (0, 1), "a run decided the same record twice"
    ph = await read_topic(topics.deliver(PH), kafka_access, until=at_least(2))
    assert ph[1].headers and dict(ph[1].headers)["ce_replay"] == b"run-a"
    assert dict(ph[1].headers)["ce_id"] == dict(first[0].headers)["ce_id"]

    # Protocols withdrawn since: the replay withholds, audited; nothing old is re-sent.
    report = await replay(
        for_run(dataclasses.replace(ctx, protocols=()), "run-b"),
        access=kafka_access,
        what=what,
    )
    assert dict(report.outcomes) == {("-", "withheld"): 1}

    # The plan again: the ED's flag is decided again; the authority is not told again (it
    # was told when the plan was first shared, and a replay is the hub deciding again).
    plans = ReplayRange(topic=topics.source(LA))
    report = await replay(for_run(ctx, "run-c"), access=kafka_access, what=plans)
    assert dict(report.outcomes) == {(ED, "shared"): 1}
    audits = _audits(await read_topic(topics.audit, kafka_access, until=at_least(8)))
    replays = [a for a in audits if a["action"] == "replay"]
    assert [(a["recipient"], a["decision"], a["reason_code"]) for a in replays] == [
        (PH, "shared", "shared.protocol_allows"),
        (None, "withheld", "withheld.no_protocol"),
        (ED, "shared", "shared.protocol_allows"),
    ]
    assert [a["action"] for a in audits].count("access_back") == 1
    assert len({a["audit_id"] for a in audits}) == len(audits)
    la = await read_all(topics.deliver(LA), kafka_access, _type)
    assert la == [ACCESS_BACK, ATTENDANCE]  # the notice once; the attendance not replayed
    # State is read, never written: the changelogs hold only what the processor wrote.
    assert len(await read_all(topics.state("protection-plans"), kafka_access, _id)) == 1
    assert len(await read_all(topics.state("seen-events"), kafka_access, _id)) == 2


async def test_the_replay_command_dry_run_counts_and_writes_nothing(
    stack: Running, kafka_access: KafkaAccess, namespace: str, keyring: Keyring, keyring_path: Path
) -> None:
    topics = Topics(namespace=namespace)
    common: dict[str, Any] = {"namespace": namespace, "access": kafka_access}
    await publish_event(LA, mapping.PLAN_STARTED, plan_data(), keyring=keyring, **common)
    await read_topic(topics.audit, kafka_access, until=at_least(2))  # flag + access back
    env = {
        "INFOSHARE_KAFKA_BOOTSTRAP": kafka_access.bootstrap,
        "INFOSHARE_TOPIC_NAMESPACE": namespace,
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
    }
    args = ["replay", "--source", LA, "--dry-run"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "1 record(s) would be decided again; nothing written" in result.output
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["replay", "--source", "ph-northshire"], env=env
    )
    assert result.exit_code == 2 and "publishes nothing" in result.output
    assert len(await read_all(topics.audit, kafka_access, _id)) == 2
