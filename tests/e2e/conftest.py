"""The whole stack, one per test module: every component as its own process on free ports,
on the session's broker, on topics of the module's own; and the demo's scenario played on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.cli.demo import Outcome, play
from services.cli.paths import default_cache_dir
from services.cli.stack import Stack, free_ports_config


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = free_ports_config(
        tmp_path_factory.mktemp("stack"),
        default_cache_dir(),
        bootstrap=kafka_bootstrap,
        namespace=f"e{uuid.uuid4().hex[:10]}.",
    )
    running = Stack(config)
    running.start(say=lambda _m: None)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    return play(stack, say=lambda _m: None)
