"""Fixtures of the integration tests: a consent-and-policy processor running in this
process against the session's real broker, on the test's own topics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consent.processor.settings import ProcessorSettings
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from tests.integration.kafka_helpers import Running


@pytest.fixture
async def stack(
    kafka_access: KafkaAccess, namespace: str, keyring_path: Path, directory: Directory
) -> AsyncIterator[Running]:
    settings = ProcessorSettings(
        kafka_bootstrap=kafka_access.bootstrap, topic_namespace=namespace, keyring_file=keyring_path
    )
    await kafka.ensure_topics(kafka_access, settings.topics().all_specs(directory))
    running = Running(settings)
    await running.start()
    yield running
    await running.halt()
