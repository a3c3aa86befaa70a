"""Sharing protocols (information sharing agreements) as immutable values."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from consent.core.conditions import Condition


class IdentityLevel(StrEnum):
    IDENTIFIED = "identified"
    PSEUDONYMISED = "pseudonymised"
    ANONYMISED = "anonymised"


class Purpose(StrEnum):
    DIRECT_SAFEGUARDING = "direct_safeguarding"
    EARLY_HELP = "early_help"
    DIRECT_CARE = "direct_care"
    PLANNING = "planning"
    RESEARCH = "research"


class ConsentRequirement(StrEnum):
    NOT_REQUIRED = "not_required"
    REQUIRED = "required"
    REQUIRED_UNLESS_OVERRIDE = "required_unless_override"


class RuleKind(StrEnum):
    ALLOW = "allow"
    MASK = "mask"
    GENERALISE = "generalise"
    PSEUDONYMISE = "pseudonymise"
    TOKENISE = "tokenise"
    ENCRYPT = "encrypt"


class Generalisation(StrEnum):
    YEAR = "year"
    MONTH = "month"
    AGE_BAND = "age_band"
    POSTCODE_DISTRICT = "postcode_district"
    POSTCODE_AREA = "postcode_area"


@dataclass(frozen=True)
class FieldRule:
    kind: RuleKind
    path: str
    target: str
    to: Generalisation | None = None
    line: int = field(default=0, compare=False)  # where the protocol file says it


@dataclass(frozen=True)
class LawfulBasis:
    article6: str
    article9: str | None = None
    dpa2018_schedule1: str | None = None

    def describe(self) -> str:
        parts = [f"UK GDPR Art 6(1)({self.article6})"]
        if self.article9:
            parts.append(f"Art 9(2)({self.article9})")
        if self.dpa2018_schedule1:
            parts.append(f"DPA 2018 Sch 1 {self.dpa2018_schedule1}")
        return "; ".join(parts)


@dataclass(frozen=True)
class RecipientRule:
    agency: str
    identity: IdentityLevel
    fields: tuple[FieldRule, ...]
    condition: Condition | None = None
    condition_text: str | None = None  # what the condition means, for people
    retention: str | None = None  # ISO 8601 duration the recipient may keep what it gets
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Protocol:
    id: str
    version: int
    title: str
    owner: str
    purpose: Purpose
    lawful_basis: LawfulBasis
    source_agencies: frozenset[str]
    event_types: frozenset[str]
    recipients: tuple[RecipientRule, ...]
    consent: ConsentRequirement = ConsentRequirement.NOT_REQUIRED
    valid_from: date | None = None
    valid_until: date | None = None
    review_date: date | None = None
    origin: str = field(default="", compare=False)  # the file it was loaded from

    @functools.cached_property
    def ref(self) -> str:  # cached: read for every decision
        return f"{self.id}@{self.version}"

    def covers(self, source_agency: str, event_type: str) -> bool:
        return source_agency in self.source_agencies and event_type in self.event_types

    def in_force(self, on: date) -> bool:
        return (self.valid_from is None or self.valid_from <= on) and (
            self.valid_until is None or on <= self.valid_until
        )


@dataclass(frozen=True)
class ProtocolSet:
    """Protocols indexed by (source agency, event type), so finding the protocols that cover
    an event costs the same for ten protocols or ten thousand."""

    protocols: tuple[Protocol, ...]
    _index: dict[tuple[str, str], tuple[Protocol, ...]] = field(
        init=False, repr=False, compare=False
    )
    # What the decision core compiles from this set, kept with it (consent/core/plan.py).
    compiled: dict[tuple[str, str], object] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], list[Protocol]] = {}
        for protocol in self.protocols:
            for agency in protocol.source_agencies:
                for event_type in protocol.event_types:
                    index.setdefault((agency, event_type), []).append(protocol)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    @classmethod
    def of(cls, protocols: ProtocolSet | Sequence[Protocol]) -> ProtocolSet:
        return protocols if isinstance(protocols, ProtocolSet) else cls(tuple(protocols))

    def recipients_using(self, kind: RuleKind) -> set[str]:
        """The recipients some rule of ``kind`` applies to (to check their keys exist)."""
        return {
            r.agency
            for p in self.protocols
            for r in p.recipients
            if any(f.kind is kind for f in r.fields)
        }

    def covering(self, source_agency: str, event_type: str) -> tuple[Protocol, ...]:
        return self._index.get((source_agency, event_type), ())

    def __iter__(self) -> Iterator[Protocol]:
        return iter(self.protocols)

    def __len__(self) -> int:
        return len(self.protocols)
