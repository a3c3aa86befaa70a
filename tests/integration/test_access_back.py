"""On the real broker: the authority that asked for access back (deploy/agencies.yaml) is told
once that the ED received its plan, on its own delivery topic and through a delivery-service
subscription to ``infoshare.access_back``, even when the plan is published twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from consent.processor.access_back import ACCESS_BACK, SOURCE
from deploy.devstack.demo import scenario
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from services.socialcare import mapping
from tests.integration.kafka_helpers import (
    Running,
    at_least,
    eventually,
    plan_data,
    publish_event,
    read_all,
    read_topic,
)
from tests.integration.test_delivery_harness import fast_settings, running, token

pytestmark = pytest.mark.kafka
LA, ED = "la-northshire", "nhs-riverside-ed"


def _type(rec: Any) -> str:
    return str(dict(rec.headers)["ce_type"].decode())


async def test_the_authority_subscribed_to_access_back_is_told_once(
    stack: Running,
    kafka_access: KafkaAccess,
    namespace: str,
    keyring: Keyring,
    keyring_path: Path,
    tmp_path: Path,
) -> None:
    topics = Topics(namespace=namespace)
    common: dict[str, Any] = {"namespace": namespace, "access": kafka_access}
    settings = fast_settings(
        tmp_path=tmp_path, keyring_path=keyring_path, access=kafka_access, namespace=namespace
    )
    la = token(keyring_path, LA)
    async with running(settings) as api:
        created = await api.post(
            f"/recipients/{LA}/subscriptions",
            headers=la,
            json={"event_types": [ACCESS_BACK], "channel": "inbox", "content": "full"},
        )
        assert created.status_code == 201, created.text
        sub = created.json()["id"]

        plan = plan_data()
        plan_id = await publish_event(
            LA, mapping.PLAN_STARTED, plan, keyring=keyring, native_id="n1", **common
        )
        again = await publish_event(
            LA, mapping.PLAN_STARTED, plan, keyring=keyring, native_id="n1", **common
        )
        assert again == plan_id  # a retry: the same event, suppressed
        await read_topic(topics.deliver(ED), kafka_access, until=at_least(1))  # plan in force
        attendance = attendance_from_bundle(scenario.attendance_bundle(scenario.ON_PLAN))
        await publish_event(ED, ATTENDANCE, attendance, keyring=keyring, **common)

        # The attendance notification too: the subscription wants only the notice.
        delivered = await read_topic(topics.deliver(LA), kafka_access, until=at_least(2))
        assert [_type(r) for r in delivered] == [ACCESS_BACK, ATTENDANCE]
        assert delivered[0].key == delivered[1].key  # the authority's key for the child

        async def numbered() -> bool:
            status = await api.get(f"/subscriptions/{sub}/status", headers=la)
            return int(status.json()["events_since_subscription_start"]) >= 1

        await eventually("the notice in the subscription", numbered)
        page = (await api.get(f"/subscriptions/{sub}/notifications", headers=la)).json()
        (note,) = page["notification_events"]
        event = note["event"]
        assert (event["type"], event["source"]) == (ACCESS_BACK, SOURCE)
        assert event["data"]["event_id"] == plan_id
        assert [s["recipient"] for s in event["data"]["shared_with"]] == [ED]
        assert scenario.ON_PLAN.nhs_number not in orjson.dumps(page).decode()

    # plan: the ED's flag and the notice; its copy: suppressed; the attendance: three.
    records = await read_topic(topics.audit, kafka_access, until=at_least(6))
    audits = [orjson.loads(r.value) for r in records]
    told = [a for a in audits if a["action"] == "access_back"]
    assert [(a["recipient"], a["reason_code"], a["event_id"]) for a in told] == [
        (LA, "shared.access_back", plan_id)
    ]
    assert await read_all(topics.deliver(LA), kafka_access, _type) == [ACCESS_BACK, ATTENDANCE]
