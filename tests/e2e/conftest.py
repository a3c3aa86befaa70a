"""The whole stack, one per test module: every component as its own process on free ports,
on the session's broker, on topics of the module's own; and the demo's scenario played on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.devstack.demo.play import Outcome, play
from deploy.devstack.observe import JaegerServer, ZipkinServer
from deploy.devstack.stack import Stack
from services.backbone.kafka_access import KafkaAccess
from tests.e2e.stacks import running_stack


@pytest.fixture(scope="module")
def stack(
    kafka_access: KafkaAccess,
    tmp_path_factory: pytest.TempPathFactory,
    zipkin: ZipkinServer,
    jaeger: JaegerServer | None,
) -> Iterator[Stack]:
    with running_stack(kafka_access, tmp_path_factory, zipkin=zipkin, jaeger=jaeger) as running:
        yield running


@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    return play(stack, say=lambda _m: None)
