"""`infoshare dlq retry` refuses the `outbox` stage: its letters are records the broker refused
for good when an agency's relay published them, and the agency sends them again once the cause
is mended (README, "Dead letters")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from deploy.cli.main import app
from services.backbone.deadletter import DeadLetter, Origin, dead_letter_headers
from services.backbone.topics import Topics
from tests.unit.test_dlq_cmd import Kafka, stand_in

TOPICS = Topics(namespace="ns.")
SOURCE = TOPICS.source("school-oakfield")
runner = CliRunner()


def outbox_letter(offset: int) -> DeadLetter:
    # The strongest case: a letter whose origin names a source partition and offset, a topic
    # the processor stage reads, so only the stage itself can be why it is refused.
    headers = dead_letter_headers(
        [("ce_id", f"event-{offset}".encode()), ("ce_type", b"education.attendance")],
        stage="outbox",
        reason="MessageSizeTooLargeError",
        origin=Origin(SOURCE, 0, 40 + offset),
    )
    return DeadLetter(
        "outbox", TOPICS.dlq("outbox"), 0, offset, 1_795_000_000_000, b"k", b"{}", tuple(headers)
    )


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Kafka:
    return stand_in(monkeypatch, [outbox_letter(n) for n in range(3)])


@pytest.mark.parametrize(
    "args", [["0", "--yes"], ["0", "1", "2"], ["--all", "--yes"], ["--all", "--dry-run"]]
)
def test_retry_refuses_the_outbox_stage_and_says_whose_it_is(kafka: Kafka, args: list[str]) -> None:
    result = runner.invoke(app, ["dlq", "retry", "outbox", *args], input="y\n")
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "refused for good" in output and "the agency sends them again" in output
    assert kafka.published == []


def test_the_outbox_letters_can_still_be_listed_and_shown(kafka: Kafka) -> None:
    # The refusal is of retrying, not of reading: an operator still sees why each was refused.
    listed = runner.invoke(app, ["dlq", "list", "--stage", "outbox"])
    assert listed.exit_code == 0, listed.output
    assert "MessageSizeTooLargeError" in listed.output
    shown = runner.invoke(app, ["dlq", "show", "outbox", "1"])
    assert shown.exit_code == 0, shown.output
    assert SOURCE in shown.output
