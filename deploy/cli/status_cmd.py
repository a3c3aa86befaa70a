"""``infoshare status``: one screen on a running stack, from what answers now (the asking is
services/ops/status.py). Exit status 0 when Kafka and every component are up, 3 otherwise."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from pydantic import ValidationError

from consent.processor.settings import ProcessorSettings
from deploy.cli.status_view import render
from deploy.cli.terminal import fail, kafka_access, wide_out
from services.backbone.errors import ConfigurationError
from services.backbone.quiet import run_quietly
from services.backbone.topics import Topics
from services.ops.components import COMPONENTS
from services.ops.status import Where, component_urls, gather

NOT_HEALTHY, BAD_INPUT = 3, 2


def _fail(message: str) -> typer.Exit:
    return fail(message, BAD_INPUT)


def _where(
    bootstrap: str | None, kafka_port: int, namespace: str | None, urls: dict[str, str]
) -> Where:
    try:
        settings = ProcessorSettings()
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
        access=kafka_access(settings, bootstrap),
        topics=Topics(namespace=prefix),
        urls=urls,
        directory=directory,
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
        out = wide_out()
        for part in render(report, partitions=partitions):
            out.print(part)
    if not report.healthy:
        raise typer.Exit(code=NOT_HEALTHY)
