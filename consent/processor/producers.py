"""One transactional producer per input partition number, the fencing aiokafka allows.

aiokafka cannot bind a transaction's offset commit to the consumer group's generation
(KIP-447), so a paused or partitioned instance that lost its partitions could still commit
its batch. The pre-KIP-447 answer, used here: the transactional id names the input
partition (``<group>-p<N>``), not the instance. Whoever is assigned partition N starts a
producer with that id; the broker then bumps its epoch, aborts or completes whatever the
previous holder had open, and refuses every later write or commit from the old producer
(ProducerFenced). Source topics are co-partitioned, so partition N of every source topic
goes through the same producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable

from aiokafka import AIOKafkaProducer

from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess

STOP_WAIT_S = 30.0
START_WAIT_S = 60.0


class PartitionProducers:
    def __init__(self, *, access: KafkaAccess, prefix: str, transaction_timeout_ms: int) -> None:
        self.access = access
        self.prefix = prefix
        self.transaction_timeout_ms = transaction_timeout_ms
        self._by_number: dict[int, AIOKafkaProducer] = {}

    def transactional_id(self, number: int) -> str:
        return f"{self.prefix}-p{number}"

    async def take(self, numbers: Iterable[int]) -> None:
        """Hold exactly ``numbers``: close every producer, then start one per number. A
        fresh start even for a number held before, so a holder in between is fenced and
        its last commit is complete before offsets are read. Within ``START_WAIT_S``, or
        TimeoutError (InitProducerId retries forever while the broker is away)."""
        await self.close()
        started = {
            number: kafka.producer(
                self.access,
                transactional_id=self.transactional_id(number),
                transaction_timeout_ms=self.transaction_timeout_ms,
            )
            for number in sorted(set(numbers))
        }
        try:
            async with asyncio.timeout(START_WAIT_S):
                await asyncio.gather(*(p.start() for p in started.values()))  # the fence
        except BaseException:
            await asyncio.gather(*(quietly(p.stop()) for p in started.values()))
            raise
        self._by_number = started

    def __getitem__(self, number: int) -> AIOKafkaProducer:
        try:
            return self._by_number[number]
        except KeyError:
            raise LookupError(f"no producer for partition {number}: not assigned") from None

    async def close(self) -> None:
        """Stop every producer; one that cannot stop in time (the broker is down) is left to
        the broker, which aborts its open transaction when the next holder starts."""
        held, self._by_number = list(self._by_number.values()), {}
        await asyncio.gather(*(quietly(p.stop()) for p in held))


async def quietly(step: Awaitable[object], wait_s: float = STOP_WAIT_S) -> None:
    """Run a clean-up step, giving up after ``wait_s``; its failure is not news. Not even
    a CancelledError of its own making (aiokafka's stop() can raise one when the broker is
    gone): only a cancellation of the caller propagates."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=wait_s)
    if not done:
        task.cancel()
        return
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it
