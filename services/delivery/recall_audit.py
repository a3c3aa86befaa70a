"""The audit records of recall purges (logged by recall_purge.py in the transaction that
deleted, said by recalls.purge_audit), sent to ``audit.activity`` by the delivery reader: at
start, after each batch that logged one, and again a while after a failure (Kafka away).
Each is marked once the broker took it; sent again after a crash in between, it keeps its
audit id, so the trail has it once."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from sqlmodel import col, select

from services.backbone.audit_contract import AuditRecord
from services.backbone.purge_runs import SendAudit, send_logged
from services.delivery.recalls import purge_audit
from services.delivery.store import DeliveryStore, db_time
from services.delivery.tables import RecallPurgeRow

RETRY_S = 30.0  # after a failed send, how long before the reader tries again
log = logging.getLogger(__name__)


def unaudited(store: DeliveryStore) -> list[AuditRecord]:
    """The audit records of the purges not yet marked sent, in the order they were read."""
    with store.read() as s:
        rows = s.exec(
            select(RecallPurgeRow)
            .where(col(RecallPurgeRow.audited_at).is_(None))
            .order_by(
                col(RecallPurgeRow.purged_at),
                col(RecallPurgeRow.kafka_topic),
                col(RecallPurgeRow.kafka_partition),
                col(RecallPurgeRow.kafka_offset),
            )
        ).all()
    return [purge_audit(r) for r in rows]


async def send_audits(store: DeliveryStore, send: SendAudit, *, now: Callable[[], datetime]) -> int:
    """Send every purge's audit record not yet sent, marking each once the broker took it;
    how many were sent."""
    return await send_logged(
        functools.partial(unaudited, store),
        store.write,
        RecallPurgeRow,
        send,
        now=lambda: db_time(now()),
    )


class Owed:
    """Whether the reader owes the trail some purges' records. Owed at start (a run before
    may have logged some it could not send) and after each batch that logged one; a failed
    send is tried again, no sooner than ``retry_s`` later, so a broker away does not hold up
    reading on every poll."""

    def __init__(
        self,
        store: DeliveryStore,
        send: SendAudit,
        *,
        retry_s: float = RETRY_S,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._send, self._now, self._clock = store, send, now, clock
        self._retry_s = retry_s
        self._owed, self._not_before = True, 0.0

    def logged(self) -> None:
        """A batch logged purges: their records are owed now."""
        self._owed, self._not_before = True, 0.0

    async def settle(self) -> int:
        """Send what is owed, unless a failure was too recent; how many were sent. A send
        that fails is logged (its type only) and left owed."""
        if not self._owed or self._clock() < self._not_before:
            return 0
        try:
            sent = await send_audits(self._store, self._send, now=self._now)
        except (KafkaError, OSError) as exc:
            log.warning("recall purge audit not sent (%s); trying again later", type(exc).__name__)
            self._not_before = self._clock() + self._retry_s
            return 0
        self._owed = False
        return sent
