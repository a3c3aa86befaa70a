"""Retention in the stores that hold deliveries for recipients, on SQLite and PostgreSQL: a
delivery (with its notifications) or an agency's received item held past its protocol's
retention is purged, one within it is kept, one without a retention is kept, numbers are
never given twice, and each run is audited once, in counts, with no id or value in it. A
run whose audit record could not be sent is sent by the next. Times come from an injected
clock, never a wait."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlmodel import func, select

from consent.core.retention import PURGE_ACTION, RetentionRules
from services.agency import inbox_retention
from services.agency.inbox_store import Inbox
from services.backbone.audit_contract import AuditRecord, is_disclosure_decision
from services.backbone.database import engine_for
from services.backbone.envelope import EXT_PROTOCOL, CloudEvent
from services.delivery import retention
from services.delivery.model import Delivered, Incoming
from services.delivery.store import DeliveryStore
from services.delivery.tables import NotificationRow, RetentionPurgeRow
from tests.integration.sent_audits import Sent
from tests.integration.test_delivery_harness import ATTENDANCE, ED, LA, inbox_subscription
from tests.retention_protocols import protocol

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SECRET = "Ada Lovelace 943 476 5919"  # a value no audit record may hold


RULES = RetentionRules.of(
    [
        protocol("flag", 1, (LA, "P2Y")),
        protocol("notice", 1, (LA, "P30D")),
        protocol("open-ended", 1, (LA, None)),
        protocol("flag", 1, (ED, "P6M")),
    ]
)


def _incoming(agency: str, protocol: str | None) -> Incoming:
    data = {"subject": {"name": SECRET}}
    event = Delivered(
        event_id=str(uuid.uuid4()),
        type=ATTENDANCE,
        source=f"/agencies/{ED}",
        time=NOW - timedelta(days=3000),
        protocol=protocol,
        identity_level="identified",
        data=data,
    )
    return Incoming(agency, f"deliver.{agency}", 0, 0, b"k", orjson.dumps(data), [], event)


def _deliver(store: DeliveryStore, agency: str, protocol: str | None, *, age_days: int) -> str:
    item = _incoming(agency, protocol)
    store.ingest([item], {}, now=NOW - timedelta(days=age_days))
    return item.event.event_id


def _leaks(record: AuditRecord, *secrets: str) -> list[str]:
    text = record.model_dump_json()
    return [s for s in (SECRET, *secrets) if s in text]


def test_deliveries_past_their_retention_are_purged_and_the_purge_audited(
    database_url: str,
) -> None:
    store = DeliveryStore(database_url)
    store.create_schema()
    sub = inbox_subscription(store, now=NOW - timedelta(days=3000))
    old = _deliver(store, LA, "flag@1", age_days=800)  # past P2Y
    recent = _deliver(store, LA, "flag@1", age_days=700)  # within P2Y
    notice = _deliver(store, LA, "notice@1", age_days=31)  # past P30D
    forever = _deliver(store, LA, "open-ended@1", age_days=3000)  # no retention: kept
    unknown = _deliver(store, LA, "withdrawn@4", age_days=3000)  # no longer loaded: kept
    to_ed = _deliver(store, ED, "flag@1", age_days=200)  # past P6M, ED's only delivery

    held = {h.recipient: h for h in retention.holdings(store, RULES, now=NOW)}
    assert (held[LA].held, held[LA].due, held[LA].kept) == (5, 2, 2)
    assert (held[ED].held, held[ED].due, held[ED].kept) == (1, 1, 0)

    run_id, tally = retention.purge(store, RULES, now=NOW)
    assert tally.total == 3
    assert store.delivery(LA, old) is None and store.delivery(LA, notice) is None
    assert store.delivery(ED, to_ed) is None
    for kept in (recent, forever, unknown):
        assert store.delivery(LA, kept) is not None
    with store.read() as s:
        queued = s.exec(
            select(func.count())
            .select_from(NotificationRow)
            .where(NotificationRow.subscription_id == sub.id)
        ).one()
    assert queued == 3  # the purged deliveries' inbox entries went with them
    assert {h.recipient: h.due for h in retention.holdings(store, RULES, now=NOW)} == {LA: 0}

    # ED's only delivery was its highest number: the next one is not given it again.
    _deliver(store, ED, "flag@1", age_days=0)
    assert [r.number for r in store.deliveries_after(ED, 0, 10)] == [2]

    sent = Sent()
    assert asyncio.run(retention.send_audits(store, sent, now=lambda: NOW)) == 1
    (record,) = sent.records
    assert record.audit_id == run_id
    assert record.action == PURGE_ACTION and record.decision == "recorded"
    assert record.reason == (
        "purged 3 deliveries held past their retention (flag@1 to la-northshire: 1, "
        "flag@1 to nhs-riverside-ed: 1, notice@1 to la-northshire: 1)"
    )
    assert not is_disclosure_decision(record.decision, record.action)  # taken on activity
    assert _leaks(record, old, notice, to_ed, sub.id) == []
    assert record.event_id is record.delivery_id is record.subject_key is None
    assert asyncio.run(retention.send_audits(store, sent, now=lambda: NOW)) == 0  # once

    last = retention.last_purge(store)
    assert last is not None and (last.at, last.total, last.audited) == (NOW, 3, True)
    assert last.by_recipient == {LA: 2, ED: 1}


def test_a_run_whose_audit_could_not_be_sent_is_sent_by_the_next(database_url: str) -> None:
    store = DeliveryStore(database_url)
    store.create_schema()
    _deliver(store, LA, "notice@1", age_days=40)
    sent = Sent()
    sent.down = True
    with pytest.raises(ConnectionError):
        asyncio.run(retention.purge_and_audit(store, lambda: RULES, sent, now=lambda: NOW))
    assert store.delivered_count() == 0  # purged, its record not yet sent
    sent.down = False
    later = NOW + timedelta(days=1)
    asyncio.run(retention.purge_and_audit(store, lambda: RULES, sent, now=lambda: later))
    # Only the first: a run that purged nothing is kept in the store's log, not the trail.
    assert [r.reason for r in sent.records] == [
        "purged 1 delivery held past its retention (notice@1 to la-northshire: 1)"
    ]
    last = retention.last_purge(store)
    assert last is not None and (last.at, last.total, last.audited) == (later, 0, True)


def test_the_periodic_task_purges_at_start_and_stops_when_told(database_url: str) -> None:
    store = DeliveryStore(database_url)
    store.create_schema()
    _deliver(store, LA, "notice@1", age_days=40)
    sent = Sent()

    async def run() -> None:
        stop = asyncio.Event()

        async def send(record: AuditRecord) -> None:
            await sent(record)
            stop.set()  # the first run is audited: stop the task

        task = asyncio.create_task(
            retention.keep_purging(
                store, lambda: RULES, send, every_s=3600, stop=stop, now=lambda: NOW
            )
        )
        async with asyncio.timeout(30):
            await task

    asyncio.run(run())
    assert store.delivered_count() == 0 and len(sent.records) == 1


def _received(number: int, protocol: str | None) -> CloudEvent:
    extensions: dict[str, Any] = {EXT_PROTOCOL: protocol} if protocol else {}
    return CloudEvent(
        type=ATTENDANCE,
        source=f"/agencies/{ED}",
        data={"subject": {"name": SECRET}, "n": number},
        key=f"k{number}",
        extensions=extensions,
    )


def test_an_agencys_received_items_past_their_retention_are_purged_and_audited(
    database_url: str,
) -> None:
    inbox = Inbox(engine_for(database_url), f"deliver.{LA}")
    inbox.create_schema()
    other = Inbox(engine_for(database_url), f"deliver.{ED}")  # another agency, same database
    other.create_schema()
    old, recent, forever = _received(1, "flag@1"), _received(2, "flag@1"), _received(3, None)
    other.add([_received(4, "flag@1")], {0: 1}, now=NOW - timedelta(days=800))
    inbox.add([recent, forever], {0: 2}, now=NOW - timedelta(days=100))
    inbox.add([old], {0: 3}, now=NOW - timedelta(days=800))  # the highest number of all

    (holding,) = inbox_retention.holdings(inbox, LA, RULES, now=NOW)
    assert (holding.held, holding.due, holding.kept) == (3, 1, 1)

    purged_number = inbox.after(0, 10)[-1].number  # the cursor of a reader who saw it
    run_id, tally = inbox_retention.purge(inbox, LA, RULES, now=NOW)
    assert tally.total == 1
    assert [i.event_id for i in inbox.after(0, 10)] == [recent.id, forever.id]
    assert other.count() == 1  # only this agency's inbox is judged by its rules

    sent = Sent()
    asyncio.run(inbox_retention.send_audits(inbox, sent, agency=LA, now=lambda: NOW))
    (record,) = sent.records
    assert record.audit_id == run_id and record.recipient == LA
    assert record.reason == "purged 1 received item held past its retention (flag@1: 1)"
    assert record.actor == f"infoshare-{LA}"
    assert _leaks(record, old.id, recent.id) == []
    last = inbox_retention.last_purge(inbox)
    assert last is not None and (last.total, last.audited) == (1, True)

    # Items are numbered after the purged ones, never in their place: a reader's cursor
    # past the purged item still sees the next one.
    inbox.add([_received(5, "flag@1")], {0: 4}, now=NOW)
    assert len(inbox.after(purged_number, 10)) == 1


def test_a_run_cut_short_is_audited_by_the_next_with_what_it_deleted(database_url: str) -> None:
    store = DeliveryStore(database_url)
    store.create_schema()
    _deliver(store, LA, "notice@1", age_days=40)
    run_id, _ = retention.purge(store, RULES, now=NOW)
    with store.write() as s:  # as a crash after the deletion, before the run was finished
        run = s.get(RetentionPurgeRow, run_id)
        assert run is not None
        run.finished = False
        s.add(run)
    sent = Sent()
    assert asyncio.run(retention.send_audits(store, sent, now=lambda: NOW)) == 0  # not final
    asyncio.run(retention.purge_and_audit(store, lambda: RULES, sent, now=lambda: NOW))
    assert [(r.audit_id, r.reason) for r in sent.records] == [
        (run_id, "purged 1 delivery held past its retention (notice@1 to la-northshire: 1)")
    ]
