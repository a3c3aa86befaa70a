"""Turn one input record into every record it causes: deliveries, audit, state, dead letter.

No Kafka client here: the loop hands in a plain record and writes what comes back in one
transaction. A record that cannot be processed becomes a dead letter plus its audit record;
it never stops the partition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from consent.core.consent import ConsentRecord, override_from
from consent.core.decide import Decision, EventFacts, Outcome, decide
from consent.core.model import Protocol, ProtocolSet, RuleKind
from consent.core.sealed import DataKeys
from consent.core.state import ProtectionPlan, SubjectState, next_state
from consent.processor import access_back
from consent.processor.dedup import Seen, duplicate_reason, seen_key
from consent.processor.disclosed import Decided, Disclosed, of_decisions
from consent.processor.recall import recall
from consent.processor.records import (
    ACTOR,
    AuditSubject,
    OutRecord,
    audit_record,
    delivery_record,
    header_text,
)
from services.backbone import deadletter, envelope
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.directory import Directory
from services.backbone.errors import BackboneError, EnvelopeError
from services.backbone.identifiers import (
    alias_identifiers,
    subject_identity,
)
from services.backbone.keyed import Key, routing_key
from services.backbone.keyring import Keyring
from services.backbone.recall import RECALL_REQUESTED, RECALLED_BEFORE
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import DISCLOSED, PROTECTION_PLANS, SEEN_EVENTS, Topics

# Under the producer's max_request_size and the broker's message.max.bytes (both ~1 MiB),
# with room for the batch framing.
MAX_RECORD_BYTES = 1_000_000
STAGE = "processor"  # its dead letters go to dlq.processor


@dataclass
class Handled:
    records: list[OutRecord]
    state_changes: dict[str, ProtectionPlan | None]
    decisions: list[Decision]
    dead_letter_reason: str | None = None
    seen_changes: dict[str, Seen] = field(default_factory=dict)
    suppressed: bool = False
    disclosed_changes: dict[str, Disclosed] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    topics: Topics
    protocols: ProtocolSet | Sequence[Protocol]
    schemas: SchemaRegistry
    pseudonym_keys: Mapping[str, Key]
    audit_key: Key
    routing: Key
    directory: Directory
    token_key: Key | None = None
    recipient_public: Mapping[str, X25519PublicKey] = field(default_factory=dict)
    trace_seal: Key | None = None  # seals the event's trace in deliveries (telemetry.TraceSeal)
    older_audit_keys: tuple[Key, ...] = ()  # audit subject keys since rotated (aliases)
    audit_id_key: Key | None = None  # keys its audit ids: no one can compute them ahead

    @property
    def id_key(self) -> bytes | None:
        return self.audit_id_key.secret if self.audit_id_key else None

    # Set by `infoshare replay`: decide again under today's protocols and consent, audited
    # as that run, without touching state or the duplicate memory.
    replay_run: str | None = None

    # The encrypt rule's data keys, a window per recipient (consent/core/sealed.py).
    data_keys: DataKeys = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Indexed once here, not per event.
        object.__setattr__(self, "protocols", ProtocolSet.of(self.protocols))
        object.__setattr__(self, "data_keys", DataKeys(self.recipient_public))

    @classmethod
    def from_keyring(
        cls,
        *,
        topics: Topics,
        protocols: ProtocolSet | Sequence[Protocol],
        schemas: SchemaRegistry,
        directory: Directory,
        keyring: Keyring,
    ) -> Context:
        """A context whose keys the keyring holds, or ConfigurationError naming the missing
        ones: a pseudonym key per recipient (agencies told of access back included), and
        the keys tokenise and encrypt rules need."""
        indexed = ProtocolSet.of(protocols)
        keyring.require_rule_keys(
            tokenising=indexed.recipients_using(RuleKind.TOKENISE),
            encrypting=indexed.recipients_using(RuleKind.ENCRYPT),
        )
        told = access_back.agencies_told(directory, schemas)
        recipients = {r.agency for p in indexed for r in p.recipients} | told
        return cls(
            topics=topics,
            protocols=indexed,
            schemas=schemas,
            pseudonym_keys=keyring.require_pseudonym_keys(recipients),
            audit_key=keyring.require_audit_subject(),
            routing=keyring.require_routing(),
            directory=directory,
            token_key=keyring.token_key(),
            recipient_public=keyring.recipient_public,
            trace_seal=keyring.trace_seal,
            older_audit_keys=keyring.keys_of("audit_subject")[1:],
            audit_id_key=keyring.require_audit_id(),
        )


def source_agency_of(topic: str, topics: Topics) -> str:
    prefix = topics.source("")
    return topic[len(prefix) :] if topic.startswith(prefix) else ""


SubjectConsents = Mapping[tuple[str, str], ConsentRecord]
NO_CONSENTS: Mapping[str, SubjectConsents] = {}


def _facts(
    rec: ReadRecord, ctx: Context, consents: Mapping[str, SubjectConsents]
) -> tuple[envelope.CloudEvent, EventFacts]:
    event = envelope.decode(rec.key, rec.value, rec.headers)
    agency = event.source_agency
    if agency != source_agency_of(rec.topic, ctx.topics):
        raise EnvelopeError(f"source {event.source} was published on another agency's topic")
    if not event.dataschema:
        raise EnvelopeError("missing ce_dataschema")
    schema = ctx.schemas.by_uri(event.dataschema)
    if schema.event_type != event.type:
        raise EnvelopeError(f"dataschema names {schema.event_type}, ce_type is {event.type}")
    schema.validate(event.data)
    kind = ctx.directory.agencies[agency].kind if agency in ctx.directory else None
    if kind is None or (
        event.type.split(".", 1)[0] != kind.value and event.type != RECALL_REQUESTED
    ):
        # A health trust cannot start a child protection plan, nor a school report an ED visit.
        raise EnvelopeError(f"agency {agency} ({kind}) may not publish {event.type} events")
    if event.type == RECALL_REQUESTED:
        # It names events, not a child: the processor remembers whom they were about.
        return event, EventFacts(event.id, event.type, agency, event.data, "")
    try:
        subject_id = subject_identity(event.data.get("subject") or {}, agency)
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from None
    # State is looked up by key: a key that is not this child's would consult another
    # child's plan (or none, if the publisher's routing secret differs from ours).
    if event.key != routing_key(ctx.routing, subject_id):
        raise EnvelopeError("the record key is not the routing key of the event's subject")
    override = override_from(event.data)
    if override is not None and envelope.has_control_characters(
        override.justification, override.role or ""
    ):
        # It would go into the audit record, which could then not be stored.
        raise EnvelopeError("safeguarding_override holds control characters")
    return event, EventFacts(
        event.id,
        event.type,
        agency,
        event.data,
        subject_id,
        occurred=event.time.date(),
        consents=consents.get(event.key, {}),
        override=override,
        supersedes=event.extensions.get(envelope.EXT_SUPERSEDES) or None,
    )


DeliveryTrace = Callable[[str], list[tuple[str, bytes]]]


def handle(
    rec: ReadRecord,
    ctx: Context,
    state: Mapping[str, ProtectionPlan | None],
    trace_id: str | None,
    delivery_trace: DeliveryTrace,
    consents: Mapping[str, SubjectConsents] = NO_CONSENTS,
    seen: Mapping[str, Seen] | None = None,
    *,
    audit_trace: Sequence[tuple[str, bytes]] = (),
    disclosed: Mapping[str, Disclosed] | None = None,
) -> Handled:
    """Everything one input record causes. Pure but for the clock and ``delivery_trace``,
    which gives a delivery to a topic trace headers of its own (a new trace linked to this
    one, so two recipients never share a trace id). ``audit_trace`` (this record's trace
    context) rides on its audit records, so the audit write joins the event's trace.
    ``seen`` is the duplicate memory; ``disclosed``, who received each event (for recalls).

    Any failure to understand the record makes it a dead letter; it never stops the loop.
    """
    handled = _handle(rec, ctx, state, trace_id, delivery_trace, consents, seen, disclosed or {})
    if audit_trace:
        for i, out in enumerate(handled.records):
            if out.topic == ctx.topics.audit and not out.headers:
                handled.records[i] = replace(out, headers=list(audit_trace))
    return handled


def _handle(
    rec: ReadRecord,
    ctx: Context,
    state: Mapping[str, ProtectionPlan | None],
    trace_id: str | None,
    delivery_trace: DeliveryTrace,
    consents: Mapping[str, SubjectConsents],
    seen: Mapping[str, Seen] | None,
    disclosed: Mapping[str, Disclosed],
) -> Handled:
    now = datetime.now(UTC)
    replay = ctx.replay_run
    try:
        event, facts = _facts(rec, ctx, consents)
        # A replay passes the memory of its own run: a copy later in the range is skipped.
        earlier = (seen or {}).get(seen_key(event))
        if earlier is not None:
            code, reason = duplicate_reason(earlier, rec.value)
            return suppressed(rec, ctx, event, code, reason, now=now, trace_id=trace_id)
        routing = event.key
        current = SubjectState(state.get(routing))
        if event.type == RECALL_REQUESTED:
            return _recall(rec, ctx, event, disclosed, state, now, trace_id, delivery_trace)
        remembered = disclosed.get(seen_key(event))
        if remembered is not None and remembered.recalled:
            # A copy read again after its publisher recalled it (a dead letter retried):
            # not shared again, as a duplicate is not.
            why = "its publisher recalled this event; it is not shared again"
            return suppressed(
                rec, ctx, event, RECALLED_BEFORE, why, now=now, trace_id=trace_id, word="recalled"
            )
        decisions = decide(
            facts,
            ctx.protocols,
            current,
            ctx.pseudonym_keys,
            token_key=ctx.token_key,
            recipient_keys=ctx.data_keys,
        )
        transition = next_state(
            current,
            event_type=event.type,
            source_agency=facts.source_agency,
            data=event.data,
            event_id=event.id,
        )
    except BackboneError as exc:
        return dead_letter(rec, ctx, str(exc), now=now, trace_id=trace_id)
    except Exception as exc:
        reason = f"unexpected {type(exc).__name__} while processing"
        return dead_letter(rec, ctx, reason, now=now, trace_id=trace_id)
    try:
        subject = audit_subject(ctx, event, facts.subject_id)
        out: list[OutRecord] = []
        for d in decisions:
            delivered = d.outcome is Outcome.SHARED and d.recipient and d.payload is not None
            topic_out = ctx.topics.deliver(d.recipient) if delivered and d.recipient else None
            if topic_out:
                trace = delivery_trace(topic_out)
                out.append(delivery_record(event, d, topic_out, trace, replay_run=replay))
            audit = audit_record(
                d,
                event,
                rec,
                now=now,
                subject=subject,
                topic_out=topic_out,
                trace_id=trace_id,
                replay_run=replay,
                id_key=ctx.id_key,
            )
            out.append(OutRecord(ctx.topics.audit, routing.encode(), audit))
        if replay:  # state and the duplicate memory are read, never written
            first = Seen.now(rec.value, now)
            return Handled(out, {}, decisions, seen_changes={seen_key(event): first})
        # Not on a replay: that is the hub deciding again, and the agency was told when the
        # event was first shared (the notice id would be the same, so it would drop it).
        out += access_back.records(
            event,
            decisions,
            rec,
            ctx,
            subject_id=facts.subject_id,
            subject=subject,
            now=now,
            trace_id=trace_id,
            delivery_trace=delivery_trace,
        )
        changes: dict[str, ProtectionPlan | None] = {}
        if transition is not None:
            changes[routing] = transition.plan
            value = transition.plan.to_bytes() if transition.plan else None
            out.append(_state(ctx, PROTECTION_PLANS, routing, value, rec))
        first = Seen.now(rec.value, now)
        out.append(_state(ctx, SEEN_EVENTS, seen_key(event), first.to_bytes(), rec))
        decided = Decided(
            event.type,
            (rec.topic, rec.partition, rec.offset),
            subject.key,
            subject.aliases,
            routing,
            starts_plan=transition is not None and transition.plan is not None,
        )
        shared = of_decisions(decisions, decided, at=now)
        remember = {seen_key(event): shared} if shared is not None else {}
        for key, entry in remember.items():
            out.append(_state(ctx, DISCLOSED, key, entry.to_bytes(), rec))
    except Exception as exc:
        reason = f"unexpected {type(exc).__name__} while building the outputs"
        return dead_letter(rec, ctx, reason, now=now, trace_id=trace_id)
    too_big = next((o for o in out if o.size() > MAX_RECORD_BYTES), None)
    if too_big is not None:
        # The broker would refuse it, and the batch with it, again and again: the
        # partition would stall. Deterministic here, so the input is dead-lettered instead.
        reason = (
            f"an output for {too_big.topic} would be {too_big.size()} bytes, over the "
            f"{MAX_RECORD_BYTES}-byte record limit"
        )
        return dead_letter(rec, ctx, reason, now=now, trace_id=trace_id)
    return Handled(
        out, changes, decisions, seen_changes={seen_key(event): first}, disclosed_changes=remember
    )


def _recall(
    rec: ReadRecord,
    ctx: Context,
    event: envelope.CloudEvent,
    disclosed: Mapping[str, Disclosed],
    state: Mapping[str, ProtectionPlan | None],
    now: datetime,
    trace_id: str | None,
    delivery_trace: DeliveryTrace,
) -> Handled:
    """A recall request: its notices and their audit records, and the memory of who was
    told. A replay sends no notice again (they went when the recall was first read)."""
    if ctx.replay_run:
        return Handled([], {}, [], suppressed=True)
    try:
        done = recall(
            event,
            rec,
            ctx,
            disclosed=disclosed,
            state=state,
            now=now,
            trace_id=trace_id,
            delivery_trace=delivery_trace,
        )
        out = done.records
        for key, entry in done.disclosed.items():
            out.append(_state(ctx, DISCLOSED, key, entry.to_bytes(), rec))
        for routing, plan in done.plan.items():
            value = plan.to_bytes() if plan else None
            out.append(_state(ctx, PROTECTION_PLANS, routing, value, rec))
        first = Seen.now(rec.value, now)
        out.append(_state(ctx, SEEN_EVENTS, seen_key(event), first.to_bytes(), rec))
    except BackboneError as exc:
        return dead_letter(rec, ctx, str(exc), now=now, trace_id=trace_id)
    except Exception as exc:
        reason = f"unexpected {type(exc).__name__} while recalling"
        return dead_letter(rec, ctx, reason, now=now, trace_id=trace_id)
    return Handled(
        out,
        done.plan,
        [],
        seen_changes={seen_key(event): first},
        disclosed_changes=done.disclosed,
    )


def _state(ctx: Context, name: str, key: str, value: bytes | None, rec: ReadRecord) -> OutRecord:
    """A changelog record on the input's partition number: source topics are co-partitioned,
    so an instance restores exactly the state of the partitions it was assigned."""
    return OutRecord(ctx.topics.state(name), key.encode(), value, partition=rec.partition)


def suppressed(
    rec: ReadRecord,
    ctx: Context,
    event: envelope.CloudEvent,
    code: str,
    reason: str,
    *,
    now: datetime,
    trace_id: str | None,
    word: str = "duplicate",
) -> Handled:
    """A copy not decided again (a duplicate; a recalled event read again): no delivery, no
    state change, one audit record saying why it was suppressed. ``word`` keeps its audit
    id apart from the record's others."""
    record = AuditRecord.about(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        protocol=word,
        id_key=ctx.id_key,
        recorded_at=now,
        occurred_at=event.time,
        action="suppress_duplicate",
        decision=AuditOutcome.SUPPRESSED,
        reason_code=code,
        reason=reason,
        actor=ACTOR,
        event_id=event.id,
        event_type=event.type,
        source_agency=event.source_agency,
        # A recall names no child (the processor's memory does): its copy is about nobody.
        **(audit_subject(ctx, event).fields() if event.type != RECALL_REQUESTED else {}),
        trace_id=trace_id,
    )
    audit = OutRecord(ctx.topics.audit, event.key.encode(), record.model_dump_json().encode())
    return Handled([audit], {}, [], suppressed=True)


def audit_subject(
    ctx: Context, event: envelope.CloudEvent, subject_id: str | None = None
) -> AuditSubject:
    """The event's subject as the audit trail knows it: keyed, with its other identifiers.
    ``subject_id``: its identity, when the caller has worked it out already."""
    subject = event.data["subject"]
    subject_id = subject_id or subject_identity(subject, event.source_agency)
    aliases = [a for a in alias_identifiers(subject, event.source_agency) if a != subject_id]
    return AuditSubject.of(ctx.audit_key, subject_id, aliases, ctx.older_audit_keys)


def dead_letter(
    rec: ReadRecord, ctx: Context, reason: str, *, now: datetime, trace_id: str | None
) -> Handled:
    """The original record, untouched, plus why (services/backbone/deadletter.py). The reason
    names rules and fields, never values (it is also the audit record's reason)."""
    origin = deadletter.Origin(rec.topic, rec.partition, rec.offset)
    headers = deadletter.dead_letter_headers(rec.headers, stage=STAGE, reason=reason, origin=origin)
    record = AuditRecord.about(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        id_key=ctx.id_key,
        recorded_at=now,
        action="dead_letter",
        decision=AuditOutcome.DEAD_LETTERED,
        reason_code="dead_letter.unprocessable",
        reason=reason,
        actor=ACTOR,
        event_id=header_text(rec.headers, "ce_id"),
        event_type=header_text(rec.headers, "ce_type"),
        source_agency=source_agency_of(rec.topic, ctx.topics) or None,
        topic_out=ctx.topics.dlq(STAGE),
        trace_id=trace_id,
    )
    audit = OutRecord(ctx.topics.audit, b"", record.model_dump_json().encode())
    dead = OutRecord(ctx.topics.dlq(STAGE), rec.key or b"", rec.value, headers)
    if dead.size() > MAX_RECORD_BYTES:  # the original itself is too big to keep: say so
        dropped = deadletter.dead_letter_headers(
            rec.headers, stage=STAGE, reason=reason, origin=origin, value_dropped="size"
        )
        dead = OutRecord(dead.topic, dead.key, None, dropped)
    return Handled([dead, audit], {}, [], dead_letter_reason=reason)
