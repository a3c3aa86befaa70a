"""Starting a whole stack for a test module (see conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from deploy.devstack.observe import JaegerServer, ZipkinServer
from deploy.devstack.paths import default_cache_dir
from deploy.devstack.stack import Stack, free_ports_config
from services.backbone.kafka_access import KafkaAccess
from services.ops import kafka_admin
from services.ops.kafka_acls import Principals


def tracing_to(zipkin: ZipkinServer, jaeger: JaegerServer | None = None) -> dict[str, str]:
    """The environment that sends a component's spans to ``zipkin`` (and over OTLP to
    ``jaeger``) without delay."""
    otlp = {} if jaeger is None else {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": jaeger.otlp_url}
    return {
        "OTEL_TRACES_EXPORTER": "zipkin" if jaeger is None else "zipkin,otlp",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": zipkin.spans_url,
        **otlp,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",  # each test follows its own event
    }


@contextlib.contextmanager
def running_stack(
    kafka_access: KafkaAccess,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    postgres: bool = False,
    zipkin: ZipkinServer | None = None,
    jaeger: JaegerServer | None = None,
) -> Iterator[Stack]:
    """Every component on free ports and topics of its own; with ``postgres``, the audit
    trail in a PostgreSQL cluster the stack starts (and this removes) instead of SQLite;
    with ``zipkin``, every component's spans sent there (and to ``jaeger`` too)."""
    traces = {} if zipkin is None else tracing_to(zipkin, jaeger)
    config = free_ports_config(
        tmp_path_factory.mktemp("stack"),
        default_cache_dir(),
        bootstrap=kafka_access.bootstrap,
        admin=kafka_access,
        namespace=f"e{uuid.uuid4().hex[:10]}.",
        postgres=postgres,
        extra_env=traces,
    )
    running = Stack(config)
    try:
        running.start(say=lambda _m: None)
        yield running
    finally:
        running.stop()
        if running.postgres is not None:
            running.postgres.destroy()
    # Its principals left the shared broker with it.
    ours = Principals(config.namespace)
    assert not [p for p in kafka_admin.known_principals(kafka_access) if ours.owns(p)]
