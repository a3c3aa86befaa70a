"""Consumer lag per assigned partition, as a gauge (``infoshare_consumer_lag``).

From what the consumer last heard of each partition's last stable offset (the end a
read_committed reader can reach) and its position (which steps over transaction markers
too, so a caught-up reader shows no lag): no round trip to the broker when Prometheus
scrapes. The values are worked out on the event loop after each poll and only read by the
scrape, which may run in another thread (the processor's metrics server does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError, KafkaError
from opentelemetry.metrics import CallbackOptions, Meter, Observation

POSITION_WAIT_S = 0.05  # a known position is answered at once; anything longer is a reset


class ConsumerLag:
    def __init__(self, meter: Meter, group: str) -> None:
        self.group = group
        self.consumer: AIOKafkaConsumer | None = None
        self._values: dict[tuple[str, int], int] = {}
        meter.create_observable_gauge(
            "infoshare.consumer.lag",
            [self.observe],
            description="Records on a partition not yet processed (last stable offset - next)",
        )

    def attach(self, consumer: AIOKafkaConsumer | None) -> None:
        """The consumer of this session (None between sessions: no lag is claimed then)."""
        self.consumer, self._values = consumer, {}

    async def refresh(self, taken: Mapping[tuple[str, int], int] | None = None) -> None:
        """After each poll, on the event loop: the lag of every assigned partition. Never
        raises and never waits: a partition whose position is not known at once (being
        reset, or revoked meanwhile) is left out this time, so a metric cannot stall or end
        the work it measures. ``taken``: records past the position that are read but not
        yet processed, by (topic, partition) (a reader that takes a batch ahead)."""
        consumer = self.consumer
        if consumer is None:
            return
        values: dict[tuple[str, int], int] = {}
        for tp in list(consumer.assignment()):
            try:
                stable = consumer.last_stable_offset(tp)
                if stable is None or stable < 0:
                    continue  # not heard of yet
                async with asyncio.timeout(POSITION_WAIT_S):
                    position = await consumer.position(tp)
            except (TimeoutError, AssertionError, IllegalStateError, KafkaError):
                continue
            behind = (taken or {}).get((tp.topic, tp.partition), 0)
            values[(tp.topic, tp.partition)] = max(0, stable - position) + behind
        self._values = values  # one assignment: a scrape sees the old or the new, whole

    def observe(self, _: CallbackOptions) -> list[Observation]:
        values = self._values
        return [
            Observation(float(lag), {"group": self.group, "topic": t, "partition": str(p)})
            for (t, p), lag in sorted(values.items())
        ]
