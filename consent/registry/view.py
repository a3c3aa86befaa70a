"""The processor's view of the consent registry: the compacted ``consent.records`` topic,
read to its end before every batch, so a withdrawal committed before a batch starts
applies to every event in it and after it."""

from __future__ import annotations

import logging

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from consent.core.consent import ConsentRecord
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_to_end

log = logging.getLogger(__name__)
Subject = dict[tuple[str, str], ConsentRecord]


class ConsentView:
    def __init__(self, *, topic: str, access: KafkaAccess) -> None:
        self.topic = topic
        self.access = access
        self.by_subject: dict[str, Subject] = {}
        self._reader: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        # From scratch each time: a tombstone compacted away while this view was stopped
        # must not leave an old grant in force.
        self.by_subject = {}
        # No group: a group-less subscription is assigned every partition.
        # Asked for its end offsets before every batch: fetches must not hold that up.
        self._reader = kafka.consumer(
            self.topic, access=self.access, group_id=None, fetch_max_wait_ms=20
        )
        await self._reader.start()
        await self.catch_up()

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()

    async def catch_up(self) -> None:
        """Read every committed record up to the end offsets as of now."""
        reader = self._reader
        assert reader is not None, "start() first"
        async for batch in read_to_end(reader):
            for rec in batch:
                self._apply(rec)

    def _apply(self, rec: ConsumerRecord) -> None:
        try:
            routing, purpose, scope = rec.key.decode().split("|")
        except (AttributeError, ValueError):
            log.error("ignoring a consent record with a malformed key at offset %d", rec.offset)
            return
        subject = self.by_subject.setdefault(routing, {})
        if rec.value is None:
            subject.pop((purpose, scope), None)
            return
        try:
            subject[(purpose, scope)] = ConsentRecord.from_json(orjson.loads(rec.value))
        except (ValueError, KeyError, orjson.JSONDecodeError):
            # Fail closed: an unreadable record must not leave an earlier grant in force.
            subject.pop((purpose, scope), None)
            log.error("unreadable consent record at offset %d: treated as no consent", rec.offset)
