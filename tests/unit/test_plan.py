"""Plans are compiled once per protocol set, and decide() through them seals under one data
key per recipient and window."""

from __future__ import annotations

import dataclasses
import os
from datetime import date

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consent.core.decide import EventFacts, Outcome, decide
from consent.core.model import (
    FieldRule,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    ProtocolSet,
    Purpose,
    RecipientRule,
    RuleKind,
)
from consent.core.plan import plans_for
from consent.core.sealed import DataKeys
from consent.core.state import ProtectionPlan, SubjectState
from services.agency.sealed import DataKeyCache, open_sealed
from services.backbone.keyed import Key

R1, R2 = "r-one", "r-two"


def _protocol() -> Protocol:
    def recipient(agency: str) -> RecipientRule:
        return RecipientRule(
            agency,
            IdentityLevel.PSEUDONYMISED,
            (
                FieldRule(RuleKind.ALLOW, "a.b", "a.b"),
                FieldRule(RuleKind.ENCRYPT, "a.secret", "a.sealed"),
            ),
        )

    return Protocol(
        id="p",
        version=3,
        title="p",
        owner="o",
        purpose=Purpose.DIRECT_CARE,
        lawful_basis=LawfulBasis("e"),
        source_agencies=frozenset({"src"}),
        event_types=frozenset({"t"}),
        recipients=(recipient(R1), recipient(R2)),
    )


def test_a_sets_plans_are_compiled_once_and_a_new_set_compiles_its_own() -> None:
    protocols = ProtocolSet((_protocol(),))
    first = plans_for(protocols, "src", "t")
    assert [p.recipient for p in first] == [R1, R2]
    assert plans_for(protocols, "src", "t") is first
    assert plans_for(ProtocolSet((_protocol(),)), "src", "t") is not first
    assert plans_for(protocols, "src", "other") == ()


def test_deciding_many_events_wraps_one_data_key_per_recipient() -> None:
    private = {r: X25519PrivateKey.generate() for r in (R1, R2)}
    data_keys = DataKeys({r: k.public_key() for r, k in private.items()})
    keys = {r: Key(f"k-{r}", os.urandom(32)) for r in (R1, R2)}
    protocols = ProtocolSet((_protocol(),))
    cache = DataKeyCache()
    for i in range(200):
        event = EventFacts(f"e{i}", "t", "src", {"a": {"b": i, "secret": f"s{i}"}}, "subj")
        for d in decide(event, protocols, SubjectState(), keys, recipient_keys=data_keys):
            assert d.outcome is Outcome.SHARED and d.payload is not None
            assert d.fields_encrypted == ("a.sealed",)
            sealed = d.payload["a"]["sealed"]
            assert d.recipient is not None
            clear = open_sealed(
                private[d.recipient], recipient=d.recipient, path="a.secret", sealed=sealed,
                cache=cache,
            )  # fmt: skip
            assert clear == f"s{i}"
    assert data_keys.wrapped == 2
    assert len(cache) == 2


def test_a_plans_state_reads_as_cel_expects() -> None:
    plan = ProtectionPlan("la", "CPP-1", "neglect", date(2026, 1, 2).isoformat())
    assert plan.to_json() == dataclasses.asdict(plan)
