"""Exactly once through crashes: 100,000 attendances over six partitions to three recipients,
while the processor is killed (-9) three times, the broker is hard-stopped and restarted,
the processor is paused past its transaction timeout (until the broker is seen to abort its
open transaction, and its session to end), and a second instance with the same
identity joins and the first is paused until it is a zombie. Meanwhile 1,000 events are
published a second time, as a retrying publisher would.

Pass: each recipient's delivered set equals the expected set, no duplicates, nothing
missing, per-child order kept, the authority told once per plan that the ED received it
(access back), and exactly one audit record per decision.

``pytest -m soak`` runs the same with 1,000,000 events.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.bench.loadgen import (
    ED_SOURCE,
    Sent,
    Workload,
    publish,
    publish_again,
)
from deploy.devstack.broker import BrokerNode
from deploy.devstack.principals import StackPrincipals
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.backends import start_kafka
from tests.e2e.fault_checks import (
    assert_logs_hold_no_identifiers,
    audit_summary,
    log,
    verify,
    verify_copies,
)
from tests.e2e.fault_harness import (
    ProcessorProcess,
    Progress,
    processor_environment,
    wait_for_progress,
)
from tests.integration.kafka_helpers import eventually, read_all
from tests.unit.factories import LA

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PARTITIONS = 6
TXN_TIMEOUT_MS = 8000
GROUP = "infoshare-processor"
ABORT_CLEANUP = "transaction.abort.timed.out.transaction.cleanup.interval.ms"
PAUSES = 6  # a pause that falls between two transactions aborts nothing: pause again


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerNode]:
    """A broker of this test's own: it is crashed on purpose, so it cannot be the shared one."""
    # The coordinator looks for timed-out transactions every second, not every ten: a
    # pause past the timeout is then seen to abort within the pause.
    node = start_kafka(tmp_path / "kafka", {ABORT_CLEANUP: "1000"})
    try:
        yield node
    finally:
        node.stop()


@pytest.mark.longest
@pytest.mark.parametrize("events", [100_000])
async def test_exactly_once_through_crashes_restarts_pauses_and_zombies(
    broker: BrokerNode,
    tmp_path: Path,
    keyring_path: Path,
    keyring: Keyring,
    directory: Directory,
    events: int,
) -> None:
    await _run(events, broker, tmp_path, keyring_path, keyring, directory)


@pytest.mark.soak
async def test_exactly_once_soak_one_million(
    broker: BrokerNode, tmp_path: Path, keyring_path: Path, keyring: Keyring, directory: Directory
) -> None:
    await _run(1_000_000, broker, tmp_path, keyring_path, keyring, directory)


def _broker_log_lines(broker: BrokerNode, *needles: bytes) -> int:
    logs = sorted((broker.state_dir / "logs").glob("server.log*"))
    lines = (line for f in logs for line in f.read_bytes().splitlines())
    return sum(all(n in line for n in needles) for line in lines)


def timed_out(broker: BrokerNode) -> int:
    """Transactions the broker's coordinator has rolled back for outliving their timeout."""
    return _broker_log_lines(broker, b"Completed rollback", b"due to timeout")


def departed(broker: BrokerNode, group: str) -> int:
    """Members the group's coordinator removed when their session expired."""
    return _broker_log_lines(broker, f"in group {group} has failed".encode())


class OpenTransactions:
    """Whether a transaction is open on ``topic``: on some partition its last stable offset
    (a read_committed reader's end) is behind its high watermark (a read_uncommitted
    reader's end)."""

    def __init__(self, access: KafkaAccess, topic: str, partitions: int) -> None:
        self.readers = [
            AIOKafkaConsumer(**access.aiokafka(), isolation_level=level)
            for level in ("read_committed", "read_uncommitted")
        ]
        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]

    async def any(self) -> bool:
        stable, high = [await r.end_offsets(self.partitions) for r in self.readers]
        return any(stable[tp] < high[tp] for tp in self.partitions)

    async def __aenter__(self) -> OpenTransactions:
        for reader in self.readers:
            await reader.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        for reader in self.readers:
            await reader.stop()


async def pause_until_a_transaction_is_aborted(
    proc: ProcessorProcess, broker: BrokerNode, admin: KafkaAccess, audit: str, group: str
) -> None:
    """SIGSTOP ``proc`` while it holds a transaction open, past the transaction timeout; the
    broker must roll that transaction back, and remove ``proc`` from the group when its
    consumer session expires, and ``proc`` must join again. A pause that lands in the moment
    between transactions leaves nothing to abort: it is tried again."""
    async with OpenTransactions(admin, audit, PARTITIONS) as open_transactions:
        for pause in range(1, PAUSES + 1):
            await eventually("a transaction open", open_transactions.any, wait_s=60)
            rolled_back, left = timed_out(broker), departed(broker, group)
            mark = proc.log.stat().st_size
            log(f"SIGSTOP {proc.name} past the {TXN_TIMEOUT_MS} ms transaction timeout ({pause})")
            proc.signal(signal.SIGSTOP)
            await asyncio.sleep(TXN_TIMEOUT_MS / 1000 + 4)  # the fault is the pause itself
            proc.signal(signal.SIGCONT)

            async def rejoined(mark: int = mark, left: int = left) -> bool:
                assigned = b"assigned partitions" in proc.log.read_bytes()[mark:]
                return assigned and departed(broker, group) > left

            await eventually(f"{proc.name} removed from the group and back", rejoined, wait_s=60)
            if timed_out(broker) > rolled_back:
                log("the broker rolled back the transaction the pause left open")
                return
    raise AssertionError(f"none of {PAUSES} pauses left a transaction for the broker to abort")


async def _run(
    events: int,
    broker: BrokerNode,
    tmp_path: Path,
    keyring_path: Path,
    keyring: Keyring,
    directory: Directory,
) -> None:
    admin = broker.admin_access()
    namespace = "faults."
    topics = Topics(namespace=namespace, partitions=PARTITIONS)
    schemas = SchemaRegistry.load()
    await kafka.ensure_topics(admin, topics.all_specs(directory))
    # The processors run as the processor's own principal, under its ACLs alone.
    principals = StackPrincipals(tmp_path / "kafka-clients", namespace)
    principals.provision(admin, directory, topics)
    workload = Workload.make(events=events, children=1000, authority_name=directory.get(LA).name)
    sources = [topics.source(LA), topics.source(ED_SOURCE)]
    group = f"{namespace}{GROUP}"
    env = processor_environment(
        admin,
        principals,
        topics,
        keyring_path,
        INFOSHARE_TRANSACTION_TIMEOUT_MS=str(TXN_TIMEOUT_MS),
    )
    common: dict[str, Any] = {
        "access": admin,
        "topics": topics,
        "keyring": keyring,
        "schemas": schemas,
    }
    processes: list[ProcessorProcess] = []
    progress = Progress(admin)

    def processor(name: str) -> ProcessorProcess:
        proc = ProcessorProcess(name, env, tmp_path)
        proc.start()
        processes.append(proc)
        return proc

    def alive() -> bool:
        return any(p.alive for p in processes)

    async def until(target: int, wait_s: float = 600) -> None:
        done = await wait_for_progress(
            progress, group, sources, target, wait_s=wait_s, report=log, alive=alive
        )
        assert done < total, "the run ended before the fault: it would test nothing"

    total = 10**12  # until everything is published
    samples: list[Sent] = []

    try:
        plans = await publish(workload.plan_events(), **common)
        a = processor("a1")
        await until(plans, wait_s=120)
        log(f"{plans} plans decided; publishing {workload.attendances} attendances")
        attendances = await publish(
            workload.attendance_events(),
            progress=lambda n: log(f"published {n}") if n % 50_000 == 0 else None,
            sample_every=100,
            samples=samples,
            **common,
        )
        half = len(samples) // 2
        copies = len(samples)
        total = plans + attendances + copies

        for i, share in enumerate((0.08, 0.18, 0.28), start=2):
            await until(int(total * share))
            log(f"kill -9 processor {a.name}")
            a.kill9()
            if i == 2:  # a publisher retries while nothing is processing
                await publish_again(samples[:half], access=admin)
                log(f"published {half} copies of earlier events")
            a = processor(f"a{i}")

        await until(int(total * 0.40))
        log("hard-stopping the broker")
        assert broker.kill()
        broker.start()
        log("broker back")
        await publish_again(samples[half:], access=admin)
        log(f"published {copies - half} more copies")

        await until(int(total * 0.52))
        await pause_until_a_transaction_is_aborted(a, broker, admin, topics.audit, group)

        await until(int(total * 0.64))
        log("a second instance with the same identity joins")
        b = processor("b1")
        await until(int(total * 0.76))
        log(f"SIGSTOP {a.name} until the group has moved its partitions to {b.name}")
        zombie, before_pause = a, a.log.stat().st_size
        a.signal(signal.SIGSTOP)
        await asyncio.sleep(15)  # past the consumer session timeout (10 s)
        a.signal(signal.SIGCONT)  # a zombie now: its producers were fenced by b1

        await wait_for_progress(
            progress, group, sources, total, wait_s=900, report=log, alive=alive
        )
        survivors = [p for p in processes if not p.killed]
        assert all(p.alive for p in survivors), "a processor died of a fault it should survive"
    finally:
        await progress.close()
        exits = {p.name: p.stop() for p in processes}
    assert all(exits[p.name] == 0 for p in survivors), f"exit statuses: {exits}"
    after = zombie.log.read_bytes()[before_pause:]
    woke = [line for line in after.splitlines() if b"session ended by" in line]
    log(f"the zombie after SIGCONT: {woke[0].decode()[24:140] if woke else 'rejoined idle'}")
    assert woke or b"assigned partitions" in after, "the zombie never noticed it lost its place"

    log("all inputs committed; reading every output back")
    audits = await read_all(topics.audit, admin, audit_summary)
    await verify(workload, admin, topics, keyring, plans, attendances, audits)
    verify_copies(audits, copies)
    restarts = assert_logs_hold_no_identifiers(processes, workload)
    assert restarts >= 1, "no processor ever noticed a fault: the test did not test anything"
