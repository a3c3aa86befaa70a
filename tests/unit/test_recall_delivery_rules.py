"""Recall notices in the delivery service, the pure part: what each notice in a batch
withdraws, who is told of it (everyone given the delivery, whatever their types and
filters), how a notice is read off the wire, and the audit record of a purge (its id the
one AuditRecord.about gives the notice's coordinates; ids and counts, never a value)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from services.backbone import envelope, recall
from services.backbone.audit_contract import AuditRecord, is_disclosure_decision
from services.delivery.filters import parse_filters
from services.delivery.kafka_edge import incoming
from services.delivery.model import Delivered, Status
from services.delivery.numbering import Subscriber, assign_numbers, takes_notice
from services.delivery.recalls import (
    Withdrawal,
    purge_audit,
    purge_audit_id,
    recalled_type,
    withdrawals,
)

LA, PH = "la-northshire", "ph-northshire"
ATT, PLAN = "health.unscheduled_care.attendance", "socialcare.child_protection_plan.started"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def delivery(event_id: str, event_type: str = ATT, site: str = "RVR01") -> Delivered:
    return Delivered(
        event_id, event_type, "/agencies/x", T0, "flag@2", "identified", {"site": site}
    )


def notice(event_id: str, recalls: str, recalled: Any = ATT) -> Delivered:
    data = {"recalls": recalls, "recalled_type": recalled, "reason": "shared_in_error"}
    return Delivered(
        event_id, recall.RECALLED, recall.NOTICE_SOURCE, T0, "flag@2", "identified", data,
        recalls=recalls,
    )  # fmt: skip


def sub(
    sub_id: str,
    *,
    agency: str = LA,
    types: tuple[str, ...] = (ATT,),
    site: str | None = None,
    status: Status = Status.ACTIVE,
    since: int = 0,
) -> Subscriber:
    filters = [{"path": "data.site", "op": "eq", "value": site}] if site else []
    return Subscriber(sub_id, agency, status, frozenset(types), parse_filters(filters), since)


def told(subs: list[Subscriber], batch: list[tuple[str, Delivered]], **held: Any) -> list[Any]:
    plan = withdrawals(batch, held.get("held", {}))
    return [
        (n.subscription_id, n.event_number, n.index)
        for n in assign_numbers(subs, batch, withdrawals=plan)
    ]


def test_a_notice_withdraws_what_is_held_before_or_earlier_in_its_batch_once() -> None:
    batch = [
        (LA, delivery("x-in-batch")),
        (LA, notice("n1", "x-in-batch")),
        (LA, notice("n2", "x-held")),
        (LA, notice("n3", "x-held")),  # a second notice finds it gone
        (LA, notice("n4", "never-stored")),
        (PH, notice("n5", "x-in-batch")),  # another recipient's delivery of that id: not held
        (LA, notice("n6", "n1")),  # a notice is a delivery too
    ]
    plan = withdrawals(batch, {(LA, "x-held"): frozenset({"s1"})})
    assert plan == [
        Withdrawal(1, LA, "x-in-batch", True, earlier=0),
        Withdrawal(2, LA, "x-held", True, notified=frozenset({"s1"})),
        Withdrawal(3, LA, "x-held", False),
        Withdrawal(4, LA, "never-stored", False),
        Withdrawal(5, PH, "x-in-batch", False),
        Withdrawal(6, LA, "n1", True, earlier=1),
    ]


def test_a_notice_reaches_every_subscription_given_the_delivery_whatever_its_filters() -> None:
    subs = [
        sub("inbox", since=4),
        sub("rvr-only", site="RVR01", since=9),  # the notice has no data.site
        sub("switched-off", status=Status.OFF, since=2),  # given it before it was switched off
        sub("not-given", since=1),  # its type, but never given it (created after, filtered)
        sub("notices", types=(recall.RECALLED,), site="elsewhere"),  # asked for every notice
        sub("other-agency", agency=PH, types=(recall.RECALLED,)),
    ]
    given_x = frozenset({"inbox", "rvr-only", "switched-off"})
    numbered = told(subs, [(LA, notice("n1", "x"))], held={(LA, "x"): given_x})
    assert numbered == [
        ("inbox", 5, 0),
        ("rvr-only", 10, 0),
        ("switched-off", 3, 0),
        ("notices", 1, 0),
    ]


def test_a_notice_for_a_delivery_not_held_goes_to_whoever_may_have_been_given_it() -> None:
    subs = [
        sub("att", site="RVR01"),  # of the type withdrawn: filters do not drop the notice
        sub("plans", types=(PLAN,)),
        sub("every-type", types=()),
        sub("notices", types=(recall.RECALLED, PLAN)),
        sub("att-off", status=Status.OFF),
    ]
    assert [s for s, *_ in told(subs, [(LA, notice("n1", "gone"))])] == [
        "att",
        "every-type",
        "notices",
    ]
    # A notice whose recalled_type is not a type (or absent) reaches the notices' takers.
    for odd in (None, ["a", "list"], {"a": 1}, "", "t" * 129):
        assert recalled_type(notice("n", "x", recalled=odd)) is None
        assert [s for s, *_ in told(subs, [(LA, notice("n1", "gone", odd))])] == [
            "every-type",
            "notices",
        ]


def test_in_one_batch_the_notice_goes_to_whoever_the_delivery_went_to() -> None:
    subs = [sub("inbox"), sub("webhook", site="RVR01"), sub("plans", types=(PLAN,))]
    batch = [(LA, delivery("x")), (LA, delivery("p", PLAN)), (LA, notice("n1", "x"))]
    assert told(subs, batch) == [
        ("inbox", 1, 0),
        ("webhook", 1, 0),
        ("plans", 1, 1),
        ("inbox", 2, 2),
        ("webhook", 2, 2),
    ]


def test_without_its_withdrawal_a_notice_is_taken_as_naming_nothing_held() -> None:
    subs = [sub("att"), sub("plans", types=(PLAN,))]
    numbered = assign_numbers(subs, [(LA, notice("n1", "x"))])
    assert [n.subscription_id for n in numbered] == ["att"]
    assert not takes_notice(sub("att"), PH, notice("n1", "x"), given=None)


@st.composite
def subscribers(draw: st.DrawFn) -> list[Subscriber]:
    made = []
    for i in range(draw(st.integers(1, 6))):
        made.append(
            sub(
                f"s{i}",
                types=tuple(draw(st.sets(st.sampled_from([ATT, PLAN, recall.RECALLED])))),
                site=draw(st.sampled_from([None, "RVR01", "X"])),
                status=draw(st.sampled_from(list(Status))),
                since=draw(st.integers(0, 50)),
            )
        )
    return made


@given(
    subs=subscribers(),
    kinds=st.lists(st.sampled_from([ATT, PLAN]), min_size=1, max_size=5),
    sites=st.lists(st.sampled_from(["RVR01", "X"]), min_size=5, max_size=5),
    recalled=st.data(),
)
def test_every_subscription_given_a_delivery_is_told_of_its_recall(
    subs: list[Subscriber], kinds: list[str], sites: list[str], recalled: st.DataObject
) -> None:
    batch = [(LA, delivery(f"d{i}", k, sites[i])) for i, k in enumerate(kinds)]
    target = recalled.draw(st.integers(0, len(batch) - 1))
    batch.append((LA, notice("n", f"d{target}", kinds[target])))
    numbered = told(subs, batch)
    given_x = {n[0] for n in numbered if n[2] == target}
    given_notice = {n[0] for n in numbered if n[2] == len(batch) - 1}
    assert given_x <= given_notice
    # Numbers stay contiguous per subscription, from where each stood.
    for s in subs:
        mine = [number for sub_id, number, _ in numbered if sub_id == s.id]
        assert mine == list(range(s.events_since_start + 1, s.events_since_start + 1 + len(mine)))


def _record(value: dict[str, Any], extensions: dict[str, str], offset: int = 7) -> ConsumerRecord:
    event = envelope.CloudEvent(
        type=recall.RECALLED,
        source=recall.NOTICE_SOURCE,
        data=value,
        key="k",
        id="n-1",
        extensions={envelope.EXT_PROTOCOL: "flag@2", **extensions},
    )
    key, raw, headers = envelope.encode(event)
    topic = f"deliver.{LA}"
    return ConsumerRecord(topic, 0, offset, 0, 0, key, raw, None, len(key), len(raw), headers)


def test_a_notice_read_off_the_wire_names_what_it_withdraws_only_if_both_agree() -> None:
    data = {"recalls": "x-1", "recalled_type": ATT, "reason": "inaccurate", "recalled_at": "t"}
    read = incoming(_record(data, {envelope.EXT_RECALLS: "x-1"}), LA)
    assert read.event.recalls == "x-1"
    assert read.event.cloudevent()["recalls"] == "x-1"  # full content carries the extension
    disagreeing = incoming(_record(data, {envelope.EXT_RECALLS: "x-2"}), LA)
    assert disagreeing.event.recalls is None  # stored as it is; nothing deleted on its word
    assert "recalls" not in disagreeing.event.cloudevent()


@dataclass
class Log:
    id: str
    agency: str
    notice_id: str
    recalled_type: str | None
    protocol: str | None
    found: bool
    notifications: int
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int
    purged_at: datetime


def test_a_purge_is_audited_under_the_id_its_notice_coordinates_give() -> None:
    coordinates: dict[str, Any] = {"topic": f"deliver.{LA}", "partition": 2, "offset": 41}
    log_id = purge_audit_id(**coordinates, agency=LA)
    log = Log(log_id, LA, "n-1", ATT, "flag@2", True, 2, f"deliver.{LA}", 2, 41, T0)
    record = purge_audit(log)
    about = AuditRecord.about(
        **coordinates,
        recipient=LA,
        protocol=recall.PURGE_ACTION,
        recorded_at=T0,
        action=recall.PURGE_ACTION,
        decision="recorded",
        reason_code=recall.PURGED,
        reason="-",
        actor="-",
    )
    assert record.audit_id == log_id == about.audit_id
    assert purge_audit(log) == record  # sent again, the same record
    assert (record.action, record.decision, record.reason_code) == (
        recall.PURGE_ACTION,
        "recorded",
        recall.PURGED,
    )
    assert not is_disclosure_decision(record.decision, record.action)  # on audit.activity
    assert record.reason == (
        "the delivery store deleted the delivery the recall names, and its 2 notifications "
        "to subscriptions; it keeps the notice in its place"
    )
    assert (record.recipient, record.delivery_id, record.event_type) == (LA, "n-1", ATT)
    assert (record.protocol_id, record.protocol_version) == ("flag", 2)
    assert (record.topic_in, record.partition_in, record.offset_in) == (f"deliver.{LA}", 2, 41)
    assert record.actor == "infoshare-delivery" and record.recorded_at == T0
    assert record.event_id == record.delivery_id  # the notice: how the report finds it
    assert record.subject_key is None

    other = purge_audit_id(**coordinates, agency=PH)
    assert other != log_id  # each recipient's purge of its own notice

    log.found, log.notifications, log.protocol = False, 0, "p" * 140 + "@1"
    not_held = purge_audit(log)
    assert not_held.reason_code == recall.NOT_HELD
    assert "did not hold" in not_held.reason
    assert not_held.protocol_id is None  # longer than the trail keeps: left out


def test_one_notification_is_said_in_the_singular() -> None:
    log = Log("i", LA, "n", None, None, True, 1, "t", 0, 0, T0.replace(tzinfo=None))
    record = purge_audit(log)
    assert "its 1 notification to" in record.reason
    assert record.recorded_at == T0  # a time read back without its offset is UTC


def test_the_recall_rules_import_no_edge_library() -> None:
    program = (
        "import sys\n"
        "import services.delivery.recalls, services.delivery.numbering\n"
        "edges = ['aiokafka', 'fastapi', 'sqlmodel', 'sqlalchemy', 'starlette', 'httpx']\n"
        "print(','.join(m for m in edges if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
