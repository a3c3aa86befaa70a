"""Protocols for tests of retention: only their ids, versions and recipients' retentions
matter (``RetentionRules.of`` reads nothing else)."""

from __future__ import annotations

from consent.core.model import (
    FieldRule,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    Purpose,
    RecipientRule,
    RuleKind,
)


def protocol(pid: str, version: int, *recipients: tuple[str, str | None]) -> Protocol:
    """Protocol ``pid@version`` sharing with each (recipient, its retention or None)."""
    return Protocol(
        id=pid,
        version=version,
        title="t",
        owner="o",
        purpose=Purpose.DIRECT_SAFEGUARDING,
        lawful_basis=LawfulBasis("e"),
        source_agencies=frozenset({"source"}),
        event_types=frozenset({"x"}),
        recipients=tuple(
            RecipientRule(
                agency=agency,
                identity=IdentityLevel.IDENTIFIED,
                fields=(FieldRule(RuleKind.ALLOW, "a", "a"),),
                retention=retention,
            )
            for agency, retention in recipients
        ),
    )
