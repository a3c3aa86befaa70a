"""`infoshare status` on a whole running stack, every component its own process: all up at
first; then a component stopped is shown down (never healthy from what it said before), and
a processor killed outright is not shown up, though its group member lingers."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.stack import Stack
from services.backbone.kafka_access import KafkaAccess
from tests.e2e.stacks import running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own stack: this test stops components of it.
    with running_stack(kafka_access, tmp_path_factory) as running:
        yield running


def status(stack: Stack, *more: str) -> tuple[int, dict[str, Any]]:
    urls = [f"--url={r.component.name}={stack.url(r.component.name)}" for r in stack.running]
    args = ["status", "--json", "--bootstrap", stack.bootstrap, *urls, *more]
    args += ["--namespace", stack.config.namespace]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    return result.exit_code, orjson.loads(result.output)


def states(doc: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["state"] for c in doc["components"]}


def stop(stack: Stack, name: str, how: signal.Signals) -> None:
    [running] = [r for r in stack.running if r.component.name == name]
    running.process.send_signal(how)
    running.process.wait(timeout=30)


def test_status_tells_the_truth_as_components_stop(stack: Stack) -> None:
    code, doc = status(stack)
    assert (code, doc["healthy"]) == (0, True), doc
    assert set(states(doc).values()) == {"up"}
    assert doc["audit"] is not None and doc["circuits"] == []
    groups = {g["reader"]: g for g in doc["groups"]}
    assert groups["processor"]["members"] == 1 and groups["audit"]["members"] == 1
    assert all(g["known"] for g in groups.values())
    assert {d["topic"].rsplit(".", 1)[1] for d in doc["dead_letters"]} >= {"processor", "audit"}

    stop(stack, "delivery", signal.SIGTERM)
    code, doc = status(stack)
    assert code == 3 and states(doc)["delivery"] == "down"
    assert doc["circuits"] is None  # not remembered from the answer before
    delivery = {g["reader"]: g for g in doc["groups"]}["delivery"]
    assert delivery["known"] is False

    stop(stack, "processor", signal.SIGKILL)  # no goodbye to its group
    code, doc = status(stack)
    assert code == 3 and states(doc)["processor"] in ("down", "degraded")
