"""Exactly once through crashes: 100,000 attendances over six partitions to three recipients,
while the processor is killed (-9) three times, the broker is hard-stopped and restarted,
the processor is paused past its transaction timeout, and a second instance with the same
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
import time
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from consent.core.decide import pseudonym
from consent.core.state import ProtectionPlan
from consent.policy.load import load_protocols
from consent.processor.access_back import ACCESS_BACK
from consent.processor.handle import Context, Handled, handle
from deploy.bench.loadgen import (
    ED_SOURCE,
    Child,
    Sent,
    Workload,
    publish,
    publish_again,
)
from deploy.devstack.broker import BrokerNode
from services.backbone import envelope, kafka
from services.backbone.directory import Directory
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.backends import start_kafka
from tests.e2e.fault_harness import ProcessorProcess, Progress, wait_for_progress
from tests.integration.kafka_helpers import read_all
from tests.unit.factories import ATTENDANCE, ED, LA, PH, PLAN_STARTED

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PARTITIONS = 6
TXN_TIMEOUT_MS = 8000
GROUP = "infoshare-processor"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerNode]:
    """A broker of this test's own: it is crashed on purpose, so it cannot be the shared one."""
    node = start_kafka(tmp_path / "kafka")
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


async def _run(
    events: int,
    broker: BrokerNode,
    tmp_path: Path,
    keyring_path: Path,
    keyring: Keyring,
    directory: Directory,
) -> None:
    bootstrap = broker.bootstrap
    namespace = "faults."
    topics = Topics(namespace=namespace, partitions=PARTITIONS)
    schemas = SchemaRegistry.load()
    await kafka.ensure_topics(bootstrap, topics.all_specs(directory))
    workload = Workload.make(events=events, children=1000, authority_name=directory.get(LA).name)
    sources = [topics.source(LA), topics.source(ED_SOURCE)]
    group = f"{namespace}{GROUP}"
    env = {
        "INFOSHARE_KAFKA_BOOTSTRAP": bootstrap,
        "INFOSHARE_TOPIC_NAMESPACE": namespace,
        "INFOSHARE_TOPIC_PARTITIONS": str(PARTITIONS),
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
        "INFOSHARE_TRANSACTION_TIMEOUT_MS": str(TXN_TIMEOUT_MS),
        "INFOSHARE_PORT": "0",  # several processors on one host: no metrics port for any
    }
    common: dict[str, Any] = {
        "bootstrap": bootstrap,
        "topics": topics,
        "keyring": keyring,
        "schemas": schemas,
    }
    processes: list[ProcessorProcess] = []
    progress = Progress(bootstrap)

    def processor(name: str) -> ProcessorProcess:
        proc = ProcessorProcess(name, env, tmp_path)
        proc.start()
        processes.append(proc)
        return proc

    def alive() -> bool:
        return any(p.alive for p in processes)

    async def until(target: int, wait_s: float = 600) -> None:
        done = await wait_for_progress(
            progress, group, sources, target, wait_s=wait_s, report=_log, alive=alive
        )
        assert done < total, "the run ended before the fault: it would test nothing"

    total = 10**12  # until everything is published
    samples: list[Sent] = []

    try:
        plans = await publish(workload.plan_events(), **common)
        a = processor("a1")
        await until(plans, wait_s=120)
        _log(f"{plans} plans decided; publishing {workload.attendances} attendances")
        attendances = await publish(
            workload.attendance_events(),
            progress=lambda n: _log(f"published {n}") if n % 50_000 == 0 else None,
            sample_every=100,
            samples=samples,
            **common,
        )
        half = len(samples) // 2
        copies = len(samples)
        total = plans + attendances + copies

        for i, share in enumerate((0.08, 0.18, 0.28), start=2):
            await until(int(total * share))
            _log(f"kill -9 processor {a.name}")
            a.kill9()
            if i == 2:  # a publisher retries while nothing is processing
                await publish_again(samples[:half], bootstrap=bootstrap)
                _log(f"published {half} copies of earlier events")
            a = processor(f"a{i}")

        await until(int(total * 0.40))
        _log("hard-stopping the broker")
        assert broker.kill()
        broker.start()
        _log("broker back")
        await publish_again(samples[half:], bootstrap=bootstrap)
        _log(f"published {copies - half} more copies")

        await until(int(total * 0.52))
        _log(f"SIGSTOP {a.name} past the {TXN_TIMEOUT_MS} ms transaction timeout")
        a.signal(signal.SIGSTOP)
        await asyncio.sleep(TXN_TIMEOUT_MS / 1000 + 4)  # the fault is the pause itself
        a.signal(signal.SIGCONT)

        await until(int(total * 0.64))
        _log("a second instance with the same identity joins")
        b = processor("b1")
        await until(int(total * 0.76))
        _log(f"SIGSTOP {a.name} until the group has moved its partitions to {b.name}")
        zombie, before_pause = a, a.log.stat().st_size
        a.signal(signal.SIGSTOP)
        await asyncio.sleep(15)  # past the consumer session timeout (10 s)
        a.signal(signal.SIGCONT)  # a zombie now: its producers were fenced by b1

        await wait_for_progress(
            progress, group, sources, total, wait_s=900, report=_log, alive=alive
        )
        survivors = [p for p in processes if not p.killed]
        assert all(p.alive for p in survivors), "a processor died of a fault it should survive"
    finally:
        await progress.close()
        exits = {p.name: p.stop() for p in processes}
    assert all(exits[p.name] == 0 for p in survivors), f"exit statuses: {exits}"
    after = zombie.log.read_bytes()[before_pause:]
    woke = [line for line in after.splitlines() if b"session ended by" in line]
    _log(f"the zombie after SIGCONT: {woke[0].decode()[24:140] if woke else 'rejoined idle'}")
    assert woke or b"assigned partitions" in after, "the zombie never noticed it lost its place"

    _log("all inputs committed; reading every output back")
    audits = await read_all(topics.audit, bootstrap, _audit_summary)
    await _verify(
        workload, bootstrap, topics, keyring, directory, schemas, plans, attendances, audits
    )
    _verify_copies(audits, copies)
    _assert_logs_hold_no_identifiers(processes, workload)


async def _verify(
    workload: Workload,
    bootstrap: str,
    topics: Topics,
    keyring: Keyring,
    directory: Directory,
    schemas: SchemaRegistry,
    plans: int,
    attendances: int,
    audits: list[AuditSummary],
) -> None:
    on_plan = {c.nhs_number for c in workload.children if c.on_plan}
    arrivals = [workload.arrival(s) for s in range(workload.per_child)]

    # The authority holding the plan: every attendance of a child on a plan, in order; and,
    # as it asked for access back, one notice per plan that the ED received it.
    to_la = await read_all(topics.deliver(LA), bootstrap, _la_delivery)
    la = [(key, who, arrival) for kind, key, who, arrival in to_la if kind == ATTENDANCE]
    _assert_exact(la, {(n, t) for n in on_plan for t in arrivals}, "la-northshire")
    plans_in = await read_all(topics.source(LA), bootstrap, _input_summary)
    told = _assert_told_once(to_la, {event_id for _, (_, _, event_id) in plans_in})
    # Public health: every attendance, pseudonymised, in order per pseudonym.
    ph_key = keyring.pseudonym[PH]
    by_pseudonym = {pseudonym(ph_key, PH, c.subject_id): c for c in workload.children}
    ph = await read_all(topics.deliver(PH), bootstrap, _payload("subject", "pseudonym"))
    assert {p for _, p, _ in ph} <= set(by_pseudonym), "a pseudonym no child has"
    all_children = {c.nhs_number for c in workload.children}
    _assert_exact(
        [(k, by_pseudonym[p].nhs_number, t) for k, p, t in ph],
        {(n, t) for n in all_children for t in arrivals},
        "ph-northshire",
    )
    # The emergency department: one flag per plan.
    ed = await read_all(topics.deliver(ED), bootstrap, _payload("subject", "nhs_number"))
    _assert_exact(ed, {(n, None) for n in on_plan}, "nhs-riverside-ed", ordered=False)

    # One audit record per decision, one per suppressed copy, none dead-lettered.
    ids = Counter(a[0] for a in audits)
    assert len(ids) == len(audits), f"{len(audits) - len(ids)} duplicate audit records"
    outcomes = Counter(a[2] for a in audits)
    assert outcomes.keys() <= {"shared", "withheld", "suppressed"}, outcomes
    per_input = Counter(a[1] for a in audits)
    expected = _audits_per_input(workload, topics, keyring, directory, schemas)
    for topic in (topics.source(LA), topics.source(ED_SOURCE)):
        inputs = await read_all(topic, bootstrap, _input_summary)
        first: set[str] = set()
        for where, (event_type, nhs, event_id) in inputs:
            want = 1 if event_id in first else expected[(event_type, nhs in on_plan)]
            first.add(event_id)
            assert per_input[where] == want, f"{where}: {per_input[where]} audits, want {want}"
    assert sum(per_input.values()) == len(audits)
    assert len(audits) - outcomes["suppressed"] == sum(
        expected[(ATTENDANCE, c.on_plan)] * workload.per_child
        + (expected[(PLAN_STARTED, True)] if c.on_plan else 0)
        for c in workload.children
    )
    _log(
        f"verified: la {len(la)} (+{told} access back), ph {len(ph)}, ed {len(ed)} deliveries; "
        f"{len(audits)} audit records ({dict(outcomes)}); inputs {plans}+{attendances}"
    )


def _payload(*path: str) -> Callable[[ConsumerRecord], tuple[bytes | None, str, str | None]]:
    def keep(rec: ConsumerRecord) -> tuple[bytes | None, str, str | None]:
        data = orjson.loads(rec.value)
        who = data
        for step in path:
            who = who[step]
        arrival = (data.get("attendance") or {}).get("arrival_time")
        return rec.key, str(who), arrival

    return keep


def _la_delivery(rec: ConsumerRecord) -> tuple[str, bytes | None, str, str | None]:
    """(type, key, who, arrival) of a delivery to the authority: ``who`` is the NHS number
    of an attendance notification, the reported event id of an access-back notice."""
    if dict(rec.headers)["ce_type"] == ACCESS_BACK.encode():
        return ACCESS_BACK, rec.key, str(orjson.loads(rec.value)["event_id"]), None
    key, who, arrival = _payload("subject", "nhs_number")(rec)
    return ATTENDANCE, key, who, arrival


def _assert_told_once(
    to_la: list[tuple[str, bytes | None, str, str | None]], plan_ids: set[str]
) -> int:
    """One access-back notice per plan, none twice, each on the key of that child's
    attendance notifications and ahead of them (plans were all decided before the first
    attendance was published). ``to_la`` is in partition order. The number of notices."""
    told = [(key, event_id) for kind, key, event_id, _ in to_la if kind == ACCESS_BACK]
    ids = Counter(event_id for _, event_id in told)
    assert sum(n - 1 for n in ids.values()) == 0, "an authority told twice of one plan"
    assert ids.keys() == plan_ids, "a plan the authority was not told of, or a stray notice"
    attended: set[bytes | None] = set()
    for kind, key, _, _ in to_la:
        if kind == ACCESS_BACK:
            assert key is not None and key not in attended, "a notice behind its attendances"
        else:
            attended.add(key)
    assert {key for key, _ in told} == attended, "a notice off its child's key"
    return len(told)


def _assert_exact(
    got: list[tuple[Any, ...]],
    expected: set[tuple[str, str | None]],
    recipient: str,
    *,
    ordered: bool = True,
) -> None:
    pairs = [(row[-2], row[-1]) for row in got]
    counts = Counter(pairs)
    duplicates = sum(n - 1 for n in counts.values())
    missing = len(expected - counts.keys())
    unexpected = len(counts.keys() - expected)
    assert (duplicates, missing, unexpected) == (0, 0, 0), (
        f"{recipient}: {duplicates} duplicates, {missing} missing, {unexpected} unexpected"
    )
    if not ordered:
        return
    last: dict[object, str] = {}
    for row in got:
        key, arrival = row[0], row[-1]
        assert key is not None and arrival is not None
        assert last.get(key, "") < arrival, f"{recipient}: a child's attendances out of order"
        last[key] = arrival


AuditSummary = tuple[str, tuple[str, int, int], str, str]  # id, input, decision, reason code


def _audit_summary(rec: ConsumerRecord) -> AuditSummary:
    a = orjson.loads(rec.value)
    where = (a["topic_in"], a["partition_in"], a["offset_in"])
    return a["audit_id"], where, a["decision"], a["reason_code"]


def _input_summary(rec: ConsumerRecord) -> tuple[tuple[str, int, int], tuple[str, str, str]]:
    event = envelope.decode(rec.key, rec.value, list(rec.headers))
    where = (rec.topic, rec.partition, rec.offset)
    return where, (event.type, event.data["subject"]["nhs_number"], event.id)


def _verify_copies(audits: list[AuditSummary], copies: int) -> None:
    """Every copy is audited as suppressed, once; none reached a recipient (checked above:
    the delivered sets have no duplicates)."""
    suppressed = [code for _, _, decision, code in audits if decision == "suppressed"]
    assert len(suppressed) == copies, f"{len(suppressed)} suppressed, {copies} copies published"
    assert set(suppressed) == {"duplicate.identical"}


def _audits_per_input(
    workload: Workload,
    topics: Topics,
    keyring: Keyring,
    directory: Directory,
    schemas: SchemaRegistry,
) -> dict[tuple[str, bool], int]:
    """How many audit records the shipped protocols and directory give per event kind, from
    the pure core: a decision each, and a plan start's access-back notice to the authority."""

    def audited(handled: Handled) -> int:
        return sum(r.topic == topics.audit for r in handled.records)

    ctx = Context.from_keyring(
        topics=topics,
        protocols=load_protocols(None, directory=directory, schemas=schemas),
        schemas=schemas,
        directory=directory,
        keyring=keyring,
    )
    routing = keyring.require_routing()
    first_round = list(islice(workload.attendance_events(), len(workload.children)))
    plans = {c.nhs_number: d for c, _, d in workload.plan_events()}
    counts: dict[tuple[str, bool], int] = {}
    for on_plan in (True, False):
        child, _, attendance = next(e for e in first_round if e[0].on_plan is on_plan)
        state: dict[str, ProtectionPlan | None] = {}
        if on_plan:
            started = handle(
                _record(child, PLAN_STARTED, plans[child.nhs_number], ctx, routing),
                ctx,
                {},
                None,
                lambda _topic: [],
            )
            counts[(PLAN_STARTED, True)] = audited(started)
            state = dict(started.state_changes)
        handled = handle(
            _record(child, ATTENDANCE, attendance, ctx, routing),
            ctx,
            state,
            None,
            lambda _topic: [],
        )
        counts[(ATTENDANCE, on_plan)] = audited(handled)
    return counts


def _record(
    child: Child, event_type: str, data: dict[str, Any], ctx: Context, routing: Any
) -> ReadRecord:
    agency = ED_SOURCE if event_type == ATTENDANCE else LA
    event = envelope.CloudEvent(
        type=event_type,
        source=envelope.agency_source(agency),
        data=data,
        key=routing_key(routing, child.subject_id),
        dataschema=ctx.schemas.get(event_type).uri,
    )
    key, value, headers = envelope.encode(event)
    return ReadRecord(ctx.topics.source(agency), 0, 0, key, value, headers)


def _assert_logs_hold_no_identifiers(processes: list[ProcessorProcess], workload: Workload) -> None:
    numbers = {c.nhs_number.encode() for c in workload.children}
    for proc in processes:
        text = proc.log.read_bytes()
        assert not any(n in text for n in numbers), f"{proc.log.name} holds an NHS number"
    restarts = sum(p.log.read_bytes().count(b"session ended by") for p in processes)
    _log(f"processor sessions ended by faults and restarted: {restarts}")
    assert restarts >= 1, "no processor ever noticed a fault: the test did not test anything"
