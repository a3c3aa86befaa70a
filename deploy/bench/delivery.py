"""Benchmark of the delivery service on a broker of its own: webhook push to a local
receiver, and the pull inbox read by a recipient with its own token, each beside a bare
httpx loop doing the same HTTP against the same receiver in the same run. Run by
``infoshare bench delivery``; a script that measures and reports, never a test.

The service runs as ``infoshare up`` runs it (its own uvicorn process, SQLite beside its
keys), with the documented development setting that lets webhooks reach loopback. The
receiver (delivery_receiver.py) is a process of its own too, so the sender, whether the
service or the bare loop, never shares a core's event loop with it."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from deploy.bench.broker import bench_broker
from deploy.bench.delivery_drive import cpu_s, pull, push_bare, sign_again, until
from deploy.bench.delivery_feed import ATTENDANCE, SITE_PATH, Feed, site
from deploy.bench.delivery_report import Inbox, Results, Webhook, quantile_ms
from deploy.bench.loadgen import collector_paused
from deploy.bench.served import service_stack, wait_answering
from deploy.devstack.ports import free_listen_port
from deploy.devstack.stack import Stack
from services.backbone.quiet import run_quietly
from services.backbone.topics import Topics

WEBHOOK_AGENCY, INBOX_AGENCY = "la-northshire", "ph-northshire"
WARM = 200  # deliveries through each path first, not counted
PACED = 0.5  # the latency run's rate, as a share of the measured throughput
PACED_S = 3.0
LOOPBACK = {"INFOSHARE_DELIVERY_WEBHOOK_ALLOW_HTTP_LOOPBACK": "true"}


@dataclass
class Bench:
    api: httpx.AsyncClient  # the delivery service
    receiver: httpx.AsyncClient
    tokens: dict[str, str]  # agency -> Authorization header
    topics: Topics
    feed: Feed
    pid: int  # the delivery service's process

    async def received(self) -> int:
        counts = (await self.receiver.get("/control/stats")).json()
        if counts["refused"]:
            raise RuntimeError(f"the receiver refused {counts['refused']} signatures")
        return int(counts["received"])

    async def subscribe(self, agency: str, **body: Any) -> dict[str, Any]:
        auth = {"Authorization": self.tokens[agency]}
        made = await self.api.post(f"/recipients/{agency}/subscriptions", headers=auth, json=body)
        if made.status_code != 201:
            raise RuntimeError(f"subscription refused: {made.status_code} {made.text[:200]}")
        answer: dict[str, Any] = made.json()
        return answer

    async def webhook(self, deliveries: int, subscriptions: int) -> Webhook:
        secrets = {}
        for i in range(subscriptions):
            filters = [{"path": SITE_PATH, "op": "eq", "value": site(i)}]
            made = await self.subscribe(
                WEBHOOK_AGENCY,
                event_types=[ATTENDANCE],
                channel="webhook",
                endpoint=f"{self.receiver.base_url}hook/s{i}",
                content="full",
                filters=filters,
            )
            secrets[f"s{i}"] = made["secret"]
        await self.receiver.post("/control/secrets", content=orjson.dumps(secrets))
        topic = self.topics.deliver(WEBHOOK_AGENCY)
        await self.feed.write(topic, self.feed.make(WARM))
        await until("webhook warm-up", self.received, WARM)
        await self.receiver.post("/control/reset")
        cpu = cpu_s(self.pid)
        await self.feed.write(topic, self.feed.make(deliveries))
        await until("webhook push", self.received, deliveries)
        cpu = cpu_s(self.pid) - cpu
        arrivals, bodies = await self._arrivals()
        if len({event_id for _, event_id in arrivals}) != deliveries:
            raise RuntimeError("the receiver got some deliveries twice, or others")
        seconds = arrivals[-1][0] - arrivals[0][0]
        await self.receiver.post("/control/reset")
        rate = deliveries / seconds * PACED
        with collector_paused():  # the generator's own pauses are not the service's latency
            committed = await self.feed.paced(topic, rate=rate, seconds=PACED_S)
        await until("paced webhook push", self.received, len(committed))
        paced, _ = await self._arrivals()
        latencies = sorted(t - committed[event_id] for t, event_id in paced)
        await self.receiver.post("/control/reset")
        bare = await self._bare_push(bodies, secrets, subscriptions)
        return Webhook(
            deliveries=deliveries,
            subscriptions=subscriptions,
            seconds=seconds,
            bare_seconds=bare,
            paced_rate=rate,
            p50_ms=quantile_ms(latencies, 0.5),
            p99_ms=quantile_ms(latencies, 0.99),
            cpu_s=cpu,
        )

    async def _arrivals(self) -> tuple[list[tuple[float, str]], list[tuple[str, str]]]:
        got = (await self.receiver.get("/control/arrivals")).json()
        return sorted((float(t), str(e)) for t, e in got["arrivals"]), got["bodies"]

    async def _bare_push(
        self, bodies: list[tuple[str, str]], secrets: dict[str, str], concurrency: int
    ) -> float:
        """The same bodies, signed afresh (outside the timing) with the same headers, by as
        many workers as subscriptions; seconds from the first received to the last."""
        per_hook = sign_again(bodies, secrets)
        assert len(per_hook) <= concurrency
        await push_bare(self.receiver, per_hook)
        arrivals, _ = await self._arrivals()
        return arrivals[-1][0] - arrivals[0][0]

    async def inbox(self, deliveries: int, page: int) -> Inbox:
        agency = INBOX_AGENCY
        auth = {"Authorization": self.tokens[agency]}
        sub = (
            await self.subscribe(agency, event_types=[ATTENDANCE], channel="inbox", content="full")
        )["id"]

        async def numbered() -> int:
            status = (await self.api.get(f"/subscriptions/{sub}/status", headers=auth)).json()
            return int(status["events_since_subscription_start"])

        get, ack = f"/subscriptions/{sub}/notifications", f"/subscriptions/{sub}/ack"
        topic = self.topics.deliver(agency)
        await self.feed.write(topic, self.feed.make(WARM))
        await until("inbox warm-up", numbered, WARM)
        await pull(self.api, get, ack, auth, page=page, items=WARM)
        started = time.perf_counter()
        await self.feed.write(topic, self.feed.make(deliveries))
        await until("inbox ingest", numbered, WARM + deliveries)
        ingest = time.perf_counter() - started
        started, cpu = time.perf_counter(), cpu_s(self.pid)
        pages, sample = await pull(self.api, get, ack, auth, page=page, items=deliveries)
        seconds, cpu = time.perf_counter() - started, cpu_s(self.pid) - cpu
        left, _ = await pull(self.api, get, ack, auth, page=page, items=1)
        if left:
            raise RuntimeError("the inbox was not drained")
        await self.receiver.put("/control/page", content=sample)
        started = time.perf_counter()
        await pull(self.receiver, "/inbox", "/ack", auth, page=page, items=deliveries)
        bare = time.perf_counter() - started
        return Inbox(deliveries, page, pages, ingest, seconds, bare, len(sample), cpu)


async def _measure(
    root: Path, stack: Stack, receiver: str, *, deliveries: int, subscriptions: int, page: int
) -> Results:
    pid = stack.running[0].process.pid
    tokens = {
        a: "Bearer " + (root / "agency-tokens" / f"{a}.token").read_text().strip()
        for a in (WEBHOOK_AGENCY, INBOX_AGENCY)
    }
    limits = httpx.Limits(max_connections=max(16, subscriptions))
    async with (
        httpx.AsyncClient(base_url=stack.url("delivery"), timeout=60.0) as api,
        httpx.AsyncClient(base_url=receiver, timeout=60.0, limits=limits) as rx,
        Feed(stack.kafka, sites=subscriptions) as feed,
    ):
        topics = Topics(namespace=stack.config.namespace)
        bench = Bench(api, rx, tokens, topics, feed, pid)
        webhook = await bench.webhook(deliveries, subscriptions)
        inbox = await bench.inbox(deliveries, page)
    return Results(webhook, inbox)


def run(
    cache_dir: Path,
    *,
    deliveries: int = 20000,
    subscriptions: int = 4,
    page: int = 1000,
    say: Callable[[str], None] = print,
    py_spy: Path | None = None,
    answer_ms: float = 0.0,
) -> Results:
    """Start a broker, the delivery service and the receiver; measure; stop them all.
    With ``py_spy``, the service's process is sampled by py-spy throughout, into that file
    (a flame graph if it ends in .svg, speedscope if .json, collapsed stacks otherwise).
    ``answer_ms``: the receiver answers each webhook after that long, as a remote endpoint
    would (for the bare loop too)."""
    with bench_broker(cache_dir, say) as (root, node):
        state = root / "stack"
        stack = service_stack(
            state, cache_dir, node, "delivery", namespace="benchdelivery", extra_env=LOOPBACK
        )
        say("starting the delivery service and the receiver")
        stack.start(say=lambda _m: None)
        port = free_listen_port()
        receiver = subprocess.Popen(
            [sys.executable, "-m", "deploy.bench.delivery_receiver", str(port), str(answer_ms)]
        )
        try:
            wait_answering(
                f"http://127.0.0.1:{port}/control/stats", receiver, "the webhook receiver"
            )
            say(f"{deliveries} deliveries pushed to {subscriptions} webhooks, then pulled")
            pid = stack.running[0].process.pid
            with _sampled(pid, py_spy) if py_spy is not None else contextlib.nullcontext():
                results = run_quietly(
                    _measure(
                        state,
                        stack,
                        f"http://127.0.0.1:{port}/",
                        deliveries=deliveries,
                        subscriptions=subscriptions,
                        page=page,
                    )
                )
                return dataclasses.replace(results, answer_ms=answer_ms)
        finally:
            receiver.terminate()
            receiver.wait(timeout=15)
            stack.stop()


@contextlib.contextmanager
def _sampled(pid: int, into: Path) -> Iterator[None]:
    """py-spy recording ``pid`` (not pausing it) for as long as the block runs."""
    kind = {".svg": "flamegraph", ".json": "speedscope"}.get(into.suffix, "raw")
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--rate", "200", "--nonblocking"]
    recorder = subprocess.Popen([*command, "--format", kind, "--output", str(into)])
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on an interrupt
        recorder.wait(timeout=60)
