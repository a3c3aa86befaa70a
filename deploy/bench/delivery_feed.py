"""What ``infoshare bench delivery`` feeds the delivery service: delivery records on a
recipient's ``deliver.<agency>`` topic, made as the processor makes them
(``consent/processor/records.py``: a CloudEvent under the recipient's own event id and
key, encoded by the one envelope, ``services/backbone/envelope.py``) and written as it
writes them, in transactions of up to a batch, so the service reads them committed."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from services.backbone import envelope, kafka
from services.backbone.kafka_access import KafkaAccess

ATTENDANCE = "health.unscheduled_care.attendance"
SOURCE = "nhs-riverside-ed"
PROTOCOL = "cpis-attendance@1"
SITE_PATH = "data.attendance.site.ods_code"
BATCH = 500  # the processor's default batch_max: one transaction per batch
PACE_S = 0.02

Record = tuple[bytes | None, bytes, envelope.Headers]


def site(i: int) -> str:
    """The ``i``-th site code: subscription ``i`` filters on it, so each gets a share."""
    return f"BENCH{i:02d}"


def record(n: int, *, sites: int) -> tuple[str, Record]:
    """The ``n``-th delivery (its event id, and the record): an attendance as a recipient
    receives it, made of no one (a pseudonym and a routing key of the benchmark's own)."""
    pseudonym = hashlib.sha256(f"bench-child-{n % 1000}".encode()).hexdigest()
    event = envelope.CloudEvent(
        type=ATTENDANCE,
        source=envelope.agency_source(SOURCE),
        data={
            "subject": {"pseudonym": pseudonym[:24], "age_band": "5-9", "district": "NS1"},
            "attendance": {
                "site": {"ods_code": site(n % sites)},
                "arrival": "2026-11-20T21:14:00Z",
                "category": "emergency",
                "safeguarding_flag": n % 7 == 0,
                "sequence": n,
            },
        },
        key=pseudonym,
        id=str(uuid.uuid4()),
        time=datetime(2026, 11, 20, 21, 14, tzinfo=UTC),
        extensions={envelope.EXT_PROTOCOL: PROTOCOL, envelope.EXT_IDENTITY: "identified"},
    )
    key, value, headers = envelope.encode(event)
    return event.id, (key, value, headers)


class Feed:
    """A transactional producer writing deliveries, as the processor does."""

    def __init__(self, access: KafkaAccess, *, sites: int) -> None:
        self._producer: AIOKafkaProducer = kafka.producer(
            access, transactional_id=f"bench-delivery-{uuid.uuid4().hex}"
        )
        self._sites = sites
        self._next = 0

    async def __aenter__(self) -> Feed:
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    def make(self, count: int) -> list[tuple[str, Record]]:
        made = [record(self._next + i, sites=self._sites) for i in range(count)]
        self._next += count
        return made

    async def write(self, topic: str, records: Sequence[tuple[str, Record]]) -> dict[str, float]:
        """Write ``records`` in transactions of up to BATCH; the wall-clock time each was
        committed at, by event id."""
        committed: dict[str, float] = {}
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            async with self._producer.transaction():
                for _, (key, value, headers) in batch:
                    await self._producer.send(topic, value, key=key, headers=headers)
            now = time.time()
            committed.update((event_id, now) for event_id, _ in batch)
        return committed

    async def paced(self, topic: str, *, rate: float, seconds: float) -> dict[str, float]:
        """Write deliveries at ``rate`` a second for ``seconds``, a transaction every
        PACE_S (what arrives meanwhile): commit times by event id, as ``write``."""
        committed: dict[str, float] = {}
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            count = int(rate * elapsed) - len(committed)
            if count > 0:
                committed |= await self.write(topic, self.make(count))
            await asyncio.sleep(PACE_S)
        return committed
