"""Recall in the delivery store, on SQLite and PostgreSQL: a notice deletes the delivery it
names with its queued notifications, in the transaction that stores the notice; the notice
is numbered for every subscription given the delivery (whatever its types and filters), its
number floor kept; each purge is logged and audited once on ``audit.activity``, with no
value in its record. A notice for a delivery not held, a delivery and its notice in one
batch, and a notice (or the withdrawn delivery) read again. Times are given, never waited."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import inspect, text
from sqlmodel import col, func, select

from services.backbone import recall
from services.backbone.audit_contract import AuditRecord, is_disclosure_decision
from services.delivery import queue, recall_audit, subscriptions
from services.delivery.filters import parse_filters
from services.delivery.model import Channel, Content, Delivered, Incoming, Status
from services.delivery.secret_box import SecretBox
from services.delivery.signing import new_secret
from services.delivery.store import DELIVERY_PRIVILEGES, DeliveryStore, IngestResult
from services.delivery.tables import DeliveryRow, NotificationRow, NumberFloorRow, RecallPurgeRow
from tests.integration.sent_audits import Sent

LA, ED = "la-northshire", "nhs-riverside-ed"
ATT = "health.unscheduled_care.attendance"
PLAN = "socialcare.child_protection_plan.started"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SECRET = "Ada Lovelace 943 476 5919"  # a value no audit record may hold
KEY = b"routing-key-of-the-child"
TOPIC = f"deliver.{LA}"
OF_TYPE = [{"path": "type", "op": "eq", "value": ATT}]  # a notice is of another type


def _store(url: str) -> DeliveryStore:
    store = DeliveryStore(url, secret_box=SecretBox({"k1": os.urandom(32)}, active="k1"))
    store.create_schema()
    return store


def _subscribe(
    store: DeliveryStore,
    types: list[str],
    *,
    webhook: bool = False,
    filters: list[dict[str, Any]] | None = None,
) -> str:
    spec = subscriptions.NewSubscription(
        agency=LA,
        event_types=types,
        filters=parse_filters(filters or []),
        content=Content.FULL,
        channel=Channel.WEBHOOK if webhook else Channel.INBOX,
        endpoint="https://hooks.example.org/infoshare" if webhook else None,
        secret=new_secret() if webhook else None,
    )
    return subscriptions.create(store, spec, now=NOW).id


def _item(event: Delivered, offset: int) -> Incoming:
    value = orjson.dumps(dict(event.data))
    return Incoming(LA, TOPIC, 0, offset, KEY, value, [], event)


def _delivery(offset: int, event_type: str = ATT) -> Incoming:
    event = Delivered(
        event_id=str(uuid.uuid4()),
        type=event_type,
        source=f"/agencies/{ED}",
        time=NOW - timedelta(days=1),
        protocol="flag@2",
        identity_level="identified",
        data={"subject": {"name": SECRET}, "site": "RVR01"},
    )
    return _item(event, offset)


def _notice(recalled: Incoming | str, offset: int, *, event_id: str | None = None) -> Incoming:
    named = recalled if isinstance(recalled, str) else recalled.event.event_id
    data = {
        "recalls": named,
        "recalled_type": ATT,
        "reason": recall.RecallReason.WRONG_SUBJECT.value,
        "recalled_at": NOW.isoformat(),
    }
    event = Delivered(
        event_id=event_id or str(uuid.uuid4()),
        type=recall.RECALLED,
        source=recall.NOTICE_SOURCE,
        time=NOW,
        protocol="flag@2",
        identity_level="identified",
        data=data,
        recalls=named,
    )
    return _item(event, offset)


def _ingest(store: DeliveryStore, *items: Incoming) -> IngestResult:
    offsets = {(TOPIC, 0): max(i.offset for i in items) + 1}
    return store.ingest(list(items), offsets, now=NOW)


def _queue(store: DeliveryStore, sub_id: str) -> list[tuple[int, str]]:
    """A subscription's notifications, in any state: (number, delivery id)."""
    found = queue.entries(store, sub_id, 1, 1000)
    return [(q.notification.event_number, q.delivery.event_id) for q in found]


def _logs(store: DeliveryStore) -> list[RecallPurgeRow]:
    with store.read() as s:
        return list(s.exec(select(RecallPurgeRow).order_by(col(RecallPurgeRow.kafka_offset))))


def _floor(store: DeliveryStore) -> int | None:
    with store.read() as s:
        row = s.get(NumberFloorRow, LA)
    return None if row is None else row.number


def _send(store: DeliveryStore, sent: Sent) -> int:
    return asyncio.run(recall_audit.send_audits(store, sent, now=lambda: NOW))


def _leaks(record: AuditRecord, *values: str) -> list[str]:
    text = record.model_dump_json()
    return [v for v in (SECRET, KEY.decode(), *values) if v in text]


def test_a_notice_deletes_the_delivery_and_tells_every_subscription_given_it(
    database_url: str,
) -> None:
    store = _store(database_url)
    inbox = _subscribe(store, [ATT])
    hook = _subscribe(
        store, [ATT], webhook=True, filters=[{"path": "type", "op": "eq", "value": ATT}]
    )
    later_off = _subscribe(store, [ATT])
    plans = _subscribe(store, [PLAN])
    kept, withdrawn = _delivery(0), _delivery(1)
    _ingest(store, kept, withdrawn)
    subscriptions.set_status(store, later_off, Status.OFF, now=NOW)
    x = withdrawn.event.event_id

    notice = _notice(withdrawn, 2)
    result = _ingest(store, notice)
    assert (result.stored, result.recall_purges) == (1, 1)

    n = notice.event.event_id
    assert store.delivery(LA, x) is None
    assert [(r.number, r.event_id) for r in store.deliveries_after(LA, 0, 10)] == [
        (1, kept.event.event_id),
        (3, n),
    ]  # the pull inbox: the withdrawn delivery gone, the notice in its place
    for sub_id in (inbox, hook, later_off):  # even a switched-off one: it was given it
        assert _queue(store, sub_id) == [(1, kept.event.event_id), (3, n)]
        assert subscriptions.get(store, sub_id).events_since_start == 3
    assert _queue(store, plans) == []
    pending = [q.delivery.event_id for q in queue.window(store, hook, 10)]
    assert pending == [kept.event.event_id, n]  # the webhook's queue: X will not be pushed
    stored = store.delivery(LA, n)
    assert stored is not None and stored.recalls == x and stored.record_key == KEY
    with store.read() as s:
        held = select(col(DeliveryRow.seq))
        rows = s.exec(select(NotificationRow.delivery_seq)).all()
        orphans = s.exec(
            select(func.count())
            .select_from(NotificationRow)
            .where(col(NotificationRow.delivery_seq).not_in(held))
        ).one()
    assert (len(rows), orphans) == (6, 0)  # the kept one's and the notice's, three each

    assert _floor(store) == 2  # X's number is never given again
    _ingest(store, _delivery(3))
    assert [r.number for r in store.deliveries_after(LA, 3, 10)] == [4]

    (log,) = _logs(store)
    assert (log.agency, log.notice_id, log.recalls, log.found) == (LA, n, x, True)
    assert (log.notifications, log.recalled_type, log.protocol) == (3, ATT, "flag@2")
    assert log.audited_at is None

    sent = Sent()
    assert _send(store, sent) == 1
    (record,) = sent.records
    assert record.audit_id == log.id
    assert (record.action, record.decision, record.reason_code) == (
        recall.PURGE_ACTION,
        "recorded",
        recall.PURGED,
    )
    assert not is_disclosure_decision(record.decision, record.action)
    assert record.reason == (
        "the delivery store deleted the delivery the recall names, and its 3 notifications "
        "to subscriptions; it keeps the notice in its place"
    )
    assert (record.recipient, record.delivery_id, record.event_type) == (LA, n, ATT)
    assert (record.protocol_id, record.protocol_version) == ("flag", 2)
    assert (record.topic_in, record.partition_in, record.offset_in) == (TOPIC, 0, 2)
    assert record.actor == "infoshare-delivery"
    assert _leaks(record, inbox, hook) == []
    assert _send(store, sent) == 0  # once
    (log,) = _logs(store)
    assert log.audited_at is not None


def test_a_notice_for_a_delivery_not_held_is_logged_so_and_still_delivered(
    database_url: str,
) -> None:
    store = _store(database_url)
    of_type = _subscribe(store, [ATT], filters=[{"path": "data.site", "op": "eq", "value": "X"}])
    notices = _subscribe(store, [recall.RECALLED, PLAN], webhook=True)
    plans = _subscribe(store, [PLAN])
    notice = _notice("purged-long-ago", 0)
    result = _ingest(store, notice)
    assert (result.stored, result.recall_purges) == (1, 1)

    n = notice.event.event_id
    # Who may have been given it: the subscriptions to its type, whatever their filters,
    # and those to notices.
    assert _queue(store, of_type) == [(1, n)]
    assert _queue(store, notices) == [(1, n)]
    assert _queue(store, plans) == []
    assert [r.event_id for r in store.deliveries_after(LA, 0, 10)] == [n]
    assert _floor(store) is None  # nothing was deleted

    (log,) = _logs(store)
    assert (log.found, log.notifications, log.recalls) == (False, 0, "purged-long-ago")
    assert log.recalled_type == ATT  # as the notice says
    sent = Sent()
    assert _send(store, sent) == 1
    (record,) = sent.records
    assert record.reason_code == recall.NOT_HELD
    assert record.reason == (
        "the delivery store did not hold the delivery the recall names (purged already or "
        "never stored); it keeps the notice"
    )
    assert (record.delivery_id, record.event_type) == (n, ATT)
    assert _leaks(record) == []


def test_a_delivery_and_its_notice_in_one_batch(database_url: str) -> None:
    store = _store(database_url)
    inbox = _subscribe(store, [ATT])
    hook = _subscribe(
        store, [ATT], webhook=True, filters=[{"path": "type", "op": "eq", "value": ATT}]
    )
    withdrawn = _delivery(0)
    notice = _notice(withdrawn, 1)
    result = _ingest(store, withdrawn, notice)
    assert (result.stored, result.recall_purges) == (2, 1)

    n = notice.event.event_id
    assert store.delivery(LA, withdrawn.event.event_id) is None
    assert [(r.number, r.event_id) for r in store.deliveries_after(LA, 0, 10)] == [(2, n)]
    for sub_id in (inbox, hook):
        assert _queue(store, sub_id) == [(2, n)]
    assert [q.delivery.event_id for q in queue.window(store, hook, 10)] == [n]
    assert _floor(store) == 1
    (log,) = _logs(store)
    assert (log.found, log.notifications, log.recalled_type) == (True, 2, ATT)


def test_a_notice_read_again_deletes_nothing_twice_and_the_withdrawn_stays_out(
    database_url: str,
) -> None:
    store = _store(database_url)
    inbox = _subscribe(store, [ATT])
    withdrawn = _delivery(0)
    notice = _notice(withdrawn, 1)
    _ingest(store, withdrawn)
    _ingest(store, notice)
    sent = Sent()
    assert _send(store, sent) == 1

    again = _ingest(store, notice)  # the same record read again (offsets reset)
    assert (again.stored, again.duplicates, again.recall_purges) == (0, 1, 0)
    replayed = _ingest(store, withdrawn)  # the withdrawn delivery delivered again
    assert (replayed.stored, replayed.duplicates) == (0, 1)
    both = _ingest(store, _notice(withdrawn, 2, event_id=notice.event.event_id), withdrawn)
    assert (both.stored, both.duplicates, both.recall_purges) == (0, 2, 0)
    n = notice.event.event_id
    assert _queue(store, inbox) == [(2, n)]
    assert len(_logs(store)) == 1 and _send(store, sent) == 0
    assert len(sent.records) == 1

    # Another notice for it (another id) finds it gone, and says so.
    second = _notice(withdrawn, 3)
    assert _ingest(store, second).recall_purges == 1
    assert _queue(store, inbox) == [(2, n), (3, second.event.event_id)]
    assert [(log.found, log.notifications) for log in _logs(store)] == [(True, 1), (False, 0)]
    assert _send(store, sent) == 1
    assert [r.reason_code for r in sent.records] == [recall.PURGED, recall.NOT_HELD]
    assert len({r.audit_id for r in sent.records}) == 2


def test_a_notice_before_its_delivery_in_a_batch_keeps_the_delivery_out(database_url: str) -> None:
    store = _store(database_url)
    inbox = _subscribe(store, [ATT])
    withdrawn = _delivery(1)
    notice = _notice(withdrawn, 0)
    result = _ingest(store, notice, withdrawn)
    assert (result.stored, result.duplicates) == (1, 1)
    assert store.delivery(LA, withdrawn.event.event_id) is None
    assert _queue(store, inbox) == [(1, notice.event.event_id)]
    assert [log.found for log in _logs(store)] == [False]


def test_purge_audits_owed_are_sent_again_after_a_failure(database_url: str) -> None:
    store = _store(database_url)
    _subscribe(store, [ATT])
    withdrawn = _delivery(0)
    _ingest(store, withdrawn, _notice(withdrawn, 1))
    sent, clock = Sent(), [100.0]
    sent.down = True
    owed = recall_audit.Owed(store, sent, retry_s=30, now=lambda: NOW, clock=lambda: clock[0])

    async def settle() -> int:
        return await owed.settle()

    assert asyncio.run(settle()) == 0 and sent.calls == 1  # at start: the broker is away
    sent.down = False
    clock[0] += 10
    assert asyncio.run(settle()) == 0 and sent.calls == 1  # not yet tried again
    clock[0] += 25
    assert asyncio.run(settle()) == 1
    assert asyncio.run(settle()) == 0 and sent.calls == 2  # nothing owed: nothing read
    assert recall_audit.unaudited(store) == []

    second = _delivery(2)
    _ingest(store, second, _notice(second, 3))
    owed.logged()  # as the reader does after a batch that logged a purge
    assert asyncio.run(settle()) == 1
    assert [r.offset_in for r in sent.records] == [1, 3]


def test_the_recall_log_is_made_and_granted_and_an_older_store_gains_its_column(
    database_url: str,
) -> None:
    assert DELIVERY_PRIVILEGES["delivery_recall_purge"] == ("SELECT", "INSERT", "UPDATE")
    assert "DELETE" in DELIVERY_PRIVILEGES["delivery_event"]
    store = _store(database_url)
    assert inspect(store.engine).has_table("delivery_recall_purge")
    withdrawn = _delivery(0)
    _ingest(store, withdrawn)
    with store.engine.begin() as conn:  # as a store made before recalls were
        conn.execute(text('ALTER TABLE "delivery_event" DROP COLUMN "recalls"'))
    store.create_schema()
    columns = {c["name"] for c in inspect(store.engine).get_columns("delivery_event")}
    assert "recalls" in columns
    _ingest(store, _notice(withdrawn, 1))
    assert store.delivery(LA, withdrawn.event.event_id) is None
