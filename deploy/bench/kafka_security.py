"""What securing and replicating Kafka costs the processor: one processor deciding the same
attendances on a PLAINTEXT broker, on a secured one (SASL_SSL, SCRAM-SHA-512, ACLs; the
processor as its own principal) and on a secured three-broker cluster (replication 3,
min.insync.replicas 2, acks=all), side by side in one run, as ratios to PLAINTEXT. Rounds
alternate the variants so that the machine's drift falls on each alike; each variant's best
round is reported. Run by ``infoshare bench kafka``; a script, never a test."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.bench.processor import DEFAULT_BATCH, PARTITIONS, measure
from deploy.devstack.broker import BrokerCluster, BrokerNode
from deploy.devstack.ports import free_listen_port
from deploy.devstack.principals import StackPrincipals
from services.backbone.directory import load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import generate_keyring
from services.backbone.quiet import run_quietly
from services.backbone.topics import Topics


@dataclass(frozen=True)
class Variant:
    name: str
    brokers: int
    secured: bool


VARIANTS = (
    Variant("PLAINTEXT, one broker (baseline)", 1, False),
    Variant("SASL_SSL + ACLs, one broker", 1, True),
    Variant("SASL_SSL + ACLs, three brokers, replication 3", 3, True),
)


@dataclass(frozen=True)
class Measured:
    variant: Variant
    events: int
    seconds: list[float]

    @property
    def per_second(self) -> float:
        return self.events / min(self.seconds)


@contextmanager
def _kafka(variant: Variant, root: Path, cache_dir: Path) -> Iterator[KafkaAccess]:
    if variant.brokers == 1:
        port = free_listen_port(3)
        node = BrokerNode(
            state_dir=root / "kafka",
            cache_dir=cache_dir,
            port=port,
            controller_port=port + 1,
            tls_port=port + 2,
            secured=variant.secured,
        )
        node.start()
        try:
            yield node.admin_access()
        finally:
            node.stop()
        return
    cluster = BrokerCluster(
        root / "kafka",
        cache_dir,
        base_port=free_listen_port(3 * variant.brokers),
        size=variant.brokers,
        secured=variant.secured,
    )
    cluster.start()
    try:
        yield cluster.admin_access()
    finally:
        cluster.stop()


def run(
    cache_dir: Path, events: int = 20000, rounds: int = 2, say: Callable[[str], None] = print
) -> list[Measured]:
    seconds: dict[Variant, list[float]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-") as tmp:
        root = Path(tmp)
        directory = load_directory(None)
        keyring = generate_keyring(root / "keyring.yaml", [a.id for a in directory])
        for n in range(rounds):
            for i, variant in enumerate(VARIANTS):
                say(f"round {n + 1}: {variant.name}: starting Kafka, then {events} attendances")
                home = root / f"r{n}v{i}"
                with _kafka(variant, home, cache_dir) as admin:

                    def principal(
                        topics: Topics, admin: KafkaAccess = admin, home: Path = home
                    ) -> KafkaAccess:
                        principals = StackPrincipals(home / "clients", topics.namespace)
                        principals.provision(admin, directory, topics)
                        return principals.access(admin, principals.names.processor)

                    result = run_quietly(
                        measure(
                            admin,
                            keyring,
                            events,
                            DEFAULT_BATCH,
                            f"sec{n}{i}.",
                            replication=min(3, variant.brokers),
                            run_as=principal if variant.secured else None,
                        )
                    )
                seconds[variant].append(result.seconds)
                say(f"{variant.name}: {result.per_second:.0f} events/s")
    return [Measured(v, events, s) for v, s in seconds.items()]


def report(results: list[Measured], rounds: int) -> str:
    base = results[0]
    lines = [
        "## What security and replication cost the processor",
        "",
        f"`infoshare bench kafka --events {base.events} --rounds {rounds}` on "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs: one processor, {PARTITIONS} partitions, batch_max {DEFAULT_BATCH}, exactly "
        "once, on a Kafka of its own per variant (the brokers share the machine with it). "
        "Secured: every client over TLS with SCRAM-SHA-512, the processor as its own "
        "principal under its ACLs. Variants alternate each round; best round shown. The three "
        "brokers share this machine's cores with the processor and with each other, so their "
        "ratio is what replication costs on one machine, an upper bound on its cost where "
        "each broker has a machine of its own.",
        "",
        "| Kafka | events | best seconds | events/s | vs PLAINTEXT |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.variant.name} | {r.events} | {min(r.seconds):.1f} | {r.per_second:.0f} | "
            f"{r.per_second / base.per_second:.2f}x |"
        )
    return "\n".join(lines) + "\n"
