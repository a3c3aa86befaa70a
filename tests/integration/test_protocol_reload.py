"""A running processor takes up a changed protocol set between batches, and keeps its last
good set while the set on disk is bad: public health's fields as the protocol says them,
event by event, with the processor never restarted."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from consent.policy.load import DEFAULT_DIR
from consent.processor.settings import ProcessorSettings
from deploy.devstack.demo import scenario
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from tests.integration.kafka_helpers import Running, eventually, publish_event, read_topic

pytestmark = pytest.mark.kafka

PH = "ph-northshire"
ANALYTICS = "public-health-attendance-analytics"
COMPLAINT = "      - allow: attendance.presenting_complaint_category\n"


@pytest.fixture
async def running(
    kafka_access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    directory: Directory,
    tmp_path: Path,
) -> AsyncIterator[tuple[Running, Path]]:
    protocols = tmp_path / "protocols"
    shutil.copytree(DEFAULT_DIR, protocols)
    settings = ProcessorSettings(
        kafka_bootstrap=kafka_access.bootstrap,
        topic_namespace=namespace,
        keyring_file=keyring_path,
        protocols_dir=protocols,
    )
    await kafka.ensure_topics(kafka_access, settings.topics().all_specs(directory))
    processor = Running(settings)
    await processor.start()
    yield processor, protocols
    await processor.halt()


async def test_a_changed_set_is_taken_up_and_a_bad_one_leaves_the_last_good_in_force(
    running: tuple[Running, Path], kafka_access: KafkaAccess, namespace: str, keyring: Keyring
) -> None:
    stack, protocols = running
    processor = stack.processor
    assert processor is not None and processor.reload is not None
    topics = Topics(namespace=namespace)
    attendance = attendance_from_bundle(scenario.attendance_bundle(scenario.NOT_ON_PLAN))

    async def to_public_health(n: int) -> dict[str, Any]:
        """Publish an attendance; public health's copy of it (the ``n``th they receive)."""
        await publish_event(
            "nhs-riverside-ed",
            ATTENDANCE,
            attendance,
            namespace=namespace,
            access=kafka_access,
            keyring=keyring,
        )
        got = await read_topic(topics.deliver(PH), kafka_access, until=lambda r: len(r) >= n)
        assert len(got) == n
        shared: dict[str, Any] = orjson.loads(got[-1].value)["attendance"]
        return shared

    def versions() -> set[int]:
        assert processor is not None
        return {p.version for p in processor.ctx.protocols if p.id == ANALYTICS}

    # Version 2, as shipped: the presenting complaint's category is shared.
    assert "presenting_complaint_category" in await to_public_health(1)

    # Version 3 drops it. Taken up while running, between batches.
    path = protocols / f"{ANALYTICS}.yaml"
    shipped = path.read_text()
    assert COMPLAINT in shipped and "version: 2\n" in shipped
    path.write_text(shipped.replace(COMPLAINT, "").replace("version: 2\n", "version: 3\n"))

    async def reloaded() -> bool:
        return versions() == {3}

    await eventually("the changed set taken up", reloaded)
    assert "presenting_complaint_category" not in await to_public_health(2)

    # Version 4 is bad (a field kind no protocol may use): version 3 stays in force.
    bad = path.read_text().replace("version: 3\n", "version: 4\n")
    path.write_text(
        bad.replace("- allow: attendance.setting_type", "- reveal: attendance.setting_type")
    )
    reloader = processor.reload

    async def refused() -> bool:
        return bool(getattr(reloader, "last_problems", None))

    await eventually("the bad set refused", refused)
    third = await to_public_health(3)
    assert "presenting_complaint_category" not in third and "setting_type" in third
    assert versions() == {3}
