"""Reading back everything a fault run produced and checking it against what the workload
implies: each recipient's deliveries exact and in per-child order, access back told once
per plan, one audit record per decision and per suppressed copy, and no identifier in any
processor's log. Shared by the single-broker and the cluster fault runs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
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

# What the shipped protocols decide for each input of the workload, read off the protocols
# by hand rather than asked of the core under test (tests/unit/test_fault_expectations.py
# holds the core to it): the reason code of each audit record an input gives.
AUDITS_PER_INPUT: dict[tuple[str, bool], tuple[str, ...]] = {
    # cpis-protection-plan-flag shares the flag with the ED; the authority asked to be told
    # who received its plan (access back).
    (PLAN_STARTED, True): ("shared.access_back", "shared.protocol_allows"),
    # An attendance of a child on a plan: cpis-attendance-notification shares it with the
    # authority; early-help-attendance withholds it (it shares only for a child not on a
    # plan); public-health-attendance-analytics shares it pseudonymised.
    (ATTENDANCE, True): (
        "shared.protocol_allows",
        "shared.protocol_allows",
        "withheld.condition_not_met",
    ),
    # Not on a plan: cpis-attendance-notification withholds (no plan); early help withholds
    # (no consent recorded); public health as before.
    (ATTENDANCE, False): (
        "shared.protocol_allows",
        "withheld.condition_not_met",
        "withheld.no_consent",
    ),
}
COPY = ("duplicate.identical",)  # an event published again: suppressed, audited once


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def verify(
    workload: Workload,
    access: KafkaAccess,
    topics: Topics,
    keyring: Keyring,
    plans: int,
    attendances: int,
    audits: list[AuditSummary],
) -> None:
    on_plan = {c.nhs_number for c in workload.children if c.on_plan}
    arrivals = [workload.arrival(s) for s in range(workload.per_child)]

    # The authority holding the plan: every attendance of a child on a plan, in order; and,
    # as it asked for access back, one notice per plan that the ED received it.
    to_la = await read_all(topics.deliver(LA), access, _la_delivery)
    la = [(part, key, who, t) for kind, part, key, who, t in to_la if kind == ATTENDANCE]
    assert_exact(la, {(n, t) for n in on_plan for t in arrivals}, "la-northshire")
    plans_in = await read_all(topics.source(LA), access, _input_summary)
    told = _assert_told_once(to_la, {event_id for _, (_, _, event_id) in plans_in})
    # Public health: every attendance, pseudonymised, in order per pseudonym.
    ph_key = keyring.pseudonym[PH]
    by_pseudonym = {pseudonym(ph_key, PH, c.subject_id): c for c in workload.children}
    ph = await read_all(topics.deliver(PH), access, _payload("subject", "pseudonym"))
    assert {p for _, _, p, _ in ph} <= set(by_pseudonym), "a pseudonym no child has"
    all_children = {c.nhs_number for c in workload.children}
    assert_exact(
        [(part, k, by_pseudonym[p].nhs_number, t) for part, k, p, t in ph],
        {(n, t) for n in all_children for t in arrivals},
        "ph-northshire",
    )
    # The emergency department: one flag per plan.
    ed = await read_all(topics.deliver(ED), access, _payload("subject", "nhs_number"))
    assert_exact(ed, {(n, None) for n in on_plan}, "nhs-riverside-ed", ordered=False)

    # One audit record per decision, one per suppressed copy, none dead-lettered: each
    # input's reason codes exactly those the protocols give (AUDITS_PER_INPUT, by hand).
    ids = Counter(a[0] for a in audits)
    assert len(ids) == len(audits), f"{len(audits) - len(ids)} duplicate audit records"
    outcomes = Counter(a[2] for a in audits)
    assert outcomes.keys() <= {"shared", "withheld", "suppressed"}, outcomes
    per_input: dict[tuple[str, int, int], Counter[str]] = {}
    for _, where, _, code in audits:
        per_input.setdefault(where, Counter())[code] += 1
    for topic in (topics.source(LA), topics.source(ED_SOURCE)):
        inputs = await read_all(topic, access, _input_summary)
        first: set[str] = set()
        for where, (event_type, nhs, event_id) in inputs:
            codes = COPY if event_id in first else AUDITS_PER_INPUT[(event_type, nhs in on_plan)]
            first.add(event_id)
            got = per_input.pop(where, Counter())
            assert got == Counter(codes), f"{where}: audited {dict(got)}, want {codes}"
    assert not per_input, f"{len(per_input)} audited inputs that are in no source topic"
    assert len(audits) - outcomes["suppressed"] == sum(
        len(AUDITS_PER_INPUT[(ATTENDANCE, c.on_plan)]) * workload.per_child
        + (len(AUDITS_PER_INPUT[(PLAN_STARTED, True)]) if c.on_plan else 0)
        for c in workload.children
    )
    log(
        f"verified: la {len(la)} (+{told} access back), ph {len(ph)}, ed {len(ed)} deliveries; "
        f"{len(audits)} audit records ({dict(outcomes)}); inputs {plans}+{attendances}"
    )


Delivery = tuple[int, bytes | None, str, str | None]  # partition, key, who, arrival


def _payload(*path: str) -> Callable[[ConsumerRecord], Delivery]:
    def keep(rec: ConsumerRecord) -> Delivery:
        data = orjson.loads(rec.value)
        who = data
        for step in path:
            who = who[step]
        arrival = (data.get("attendance") or {}).get("arrival_time")
        return rec.partition, rec.key, str(who), arrival

    return keep


def _la_delivery(rec: ConsumerRecord) -> tuple[str, int, bytes | None, str, str | None]:
    """(type, partition, key, who, arrival) of a delivery to the authority: ``who`` is the
    NHS number of an attendance notification, the reported event id of an access-back
    notice."""
    if dict(rec.headers)["ce_type"] == ACCESS_BACK.encode():
        event_id = str(orjson.loads(rec.value)["event_id"])
        return ACCESS_BACK, rec.partition, rec.key, event_id, None
    return (ATTENDANCE, *_payload("subject", "nhs_number")(rec))


def _assert_told_once(
    to_la: list[tuple[str, int, bytes | None, str, str | None]], plan_ids: set[str]
) -> int:
    """One access-back notice per plan, none twice, each on the key of that child's
    attendance notifications and ahead of them (plans were all decided before the first
    attendance was published). ``to_la`` is in partition order. The number of notices."""
    told = [(key, event_id) for kind, _, key, event_id, _ in to_la if kind == ACCESS_BACK]
    ids = Counter(event_id for _, event_id in told)
    assert sum(n - 1 for n in ids.values()) == 0, "an authority told twice of one plan"
    assert ids.keys() == plan_ids, "a plan the authority was not told of, or a stray notice"
    attended: set[bytes | None] = set()
    for kind, _, key, _, _ in to_la:
        if kind == ACCESS_BACK:
            assert key is not None and key not in attended, "a notice behind its attendances"
        else:
            attended.add(key)
    assert {key for key, _ in told} == attended, "a notice off its child's key"
    return len(told)


def assert_exact(
    got: Sequence[Delivery],
    expected: AbstractSet[tuple[str, str | None]],
    recipient: str,
    *,
    ordered: bool = True,
) -> None:
    """``got`` (in partition order) is exactly ``expected`` (who, arrival); with ``ordered``,
    each child's deliveries share one key and one partition, and arrive in order."""
    counts = Counter((who, arrival) for _, _, who, arrival in got)
    duplicates = sum(n - 1 for n in counts.values())
    missing = len(expected - counts.keys())
    unexpected = len(counts.keys() - expected)
    assert (duplicates, missing, unexpected) == (0, 0, 0), (
        f"{recipient}: {duplicates} duplicates, {missing} missing, {unexpected} unexpected"
    )
    if not ordered:
        return
    by_child: dict[str, list[Delivery]] = {}
    for row in got:
        by_child.setdefault(row[2], []).append(row)
    for rows in by_child.values():
        assert len({(part, key) for part, key, _, _ in rows}) == 1, (
            f"{recipient}: one child's deliveries under more than one key or partition"
        )
        arrivals = [arrival or "" for _, _, _, arrival in rows]
        assert "" not in arrivals and arrivals == sorted(arrivals), (
            f"{recipient}: a child's attendances out of order"
        )
        assert len(set(arrivals)) == len(arrivals)


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


def audits_per_input_from_core(
    workload: Workload,
    topics: Topics,
    keyring: Keyring,
    directory: Directory,
    schemas: SchemaRegistry,
) -> dict[tuple[str, bool], tuple[str, ...]]:
    """The reason codes of the audit records the pure core gives per event kind under the
    shipped protocols and directory (sorted), to hold beside AUDITS_PER_INPUT."""

    def audited(handled: Handled) -> tuple[str, ...]:
        codes = (
            orjson.loads(r.value or b"")["reason_code"]
            for r in handled.records
            if r.topic == topics.audit
        )
        return tuple(sorted(codes))

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
    counts: dict[tuple[str, bool], tuple[str, ...]] = {}
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
