"""``infoshare kafka``: the pinned Apache Kafka broker (KRaft, loopback), its principals'
ACLs, and its topics as declared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import CacheDir, StateDir, err, fail, kafka_access, out
from deploy.devstack.broker import BrokerCluster, BrokerError, BrokerNode
from deploy.devstack.broker.fetch import ensure_jars, pinned_version
from deploy.devstack.principals import StackPrincipals
from services.backbone.errors import BackboneError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.settings import BackboneSettings
from services.backbone.topics import Topics

app = typer.Typer(
    help="Run the pinned Apache Kafka broker (KRaft, loopback); its ACLs and topics",
    no_args_is_help=True,
)
Port = Annotated[int, typer.Option(help="Kafka client port on 127.0.0.1 (SASL_SSL)")]
ControllerPort = Annotated[int, typer.Option(help="KRaft controller port on 127.0.0.1")]
TlsPort = Annotated[
    int | None, typer.Option(help="mutual-TLS client port on 127.0.0.1 (default: PORT + 2)")
]
Namespace = Annotated[
    str | None,
    typer.Option(help="topic and principal prefix (default: INFOSHARE_TOPIC_NAMESPACE)"),
]
Apply = Annotated[bool, typer.Option("--apply", help="make the broker match")]
Print = Annotated[bool, typer.Option("--print", help="print them (the default)")]
Brokers = Annotated[
    int,
    typer.Option(
        min=1,
        max=9,
        help="a cluster of this many brokers (one static KRaft quorum); node i on ports "
        "PORT + 3(i-1) (clients), + 1 (controller), + 2 (mutual TLS)",
    ),
]


def _node(
    state_dir: Path,
    cache_dir: Path,
    port: int,
    controller_port: int,
    tls_port: int | None,
    *,
    plaintext: bool = False,
) -> BrokerNode:
    return BrokerNode(
        state_dir=state_dir / "kafka",
        cache_dir=cache_dir,
        port=port,
        controller_port=controller_port,
        tls_port=tls_port,
        secured=not plaintext,
    )


@app.command("fetch")
def kafka_fetch(cache_dir: CacheDir, quiet: bool = False) -> None:
    """Resolve the pinned Kafka jars from Maven Central into the cache (once)."""
    try:
        libs = ensure_jars(cache_dir)
    except BrokerError as exc:
        raise fail(str(exc)) from None
    if not quiet:
        out.print(f"Kafka {pinned_version()} jars in {libs}")


@app.command("start")
def kafka_start(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
    tls_port: TlsPort = None,
    plaintext: Annotated[
        bool,
        typer.Option(help="WITHOUT TLS, authentication or ACLs: for debugging on loopback only"),
    ] = False,
    brokers: Brokers = 1,
) -> None:
    """Start the broker in the background and wait until it accepts clients. Secured by
    default: SASL_SSL (SCRAM-SHA-512) on PORT, mutual TLS on TLS_PORT, ACLs enforced; the
    administrator's password and the CA are under STATE_DIR/kafka."""
    if brokers > 1:
        cluster = BrokerCluster(
            state_dir / "kafka", cache_dir, base_port=port, size=brokers, secured=not plaintext
        )
        try:
            with err.status(f"starting {brokers} Kafka {pinned_version()} brokers ..."):
                cluster.start()
        except BrokerError as exc:
            raise fail(str(exc)) from None
        out.print(cluster.describe())
        _say_admin(state_dir, cluster.admin_access(), plaintext)
        return
    node = _node(state_dir, cache_dir, port, controller_port, tls_port, plaintext=plaintext)
    try:
        with err.status(f"starting Kafka {pinned_version()} ..."):
            status = node.start()
    except BrokerError as exc:
        raise fail(str(exc)) from None
    out.print(status.describe())
    _say_admin(state_dir, node.admin_access(), plaintext)


def _say_admin(state_dir: Path, admin: KafkaAccess, plaintext: bool) -> None:
    """Write the administrator's settings where the ``infoshare`` command finds them."""
    if plaintext:
        return
    env_file = StackPrincipals(state_dir / "kafka-clients", "").write_admin_env(admin)
    out.print(f"administrator's settings (user admin) in {env_file}")


@app.command("stop")
def kafka_stop(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
    tls_port: TlsPort = None,
    brokers: Brokers = 1,
) -> None:
    """Stop the broker (or cluster) started from this state directory."""
    if brokers > 1:
        BrokerCluster(state_dir / "kafka", cache_dir, base_port=port, size=brokers).stop()
        out.print("Kafka cluster stopped")
        return
    stopped = _node(state_dir, cache_dir, port, controller_port, tls_port).stop()
    out.print("Kafka stopped" if stopped else "Kafka was not running")


@app.command("status")
def kafka_status(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
    tls_port: TlsPort = None,
    brokers: Brokers = 1,
) -> None:
    """Say whether the broker (every broker of a cluster) runs; exit status 0 if so, 3 if
    not."""
    if brokers > 1:
        cluster = BrokerCluster(state_dir / "kafka", cache_dir, base_port=port, size=brokers)
        out.print(cluster.describe())
        running = all(s.running for s in cluster.status())
    else:
        status = _node(state_dir, cache_dir, port, controller_port, tls_port).status()
        out.print(status.describe())
        running = status.running
    if not running:
        raise typer.Exit(code=3)


def _deployment(
    namespace: str | None, *, apply: bool, show: bool
) -> tuple[BackboneSettings, Topics]:
    if apply and show:
        raise fail("give --print or --apply, not both", 2)
    settings = BackboneSettings()
    prefix = settings.topic_namespace if namespace is None else namespace
    return settings, Topics(
        namespace=prefix,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
    )


@app.command("acls")
def kafka_acls(
    namespace: Namespace = None,
    apply: Apply = False,
    show: Print = False,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap (with --apply)")] = None,
) -> None:
    """The ACLs of every principal, derived from the agency directory: print them, or with
    --apply make the broker's ACLs of these principals exactly these, and retire (delete the
    ACLs and SCRAM login of) the namespace's principals the directory no longer names. As an
    administrator: INFOSHARE_KAFKA_* settings."""
    from services.ops import kafka_admin
    from services.ops.kafka_acls import acl_rules

    settings, topics = _deployment(namespace, apply=apply, show=show)
    try:
        directory = settings.directory()
    except BackboneError as exc:
        raise fail(str(exc), 2) from None
    rules = acl_rules(directory, topics)
    if not apply:
        for rule in rules:
            out.print(rule.describe(), soft_wrap=True)
        return
    access = kafka_access(settings, bootstrap)
    try:
        changes = kafka_admin.converge_acls(access, directory, topics)
    except BackboneError as exc:
        raise fail(str(exc)) from None
    for rule in changes.created:
        out.print(f"created  {rule.describe()}")
    for said in changes.deleted:
        out.print(f"deleted  {said}")
    for principal in changes.retired:
        out.print(f"retired  User:{principal} (not in the directory: its ACLs and login removed)")
    out.print(
        f"{len(rules)} rule(s) in force; {len(changes.created)} created, "
        f"{len(changes.deleted)} deleted, {len(changes.retired)} principal(s) retired"
    )


@app.command("topics")
def kafka_topics(
    namespace: Namespace = None,
    apply: Apply = False,
    show: Print = False,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap (with --apply)")] = None,
) -> None:
    """Every topic as declared (partitions, replication, retention, cleanup): print them, or
    with --apply create the missing ones; refuses (exit 1) when an existing topic is weaker
    than declared."""
    from services.ops import kafka_admin

    settings, topics = _deployment(namespace, apply=apply, show=show)
    specs = topics.all_specs(settings.directory())
    if not apply:
        for spec in specs:
            configs = spec.configs()
            out.print(
                f"{spec.name}  partitions={spec.partitions} replication={spec.replication} "
                + " ".join(f"{k}={v}" for k, v in configs.items()),
                soft_wrap=True,
            )
        return
    try:
        created = kafka_admin.apply_topics(kafka_access(settings, bootstrap), specs)
    except BackboneError as exc:
        raise fail(str(exc)) from None
    out.print(f"{len(specs)} topic(s) declared; created {', '.join(created) or 'none'}")
