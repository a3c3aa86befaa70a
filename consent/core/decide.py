"""The decision: for one event, per recipient, share (and exactly what) or withhold, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from consent.core import clock
from consent.core.consent import ConsentRecord, Override, evaluate
from consent.core.fields import TransformError, leaf_paths
from consent.core.model import IdentityLevel, Protocol, ProtocolSet, RecipientRule
from consent.core.plan import Plan, plans_for
from consent.core.sealed import DataKeys
from consent.core.state import SubjectState
from consent.core.tokens import tokenise
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import Key, keyed_id


class Outcome(StrEnum):
    SHARED = "shared"
    WITHHELD = "withheld"


class ReasonCode(StrEnum):
    PROTOCOL_ALLOWS = "shared.protocol_allows"
    CONDITION_NOT_MET = "withheld.condition_not_met"
    NO_PROTOCOL = "withheld.no_protocol"
    TRANSFORM_FAILED = "withheld.transform_failed"
    NOT_IN_FORCE = "withheld.protocol_not_in_force"
    NO_CONSENT = "withheld.no_consent"
    CONSENT_REFUSED = "withheld.consent_refused"
    CONSENT_WITHDRAWN = "withheld.consent_withdrawn"
    CONSENT_EXPIRED = "withheld.consent_expired"
    SAFEGUARDING_OVERRIDE = "shared.safeguarding_override"


@dataclass(frozen=True)
class EventFacts:
    """What the core needs of an event: its identity, its data and whom it is about."""

    id: str
    type: str
    source_agency: str
    data: Mapping[str, Any]
    subject_id: str
    occurred: date | None = None  # the event's date: age bands are computed for it
    consents: Mapping[tuple[str, str], ConsentRecord] = field(default_factory=dict)
    override: Override | None = None
    supersedes: str | None = None  # an amended record: the event id of the version before


# Not frozen, only slotted: three or more are made per event, and a frozen dataclass
# of this size takes four times as long to make (3.5 us against 0.85). Nothing
# changes one once made.
@dataclass(slots=True)
class Decision:
    recipient: str | None
    outcome: Outcome
    reason_code: ReasonCode
    reason: str
    protocol: Protocol | None = None
    identity: str | None = None
    payload: Mapping[str, Any] | None = field(default=None, repr=False)
    fields_disclosed: tuple[str, ...] = ()
    fields_pseudonymised: tuple[str, ...] = ()
    fields_withheld: tuple[str, ...] = ()
    fields_tokenised: tuple[str, ...] = ()
    fields_encrypted: tuple[str, ...] = ()
    key_id: str | None = None
    token_key_id: str | None = None
    consent: ConsentRecord | None = None
    override: Override | None = None
    delivery_key: str | None = None
    delivery_id: str | None = None
    # An amendment: the recipient's own id of the delivery it supersedes (under the same
    # protocol version), so the recipient can find what it replaces.
    supersedes: str | None = None


def pseudonym(key: Key, recipient: str, subject_id: str) -> str:
    """The recipient's stable pseudonym for a subject: keyed per recipient domain, so two
    recipients' pseudonyms for one child cannot be linked."""
    return keyed_id(key.secret, f"pseudonym:{recipient}", subject_id)


def field_pseudonym(
    key: Key, recipient: str, path: str, value: str, *, subject_id: str | None = None
) -> str:
    """A pseudonymised field's value. The subject's NHS number gives the subject pseudonym
    (the same as the delivery key: over ``subject_id``, the identity the event is keyed by,
    which the person index may have founded on another identifier); any other field is
    keyed with its path too."""
    if path == "subject.nhs_number":
        return pseudonym(key, recipient, subject_id or subject_identifier(nhs_number=value))
    return keyed_id(key.secret, f"pseudonym:{recipient}", f"{path}={value}")


def delivery_id(key: Key, recipient: str, event_id: str) -> str:
    """The id a recipient sees for an event: stable (a replay carries the same id, so the
    recipient can drop duplicates) but different per recipient, so ids cannot link records."""
    return keyed_id(key.secret, f"event:{recipient}", event_id)


@dataclass(slots=True)
class _Prepared:
    """What every recipient's decision reads of one event, computed once per event."""

    cel_event: Mapping[str, Any]
    cel_state: Mapping[str, Any]
    leaves: tuple[str, ...]
    today: date  # the event's date where it has one: age bands are computed for it
    on: date  # the day of the decision: consent must be in force then


def _condition_fails(plan: Plan, prepared: _Prepared) -> str | None:
    """Why the recipient's condition does not hold, or None if it holds (or there is none)."""
    rule = plan.rule
    if rule.condition is None:
        return None
    holds = rule.condition.holds(
        event=prepared.cel_event, state=prepared.cel_state, recipient=plan.recipient
    )
    if holds:
        return None
    meaning = rule.condition_text or rule.condition.source
    if holds is None:
        return f"its condition ({meaning}) cannot be evaluated for this event"
    return f"it shares only when {meaning}; this event does not meet that"


def _decide_for(
    event: EventFacts,
    plan: Plan,
    prepared: _Prepared,
    keys: Mapping[str, Key],
    token_key: Key | None,
    data_keys: DataKeys,
    dry_run: bool = False,
) -> Decision:
    protocol, rule, recipient = plan.protocol, plan.rule, plan.recipient
    failed = _condition_fails(plan, prepared)
    if failed is not None:
        return _withheld(protocol, rule, ReasonCode.CONDITION_NOT_MET, failed)
    consent = evaluate(protocol, recipient, event.consents, event.override, on=prepared.on)
    if not consent.allowed:
        return _withheld(
            protocol,
            rule,
            ReasonCode(consent.code),
            f"requires consent: {consent.reason}",
            consent=consent.record,
        )
    key = keys[recipient]
    # The subject's pseudonym is the record key of a pseudonymised delivery and the value
    # of a pseudonymised NHS number: one HMAC serves both.
    subject_pseudonym = (
        pseudonym(key, recipient, event.subject_id)
        if plan.needs_pseudonym and not dry_run
        else None
    )
    try:
        if plan.uses_tokens and token_key is None:
            raise TransformError("the keyring has no active token key")

        def pseudonymised(path: str, value: str) -> str:
            if path == "subject.nhs_number" and event.subject_id and subject_pseudonym:
                return subject_pseudonym
            return field_pseudonym(key, recipient, path, value, subject_id=event.subject_id)

        def token(path: str, value: str) -> str:
            assert token_key is not None
            return tokenise(token_key, recipient=recipient, path=path, value=value)

        def sealed(path: str, value: str) -> str:
            if not data_keys.has(recipient):
                raise TransformError(f"no public key is configured for {recipient}")
            if dry_run:
                return DRY_RUN_VALUE
            return data_keys.seal(recipient=recipient, path=path, value=value)

        projection = (
            plan.rules.outline(
                event.data, pseudonymise=_dry, tokenise=_dry, encrypt=sealed, on=prepared.today
            )
            if dry_run
            else plan.rules.project(
                event.data,
                pseudonymise=pseudonymised,
                tokenise=token,
                encrypt=sealed,
                on=prepared.today,
                leaves=prepared.leaves,
            )
        )
    except TransformError as exc:
        return _withheld(
            protocol,
            rule,
            ReasonCode.TRANSFORM_FAILED,
            f"a field rule cannot be applied to this event: {exc}",
        )
    return Decision(
        recipient=recipient,
        outcome=Outcome.SHARED,
        reason_code=_REASON_CODES[consent.code],
        reason=plan.because + consent.reason,
        consent=consent.record,
        # An override the event claimed is recorded even where consent was not needed.
        override=consent.override or event.override,
        protocol=protocol,
        identity=plan.identity,
        payload=projection.payload,
        fields_disclosed=projection.disclosed,
        fields_pseudonymised=projection.pseudonymised,
        fields_withheld=projection.withheld,
        fields_tokenised=projection.tokenised,
        fields_encrypted=projection.encrypted,
        key_id=key.key_id,
        token_key_id=token_key.key_id if plan.uses_tokens and token_key else None,
        # An anonymised recipient gets no subject key at all, not even in the record key.
        delivery_key=None
        if dry_run
        else _delivery_key(key, rule, event.subject_id, subject_pseudonym),
        delivery_id=None if dry_run else delivery_id(key, recipient, f"{event.id}|{plan.ref}"),
        supersedes=None
        if dry_run or event.supersedes is None
        else delivery_id(key, recipient, f"{event.supersedes}|{plan.ref}"),
    )


# What a dry run puts where a keyed or sealed value would be: no key is used, and the
# outcome and field lists are what the real decision gives (no keyed transform can fail on
# a value; a missing key fails alike).
DRY_RUN_VALUE = "(dry run)"


def _dry(_path: str, _value: str) -> str:
    return DRY_RUN_VALUE


_REASON_CODES = {code.value: code for code in ReasonCode}


def decide(
    event: EventFacts,
    protocols: ProtocolSet | Sequence[Protocol],
    state: SubjectState,
    keys: Mapping[str, Key],
    *,
    token_key: Key | None = None,
    recipient_keys: DataKeys | Mapping[str, X25519PublicKey] | None = None,
    on: date | None = None,
    dry_run: bool = False,
) -> list[Decision]:
    """Every decision for ``event``: one per recipient rule of every protocol covering it,
    or one ``withheld.no_protocol`` decision when no protocol covers it at all.

    ``keys`` maps each recipient to its pseudonym key; the delivery key is always the
    recipient's pseudonym, so record keys never let two recipients link a child.
    ``recipient_keys`` seals the encrypt rule's fields: the caller's ``DataKeys``, which
    reuse a data key per recipient for a window, or public keys (then each call draws its
    own data keys). ``dry_run``: the same outcomes, reasons and field lists (but for
    ``fields_withheld``, left empty) with no payload, no keyed or sealed value and no
    delivery key or id: for simulations, at a fraction of the cost.
    """
    protocol_set = ProtocolSet.of(protocols)
    if not protocol_set.covering(event.source_agency, event.type):
        return [
            Decision(
                recipient=None,
                outcome=Outcome.WITHHELD,
                reason_code=ReasonCode.NO_PROTOCOL,
                reason=f"no protocol covers {event.type} from {event.source_agency}",
            )
        ]
    today = on or clock.today()
    prepared = _Prepared(
        cel_event={"type": event.type, "source": event.source_agency, "data": event.data},
        cel_state=state.as_cel(),
        leaves=() if dry_run else tuple(leaf_paths(event.data)),
        today=event.occurred or today,
        on=today,
    )
    data_keys = (
        recipient_keys if isinstance(recipient_keys, DataKeys) else DataKeys(recipient_keys or {})
    )
    return [
        _decide_for(event, plan, prepared, keys, token_key, data_keys, dry_run)
        if plan.protocol.in_force(today)
        else _not_in_force(plan.protocol, plan.rule, today)
        for plan in plans_for(protocol_set, event.source_agency, event.type)
    ]


def _delivery_key(
    key: Key, rule: RecipientRule, subject_id: str, subject_pseudonym: str | None
) -> str | None:
    """The record key of a delivery. Pseudonymised: the recipient's pseudonym, which it can
    see in the payload anyway. Identified: a different keyed value, so that a recipient that
    is identified under one protocol and pseudonymised under another cannot join the two by
    record key. Anonymised: none at all."""
    if rule.identity is IdentityLevel.ANONYMISED:
        return None
    if rule.identity is IdentityLevel.PSEUDONYMISED:
        return subject_pseudonym or pseudonym(key, rule.agency, subject_id)
    return identified_key(key, rule.agency, subject_id)


def identified_key(key: Key, recipient: str, subject_id: str) -> str:
    """The record key of everything a recipient gets about a subject with identifiers in it
    (identified deliveries, access-back notices): one per recipient and child, so a
    recipient's records about one child stay in order on one partition, and unlinkable to
    its pseudonym for the same child."""
    return keyed_id(key.secret, f"key:{recipient}:identified", subject_id)


def _not_in_force(protocol: Protocol, rule: RecipientRule, today: date) -> Decision:
    window = f"valid {protocol.valid_from or '...'} to {protocol.valid_until or '...'}"
    return _withheld(protocol, rule, ReasonCode.NOT_IN_FORCE, f"not in force on {today} ({window})")


def _withheld(
    protocol: Protocol,
    rule: RecipientRule,
    code: ReasonCode,
    why: str,
    consent: ConsentRecord | None = None,
) -> Decision:
    return Decision(
        recipient=rule.agency,
        outcome=Outcome.WITHHELD,
        reason_code=code,
        reason=f"{protocol.ref}: {why}",
        protocol=protocol,
        identity=rule.identity.value,
        consent=consent,
    )
