"""Consent: what the registry says a subject (or their parent) agreed to, and how a
protocol's consent requirement turns that, or a safeguarding override, into share or
withhold. Pure values and functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from consent.core.model import ConsentRequirement, Protocol

ALL_RECIPIENTS = "*"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class GivenBy(StrEnum):
    CHILD = "child"
    PARENT = "parent"
    GUARDIAN = "guardian"


@dataclass(frozen=True)
class ConsentRecord:
    """One registry record, as kept on the compacted ``consent.records`` topic. It holds no
    identifier: the subject is the record key's routing key."""

    record_id: str
    version: int
    status: ConsentStatus
    purpose: str
    scope: str  # a recipient agency id, or "*" for every recipient of that purpose
    given_by: GivenBy
    recorded_by: str
    recorded_at: str
    evidence_ref: str | None = None
    # A grant lasts to the end of this day (ISO 8601 date), if given; after it, there is
    # no consent (withheld.consent_expired).
    valid_until: str | None = None

    def expired_on(self, day: date) -> bool:
        return self.valid_until is not None and date.fromisoformat(self.valid_until) < day

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ConsentRecord:
        return cls(
            record_id=str(doc["record_id"]),
            version=int(doc["version"]),
            status=ConsentStatus(doc["status"]),
            purpose=str(doc["purpose"]),
            scope=str(doc["scope"]),
            given_by=GivenBy(doc["given_by"]),
            recorded_by=str(doc["recorded_by"]),
            recorded_at=str(doc["recorded_at"]),
            evidence_ref=doc.get("evidence_ref"),
            valid_until=doc.get("valid_until"),
        )


def record_key(routing_key: str, purpose: str, scope: str) -> str:
    """The compacted topic's key: the latest record per subject, purpose and scope wins."""
    return f"{routing_key}|{purpose}|{scope}"


@dataclass(frozen=True)
class Override:
    """A publisher's statement that this event is shared without consent to safeguard a
    child (DPA 2018 Sch 1 para 18), and why."""

    justification: str
    role: str


@dataclass(frozen=True)
class ConsentOutcome:
    allowed: bool
    code: str  # a ReasonCode value
    reason: str
    record: ConsentRecord | None = None
    override: Override | None = None


_NOT_REQUIRED = ConsentOutcome(True, "shared.protocol_allows", "consent not required")


def evaluate(
    protocol: Protocol,
    recipient: str,
    consents: Mapping[tuple[str, str], ConsentRecord],
    override: Override | None,
    *,
    on: date | None = None,
) -> ConsentOutcome:
    """Whether the protocol's consent requirement lets this recipient have this event.

    ``consents`` are this subject's records by (purpose, scope): one for the recipient and
    one for every recipient (``*``). A refusal or withdrawal in either wins over a grant; a
    grant past its ``valid_until`` on ``on`` (the day of the decision) is no consent.
    """
    requirement = protocol.consent
    if requirement is ConsentRequirement.NOT_REQUIRED:
        return _NOT_REQUIRED
    purpose = protocol.purpose.value
    records = [
        r
        for r in (consents.get((purpose, recipient)), consents.get((purpose, ALL_RECIPIENTS)))
        if r is not None
    ]
    # A refusal or withdrawal at any scope outweighs a grant at any other: a family that
    # withdraws consent "for everyone" has withdrawn it from this recipient too.
    record = next((r for r in records if r.status is not ConsentStatus.GRANTED), None)
    # Else a grant still in force, at either scope; else the first, which has expired.
    in_force = [r for r in records if on is None or not r.expired_on(on)]
    record = record or (in_force[0] if in_force else records[0] if records else None)
    expired = (
        record is not None
        and record.status is ConsentStatus.GRANTED
        and on is not None
        and record.expired_on(on)
    )
    if record is not None and record.status is ConsentStatus.GRANTED and not expired:
        return ConsentOutcome(
            True,
            "shared.protocol_allows",
            f"consent {record.record_id} v{record.version} given by the {record.given_by}",
            record,
        )
    if override is not None and requirement is ConsentRequirement.REQUIRED_UNLESS_OVERRIDE:
        return ConsentOutcome(
            True,
            "shared.safeguarding_override",
            f"shared without consent under a safeguarding override by a {override.role} "
            "(DPA 2018 Sch 1 para 18); queued for IG review",
            record,
            override,
        )
    if record is None:
        code, why = "withheld.no_consent", f"no consent is recorded for {purpose}"
    elif expired:
        code, why = (
            "withheld.consent_expired",
            f"consent {record.record_id} expired after {record.valid_until}",
        )
    elif record.status is ConsentStatus.REFUSED:
        code, why = "withheld.consent_refused", f"consent {record.record_id} was refused"
    else:
        code, why = "withheld.consent_withdrawn", f"consent {record.record_id} was withdrawn"
    if override is not None:
        why += "; the protocol does not allow a safeguarding override"
    return ConsentOutcome(False, code, why, record)


def override_from(data: Mapping[str, Any]) -> Override | None:
    """The override an event carries in ``safeguarding_override`` (the schema checked it)."""
    raw = data.get("safeguarding_override")
    if not isinstance(raw, Mapping):
        return None
    return Override(justification=str(raw["justification"]), role=str(raw["role"]))
