"""Benchmark of the agency services on loopback: each service runs as its own process
(uvicorn, as ``infoshare up`` runs it) with its outbox on SQLite, against a broker of the
benchmark's own; a load generator posts native requests from ``concurrency`` clients at
once. Reported side by side: accepted requests and events per second, p50/p99 latency,
and whether the outbox relay keeps up (the largest backlog seen, and how long the relay
took to empty it once the load stopped). Run by ``infoshare bench agencies``; a script
that measures and reports, never a test."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from deploy.bench.broker import bench_broker
from deploy.devstack.broker import BrokerNode
from deploy.devstack.demo import scenario
from deploy.devstack.stack import Stack, free_ports_config

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data"
Body = tuple[str, str, bytes]  # path, content type, body


@dataclass(frozen=True)
class Load:
    """One kind of request: the service it goes to, and the i-th request's body."""

    name: str
    service: str
    agency: str
    events_per_request: int
    body: Callable[[int], Body]


def _json(path: str, doc: Any, media: str = "application/json") -> Body:
    return path, media, orjson.dumps(doc)


def _plan(i: int) -> Body:
    return _json(
        "/child-protection-plans", scenario.plan_started(scenario.ON_PLAN, plan_id=f"CPP-B{i}")
    )


def _encounter(template: dict[str, Any]) -> Callable[[int], Body]:
    def body(i: int) -> Body:
        doc = copy.deepcopy(template)
        doc["id"] = f"ED-B{i}"
        return _json("/fhir/Encounter", doc, "application/fhir+json")

    return body


def _concern(template: dict[str, Any]) -> Callable[[int], Body]:
    def body(i: int) -> Body:
        doc = copy.deepcopy(template)
        doc["concern"]["id"] = f"CONCERN-B{i}"
        return _json("/safeguarding-concerns", doc)

    return body


def _upload(csv: bytes) -> Callable[[int], Body]:
    # The same export for a period ending a day later each time: new natural keys, new
    # events (the warm-up's negative numbers end before the term's first day + 40).
    def body(i: int) -> Body:
        end = date(2026, 9, 1) + timedelta(days=40 + i + 30)
        query = (
            f"?urn=999001&dsl_name=Alex%20Teacher&dsl_phone=01632%20960123"
            f"&period_start=2026-09-01&period_end={end.isoformat()}"
        )
        return "/attendance/upload" + query, "text/csv", csv

    return body


def loads() -> list[Load]:
    encounter = orjson.loads((SAMPLES / "health" / "encounter-emergency.json").read_bytes())
    concern = orjson.loads((SAMPLES / "education" / "safeguarding-concern.json").read_bytes())
    csv = (SAMPLES / "education" / "attendance.csv").read_bytes()
    return [
        Load("social care: plan started (JSON)", "socialcare", "la-northshire", 1, _plan),
        Load("health: FHIR Encounter", "health", "nhs-riverside-ed", 1, _encounter(encounter)),
        Load("education: DSL concern (JSON)", "education", "school-oakfield", 1, _concern(concern)),
        Load("education: attendance CSV upload", "education", "school-oakfield", 4, _upload(csv)),
    ]


@dataclass(frozen=True)
class Result:
    load: str
    requests: int
    events: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_backlog: int
    drain_s: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def _drive(url: str, token: str, load: Load, *, requests: int, concurrency: int) -> Result:
    latencies: list[float] = []
    backlog = [0]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60.0, headers=headers) as http:
        for i in range(20):  # warm up: connections, caches, the relay's producer
            await _post(http, load.body(-1 - i))
        await _drained(http)
        queue = iter(range(requests))

        async def client() -> None:
            for i in queue:
                started = time.perf_counter()
                await _post(http, load.body(i))
                latencies.append(time.perf_counter() - started)

        async def watch() -> None:
            while True:
                backlog[0] = max(backlog[0], await _pending(http))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        loaded = time.perf_counter()
        await _drained(http)
        drain = time.perf_counter() - loaded
    cuts = statistics.quantiles(latencies, n=100)
    return Result(
        load.name,
        requests,
        requests * load.events_per_request,
        seconds,
        cuts[49] * 1000,
        cuts[98] * 1000,
        backlog[0],
        drain,
    )


async def _post(http: httpx.AsyncClient, body: Body) -> None:
    path, media, content = body
    got = await http.post(path, content=content, headers={"content-type": media})
    if got.status_code != 202:
        raise RuntimeError(f"{path}: {got.status_code} {got.text[:200]}")


async def _pending(http: httpx.AsyncClient) -> int:
    pending: int = (await http.get("/healthz")).json()["outbox"]["pending"]
    return pending


async def _drained(http: httpx.AsyncClient, wait_s: float = 300.0) -> None:
    deadline = time.monotonic() + wait_s
    while await _pending(http) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the outbox relay did not catch up")
        await asyncio.sleep(0.02)


def run(
    cache_dir: Path,
    *,
    requests: int = 2000,
    concurrency: int = 16,
    say: Callable[[str], None] = print,
) -> list[Result]:
    """Start a broker, then each service alone on it; drive each load; stop everything."""
    with bench_broker(cache_dir, say) as (root, node):
        return [_one(load, root, cache_dir, node, requests, concurrency, say) for load in loads()]


def _one(
    load: Load,
    root: Path,
    cache_dir: Path,
    node: BrokerNode,
    requests: int,
    concurrency: int,
    say: Callable[[str], None],
) -> Result:
    state = root / load.name.split(":")[0].replace(" ", "-") / str(time.monotonic_ns())
    config = free_ports_config(
        state,
        cache_dir,
        bootstrap=node.bootstrap,
        admin=node.admin_access(),
        namespace=f"bench{time.monotonic_ns()}.",
        only=(load.service,),
    )
    stack = Stack(config)
    say(f"{load.name}: starting the {load.service} service")
    stack.start(say=lambda _m: None)
    try:
        token = (state / "agency-tokens" / f"{load.agency}.token").read_text().strip()
        result = asyncio.run(
            _drive(stack.url(load.service), token, load, requests=requests, concurrency=concurrency)
        )
    finally:
        stack.stop()
    say(
        f"{load.name}: {result.requests_per_s:.0f} requests/s, {result.events_per_s:.0f} "
        f"events/s, p99 {result.p99_ms:.0f} ms"
    )
    return result


def report(results: Sequence[Result], *, concurrency: int) -> str:
    base = results[0]
    lines = [
        "## Agency services (HTTP in, outbox, relay to Kafka)",
        "",
        f"`infoshare bench agencies --requests {base.requests} --concurrency {concurrency}` on "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs. Each service runs alone as its own uvicorn process with its outbox on SQLite, "
        "against a broker of the benchmark's own; the load generator (in the benchmark's "
        f"process, on the same machine) keeps {concurrency} requests in flight. A request is "
        "answered 202 once its events are committed to the outbox; the relay publishes them "
        "to Kafka meanwhile. *Backlog* is the most events seen waiting in the outbox during "
        "the load; *drain* is how long the relay took to publish what was left once the load "
        "stopped: near zero means it kept up.",
        "",
        "| load | requests/s | events/s | vs first | p50 ms | p99 ms | max backlog | drain s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.load} | {r.requests_per_s:.0f} | {r.events_per_s:.0f} | "
            f"{r.events_per_s / base.events_per_s:.2f}x | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.max_backlog} | {r.drain_s:.2f} |"
        )
    return "\n".join(lines) + "\n"
