"""An amended record through the decision core and into the processor's records: each
recipient that is sent the amendment is told, in its own ids, which delivery it supersedes,
and the decision is recorded as an amendment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from consent.core.decide import EventFacts, Outcome, decide, delivery_id
from consent.core.state import ProtectionPlan, SubjectState
from consent.policy.load import load_protocols
from consent.processor.records import AuditSubject, audit_record, delivery_record
from deploy.devstack.demo import scenario
from services.backbone import envelope
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from tests.unit.factories import ATTENDANCE, ED, LA, attendance_data

FIRST, AMENDED = "event-v1", "event-v2"


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> Any:
    return load_protocols(None, directory=directory, schemas=schemas)


def _shared(shipped: Any, keyring: Keyring, event_id: str, supersedes: str | None) -> list[Any]:
    event = EventFacts(
        event_id,
        ATTENDANCE,
        ED,
        attendance_data(scenario.ON_PLAN),
        subject_identifier(nhs_number=scenario.ON_PLAN.nhs_number),
        supersedes=supersedes,
    )
    state = SubjectState(ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02"))
    decisions = decide(event, shipped, state, keyring.pseudonym, token_key=keyring.token_key())
    return [d for d in decisions if d.outcome is Outcome.SHARED]


def test_each_recipient_is_told_which_of_its_deliveries_an_amendment_supersedes(
    shipped: Any, keyring: Keyring
) -> None:
    before = {d.recipient: d for d in _shared(shipped, keyring, FIRST, None)}
    after = _shared(shipped, keyring, AMENDED, FIRST)
    assert len(after) == 2 and all(d.supersedes for d in after)  # the authority, public health
    for d in after:
        assert d.supersedes == before[d.recipient].delivery_id  # the id it already holds
        key = keyring.pseudonym[d.recipient]
        assert d.supersedes == delivery_id(key, d.recipient, f"{FIRST}|{d.protocol.ref}")
    # Ids differ across recipients: what one is told cannot be matched with another's.
    assert len({d.supersedes for d in after}) == len(after)
    assert all(d.supersedes is None for d in before.values())


def test_the_delivery_carries_it_and_the_audit_records_an_amendment(
    shipped: Any, keyring: Keyring
) -> None:
    (d, *_) = _shared(shipped, keyring, AMENDED, FIRST)
    event = envelope.CloudEvent(
        id=AMENDED,
        type=ATTENDANCE,
        source=envelope.agency_source(ED),
        data=attendance_data(scenario.ON_PLAN),
        key="k",
        extensions={envelope.EXT_SUPERSEDES: FIRST},
    )
    out = delivery_record(event, d, "deliver.x", [])
    assert dict(out.headers)[f"ce_{envelope.EXT_SUPERSEDES}"] == (d.supersedes or "").encode()
    record = orjson.loads(
        audit_record(
            d,
            event,
            ReadRecord("source.x", 0, 7, b"k", b"{}", []),
            now=datetime.now(UTC),
            subject=AuditSubject("s" * 64),
            topic_out="deliver.x",
            trace_id=None,
        )
    )
    assert record["action"] == "amend" and record["event_id"] == AMENDED
