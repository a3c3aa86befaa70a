"""Ingest audit.decisions into the store: batched, idempotent, offsets committed after the
database commit (at-least-once from Kafka, exactly once in the table by audit id)."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from services.audit.store import AuditStore
from services.backbone import kafka
from services.backbone.audit_contract import AuditRecord

log = logging.getLogger(__name__)


async def ingest(
    store: AuditStore, *, topic: str, bootstrap: str, group_id: str, stop: asyncio.Event
) -> None:
    reader = kafka.consumer(topic, bootstrap=bootstrap, group_id=group_id)
    await reader.start()
    try:
        while not stop.is_set():
            batch = await reader.getmany(timeout_ms=500, max_records=1000)
            if not batch:
                continue
            records: list[AuditRecord] = []
            for tp, msgs in batch.items():
                for msg in msgs:
                    try:
                        records.append(AuditRecord.model_validate_json(msg.value))
                    except ValidationError:
                        # Never dropped silently: the record stays in the topic at this offset.
                        log.error(
                            "malformed audit record at %s[%d]@%d",
                            tp.topic,
                            tp.partition,
                            msg.offset,
                        )
            await asyncio.to_thread(store.add_batch, records)
            await reader.commit()
    finally:
        await reader.stop()
