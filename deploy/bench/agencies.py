"""Benchmark of the agency services on loopback: each service runs as its own process
(uvicorn, as ``infoshare up`` runs it) with its outbox on SQLite, against a broker of the
benchmark's own; a load generator posts native requests from ``concurrency`` clients at
once. Reported side by side: accepted requests and events per second, p50/p99 latency,
and whether the outbox relay keeps up (the largest backlog seen, and how long the relay
took to empty it once the load stopped). Run by ``infoshare bench agencies``; a script
that measures and reports, never a test."""

from __future__ import annotations

import asyncio
import copy
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from deploy.bench import agency_bulk
from deploy.bench.agency_drive import Body, Driven, closed_loop, open_loop, post
from deploy.bench.broker import bench_broker
from deploy.bench.served import service_stack, wait_answering
from deploy.devstack.broker import BrokerNode
from deploy.devstack.demo import scenario
from deploy.devstack.ports import free_listen_port

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data"


@dataclass(frozen=True)
class Load:
    """One kind of request: the service it goes to, and the i-th request's body."""

    name: str
    service: str
    agency: str
    events_per_request: int
    body: Callable[[int], Body]
    bulk: bool = False  # a few large requests, BULK_CONCURRENCY at once; no latency run


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
        Load(
            f"bulk: attendance CSV of {BULK_ROWS:,} pupils",
            "education",
            "school-oakfield",
            BULK_ROWS,
            _bulk_upload,
            bulk=True,
        ),
        Load(
            f"bulk: FHIR batch Bundle of {BULK_ROWS:,} Encounters",
            "health",
            "nhs-riverside-ed",
            BULK_ROWS,
            _bulk_bundle,
            bulk=True,
        ),
    ]


BULK_ROWS = 2000
BULK_REQUESTS = 8
BULK_CONCURRENCY = 2


def _bulk_upload(i: int) -> Body:
    path, media, _ = _upload(b"")(0)
    return path, media, agency_bulk.attendance_export(BULK_ROWS, (i + 100) * BULK_ROWS)


def _bulk_bundle(i: int) -> Body:
    body = agency_bulk.encounter_bundle(BULK_ROWS, (i + 100) * BULK_ROWS)
    return "/fhir", "application/fhir+json", body


@dataclass(frozen=True)
class Result:
    load: str
    events_per_request: int
    most: Driven  # the closed loop: the most it accepts
    paced: Driven | None  # the open loop at PACED of that rate: its latency (not for bulk)

    @property
    def events_per_s(self) -> float:
        return self.most.requests_per_s * self.events_per_request


PACED = 0.5  # the latency run's rate, as a share of the closed loop's
WARM = 20  # requests sent first and not counted: connections, caches, the relay's producer
BARE_LOAD = "bare FastAPI insert (yardstick)"


async def _measure(
    url: str, token: str | None, load: Load, *, requests: int, concurrency: int, outbox: bool
) -> Result:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=max(64, concurrency))
    async with httpx.AsyncClient(
        base_url=url, timeout=60.0, headers=headers, limits=limits
    ) as http:
        backlog = _pending if outbox else _none
        for i in range(2 if load.bulk else WARM):
            await post(http, load.body(-1 - i))
        if load.bulk:
            most = await closed_loop(
                http,
                load.body,
                requests=BULK_REQUESTS,
                concurrency=BULK_CONCURRENCY,
                backlog=backlog,
            )
            return Result(load.name, load.events_per_request, most, None)
        most = await closed_loop(
            http, load.body, requests=requests, concurrency=concurrency, backlog=backlog
        )
        rate = most.requests_per_s * PACED
        paced = await open_loop(
            http,
            lambda i: load.body(requests + i),
            rate=rate,
            requests=max(requests // 2, int(rate * 5)),
            backlog=backlog,
        )
    return Result(load.name, load.events_per_request, most, paced)


async def _pending(http: httpx.AsyncClient) -> int:
    pending: int = (await http.get("/healthz")).json()["outbox"]["pending"]
    return pending


async def _none(_http: httpx.AsyncClient) -> int:
    return 0


def run(
    cache_dir: Path,
    *,
    requests: int = 2000,
    concurrency: int = 16,
    say: Callable[[str], None] = print,
) -> list[Result]:
    """Start a broker; measure the bare yardstick, then each service alone on the broker;
    stop everything."""
    with bench_broker(cache_dir, say) as (root, node):
        results = [_bare(root, requests, concurrency, say)]
        for load in loads():
            results.append(_one(load, root, cache_dir, node, requests, concurrency, say))
        return results


def _bare(root: Path, requests: int, concurrency: int, say: Callable[[str], None]) -> Result:
    say(f"{BARE_LOAD}: starting")
    port = free_listen_port()
    database = root / "bare" / "received.db"
    database.parent.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.bench.bare_agency", str(port), str(database)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url + "/healthz", process, "the bare yardstick")
        load = Load(BARE_LOAD, "", "", 1, lambda i: _as_bare(_plan(i)))
        result = asyncio.run(
            _measure(url, None, load, requests=requests, concurrency=concurrency, outbox=False)
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
    _said(result, say)
    return result


def _as_bare(body: Body) -> Body:
    _path, media, content = body
    return "/received", media, content


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
    stack = service_stack(state, cache_dir, node, load.service, namespace="bench")
    say(f"{load.name}: starting the {load.service} service")
    stack.start(say=lambda _m: None)
    try:
        token = (state / "agency-tokens" / f"{load.agency}.token").read_text().strip()
        result = asyncio.run(
            _measure(
                stack.url(load.service),
                token,
                load,
                requests=requests,
                concurrency=concurrency,
                outbox=True,
            )
        )
    finally:
        stack.stop()
    _said(result, say)
    return result


def _said(result: Result, say: Callable[[str], None]) -> None:
    paced = result.paced
    say(
        f"{result.load}: {result.most.requests_per_s:.1f} requests/s, "
        f"{result.events_per_s:.0f} events/s"
        + (f"; at {PACED:.0%} of that, p99 {paced.quantile_ms(0.99):.0f} ms" if paced else "")
    )


def report(results: Sequence[Result], *, concurrency: int) -> str:
    bare = results[0]
    requests = bare.most.requests
    lines = [
        "## Agency services (HTTP in, outbox, relay to Kafka)",
        "",
        f"`infoshare bench agencies --requests {requests} --concurrency {concurrency}` on "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs. Each service runs alone as its own uvicorn process with its outbox on SQLite, "
        "against a broker of the benchmark's own; the load generator (in the benchmark's "
        "process, on the same machine) keeps "
        f"{concurrency} requests in flight for the most a service accepts, then sends at "
        f"{PACED:.0%} of that rate on a fixed schedule for the latency (each request timed "
        "from when it was due). The yardstick, measured first in the same run, is a bare "
        "FastAPI endpoint served the same way that inserts the plan's JSON into SQLite with "
        "the outbox's durability (`deploy/bench/bare_agency.py`). A request is answered 202 "
        "once its events are committed to the outbox; the relay publishes them to Kafka "
        "meanwhile. *Backlog* is the most events seen waiting in the outbox during the "
        "closed loop; *drain* is how long the relay took to publish what was left once it "
        f"stopped. The bulk rows send {BULK_REQUESTS} requests of {BULK_ROWS:,} events each, "
        f"{BULK_CONCURRENCY} at once, every pupil and patient a different child "
        "(`deploy/bench/agency_bulk.py`); their latency is of a whole request.",
        "",
        "| load | requests/s | vs bare | events/s | p50 ms | p99 ms "
        f"| p99 ms at {PACED:.0%} | max backlog | drain s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        paced, versus = r.paced, r.most.requests_per_s / bare.most.requests_per_s
        lines.append(
            f"| {r.load} | {r.most.requests_per_s:.{1 if paced is None else 0}f} | "
            f"{'-' if paced is None else f'{versus:.2f}'} | {r.events_per_s:.0f} | "
            f"{r.most.quantile_ms(0.5):.1f} | {r.most.quantile_ms(0.99):.1f} | "
            f"{'-' if paced is None else f'{paced.quantile_ms(0.99):.1f}'} | "
            f"{r.most.max_backlog} | {max(r.most.drain_s, paced.drain_s if paced else 0):.2f} |"
        )
    return "\n".join(lines) + "\n"
