"""Fixtures shared by every test layer. The real Kafka broker, Zipkin and PostgreSQL
cluster are started once per run (unless INFOSHARE_TEST_KAFKA_BOOTSTRAP names a broker):
by the session, the first time a test asks, or, when pytest-xdist runs the suite on several
workers, by the controller for all of them (tests/backends.py). Each test gets its own
namespace of uuid-named topics and its own database, so no two tests share state."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from deploy.devstack.observe import JaegerServer, PrometheusServer, ZipkinServer
from deploy.devstack.observe.jaeger import BUILD_MINUTES, built, find_go
from deploy.devstack.paths import default_cache_dir
from deploy.devstack.postgres import PostgresNode
from services.backbone.directory import Directory, load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring, generate_keyring, load_keyring
from services.backbone.settings import BackboneSettings
from tests import backends, fixed_clock, stopping
from tests.people import People

ROOT = Path(__file__).resolve().parents[1]
_SHARED = pytest.StashKey[backends.SharedBackends]()


def _shared_root() -> Path | None:
    root = os.environ.get(backends.SHARED)
    return Path(root) if root else None


def _needs_backends(config: pytest.Config) -> bool:
    """Whether a parallel run may need the shared servers: not when it runs unit tests only."""
    unit = ROOT / "tests" / "unit"
    paths = [Path(a.split("::")[0]).resolve() for a in config.args]
    return not paths or not all(p.is_relative_to(unit) for p in paths)


def pytest_configure(config: pytest.Config) -> None:
    # Properties are about what a function returns, never how fast: on a loaded two-core
    # machine one example can take past Hypothesis's 200 ms deadline, a failure that says
    # nothing about the code (speed is measured by the benchmarks).
    from hypothesis import settings

    settings.register_profile("infoshare", deadline=None)
    settings.load_profile("infoshare")
    # Protocols are judged on a fixed day, here and in every process a test starts.
    fixed_clock.fix_here_and_in_children()
    config.pluginmanager.register(stopping, "infoshare-stopping")
    if hasattr(config, "workerinput"):
        # pytest-xdist's workers are started with COLUMNS=80 and LINES=24 (execnet's
        # default terminal): a test must see the environment a serial run gives it, where
        # the commands' wide tables are as wide as a pipe gets (160 columns).
        for variable in ("COLUMNS", "LINES"):
            os.environ.pop(variable, None)
    elif config.getoption("numprocesses", None):
        # The controller of a parallel run, before it starts the workers.
        from tests import scheduling

        config.pluginmanager.register(scheduling, "infoshare-scheduling")
        if not os.environ.get("INFOSHARE_TEST_KAFKA_BOOTSTRAP") and _needs_backends(config):
            root = Path(tempfile.mkdtemp(prefix="infoshare-shared-"))
            shared = backends.SharedBackends(root)
            shared.begin()
            os.environ[backends.SHARED] = str(root)  # the workers inherit it
            config.stash[_SHARED] = shared


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (in the order found, as is everything else): run on several
    workers, the rest of the suite then runs beside them instead of after them."""
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED, None)
    if shared is not None:
        shared.end()
        shutil.rmtree(shared.root, ignore_errors=True)
        os.environ.pop(backends.SHARED, None)


@pytest.fixture(scope="session")
def kafka_access(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaAccess]:
    """The administrator's access to the run's secured broker. Its security settings are
    also put in the environment, so that a settings object a test builds, and a command it
    runs, connect as the administrator too (a stack gives its components their own)."""
    given = os.environ.get("INFOSHARE_TEST_KAFKA_BOOTSTRAP")
    shared = _shared_root()
    node = None
    if given:  # the environment says as whom
        access = BackboneSettings(kafka_bootstrap=given).kafka_access()
    elif shared:
        access = backends.kafka_admin_access(backends.attach(shared, "kafka"))
    else:
        node = backends.start_kafka(tmp_path_factory.mktemp("kafka"))
        access = node.admin_access()
    settings = access.as_env()
    settings.pop("INFOSHARE_KAFKA_BOOTSTRAP")
    os.environ.update(settings)
    try:
        yield access
    finally:
        if node is not None:
            node.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_access: KafkaAccess) -> str:
    return kafka_access.bootstrap


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresNode]:
    """A PostgreSQL cluster of the run's own (Debian's server, installed if missing); each
    test makes a database of its own on it (``database_url``)."""
    shared = _shared_root()
    if shared:
        facts = backends.attach(shared, "postgres")
        yield PostgresNode(state_dir=Path(facts["state_dir"]), port=facts["port"])
        return
    node = backends.start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="session")
def zipkin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZipkinServer]:
    """Zipkin's server of the run's own (the pinned jar, fetched if missing), spans in
    memory; each test reads back only the traces it made (trace ids are random)."""
    shared = _shared_root()
    if shared:
        facts = backends.attach(shared, "zipkin")
        yield ZipkinServer(
            state_dir=Path(facts["state_dir"]), cache_dir=default_cache_dir(), port=facts["port"]
        )
        return
    server = backends.start_zipkin(tmp_path_factory.mktemp("zipkin"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerServer | None]:
    """Jaeger of the run's own (built from the Go module proxy if missing), traces in
    memory, spans in over OTLP; each test reads back only the traces it made. None where Go
    is missing, so Jaeger cannot be built: `make test` builds it first wherever Go is."""
    if built(default_cache_dir()) is None and find_go() is None:
        yield None
        return
    shared = _shared_root()
    if shared:
        facts = backends.attach(shared, "jaeger", wait_s=2 * BUILD_MINUTES * 60 + 120)
        yield JaegerServer(
            state_dir=Path(facts["state_dir"]),
            cache_dir=default_cache_dir(),
            otlp_port=facts["otlp_port"],
            query_port=facts["query_port"],
            health_port=facts["health_port"],
        )
        return
    server = backends.start_jaeger(tmp_path_factory.mktemp("jaeger"))
    try:
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
    yield from _new_database(request, tmp_path / "test.db", postgres=request.param != "sqlite")


@pytest.fixture
def second_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[str]:
    """Another new database on ``database_url``'s backend, for a test that copies between
    two."""
    postgres = not database_url.startswith("sqlite")
    yield from _new_database(request, tmp_path / "second.db", postgres=postgres)


def _new_database(request: pytest.FixtureRequest, path: Path, *, postgres: bool) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{path}"
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


@pytest.fixture(scope="session")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[People]:
    """This worker's identity provider, serving its JWKS, with the starter people
    (practitioner asha.patel, IG officer sam.okafor). INFOSHARE_OIDC_ISSUER names it, so
    the services a test builds verify people's tokens there."""
    from deploy.devstack.identity.serve import identity_provider

    with identity_provider(tmp_path_factory.mktemp("identity")) as provider:
        previous = os.environ.get("INFOSHARE_OIDC_ISSUER")
        os.environ["INFOSHARE_OIDC_ISSUER"] = provider.issuer
        try:
            yield People(provider.issuer, provider)
        finally:
            if previous is None:
                os.environ.pop("INFOSHARE_OIDC_ISSUER", None)
            else:
                os.environ["INFOSHARE_OIDC_ISSUER"] = previous
