"""Reading back everything a fault run produced and checking it against what the workload
implies: each recipient's deliveries exact and in per-child order, access back told once
per plan, one audit record per decision and per suppressed copy, and no identifier in any
processor's log. Shared by the single-broker and the cluster fault runs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from itertools import islice
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from consent.core.decide import pseudonym
from consent.core.state import ProtectionPlan
from consent.policy.load import load_protocols
from consent.processor.access_back import ACCESS_BACK
from consent.processor.handle import Context, Handled, handle
from deploy.bench.loadgen import ED_SOURCE, Child, Workload, cloud_event, event_source
from services.backbone import envelope
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.e2e.fault_harness import ProcessorProcess
from tests.integration.kafka_helpers import read_all
from tests.unit.factories import ATTENDANCE, ED, LA, PH, PLAN_STARTED


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def verify(
    workload: Workload,
    access: KafkaAccess,
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
    to_la = await read_all(topics.deliver(LA), access, _la_delivery)
    la = [(key, who, arrival) for kind, key, who, arrival in to_la if kind == ATTENDANCE]
    _assert_exact(la, {(n, t) for n in on_plan for t in arrivals}, "la-northshire")
    plans_in = await read_all(topics.source(LA), access, _input_summary)
    told = _assert_told_once(to_la, {event_id for _, (_, _, event_id) in plans_in})
    # Public health: every attendance, pseudonymised, in order per pseudonym.
    ph_key = keyring.pseudonym[PH]
    by_pseudonym = {pseudonym(ph_key, PH, c.subject_id): c for c in workload.children}
    ph = await read_all(topics.deliver(PH), access, _payload("subject", "pseudonym"))
    assert {p for _, p, _ in ph} <= set(by_pseudonym), "a pseudonym no child has"
    all_children = {c.nhs_number for c in workload.children}
    _assert_exact(
        [(k, by_pseudonym[p].nhs_number, t) for k, p, t in ph],
        {(n, t) for n in all_children for t in arrivals},
        "ph-northshire",
    )
    # The emergency department: one flag per plan.
    ed = await read_all(topics.deliver(ED), access, _payload("subject", "nhs_number"))
    _assert_exact(ed, {(n, None) for n in on_plan}, "nhs-riverside-ed", ordered=False)

    # One audit record per decision, one per suppressed copy, none dead-lettered.
    ids = Counter(a[0] for a in audits)
    assert len(ids) == len(audits), f"{len(audits) - len(ids)} duplicate audit records"
    outcomes = Counter(a[2] for a in audits)
    assert outcomes.keys() <= {"shared", "withheld", "suppressed"}, outcomes
    per_input = Counter(a[1] for a in audits)
    expected = _audits_per_input(workload, topics, keyring, directory, schemas)
    for topic in (topics.source(LA), topics.source(ED_SOURCE)):
        inputs = await read_all(topic, access, _input_summary)
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
    log(
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


def audit_summary(rec: ConsumerRecord) -> AuditSummary:
    a = orjson.loads(rec.value)
    where = (a["topic_in"], a["partition_in"], a["offset_in"])
    return a["audit_id"], where, a["decision"], a["reason_code"]


def _input_summary(rec: ConsumerRecord) -> tuple[tuple[str, int, int], tuple[str, str, str]]:
    event = envelope.decode(rec.key, rec.value, list(rec.headers))
    where = (rec.topic, rec.partition, rec.offset)
    return where, (event.type, event.data["subject"]["nhs_number"], event.id)


def verify_copies(audits: list[AuditSummary], copies: int) -> None:
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
    event = cloud_event(child, event_type, data, routing=routing, schemas=ctx.schemas)
    key, value, headers = envelope.encode(event)
    return ReadRecord(ctx.topics.source(event_source(event_type)), 0, 0, key, value, headers)


def assert_logs_hold_no_identifiers(processes: list[ProcessorProcess], workload: Workload) -> int:
    """No NHS number in any processor's log; returns how many sessions faults ended."""
    numbers = {c.nhs_number.encode() for c in workload.children}
    for proc in processes:
        text = proc.log.read_bytes()
        assert not any(n in text for n in numbers), f"{proc.log.name} holds an NHS number"
    restarts = sum(p.log.read_bytes().count(b"session ended by") for p in processes)
    log(f"processor sessions ended by faults and restarted: {restarts}")
    return restarts
