"""Run the whole system on one machine: Kafka (unless one is given), keys, topics and every
component as its own process. Used by ``infoshare up``, ``infoshare demo`` and the e2e tests.

Everything the stack starts, it stops, in reverse order, also on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from deploy.devstack.broker import BrokerCluster, BrokerNode
from deploy.devstack.identity.provider import (
    CONSOLE_CLIENT,
    IG_OFFICER,
    ensure_provider,
    starter_logins,
)
from deploy.devstack.identity.serve import launch
from deploy.devstack.identity.serve import stop as stop_identity
from deploy.devstack.ports import free_listen_port
from deploy.devstack.postgres import PostgresNode, databases
from deploy.devstack.principals import StackPrincipals
from deploy.devstack.stack_observe import Observers
from services.backbone.directory import load_directory
from services.backbone.errors import BackboneError, ConfigurationError
from services.backbone.kafka_access import ENV_NAMES, KafkaAccess
from services.backbone.key_roles import Role
from services.backbone.key_split import split_keyring
from services.backbone.keyring import generate_keyring
from services.backbone.private_files import open_private, private_dir
from services.backbone.settings import BackboneSettings
from services.backbone.topics import Topics
from services.ops import kafka_admin
from services.ops.components import COMPONENTS, Component

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A component did not start; the message names it and its log file."""


@dataclass
class StackConfig:
    state_dir: Path
    cache_dir: Path
    bootstrap: str | None = None  # None: run our own broker
    # With ``bootstrap``: an administrator of those brokers, who creates the topics and (on
    # a secured cluster) the stack's principals and ACLs. None: the environment's settings.
    admin: KafkaAccess | None = None
    namespace: str = ""
    kafka_port: int = 9092
    controller_port: int = 9093
    tls_port: int = 9094
    # Our own broker without TLS, SASL or ACLs: for debugging only (loopback).
    plaintext: bool = False
    # Our own Kafka as a cluster of this many brokers (ports from kafka_port, three each),
    # topics replicated min(3, brokers) times; 1: a single node.
    brokers: int = 1
    ports: dict[str, int] = field(default_factory=dict)  # component -> port; else its default
    extra_env: dict[str, str] = field(default_factory=dict)
    # The audit store on the project's own PostgreSQL (started, stopped with the stack)
    # instead of SQLite; None: SQLite.
    postgres_port: int | None = None
    # Only these components (benchmarks of one service); None: every component.
    only: tuple[str, ...] | None = None
    # Zipkin and Prometheus beside it (ports "zipkin" and "prometheus" in ``ports``).
    observe: bool = False
    # On stop, remove the namespace's principals (logins and ACLs) from brokers that run on:
    # for stacks of a namespace of their own (a demo's, a test's) on a shared broker.
    retire_principals: bool = False


@dataclass
class Running:
    component: Component
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    crashes: int = 0  # consecutive quick exits, for back-off


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.broker: BrokerNode | BrokerCluster | None = None
        self.started_broker = False
        self.postgres: PostgresNode | None = None
        self.started_postgres = False
        self.audit_database_url = f"sqlite:///{config.state_dir / 'audit.db'}"
        self.audit_owner_url = self.audit_database_url  # who may change its schema
        # Each component's database settings (with --postgres); SQLite beside the keyring
        # for the others otherwise.
        self.databases = databases.StackDatabases(
            env={"audit": {databases.AUDIT_URL: self.audit_database_url}}
        )
        self.running: list[Running] = []
        self.bootstrap = config.bootstrap or f"127.0.0.1:{config.kafka_port}"
        self.admin: KafkaAccess | None = config.admin
        self.principals = StackPrincipals(config.state_dir / "kafka-clients", config.namespace)
        self.keyring = config.state_dir / "keyring.yaml"  # the operator's: every key
        self.role_keys: dict[str, Path] = {}  # each role's part (key_split.py)
        self.identity: subprocess.Popen[bytes] | None = None  # the embedded identity provider
        self.identity_issuer = f"http://127.0.0.1:{config.ports.get('identity', 8160)}"
        self.observers = (
            Observers(state_dir=config.state_dir, cache_dir=config.cache_dir, ports=config.ports)
            if config.observe
            else None
        )

    @property
    def kafka(self) -> KafkaAccess:
        """The administrator's access to the stack's Kafka (once started)."""
        if self.admin is None:
            raise StackError("the stack has not started Kafka")
        return self.admin

    def port(self, component: Component) -> int:
        assert component.port is not None
        return self.config.ports.get(component.name, component.port)

    def url(self, name: str) -> str:
        for r in self.running:
            if r.component.name == name and r.component.port is not None:
                return f"http://127.0.0.1:{self.port(r.component)}"
        raise KeyError(name)

    def _env(self, component: Component) -> dict[str, str]:
        # Never the caller's Kafka principal (an administrator, often): each its own.
        env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        env.pop("INFOSHARE_KEYRING_YAML", None)  # the operator's keys: never a component's
        assert self.admin is not None
        if self.admin.protocol == "PLAINTEXT":
            env.update(self.admin.as_env())
        else:
            env.update(self.principals.env(self.admin, self.principals.of(component)))
        env.update(
            {
                "INFOSHARE_TOPIC_NAMESPACE": self.config.namespace,
                "INFOSHARE_TOPIC_REPLICATION": str(self.replication),
                # Its role's keys only, never the whole keyring (key_roles.py).
                "INFOSHARE_KEYRING_FILE": str(self.role_keys[self._role_name(component)]),
            }
        )
        # A component's own stores only, never an operator's setting that names another's.
        for name in databases.DATABASE_SETTINGS:
            env.pop(name, None)
        env.update(self.databases.of(self._role_name(component)))
        if component.name == "audit":  # the audit store is the audit service's alone
            # Outside the database, so that rewriting the database cannot rewrite them.
            env["INFOSHARE_AUDIT_CHECKPOINT_FILE"] = str(
                self.config.state_dir / "audit-checkpoints.jsonl"
            )
            # The IG console signs officers in at the embedded identity provider.
            env["INFOSHARE_AUDIT_CONSOLE_CLIENT_ID"] = CONSOLE_CLIENT
        if component.port is not None:
            env["INFOSHARE_PORT"] = str(self.port(component))
        if component.agency_id:
            env["INFOSHARE_AGENCY_ID"] = component.agency_id
        if self.observers is not None:
            env.update(self.observers.component_env())
        env["INFOSHARE_OIDC_ISSUER"] = self.identity_issuer  # people sign in there
        env.update(self.config.extra_env)
        return env

    def start(self, *, say: object = print, timeout: float = 60.0) -> None:
        """Start everything; on any failure stop what was started and raise StackError."""
        announce = say if callable(say) else print
        state = self.config.state_dir
        # Keys, databases, the audit trail and logs: the owner's alone (0700, files 0600).
        private_dir(state / "logs")
        try:
            if self.observers is not None:
                self.observers.begin_zipkin()
            if self.config.bootstrap is None:
                self._start_kafka(announce)
            elif self.admin is None:
                self.admin = BackboneSettings(kafka_bootstrap=self.bootstrap).kafka_access()
            if self.config.postgres_port is not None:
                self._start_postgres(self.config.postgres_port, announce)
            directory = load_directory(None)
            if not self.keyring.exists():
                generate_keyring(self.keyring, [a.id for a in directory])
                announce(f"generated a fresh keyring at {self.keyring}")
            # Beside the keyring, where the components' SQLite databases are kept too.
            self.role_keys = split_keyring(self.keyring, state, [a.id for a in directory])
            topics = Topics(namespace=self.config.namespace, replication=self.replication)
            assert self.admin is not None  # our broker's, the caller's, or the settings'
            kafka_admin.apply_topics(self.admin, topics.all_specs(directory))
            if self.admin.protocol != "PLAINTEXT":
                self.principals.provision(self.admin, directory, topics)
                announce(
                    f"Kafka principals and ACLs applied (clients in {self.principals.directory})"
                )
            self._start_identity()
            for component in COMPONENTS:
                if self.config.only is None or component.name in self.config.only:
                    self.running.append(self._spawn(component, mode="wb"))
            self._wait_ready(timeout)
            if self.observers is not None:
                scrape = {
                    f"infoshare-{r.component.name}": [f"127.0.0.1:{self.port(r.component)}"]
                    for r in self.running
                }
                self.observers.settle(scrape, announce)
        except BaseException:
            self.stop()
            raise

    @property
    def replication(self) -> int:
        """Replicas per topic: min(3, brokers) on our own Kafka; as the environment's
        settings say (INFOSHARE_TOPIC_REPLICATION) on a given one."""
        if self.config.bootstrap is None:
            return min(3, self.config.brokers)
        return BackboneSettings().topic_replication

    def _start_kafka(self, announce: Any) -> None:
        config, state = self.config, self.config.state_dir
        if config.brokers > 1:
            cluster = BrokerCluster(
                state / "kafka",
                config.cache_dir,
                base_port=config.kafka_port,
                size=config.brokers,
                secured=not config.plaintext,
            )
            self.broker = cluster
            self.started_broker = not any(s.running for s in cluster.status())
            cluster.start()
            announce(cluster.describe())
        else:
            node = BrokerNode(
                state_dir=state / "kafka",
                cache_dir=config.cache_dir,
                port=config.kafka_port,
                controller_port=config.controller_port,
                tls_port=config.tls_port,
                secured=not config.plaintext,
            )
            self.broker = node
            self.started_broker = not node.status().running
            announce(node.start().describe())
        self.bootstrap = self.broker.bootstrap
        self.admin = self.broker.admin_access()

    def _start_postgres(self, port: int, announce: Any) -> None:
        self.postgres = PostgresNode(state_dir=self.config.state_dir, port=port)
        self.started_postgres = not self.postgres.status().running
        announce(self.postgres.start().describe())
        # Each store a database of the operator's (who brings its schema up to date), each
        # component a role of its own with only its store's rights (postgres/databases.py).
        agencies = [c.agency_id for c in COMPONENTS if c.agency_id]
        self.databases = databases.provision(self.postgres, agencies)
        self.audit_database_url = self.databases.of("audit")[databases.AUDIT_URL]
        self.audit_owner_url = self.databases.audit_owner_url

    def _spawn(self, component: Component, *, mode: Literal["wb", "ab"]) -> Running:
        log = self.config.state_dir / "logs" / f"{component.name}.log"
        with open_private(log, mode) as fh:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.ops.run", component.name],
                env=self._env(component),
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return Running(component, proc, log)

    def console_login(self) -> tuple[str, str, str]:
        """The IG console's URL, and the starter IG officer's login for it."""
        logins = starter_logins(self.config.state_dir / "identity")
        return f"{self.url('audit')}/console", IG_OFFICER, logins.get(IG_OFFICER, "")

    def _start_identity(self) -> None:
        """The embedded identity provider: its starter people, and a server for its OpenID
        configuration and JWKS (where the services verify people's tokens)."""
        directory = self.config.state_dir / "identity"
        ensure_provider(directory, self.identity_issuer)
        log = self.config.state_dir / "logs" / "identity.log"
        try:
            self.identity = launch(directory, self.identity_issuer, log)
        except ConfigurationError as exc:
            raise StackError(str(exc)) from None

    @staticmethod
    def _role_name(component: Component) -> str:
        role = component.role
        return f"agency:{component.agency_id}" if role is Role.AGENCY else str(role)

    def restart_exited(self) -> list[str]:
        """Start again every component that has exited (a crashed processor resumes from its
        committed offsets and changelog); return their names with their exit status."""
        restarted = []
        now = time.monotonic()
        for i, r in enumerate(self.running):
            if r.process.poll() is None:
                continue
            # A component that keeps failing is restarted after 1, 2, 4 ... 30 s, not in a
            # tight loop; one that ran for a minute starts its count again.
            crashes = 0 if now - r.started > 60 else r.crashes
            if now < r.started + min(30.0, 2.0**crashes) - 1.0:
                continue
            restarted.append(f"{r.component.name} (exit status {r.process.returncode})")
            self.running[i] = self._spawn(r.component, mode="ab")
            self.running[i].crashes = crashes + 1
        return restarted

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.running)
        with httpx.Client(timeout=1.0) as client:
            while pending:
                for r in list(pending):
                    if r.process.poll() is not None:
                        raise StackError(
                            f"{r.component.name} exited with status {r.process.returncode}; "
                            f"see {r.log}"
                        )
                    if _ready(client, self, r):
                        pending.remove(r)
                if time.monotonic() > deadline:
                    names = ", ".join(r.component.name for r in pending)
                    raise StackError(f"not ready after {timeout:.0f}s: {names}")
                time.sleep(0.2)

    def stop(self) -> None:
        for r in reversed(self.running):
            if r.process.poll() is None:
                r.process.send_signal(signal.SIGTERM)
        for r in reversed(self.running):
            try:
                r.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                r.process.kill()
                r.process.wait()
        self.running.clear()
        if self.identity is not None:
            stop_identity(self.identity)
            self.identity = None
        if self.observers is not None:
            self.observers.stop()
        self._retire_principals()
        if self.broker is not None and self.started_broker:
            self.broker.stop()
            self.started_broker = False
        if self.postgres is not None and self.started_postgres:
            self.postgres.stop()
            self.started_postgres = False

    def _retire_principals(self) -> None:
        provisioned = self.admin is not None and self.admin.protocol != "PLAINTEXT"
        if not (self.config.retire_principals and provisioned and self.config.namespace):
            return
        if self.started_broker:
            return  # the broker stops next, and its state goes with it
        assert self.admin is not None
        try:
            self.principals.retire(self.admin)
        except BackboneError as exc:  # a broker gone away: nothing left to reach
            log.warning("could not remove the stack's Kafka principals: %s", exc)


def free_ports_config(
    state_dir: Path, cache_dir: Path, *, postgres: bool = False, **kwargs: Any
) -> StackConfig:
    """A stack config on free ports, so it can run beside anything else on this machine;
    with ``postgres``, a free port for the stack's PostgreSQL cluster (the audit store) too.
    Its principals leave a shared broker with it (``retire_principals``)."""
    kwargs.setdefault("retire_principals", True)
    names = [c.name for c in COMPONENTS if c.port is not None]
    names += ["zipkin", "prometheus", "identity", "jaeger", "jaeger-otlp", "jaeger-health"]
    first = free_listen_port(len(names) + 4)  # the HTTP ports, Kafka's three, PostgreSQL's
    kafka_port = first + len(names)
    return StackConfig(
        state_dir=state_dir,
        cache_dir=cache_dir,
        kafka_port=kafka_port,
        controller_port=kafka_port + 1,
        tls_port=kafka_port + 2,
        ports={name: first + i for i, name in enumerate(names)},
        postgres_port=kafka_port + 3 if postgres else None,
        **kwargs,
    )


def _ready(client: httpx.Client, stack: Stack, r: Running) -> bool:
    if r.component.name == "processor":
        # The processor says so in its log once it has joined its consumer group.
        try:
            return b"processing " in r.log.read_bytes()
        except OSError:
            return False
    try:
        return client.get(stack.url(r.component.name) + "/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def usual_config(
    state_dir: Path,
    cache_dir: Path,
    *,
    bootstrap: str | None,
    base_port: int = 8100,
    kafka_port: int = 9092,
    postgres_port: int | None = None,
    observe: bool = False,
    brokers: int = 1,
) -> StackConfig:
    """``infoshare up``'s stack: each component on ``base_port`` plus its usual offset, Zipkin
    and Prometheus on their usual ports beside the usual stack (next to the services' ports
    otherwise), Kafka on ``kafka_port`` to ``kafka_port + 3 * brokers - 1``."""
    ports = {c.name: base_port + c.port % 100 for c in COMPONENTS if c.port is not None}
    usual = base_port == 8100
    ports |= {"zipkin": 9411 if usual else base_port + 50}
    ports |= {"prometheus": 9090 if usual else base_port + 51}
    ports |= {"identity": base_port + 60}  # the embedded identity provider (8160)
    ports |= {"jaeger": 16686 if usual else base_port + 52}  # its UI and query API
    ports |= {"jaeger-otlp": 4318 if usual else base_port + 53}
    ports |= {"jaeger-health": 13133 if usual else base_port + 54}
    return StackConfig(
        state_dir=state_dir,
        cache_dir=cache_dir,
        bootstrap=bootstrap,
        kafka_port=kafka_port,
        controller_port=kafka_port + 1,
        tls_port=kafka_port + 2,
        ports=ports,
        postgres_port=postgres_port,
        observe=observe,
        brokers=brokers,
    )


def demo_config(
    state_dir: Path, cache_dir: Path, *, bootstrap: str | None, postgres: bool, observe: bool
) -> StackConfig:
    """The demo's stack: free ports, and topics, groups and transactional ids of its own, so
    a demo on a shared broker never fences, joins or reads the stack that already runs there."""
    return free_ports_config(
        state_dir,
        cache_dir,
        bootstrap=bootstrap,
        namespace=f"demo{secrets.token_hex(4)}.",
        postgres=postgres,
        observe=observe,
    )
