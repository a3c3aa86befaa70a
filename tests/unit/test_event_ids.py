"""Event ids: the same record gives the same id (copies are recognised), and the id cannot
be computed, or reversed, without the keyring: a natural key may hold a pupil's UPN."""

from __future__ import annotations

import uuid

from services.backbone.keyed import Key
from services.backbone.publisher import EventBuilder
from services.backbone.schemas import SchemaRegistry

NATIVE = "attendance|H999400116001|2026-09-03|2026-12-18"


def builder(secret: bytes) -> EventBuilder:
    return EventBuilder(
        agency_id="school-oakfield", schemas=SchemaRegistry.load(), routing=Key("r", secret)
    )


def test_the_same_record_has_the_same_id_and_another_record_another() -> None:
    b = builder(b"k" * 32)
    first = b.event_id("education.attendance.concern", NATIVE)
    assert first == b.event_id("education.attendance.concern", NATIVE)
    assert first != b.event_id("education.attendance.concern", NATIVE + "x")
    assert first != b.event_id("education.exclusion.recorded", NATIVE)
    parsed = uuid.UUID(first)
    assert parsed.version == 8 and parsed.variant == uuid.RFC_4122


def test_the_id_depends_on_the_key_and_is_not_an_unkeyed_hash() -> None:
    a = builder(b"k" * 32).event_id("education.attendance.concern", NATIVE)
    b = builder(b"j" * 32).event_id("education.attendance.concern", NATIVE)
    assert a != b
    name = f"school-oakfield|education.attendance.concern|{NATIVE}"
    for namespace in (uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.NAMESPACE_OID):
        assert a != str(uuid.uuid5(namespace, name))
    assert "H999400116001" not in a


def test_an_id_remembered_is_the_one_made_and_is_forgotten_with_its_native_id() -> None:
    b = builder(b"k" * 32)
    fresh = builder(b"k" * 32)
    asked = [("education.attendance.concern", NATIVE, v) for v in (1, 2, 1)]
    assert [b.event_id(*a) for a in asked] == [fresh.event_id(*a) for a in asked]
    assert len({b.event_id(*a) for a in asked}) == 2  # each version its own id
    b.forget_ids()
    assert "H999400116001" not in repr(vars(b))  # the UPN in the native id is gone
    assert b.event_id(*asked[0]) == fresh.event_id(*asked[0])
