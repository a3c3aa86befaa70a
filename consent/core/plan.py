"""Sharing plans: each (protocol version, recipient) compiled once into what deciding needs
for every event it covers, so no rule is re-read, no path re-parsed and no reason re-worded
per event.

A set's plans are compiled on first use per (source agency, event type) and kept with the
set, which is immutable: a protocol change loads a new set, with new plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from consent.core.fields import CompiledRules
from consent.core.model import IdentityLevel, Protocol, ProtocolSet, RecipientRule, RuleKind


@dataclass(frozen=True)
class Plan:
    protocol: Protocol
    rule: RecipientRule
    recipient: str
    identity: str
    rules: CompiledRules
    uses_tokens: bool
    needs_pseudonym: bool  # the subject's pseudonym is the record key or a field's value
    because: str  # "<ref> (<purpose>) allows <identity> sharing; ", before the consent reason
    ref: str

    @classmethod
    def of(cls, protocol: Protocol, rule: RecipientRule) -> Plan:
        return cls(
            protocol=protocol,
            rule=rule,
            recipient=rule.agency,
            identity=rule.identity.value,
            rules=CompiledRules(rule.fields),
            uses_tokens=any(f.kind is RuleKind.TOKENISE for f in rule.fields),
            needs_pseudonym=rule.identity is IdentityLevel.PSEUDONYMISED
            or any(
                f.kind is RuleKind.PSEUDONYMISE and f.path == "subject.nhs_number"
                for f in rule.fields
            ),
            because=f"{protocol.ref} ({protocol.purpose.value}) allows {rule.identity.value} "
            "sharing; ",
            ref=protocol.ref,
        )


def plans_for(protocols: ProtocolSet, source_agency: str, event_type: str) -> tuple[Plan, ...]:
    """The plans of every recipient of every protocol covering the event, in protocol and
    then recipient order."""
    key = (source_agency, event_type)
    found = cast("tuple[Plan, ...] | None", protocols.compiled.get(key))
    if found is None:
        found = tuple(Plan.of(p, r) for p in protocols.covering(*key) for r in p.recipients)
        protocols.compiled[key] = found
    return found
