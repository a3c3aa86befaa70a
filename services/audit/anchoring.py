"""Anchors outside the store: every signed checkpoint is also published to an append-only,
replicated topic (``audit.checkpoints``: one partition, kept forever, written by the audit
service's principal only), as well as appended to the checkpoint file. Someone who can
rewrite the database, its checkpoint table and the file still cannot rewrite the topic, so
``infoshare audit verify`` finds a truncated or rewritten store against it.

The publisher reads the checkpoints the store committed after the last one it published
(``after``): whichever thread signed them (a batch of records, an IG officer's look-up), and
across a restart, since at start it asks the topic for the last one there. The window
between a checkpoint's commit and its publication is one pass of the loop (``EVERY_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.audit.chain import Checkpoint
from services.audit.models import AuditCheckpoint
from services.audit.sealing import Sealing, file_checkpoints
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_to_end

log = logging.getLogger(__name__)
EVERY_S = 0.5  # the longest a committed checkpoint waits to be published


@dataclass(frozen=True)
class Anchor:
    """Checkpoints kept somewhere outside the store, and where (said in a verdict)."""

    where: str
    checkpoints: list[Checkpoint] = field(default_factory=list)
    missing: bool = False  # named, but not there (a deleted checkpoint file)
    # Whether it keeps up with the store (the file, the topic) or lags by design (a witness,
    # asked every few seconds): only the former must cover the store's head.
    covers_head: bool = True

    @property
    def size(self) -> int:
        """The largest tree it vouches for (0: none)."""
        return max((c.tree_size for c in self.checkpoints), default=0)


def file_anchor(path: Path) -> Anchor:
    where = f"the checkpoint file {path}"
    return Anchor(where, file_checkpoints(path)) if path.exists() else Anchor(where, missing=True)


async def topic_anchor(access: KafkaAccess, topic: str) -> Anchor:
    """Every checkpoint published to ``topic``, oldest first."""
    reader = kafka.consumer(topic, access=access, group_id=None)
    found: list[Checkpoint] = []
    await reader.start()
    try:
        async for batch in read_to_end(reader, from_beginning=True):
            for rec in batch:
                try:
                    found.append(Checkpoint.from_json(orjson.loads(rec.value or b"")))
                except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
                    log.error("a record on %s is not a checkpoint: offset %d", topic, rec.offset)
    finally:
        await reader.stop()
    return Anchor(f"the topic {topic}", found)


async def last_published(access: KafkaAccess, topic: str) -> int:
    """The tree size of the last checkpoint on ``topic`` (0 if none)."""
    reader = kafka.consumer(topic, access=access, group_id=None)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        end = (await reader.end_offsets([tp]))[tp]
        if end == 0:
            return 0
        reader.seek(tp, max(0, end - 50))  # the last record may sit behind a commit marker
        size = 0
        async for batch in read_to_end(reader, [tp]):
            for rec in batch:
                size = max(size, int(orjson.loads(rec.value or b"{}").get("tree_size", 0)))
        return size
    finally:
        await reader.stop()


def committed_after(engine: Engine, sealing: Sealing, size: int) -> list[Checkpoint]:
    """The checkpoints the store holds past ``size``, oldest first, those signed by one of
    the service's keys only: a row written into the table by hand is never anchored."""
    public = sealing.public_keys()
    with Session(engine) as session:
        rows = session.exec(
            select(AuditCheckpoint)
            .where(col(AuditCheckpoint.tree_size) > size)
            .order_by(col(AuditCheckpoint.tree_size))
            .limit(1000)
        ).all()
    found = []
    for row in rows:
        cp = Checkpoint.from_json(row.model_dump())
        signer = public.get(cp.key_id)
        if signer is not None and cp.signature_valid(signer):
            found.append(cp)
        else:
            log.error("an audit checkpoint row (id %s) is not signed by the audit key", row.id)
    return found


async def publish(
    engine: Engine,
    sealing: Sealing,
    producer: AIOKafkaProducer,
    topic: str,
    *,
    after: int,
    stop: asyncio.Event,
) -> None:
    """Publish each checkpoint the store commits, in order, until ``stop``; ``after``: the
    tree size the topic already holds."""
    while True:
        for cp in await asyncio.to_thread(committed_after, engine, sealing, after):
            await producer.send_and_wait(
                topic, orjson.dumps(cp.to_json()), key=str(cp.tree_size).encode()
            )
            after = cp.tree_size
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), EVERY_S)
