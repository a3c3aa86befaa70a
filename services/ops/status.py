"""What ``infoshare status`` asks a running stack, from what answers now: every component
afresh (``GET /healthz``; the processor's ``GET /metrics`` and its consumer group) and
Kafka for lag and dead letters. Nothing is cached: a component that does not answer is
down. Judging what was heard is status_judge.py; measuring Kafka, status_kafka.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import orjson

from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from services.ops.components import COMPONENTS, Component
from services.ops.status_judge import (
    audit_from,
    circuits_from,
    judge_http,
    judge_processor,
    reader_offsets,
)
from services.ops.status_kafka import Reader, gather_kafka
from services.ops.status_model import Probe, Report

HTTP_TIMEOUT_S = 1.5  # per request; all are asked at once
KAFKA_TIMEOUT_S = 4.0


@dataclass(frozen=True)
class Where:
    """Where the stack runs: Kafka, the topic namespace and each component's base URL."""

    access: KafkaAccess
    topics: Topics
    urls: dict[str, str]
    directory: Directory
    metrics_token: str | None = None  # INFOSHARE_METRICS_TOKEN: the processor's /metrics


def component_urls(host: str, base_port: int, given: dict[str, str]) -> dict[str, str]:
    """Each component's base URL as ``infoshare up --base-port`` places it, unless ``given``
    names one."""

    def port(c: Component) -> int:
        assert c.port is not None  # every component listens (the processor for /metrics)
        return base_port + c.port % 100

    return {c.name: given.get(c.name) or f"http://{host}:{port(c)}" for c in COMPONENTS}


async def probe(client: httpx.AsyncClient, url: str) -> Probe:
    """One GET: the answer, or in a few words why there was none."""
    try:
        answer = await client.get(url)
    except httpx.ConnectError:
        return Probe(url, error="cannot connect")
    except httpx.TimeoutException:
        return Probe(url, error=f"no answer within {HTTP_TIMEOUT_S:g}s")
    except httpx.HTTPError as exc:
        return Probe(url, error=type(exc).__name__)
    try:
        body = orjson.loads(answer.content) if url.endswith("/healthz") else None
    except orjson.JSONDecodeError:
        body = None
    return Probe(url, answer.status_code, body if isinstance(body, dict) else None)


async def gather(where: Where) -> Report:
    """Ask every component and Kafka; the whole takes a few seconds at most."""
    paths = {c.name: "/metrics" if c.name == "processor" else "/healthz" for c in COMPONENTS}
    scrape = {"Authorization": f"Bearer {where.metrics_token}"} if where.metrics_token else {}
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, headers=scrape) as client:
        answers = await asyncio.gather(
            *(probe(client, where.urls[c.name].rstrip("/") + paths[c.name]) for c in COMPONENTS)
        )
    probes = dict(zip(paths, answers, strict=True))
    topics, directory = where.topics, where.directory
    readers = [
        Reader(
            "processor",
            where.topics.processor_group,
            tuple(topics.source(a.id) for a in directory.publishers),
        ),
        Reader("audit", where.topics.audit_group, (topics.audit, topics.audit_activity)),
        Reader(
            "delivery",
            "its own store (no group)",
            tuple(topics.deliver(a.id) for a in directory),
            kafka_group=False,
            stored=reader_offsets(probes["delivery"]),
        ),
    ]
    dlq = [s.name for s in topics.all_specs(directory) if s.name.startswith(topics.dlq(""))]
    found = await gather_kafka(where.access, readers, dlq, timeout_s=KAFKA_TIMEOUT_S)
    members = next((g.members for g in found.groups if g.reader == "processor"), None)
    components = tuple(
        judge_processor(probes[name], group=where.topics.processor_group, members=members)
        if name == "processor"
        else judge_http(name, probes[name])
        for name in paths
    )
    notes = (
        () if found.status.reachable else ("Kafka did not answer: lag and dead letters unknown",)
    )
    return Report(
        kafka=found.status,
        components=components,
        groups=found.groups,
        dead_letters=found.dead_letters,
        circuits=circuits_from(probes["delivery"]),
        audit=audit_from(probes["audit"]),
        notes=notes,
    )
