"""Driving one HTTP endpoint for the agency benchmark: a closed loop (``concurrency``
clients, each sending its next request when the last is answered) for the most it accepts,
and an open loop (requests sent on a fixed schedule whatever the server does) for latency
at a given rate, each request timed from its scheduled send so queueing shows."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from deploy.bench.loadgen import collector_paused

Body = tuple[str, str, bytes]  # path, content type, body
Backlog = Callable[[httpx.AsyncClient], Awaitable[int]]  # events waiting to be relayed


@dataclass(frozen=True)
class Driven:
    requests: int
    seconds: float
    latencies: Sequence[float]  # seconds, sorted
    max_backlog: int
    drain_s: float  # from the last answer until nothing waited to be relayed

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    def quantile_ms(self, q: float) -> float:
        """The nearest-rank quantile, in milliseconds."""
        values = self.latencies
        return values[max(0, math.ceil(q * len(values)) - 1)] * 1000


async def post(http: httpx.AsyncClient, body: Body) -> None:
    path, media, content = body
    got = await http.post(path, content=content, headers={"content-type": media})
    if got.status_code not in (200, 201, 202):
        raise RuntimeError(f"{path}: {got.status_code} {got.text[:200]}")


async def drained(http: httpx.AsyncClient, backlog: Backlog, wait_s: float = 300.0) -> float:
    """Seconds until ``backlog`` reads 0 (RuntimeError after ``wait_s``)."""
    started = time.perf_counter()
    while await backlog(http) > 0:
        if time.perf_counter() - started > wait_s:
            raise RuntimeError("the outbox relay did not catch up")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def _nothing(_http: httpx.AsyncClient) -> int:
    return 0


async def closed_loop(
    http: httpx.AsyncClient,
    body: Callable[[int], Body],
    *,
    requests: int,
    concurrency: int,
    backlog: Backlog = _nothing,
) -> Driven:
    """``requests`` requests from ``concurrency`` clients at once; the relay's backlog
    watched meanwhile and waited for afterwards."""
    latencies: list[float] = []
    queue = iter(range(requests))

    async def client() -> None:
        for i in queue:
            started = time.perf_counter()
            await post(http, body(i))
            latencies.append(time.perf_counter() - started)

    most = [0]

    async def watch() -> None:
        while True:
            most[0] = max(most[0], await backlog(http))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    try:
        with collector_paused():
            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    drain = await drained(http, backlog)
    return Driven(requests, seconds, sorted(latencies), most[0], drain)


async def open_loop(
    http: httpx.AsyncClient,
    body: Callable[[int], Body],
    *,
    rate: float,
    requests: int,
    backlog: Backlog = _nothing,
) -> Driven:
    """``requests`` requests sent at ``rate`` per second on a fixed schedule; each one's
    latency counts from when it was due, not from when the generator got to it."""
    latencies: list[float] = []

    async def one(i: int, started: float) -> None:
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await post(http, body(i))
        latencies.append(time.perf_counter() - due)

    with collector_paused():  # before the schedule starts: its own collection is not timed
        started = time.perf_counter()
        await asyncio.gather(*(one(i, started) for i in range(requests)))
    seconds = time.perf_counter() - started
    drain = await drained(http, backlog)
    return Driven(requests, seconds, sorted(latencies), 0, drain)
