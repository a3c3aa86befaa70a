"""Recall in an agency's inbox, on SQLite and PostgreSQL: a notice deletes the item it
withdraws in the transaction that stores it, and takes its place (numbered after it, shown
like any item); each notice's purge is logged once, found or not, and its audit record sent
once (a send that failed is sent by the next, under the same id). A notice read again
deletes nothing twice, and an item it withdrew, read again, is not stored again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from services.agency import inbox_recall
from services.agency.inbox_recall import InboxRecallPurgeRow
from services.agency.inbox_store import Inbox
from services.backbone import recall
from services.backbone.database import engine_for
from services.backbone.envelope import EXT_PROTOCOL, EXT_RECALLS, CloudEvent
from tests.integration.sent_audits import Sent

LA, ED = "la-northshire", "nhs-riverside-ed"
TOPIC = f"deliver.{LA}"
FLAG = "health.flag.raised"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SECRET = "Ada Lovelace 943 476 5919"  # a value no audit record may hold


def _item(n: int) -> CloudEvent:
    return CloudEvent(
        type=FLAG,
        source=f"/agencies/{ED}",
        data={"subject": {"name": SECRET}, "n": n},
        key=f"key-{n}",
        extensions={EXT_PROTOCOL: "flag@1"},
    )


def _notice(of: CloudEvent | str) -> CloudEvent:
    recalls = of if isinstance(of, str) else of.id
    return CloudEvent(
        type=recall.RECALLED,
        source=recall.NOTICE_SOURCE,
        data={
            "recalls": recalls,
            "recalled_type": FLAG,
            "reason": "shared_in_error",
            "recalled_at": NOW.isoformat(),
        },
        key="key-1",
        extensions={EXT_RECALLS: recalls, EXT_PROTOCOL: "flag@1", "identitylevel": "identified"},
    )


def _inbox(database_url: str) -> Inbox:
    inbox = Inbox(engine_for(database_url), TOPIC)
    inbox.create_schema()
    return inbox


def _logged(inbox: Inbox) -> list[InboxRecallPurgeRow]:
    with Session(inbox.engine) as s:
        return list(
            s.exec(select(InboxRecallPurgeRow).order_by(col(InboxRecallPurgeRow.purged_at)))
        )


def _send(inbox: Inbox, sent: Sent) -> int:
    return asyncio.run(inbox_recall.send_audits(inbox, sent, now=lambda: NOW))


def _ids(inbox: Inbox) -> list[str]:
    return [i.event_id for i in inbox.after(0, 100)]


def test_a_notice_deletes_the_item_takes_its_place_and_is_audited_once(database_url: str) -> None:
    inbox = _inbox(database_url)
    kept, withdrawn = _item(1), _item(2)
    inbox.add([kept, withdrawn], {0: 2}, now=NOW)
    seen = inbox.after(0, 100)[-1].number  # a reader's cursor past the item withdrawn
    notice = _notice(withdrawn)
    assert inbox.add([notice], {0: 3}, at={notice.id: (0, 2)}, now=NOW) == 1

    assert _ids(inbox) == [kept.id, notice.id]
    (shown,) = inbox.after(seen, 100)  # numbered after it, never in its number
    assert shown.number > seen and shown.type == recall.RECALLED
    assert shown.data["recalls"] == withdrawn.id and shown.protocol == "flag@1"
    (row,) = _logged(inbox)
    assert (row.notice_id, row.recalled_id, row.found) == (notice.id, withdrawn.id, True)
    assert (row.agency, row.recalled_type, row.protocol) == (LA, FLAG, "flag@1")
    assert row.audited_at is None

    sent = Sent()
    assert _send(inbox, sent) == 1
    assert _send(inbox, sent) == 0  # marked: sent once
    (record,) = sent.records
    assert record.audit_id == row.id and record.reason_code == recall.PURGED
    assert (record.recipient, record.delivery_id, record.event_type) == (LA, notice.id, FLAG)
    assert (record.topic_in, record.partition_in, record.offset_in) == (TOPIC, 0, 2)
    text = record.model_dump_json()
    assert [s for s in (SECRET, withdrawn.id, "key-2") if s in text] == []

    inbox.add([_item(3)], {0: 4}, now=NOW)  # later items numbered after the notice
    assert [i.number for i in inbox.after(0, 100)] == sorted(i.number for i in inbox.after(0, 100))


def test_a_notice_for_an_item_not_held_is_kept_and_audited_as_not_held(database_url: str) -> None:
    inbox = _inbox(database_url)
    notice = _notice("an-item-purged-already")
    inbox.add([notice], {0: 1}, at={notice.id: (0, 0)}, now=NOW)
    assert _ids(inbox) == [notice.id]
    (row,) = _logged(inbox)
    assert not row.found and row.recalled_type == FLAG  # the notice's word for its type
    sent = Sent()
    assert _send(inbox, sent) == 1
    assert sent.records[0].reason_code == recall.NOT_HELD


def test_an_item_and_its_notice_in_one_batch_end_with_the_item_deleted(database_url: str) -> None:
    inbox = _inbox(database_url)
    before, withdrawn = _item(1), _item(2)
    notice = _notice(withdrawn)
    at = {withdrawn.id: (0, 1), notice.id: (0, 2)}
    assert inbox.add([before, withdrawn, notice], {0: 3}, at=at, now=NOW) == 3
    assert _ids(inbox) == [before.id, notice.id]
    assert [r.found for r in _logged(inbox)] == [True]


def test_a_notice_read_again_deletes_nothing_twice_and_is_logged_once(database_url: str) -> None:
    inbox = _inbox(database_url)
    withdrawn = _item(1)
    notice = _notice(withdrawn)
    inbox.add([withdrawn], {0: 1}, now=NOW)
    inbox.add([notice], {0: 2}, at={notice.id: (0, 1)}, now=NOW)
    sent = Sent()
    assert _send(inbox, sent) == 1

    # A lapsed replica's batch (the item and its notice again), and the notice re-sent
    # further on: the item stays deleted, the notice is listed once, nothing more is logged.
    again = Inbox(engine_for(database_url), TOPIC)
    assert again.add([withdrawn, notice], {0: 2}, at={notice.id: (0, 1)}, now=NOW) == 0
    assert again.add([withdrawn], {0: 1}, now=NOW) == 0  # withdrawn: not stored again
    assert again.add([notice], {0: 9}, at={notice.id: (0, 8)}, now=NOW) == 0
    assert _ids(again) == [notice.id]
    (row,) = _logged(again)
    assert row.found and row.audited_at is not None
    assert _send(again, sent) == 0 and len(sent.records) == 1


def test_a_purge_audit_that_could_not_be_sent_is_sent_later_under_its_id(
    database_url: str,
) -> None:
    inbox = _inbox(database_url)
    other = Inbox(engine_for(database_url), f"deliver.{ED}")  # another agency, same database
    other.create_schema()
    withdrawn = _item(1)
    notice = _notice(withdrawn)
    inbox.add([withdrawn], {0: 1}, now=NOW)
    inbox.add([notice], {0: 2}, at={notice.id: (0, 1)}, now=NOW)
    sent = Sent()
    sent.down = True
    with pytest.raises(ConnectionError):
        _send(inbox, sent)
    assert _logged(inbox)[0].audited_at is None
    assert _send(other, Sent()) == 0  # another inbox's log is its own
    sent.down = False
    assert _send(inbox, sent) == 1
    assert sent.records[0].audit_id == _logged(inbox)[0].id


def test_a_notice_must_say_where_it_was_read(database_url: str) -> None:
    inbox = _inbox(database_url)
    notice = _notice(_item(1))
    with pytest.raises(ValueError, match="position"):
        inbox.add([notice], {0: 1}, now=NOW)
    assert _ids(inbox) == [] and inbox.offsets() == {}  # all or nothing
