"""A period of being looked after, started and ended: mapped to canonical events, and never
where the child is placed (no model accepts it, no schema has room for it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.backbone.errors import InputRejected, SchemaViolation
from services.backbone.schemas import SchemaRegistry
from services.socialcare import mapping_looked_after as mapping
from services.socialcare.codes import ssda903
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted
from tests.unit.socialcare_data import AUTHORITY, sample

TEAM = {
    "team": "Northshire Children in Care Team",
    "phone": "0300 555 0190",
    "email": "childrenincare@northshire.example",
}
ISLA = {"la_person_id": "NS-104362", "nhs_number": "9990000670", "upn": "W823412626002"}
PLACEMENT_ADDRESS = "14 Hypothetical Row, Northtown NS4 7QP"  # fictional


def started(body: dict[str, Any]) -> dict[str, Any]:
    native = LookedAfterStarted.model_validate(body)
    return mapping.looked_after_started(native, authority_name=AUTHORITY)


def ended(body: dict[str, Any]) -> dict[str, Any]:
    native = LookedAfterEnded.model_validate(body)
    return mapping.looked_after_ended(native, authority_name=AUTHORITY)


def test_maps_the_start_of_care(schemas: SchemaRegistry) -> None:
    data = started(sample("looked-after-episodes"))
    assert data == {
        "subject": {
            **ISLA,
            "given_name": "Isla",
            "family_name": "Fixturechild",
            "date_of_birth": "2015-02-03",
        },
        "episode": {
            "episode_id": "LAC-2026-0311",
            "start_date": "2026-11-21",
            "legal_status": {"code": "C1", "category": "care_order"},
            "placement": {"code": "U6", "category": "foster"},
        },
        "authority": {"name": AUTHORITY, "contact": TEAM},
    }
    schemas.get(mapping.LOOKED_AFTER_STARTED).validate(data)


def test_maps_the_end_of_care_with_ids_only(schemas: SchemaRegistry) -> None:
    data = ended(sample("looked-after-episodes-ended"))
    assert data == {
        "subject": ISLA,
        "episode": {
            "episode_id": "LAC-2026-0311",
            "start_date": "2026-11-21",
            "end_date": "2027-08-04",
            "reason_ended": {"code": "E4A", "category": "returned_to_family"},
        },
        "authority": {"name": AUTHORITY, "contact": TEAM},
    }
    schemas.get(mapping.LOOKED_AFTER_ENDED).validate(data)


def test_the_end_is_a_different_native_record_from_the_start() -> None:
    assert mapping.ended_native_id("LAC-2026-0311") == "LAC-2026-0311|ended"


def test_an_end_without_its_start_date_is_mapped(schemas: SchemaRegistry) -> None:
    body = sample("looked-after-episodes-ended")
    del body["episode"]["startDate"]
    data = ended(body)
    assert "start_date" not in data["episode"]
    schemas.get(mapping.LOOKED_AFTER_ENDED).validate(data)


def test_x1_is_refused_because_the_child_is_still_looked_after() -> None:
    body = sample("looked-after-episodes-ended")
    body["episode"]["reasonEnded"] = "X1"
    with pytest.raises(InputRejected) as info:
        ended(body)
    assert (info.value.loc, info.value.rule) == (
        ["body", "episode", "reasonEnded"],
        "episode.reason_ended.not_an_end",
    )


def test_care_cannot_end_before_it_started() -> None:
    body = sample("looked-after-episodes-ended")
    body["episode"]["endDate"] = "2026-11-20"
    with pytest.raises(InputRejected) as info:
        ended(body)
    assert (info.value.loc, info.value.rule) == (
        ["body", "episode", "endDate"],
        "episode.dates.order",
    )


ADDRESS_FIELDS = [
    ("episode", "placementAddress", PLACEMENT_ADDRESS),
    ("episode", "placementPostcode", "NS4 7QP"),
    ("episode", "address", {"line1": "14 Hypothetical Row", "postcode": "NS4 7QP"}),
    ("episode", "postcode", "NS4 7QP"),
    ("episode", "placement", {"type": "U6", "postcode": "NS4 7QP"}),
    ("child", "address", PLACEMENT_ADDRESS),
    ("child", "postcode", "NS4 7QP"),
    (None, "placementAddress", PLACEMENT_ADDRESS),
]


@pytest.mark.parametrize("name", ["looked-after-episodes", "looked-after-episodes-ended"])
@pytest.mark.parametrize(("parent", "key", "value"), ADDRESS_FIELDS)
def test_a_placement_address_is_refused_and_never_echoed(
    name: str, parent: str | None, key: str, value: Any
) -> None:
    body = sample(name)
    (body[parent] if parent else body)[key] = value
    model = LookedAfterStarted if name == "looked-after-episodes" else LookedAfterEnded
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    (error,) = info.value.errors(include_input=False)
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ((parent, key) if parent else (key,))
    assert "NS4" not in error["msg"] and "Hypothetical" not in error["msg"]


def property_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                yield from value
            yield from property_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from property_names(item)


@pytest.mark.parametrize("event_type", [mapping.LOOKED_AFTER_STARTED, mapping.LOOKED_AFTER_ENDED])
def test_no_event_schema_or_native_model_has_room_for_an_address(
    schemas: SchemaRegistry, event_type: str
) -> None:
    names = set(property_names(schemas.get(event_type).document))
    names |= set(property_names(LookedAfterStarted.model_json_schema()))
    names |= set(property_names(LookedAfterEnded.model_json_schema()))
    assert "episode_id" in names and "placementType" in names  # the walk sees both
    assert not [n for n in names if any(w in n.lower() for w in ("address", "postcode", "where"))]


def test_the_schema_refuses_a_placement_postcode_added_after_mapping(
    schemas: SchemaRegistry,
) -> None:
    data = started(sample("looked-after-episodes"))
    data["episode"]["placement"]["postcode"] = "NS4 7QP"
    with pytest.raises(SchemaViolation) as info:
        schemas.get(mapping.LOOKED_AFTER_STARTED).validate(data)
    assert "NS4" not in str(info.value)


@given(
    legal_status=st.sampled_from(list(ssda903.LEGAL_STATUS.codes)),
    placement=st.sampled_from(list(ssda903.PLACEMENT.codes)),
    ids=st.sampled_from(
        [
            {"personId": "NS-1"},
            {"personId": "NS-1", "upn": "T82341262600A"},
            {"personId": "NS-1", "nhsNumber": "9990000905"},
        ]
    ),
)
def test_any_legal_status_and_placement_map_to_a_valid_event_without_a_location(
    schemas: SchemaRegistry, legal_status: str, placement: str, ids: dict[str, str]
) -> None:
    body = sample("looked-after-episodes")
    body["child"] = ids
    body["episode"].update(legalStatus=legal_status, placementType=placement)
    data = started(body)
    schemas.get(mapping.LOOKED_AFTER_STARTED).validate(data)
    assert data["episode"]["legal_status"]["code"] == legal_status
    assert data["episode"]["placement"] == ssda903.PLACEMENT.canonical(placement)
    assert set(data["episode"]) == {"episode_id", "start_date", "legal_status", "placement"}
