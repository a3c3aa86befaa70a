"""The dead-letter contract has one home (services/backbone/deadletter.py): every stage's
writer goes through it, `infoshare dlq` reads what each wrote back, and `dlq show` prints
every field of it (stage, reason, origin, a dropped value, a subscription and its number)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from consent.processor.handle import Context, dead_letter
from deploy.cli.dlq_view import render_detail
from services.backbone import deadletter
from services.backbone.deadletter import DeadLetter, Origin, dead_letter_headers
from services.backbone.records import ReadRecord
from services.delivery.deadletter import dlq_headers
from services.ops.deadletter_view import detail
from services.outbox import deadletter as outbox_deadletter
from services.outbox.store import Pending
from tests.unit.factories import ATTENDANCE

ORIGINAL = [("ce_id", b"event-1"), ("ce_type", b"health.unscheduled_care.attendance")]


def read_back(
    stage: str, headers: Sequence[deadletter.Header], value: bytes | None = b"{}"
) -> DeadLetter:
    return DeadLetter(stage, f"dlq.{stage}", 0, 7, 1_795_000_000_000, b"k", value, tuple(headers))


def printed(letter: DeadLetter) -> str:
    console = Console(file=io.StringIO(), record=True, width=10_000)
    render_detail(detail(letter), console)
    return console.export_text()


@given(
    stage=st.sampled_from(["processor", "audit", "delivery", "outbox"]),
    reason=st.text(min_size=1, max_size=80).filter(lambda t: t.strip() == t and t.isprintable()),
    partition=st.none() | st.integers(0, 1000),
    offset=st.integers(0, 2**62),
)
def test_what_any_stage_writes_reads_back_the_same(
    stage: str, reason: str, partition: int | None, offset: int
) -> None:
    origin = Origin("ns.source.nhs-riverside-ed", partition, None if partition is None else offset)
    letter = read_back(
        stage, dead_letter_headers(ORIGINAL, stage=stage, reason=reason, origin=origin)
    )
    assert letter.origin == origin
    assert letter.reason == reason
    assert letter.fields()[deadletter.STAGE] == stage
    assert [h for h in letter.headers if not h[0].startswith("dlq_")] == ORIGINAL


def test_an_earlier_dead_letters_fields_are_replaced_not_piled_up() -> None:
    first = dead_letter_headers(ORIGINAL, stage="processor", reason="one", origin=Origin("a", 0, 1))
    again = dead_letter_headers(first, stage="processor", reason="two", origin=Origin("a", 0, 1))
    assert [v for k, v in again if k == deadletter.REASON] == [b"two"]
    assert len(again) == len(first)


def test_a_field_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match="dlq_colour is not in the dead-letter contract"):
        dead_letter_headers(ORIGINAL, stage="audit", reason="r", origin=Origin("a"), colour="red")


def test_an_origin_that_is_not_a_number_is_no_origin() -> None:
    headers = [(deadletter.TOPIC, b"a"), (deadletter.PARTITION, b"zero"), (deadletter.OFFSET, b"1")]
    assert read_back("processor", headers).origin is None
    assert read_back("processor", [(deadletter.PARTITION, b"0")]).origin is None


def test_the_processor_writes_the_contract_and_says_when_it_dropped_the_value(
    ctx: Context, build: Callable[..., ReadRecord]
) -> None:
    rec = build(ATTENDANCE)
    value = (rec.value or b"") + b" " * 1_100_000
    too_big = ReadRecord(rec.topic, rec.partition, rec.offset, rec.key, value, rec.headers)
    handled = dead_letter(too_big, ctx, "too big", now=datetime.now(UTC), trace_id=None)
    dead = next(r for r in handled.records if r.topic == ctx.topics.dlq("processor"))
    letter = read_back("processor", dead.headers, dead.value)
    assert letter.fields() == {
        "dlq_reason": "too big",
        "dlq_stage": "processor",
        "dlq_topic": ctx.topics.source("nhs-riverside-ed"),
        "dlq_partition": "2",
        "dlq_offset": "41",
        "dlq_value_dropped": "size",
    }
    assert re.search(r"stage\s+processor", printed(letter))
    assert re.search(r"value dropped\s+size", printed(letter))


def test_the_delivery_service_names_the_subscription_and_the_number() -> None:
    read = ReadRecord("ns.deliver.la-northshire", 1, 9, b"k", b"{}", ORIGINAL)
    letter = read_back(
        "delivery", dlq_headers(read, reason="gave up", subscription="s-1", event_number=4)
    )
    assert letter.origin == Origin("ns.deliver.la-northshire", 1, 9)
    assert letter.fields()["dlq_subscription"] == "s-1"
    shown = printed(letter)
    assert re.search(r"subscription\s+s-1", shown)
    assert re.search(r"event number\s+4", shown)


def test_the_outbox_names_the_topic_it_never_reached() -> None:
    pending = Pending(
        3, "e-1", "t", "ns.source.school-oakfield", b"k", b"{}", ORIGINAL, datetime.now(UTC)
    )
    _, _, headers = outbox_deadletter.dlq_record(pending, "MessageSizeTooLargeError")
    letter = read_back("outbox", headers)
    assert letter.origin == Origin("ns.source.school-oakfield")
    assert letter.fields()[deadletter.STAGE] == "outbox"
    assert re.search(r"origin\s+ns\.source\.school-oakfield\s", printed(letter))
