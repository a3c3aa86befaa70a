"""Fixtures shared by every test layer. The real Kafka broker and PostgreSQL cluster are
started once per session (unless INFOSHARE_TEST_KAFKA_BOOTSTRAP names a broker) and each
test gets its own namespace of uuid-named topics and its own database, so no two tests
share state."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from deploy.devstack.observe import PrometheusServer, ZipkinServer
from deploy.devstack.postgres import PostgresNode
from services.backbone.directory import Directory, load_directory
from services.backbone.keyring import Keyring, generate_keyring, load_keyring


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("INFOSHARE_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    from deploy.devstack.broker import BrokerNode
    from deploy.devstack.paths import default_cache_dir
    from deploy.devstack.ports import free_listen_port

    port = free_listen_port(2)
    node = BrokerNode(
        state_dir=tmp_path_factory.mktemp("kafka"),
        cache_dir=default_cache_dir(),
        port=port,
        controller_port=port + 1,
    )
    node.start()
    try:
        yield node.bootstrap
    finally:
        node.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresNode]:
    """A PostgreSQL cluster of the session's own (Debian's server, installed if missing);
    each test makes a database of its own on it (``database_url``). Clusters that killed
    runs left behind are stopped and deleted first, once pytest has removed those runs'
    temporary directories (it keeps the last few)."""
    from deploy.devstack.ports import free_listen_port

    PostgresNode.sweep_orphans()
    node = PostgresNode(state_dir=tmp_path_factory.mktemp("pg"), port=free_listen_port())
    node.start()
    try:
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="session")
def zipkin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZipkinServer]:
    """Zipkin's server of the session's own (the pinned jar, fetched if missing), spans in
    memory; each test reads back only the traces it made (trace ids are random)."""
    from deploy.devstack.paths import default_cache_dir
    from deploy.devstack.ports import free_listen_port

    server = ZipkinServer(
        state_dir=tmp_path_factory.mktemp("zipkin"),
        cache_dir=default_cache_dir(),
        port=free_listen_port(),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


PrometheusFactory = Callable[[Mapping[str, Sequence[str]]], PrometheusServer]


@pytest.fixture(scope="session")
def prometheus_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFactory]:
    """Starts a Prometheus (Debian's, installed if missing) scraping the given jobs'
    ``host:port`` targets every second, on a free port: one per test, as each test scrapes
    its own services. A test stops its own (``with factory(...) as prometheus:``); any
    left running stop with the session."""
    from deploy.devstack.observe.install import ensure_prometheus
    from deploy.devstack.ports import free_listen_port

    ensure_prometheus()
    started: list[PrometheusServer] = []

    def start(scrape: Mapping[str, Sequence[str]]) -> PrometheusServer:
        server = PrometheusServer(
            state_dir=tmp_path_factory.mktemp("prometheus"), port=free_listen_port(), scrape=scrape
        )
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for this test, once on each backend: contract tests take it
    and so run the same assertions on SQLite and PostgreSQL. The PostgreSQL one is dropped
    afterwards, so a session does not pile databases up."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    node: PostgresNode = request.getfixturevalue("postgres")
    name = f"t{uuid.uuid4().hex[:12]}"
    yield node.ensure_database(name)
    node.drop_database(name)


@pytest.fixture
def namespace() -> str:
    """A topic-name prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def directory() -> Directory:
    return load_directory(None)


@pytest.fixture(scope="session")
def keyring_path(tmp_path_factory: pytest.TempPathFactory, directory: Directory) -> Path:
    return generate_keyring(
        tmp_path_factory.mktemp("keys") / "keyring.yaml", [a.id for a in directory]
    )


@pytest.fixture(scope="session")
def keyring(keyring_path: Path) -> Keyring:
    return load_keyring(keyring_path)
