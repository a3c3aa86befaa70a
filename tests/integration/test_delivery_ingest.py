"""The delivery store's ingest, on SQLite and PostgreSQL: a batch for several recipients,
interleaved and with copies, is stored in one statement and each notification points at its
own recipient's delivery, under numbers that follow on from those given before."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from services.delivery import queue
from services.delivery.model import Delivered, Incoming
from services.delivery.secret_box import SecretBox
from services.delivery.store import DeliveryStore, headers_of
from tests.integration.test_delivery_harness import ATTENDANCE, LA, inbox_subscription

SCHOOL = "school-oakfield"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _store(url: str) -> DeliveryStore:
    store = DeliveryStore(url, secret_box=SecretBox({"k1": os.urandom(32)}, active="k1"))
    store.create_schema()
    return store


def _item(agency: str, offset: int) -> Incoming:
    event = Delivered(
        event_id=str(uuid.uuid4()),
        type=ATTENDANCE,
        source="/agencies/nhs-riverside-ed",
        time=NOW - timedelta(days=1),
        protocol="flag@2",
        identity_level="identified",
        data={"site": "RVR01", "n": offset},
    )
    headers = [("ce_id", event.event_id.encode()), ("empty", b""), ("none", None)]
    value = orjson.dumps(dict(event.data))
    return Incoming(agency, f"deliver.{agency}", 0, offset, b"key", value, headers, event)


def test_an_interleaved_batch_numbers_each_recipients_own_deliveries(database_url: str) -> None:
    store = _store(database_url)
    subs = {agency: inbox_subscription(store, agency).id for agency in (LA, SCHOOL)}
    earlier = [_item(LA, 0), _item(LA, 1)]  # LA's numbers start at 3 in the next batch
    store.ingest(earlier, {}, now=NOW)
    batch = [_item([LA, SCHOOL, SCHOOL][n % 3], n) for n in range(2, 32)]
    again = [batch[3], earlier[0]]  # a copy within the batch, and one stored before
    result = store.ingest([*batch, *again], {}, now=NOW)

    assert (result.stored, result.duplicates) == (30, 2)
    for agency, first in ((LA, 3), (SCHOOL, 1)):
        mine = [i for i in (*earlier, *batch) if i.agency == agency]
        read = queue.entries(store, subs[agency], 1, 1000)
        assert [q.notification.event_number for q in read] == list(range(1, len(mine) + 1))
        numbered = read[first - 1 :]
        sent = mine[first - 1 :]
        assert [q.delivery.event_id for q in numbered] == [i.event.event_id for i in sent]
        assert [orjson.loads(q.delivery.record_value) for q in numbered] == [
            dict(i.event.data) for i in sent
        ]
        assert [headers_of(q.delivery) for q in numbered] == [list(i.headers) for i in sent]
