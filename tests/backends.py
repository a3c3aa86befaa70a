"""The servers a test run shares: one Kafka broker, one Zipkin, one Jaeger, one PostgreSQL
cluster, all from the dev stack (deploy/devstack).

Run in one process, the session starts each the first time a test asks for it (conftest.py).
Run by pytest-xdist workers, the controller starts them and announces each in a directory
named by ``INFOSHARE_TEST_SHARED`` once it answers; every worker attaches to the announced
ones, so a run of N workers starts one broker rather than N. The broker is started as the
run begins (nearly every test needs it); Zipkin, Jaeger and PostgreSQL when a worker first asks for
them, so they do not compete with the workers' start for the CPU, and a run that needs
neither never starts them. The controller stops them when the run ends. Tests never share topics,
groups or databases: each takes a namespace and a database of its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deploy.devstack.broker import BrokerNode
from deploy.devstack.broker.node import ADMIN_USER, BrokerSecrets
from deploy.devstack.observe import JaegerServer, ZipkinServer
from deploy.devstack.paths import default_cache_dir
from deploy.devstack.ports import free_listen_port
from deploy.devstack.postgres import PostgresNode
from services.backbone.kafka_access import KafkaAccess

SHARED = "INFOSHARE_TEST_SHARED"
KINDS = ("kafka", "zipkin", "jaeger", "postgres")
ON_DEMAND = frozenset({"zipkin", "jaeger", "postgres"})


def start_kafka(state_dir: Path, settings: Mapping[str, str] | None = None) -> BrokerNode:
    """A secured broker, as the stack runs by default: tests connect as its administrator
    (kafka_access), and a test's own stack gives each of its components its own principal.
    ``settings``: broker properties over the template's."""
    port = free_listen_port(3)
    node = BrokerNode(
        state_dir=state_dir,
        cache_dir=default_cache_dir(),
        port=port,
        controller_port=port + 1,
        tls_port=port + 2,
        settings=settings,
    )
    node.start()
    return node


def kafka_facts(node: BrokerNode) -> dict[str, Any]:
    return {"bootstrap": node.bootstrap, "state_dir": str(node.state_dir)}


def kafka_admin_access(facts: dict[str, Any]) -> KafkaAccess:
    """The administrator's access to the broker these facts announce."""
    secrets = BrokerSecrets(Path(facts["state_dir"]))
    return secrets.access(facts["bootstrap"], ADMIN_USER, secrets.admin_password())


def start_zipkin(state_dir: Path) -> ZipkinServer:
    server = ZipkinServer(
        state_dir=state_dir, cache_dir=default_cache_dir(), port=free_listen_port()
    )
    return server.start()


def start_jaeger(state_dir: Path) -> JaegerServer:
    first = free_listen_port(3)
    server = JaegerServer(
        state_dir=state_dir,
        cache_dir=default_cache_dir(),
        otlp_port=first,
        query_port=first + 1,
        health_port=first + 2,
    )
    return server.start()


def jaeger_facts(server: JaegerServer) -> dict[str, Any]:
    return {
        "state_dir": str(server.state_dir),
        "otlp_port": server.otlp_port,
        "query_port": server.query_port,
        "health_port": server.health_port,
    }


def start_postgres(state_dir: Path) -> PostgresNode:
    """Clusters that killed runs left behind are stopped and deleted first, once pytest has
    removed those runs' temporary directories (it keeps the last few)."""
    PostgresNode.sweep_orphans()
    node = PostgresNode(state_dir=state_dir, port=free_listen_port())
    node.start()
    return node


class SharedBackends:
    """The controller's side: start every backend on a thread of its own, announce each as it
    answers (or why it could not start), stop them all at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ending = threading.Event()
        self._started: dict[str, Any] = {}
        self._threads = [
            threading.Thread(target=self._start, args=(kind,), name=f"start-{kind}", daemon=True)
            for kind in KINDS
        ]

    def begin(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for thread in self._threads:
            thread.start()

    def _start(self, kind: str) -> None:
        if kind in ON_DEMAND:
            wanted = _wanted(self.root, kind)
            while not wanted.exists():
                if self._ending.wait(0.1):
                    return
        state_dir = self.root / kind
        try:
            if kind == "kafka":
                node = start_kafka(state_dir)
                self._started[kind] = node
                facts: dict[str, Any] = kafka_facts(node)
            elif kind == "zipkin":
                server = start_zipkin(state_dir)
                self._started[kind] = server
                facts = {"state_dir": str(state_dir), "port": server.port}
            elif kind == "jaeger":
                jaeger = start_jaeger(state_dir)
                self._started[kind] = jaeger
                facts = jaeger_facts(jaeger)
            else:
                cluster = start_postgres(state_dir)
                self._started[kind] = cluster
                facts = {"state_dir": str(state_dir), "port": cluster.port}
        except Exception as exc:  # said to every worker that asks, as its error
            facts = {"error": f"{type(exc).__name__}: {exc}"}
        _announce(self.root / f"{kind}.json", facts)

    def end(self) -> None:
        self._ending.set()
        for thread in self._threads:
            thread.join(timeout=180)
        stops: dict[str, Callable[[], object]] = {
            "kafka": lambda: self._started["kafka"].stop(),
            "zipkin": lambda: self._started["zipkin"].stop(),
            "jaeger": lambda: self._started["jaeger"].stop(),
            "postgres": lambda: self._started["postgres"].destroy(),
        }
        for kind in KINDS:
            if kind in self._started:
                stops[kind]()


def _announce(path: Path, facts: dict[str, Any]) -> None:
    staging = path.with_suffix(".part")
    staging.write_text(json.dumps(facts))
    staging.replace(path)  # whole or not at all: a reader never sees half of it


def _wanted(root: Path, kind: str) -> Path:
    return root / f"{kind}.wanted"


def attach(root: Path, kind: str, *, wait_s: float = 300.0) -> dict[str, Any]:
    """A worker's side: ask for ``kind`` and wait for what the controller announces of it."""
    _wanted(root, kind).touch()
    path = root / f"{kind}.json"
    deadline = time.monotonic() + wait_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the shared {kind} was not announced within {wait_s:.0f}s")
        time.sleep(0.1)
    facts: dict[str, Any] = json.loads(path.read_text())
    if "error" in facts:
        raise RuntimeError(f"the shared {kind} did not start: {facts['error']}")
    return facts
