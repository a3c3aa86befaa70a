"""``infoshare retention report|purge`` as an operator types them, against a delivery log and
an agency's inbox on SQLite and the shipped protocols, and a real broker: the report counts
what is held and due per store and recipient; the purge removes what is due, keeps the rest,
and audits each store once on audit.activity, in counts, with no id or value."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from deploy.cli.main import app
from services.agency.inbox_store import Inbox
from services.backbone import kafka
from services.backbone.audit_contract import AuditRecord
from services.backbone.database import engine_for
from services.backbone.directory import Directory
from services.backbone.envelope import EXT_PROTOCOL, CloudEvent
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from services.delivery.model import Delivered, Incoming
from services.delivery.store import DeliveryStore
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.kafka
LA = "la-northshire"
ATTENDANCE = "health.unscheduled_care.attendance"
# Shipped: the attendance notification to local authorities, kept two years.
NOTICE = "cpis-attendance-notification@2"
SECRET = "Grace Hopper 401 023 2137"


async def _invoke(args: list[str], env: dict[str, str]) -> Result:
    def invoke() -> Result:
        return CliRunner().invoke(app, args, env=env, catch_exceptions=False)

    return await asyncio.to_thread(invoke)


def _stores(root: Path, now: datetime, topic: str) -> dict[str, Any]:
    url = f"sqlite:///{root / 'delivery.db'}"
    store = DeliveryStore(url)
    store.create_schema()
    ids = []
    for age, protocol in ((800, NOTICE), (30, NOTICE), (3000, None)):
        data = {"name": SECRET}
        event = Delivered(
            str(uuid.uuid4()), ATTENDANCE, "/agencies/nhs-riverside-ed", now, protocol, None, data
        )
        item = Incoming(LA, f"deliver.{LA}", 0, 0, None, orjson.dumps(data), [], event)
        store.ingest([item], {}, now=now - timedelta(days=age))
        ids.append(event.event_id)
    inbox_url = f"sqlite:///{root / 'inbox.db'}"
    inbox = Inbox(engine_for(inbox_url), topic)
    inbox.create_schema()
    received = CloudEvent(
        type=ATTENDANCE,
        source="/agencies/nhs-riverside-ed",
        data={"name": SECRET},
        key="k",
        extensions={EXT_PROTOCOL: NOTICE},
    )
    inbox.add([received], {0: 1}, now=now - timedelta(days=900))
    return {"delivery": url, "inbox": inbox_url, "ids": [*ids, received.id]}


async def test_the_report_counts_and_the_purge_removes_and_audits(
    kafka_access: KafkaAccess, namespace: str, directory: Directory, tmp_path: Path
) -> None:
    topics = Topics(namespace=namespace, partitions=1)
    await kafka.ensure_topics(
        kafka_access, [s for s in topics.all_specs(directory) if s.name == topics.audit_activity]
    )
    made = _stores(tmp_path, datetime.now(UTC), topics.deliver(LA))
    env = {
        "INFOSHARE_KAFKA_BOOTSTRAP": kafka_access.bootstrap,
        "INFOSHARE_TOPIC_NAMESPACE": namespace,
    }
    where = [
        "--delivery-database-url",
        made["delivery"],
        "--agency",
        LA,
        "--inbox",
        f"{LA}={made['inbox']}",
    ]

    shown = await _invoke(["retention", "report", "--json", *where], env)
    assert shown.exit_code == 0, shown.output
    stores = {s["store"]: s for s in orjson.loads(shown.output)["stores"]}
    assert stores["delivery"]["recipients"] == [
        {"recipient": LA, "held": 3, "due": 1, "no_retention": 1}
    ]
    assert stores[f"inbox:{LA}"]["recipients"] == [
        {"recipient": LA, "held": 1, "due": 1, "no_retention": 0}
    ]
    assert stores["delivery"]["last_purge"] is None

    purged = await _invoke(["retention", "purge", "--yes", *where], env)
    assert purged.exit_code == 0, purged.output
    assert "2 purge record(s) sent" in purged.output

    records = await read_topic(topics.audit_activity, kafka_access, until=lambda r: len(r) >= 2)
    audits = sorted(
        (AuditRecord.model_validate_json(r.value) for r in records), key=lambda a: a.reason
    )
    assert [a.reason for a in audits] == [
        f"purged 1 delivery held past its retention ({NOTICE} to {LA}: 1)",
        f"purged 1 received item held past its retention ({NOTICE}: 1)",
    ]
    assert {a.action for a in audits} == {"retention_purge"}
    assert all(a.actor.startswith("infoshare-cli:") for a in audits)
    for record in records:
        for secret in (SECRET, *made["ids"]):
            assert secret.encode() not in record.value

    after = await _invoke(["retention", "report", "--json", *where], env)
    stores = {s["store"]: s for s in orjson.loads(after.output)["stores"]}
    assert stores["delivery"]["recipients"][0]["held"] == 2
    assert stores["delivery"]["last_purge"]["purged"] == 1
    assert stores["delivery"]["last_purge"]["audited"] is True
    assert stores[f"inbox:{LA}"]["recipients"] == []
