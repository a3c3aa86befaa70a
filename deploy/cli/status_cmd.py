"""``infoshare status``: one screen on a running stack, from what answers now.

Every component is asked afresh (``GET /healthz``; the processor's ``GET /metrics`` and its
consumer group), Kafka for lag and dead letters. Nothing is cached: a component that does
not answer is down. Exit status 0 when Kafka and every component are up, 3 otherwise.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Annotated

import httpx
import orjson
import typer
from pydantic import Field, ValidationError
from rich.console import Console
from rich.markup import escape

from consent.processor.settings import ProcessorSettings
from deploy.cli.status_view import render
from services.backbone.directory import Directory
from services.backbone.errors import ConfigurationError
from services.backbone.quiet import run_quietly
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
NOT_HEALTHY, BAD_INPUT = 3, 2
err = Console(stderr=True, highlight=False)


class StatusSettings(ProcessorSettings):
    # As AuditSettings.audit_group (services/audit/app.py), which is not imported: it would
    # load the whole audit service, seconds of a command meant to answer at once.
    audit_group: str = Field("infoshare-audit", description="the audit service's group id")


@dataclass(frozen=True)
class Where:
    """Where the stack runs: Kafka, the topic namespace and each component's base URL."""

    bootstrap: str
    topics: Topics
    urls: dict[str, str]
    directory: Directory
    processor_group: str
    audit_group: str
    metrics_token: str | None = None  # INFOSHARE_METRICS_TOKEN: the processor's /metrics


def component_urls(host: str, base_port: int, given: dict[str, str]) -> dict[str, str]:
    """Each component's base URL as ``infoshare up --base-port`` places it (main._stack),
    unless ``given`` names one."""

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
            where.processor_group,
            tuple(topics.source(a.id) for a in directory.publishers),
        ),
        Reader("audit", where.audit_group, (topics.audit,)),
        Reader(
            "delivery",
            "its own store (no group)",
            tuple(topics.deliver(a.id) for a in directory),
            kafka_group=False,
            stored=reader_offsets(probes["delivery"]),
        ),
    ]
    dlq = [s.name for s in topics.all_specs(directory) if s.name.startswith(topics.dlq(""))]
    found = await gather_kafka(where.bootstrap, readers, dlq, timeout_s=KAFKA_TIMEOUT_S)
    members = next((g.members for g in found.groups if g.reader == "processor"), None)
    components = tuple(
        judge_processor(probes[name], group=where.processor_group, members=members)
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


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=BAD_INPUT)


def _where(
    bootstrap: str | None, kafka_port: int, namespace: str | None, urls: dict[str, str]
) -> Where:
    try:
        settings = StatusSettings()
    except ValidationError as exc:  # which setting and rule, never the value given
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _fail(f"INFOSHARE_* settings: {problems}") from None
    try:
        directory = settings.directory()
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    if bootstrap is None:
        given = "kafka_bootstrap" in settings.model_fields_set
        bootstrap = settings.kafka_bootstrap if given else f"127.0.0.1:{kafka_port}"
    prefix = settings.topic_namespace if namespace is None else namespace
    return Where(
        bootstrap=bootstrap,
        topics=Topics(namespace=prefix),
        urls=urls,
        directory=directory,
        processor_group=prefix + settings.processor_group,
        audit_group=prefix + settings.audit_group,
        metrics_token=settings.scrape_token(),
    )


def _named_urls(pairs: list[str]) -> dict[str, str]:
    names = {c.name for c in COMPONENTS}
    found = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or name not in names or not url.startswith(("http://", "https://")):
            raise _fail(f"--url wants NAME=http(s)://HOST:PORT with NAME one of {', '.join(names)}")
        found[name] = url
    return found


def status(
    bootstrap: Annotated[
        str | None,
        typer.Option(
            help="Kafka bootstrap (default: INFOSHARE_KAFKA_BOOTSTRAP, else 127.0.0.1:KAFKA_PORT)"
        ),
    ] = None,
    kafka_port: Annotated[int, typer.Option(help="Kafka's port, as given to infoshare up")] = 9092,
    namespace: Annotated[
        str | None,
        typer.Option(help="topic and group prefix (default: INFOSHARE_TOPIC_NAMESPACE, else none)"),
    ] = None,
    host: Annotated[str, typer.Option(help="where the components listen")] = "127.0.0.1",
    base_port: Annotated[
        int, typer.Option(help="HTTP ports as infoshare up --base-port places them")
    ] = 8100,
    url: Annotated[
        list[str] | None,
        typer.Option(help="a component elsewhere: NAME=URL (repeatable), e.g. audit=http://h:8120"),
    ] = None,
    partitions: Annotated[bool, typer.Option("--partitions", help="lag per partition")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for machines")] = False,
) -> None:
    """Each component's health, Kafka, consumer lag, dead letters, webhook circuits and the
    last audit checkpoint, from what answers now. Exit 0 if Kafka and every component are
    up, 3 if anything is down or degraded."""
    urls = component_urls(host, base_port, _named_urls(url or []))
    report = run_quietly(gather(_where(bootstrap, kafka_port, namespace, urls)))
    if as_json:
        typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        wide = sys.stdout.isatty() or os.environ.get("COLUMNS")  # else a pipe: rich assumes 80
        out = Console(highlight=False, width=None if wide else 160)
        for part in render(report, partitions=partitions):
            out.print(part)
    if not report.healthy:
        raise typer.Exit(code=NOT_HEALTHY)
