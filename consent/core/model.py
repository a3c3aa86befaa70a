"""Sharing protocols (information sharing agreements) as immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IdentityLevel(StrEnum):
    IDENTIFIED = "identified"
    PSEUDONYMISED = "pseudonymised"


class Purpose(StrEnum):
    DIRECT_SAFEGUARDING = "direct_safeguarding"
    EARLY_HELP = "early_help"
    DIRECT_CARE = "direct_care"
    PLANNING = "planning"
    RESEARCH = "research"


class Condition(StrEnum):
    """Named conditions on the processor's subject state (CEL comes with the full engine)."""

    ALWAYS = "always"
    ACTIVE_PROTECTION_PLAN = "active_protection_plan"
    ACTIVE_PROTECTION_PLAN_HELD_BY_RECIPIENT = "active_protection_plan_held_by_recipient"


class RuleKind(StrEnum):
    ALLOW = "allow"
    GENERALISE = "generalise"
    PSEUDONYMISE = "pseudonymise"


class Generalisation(StrEnum):
    YEAR = "year"
    MONTH = "month"
    POSTCODE_DISTRICT = "postcode_district"


@dataclass(frozen=True)
class FieldRule:
    kind: RuleKind
    path: str
    target: str
    to: Generalisation | None = None


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
    condition: Condition
    fields: tuple[FieldRule, ...]


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

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def covers(self, source_agency: str, event_type: str) -> bool:
        return source_agency in self.source_agencies and event_type in self.event_types
