"""POST /fhir/Flag: an active safeguarding Flag to health.safeguarding.concern, from HL7's R4
flag example (adapted: active, a SNOMED CT safeguarding concept, an NHS number)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.backbone.schemas import SchemaRegistry
from services.health.fhir_codes import SAFEGUARDING_CONCEPTS, SAFEGUARDING_CONCERN
from tests.unit.health_data import Change, mapped, rejected, sample
from tests.unit.strategies import valid_nhs_numbers


def test_maps_the_adapted_hl7_flag(schemas: SchemaRegistry) -> None:
    event = mapped("flag-safeguarding")
    assert (event.event_type, event.native_id) == (SAFEGUARDING_CONCERN, "Flag/SG-2026-0042")
    assert event.data == {
        "subject": {"nhs_number": "9990000344"},
        "concern": {
            "flag_id": "SG-2026-0042",
            "category": "neglect",
            "unborn": False,
            "start_date": "2026-11-21",
            "code": {
                "system": "http://snomed.info/sct",
                "code": "802271000000100",
                "display": "Child protection category neglect",
            },
            "summary": "Attended ED unkempt and hungry late at night; third attendance this "
            "month with no adult able to say when she last ate",
            "raised_by": {"ods_code": "RVR01", "name": "Riverside General Hospital ED"},
        },
    }
    schemas.get(SAFEGUARDING_CONCERN).validate(event.data)


def _code(code: str) -> Change:
    return lambda d: d["code"]["coding"][0].update(code=code)


@pytest.mark.parametrize("code", sorted(SAFEGUARDING_CONCEPTS))
def test_every_listed_concept_maps_to_its_category(code: str, schemas: SchemaRegistry) -> None:
    concern = mapped("flag-safeguarding", _code(code)).data["concern"]
    known = SAFEGUARDING_CONCEPTS[code]
    assert (concern["category"], concern["unborn"]) == (known.category, known.unborn)
    schemas.get(SAFEGUARDING_CONCERN).validate(mapped("flag-safeguarding", _code(code)).data)


def test_the_concept_may_follow_other_codings_and_its_display_is_the_fallback_summary() -> None:
    def local_first(doc: dict[str, Any]) -> None:
        doc["code"] = {
            "coding": [
                {"system": "https://riverside.example/flags", "code": "SG", "display": "SG"},
                {"system": "http://snomed.info/sct", "code": "1188261000000103"},
            ]
        }

    concern = mapped("flag-safeguarding", local_first).data["concern"]
    assert concern["category"] == "exploitation"
    assert concern["summary"] == "At risk of criminal exploitation"
    assert concern["code"]["display"] == "At risk of criminal exploitation"


def test_a_date_only_period_start_and_an_author_without_ods_code() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["period"] = {"start": "2026-11-21"}
        doc["author"] = {"reference": "Practitioner/example", "display": "Nancy Nurse"}

    concern = mapped("flag-safeguarding", change).data["concern"]
    assert concern["start_date"] == "2026-11-21"
    assert "raised_by" not in concern


def test_the_start_date_is_the_day_in_the_offset_it_was_recorded_in() -> None:
    late = mapped(
        "flag-safeguarding", lambda d: d["period"].update(start="2026-07-01T00:30:00+01:00")
    )
    assert late.data["concern"]["start_date"] == "2026-07-01"


def test_the_unchanged_hl7_example_is_refused_as_inactive() -> None:
    error = rejected(sample("hl7-r4/flag-example"), "Flag")
    assert (error.loc, error.rule) == (["body", "status"], "flag.status")


def test_a_non_safeguarding_flag_is_never_published_as_a_concern() -> None:
    big_dog = sample("hl7-r4/flag-example", lambda d: d.update(status="active"))
    error = rejected(big_dog, "Flag")
    assert (error.loc, error.rule) == (["body", "code", "coding"], "flag.code")


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (lambda d: d.update(status="inactive"), ["body", "status"], "flag.status"),
        (lambda d: d.update(status="entered-in-error"), ["body", "status"], "flag.status"),
        (
            lambda d: d["code"]["coding"][0].update(system="http://example.org/local"),
            ["body", "code", "coding"],
            "flag.code",
        ),
        (lambda d: d["code"].pop("coding"), ["body", "code", "coding"], "flag.code"),
        (lambda d: d.pop("period"), ["body", "period", "start"], "flag.period"),
        (lambda d: d["period"].update(start="2026-11"), ["body", "period", "start"], "flag.period"),
        (lambda d: d["code"].update(text="x" * 2001), ["body", "code", "text"], "flag.summary"),
        (
            lambda d: d.update(subject={"reference": "Patient/example"}),
            ["body", "subject"],
            "flag.subject",
        ),
        # Flag.subject is 1..1 in FHIR R4: the model refuses it.
        (lambda d: d.pop("subject"), ["body", "subject"], "fhir.invalid"),
        (
            lambda d: d["subject"]["identifier"].update(value="999000034"),
            ["body", "subject", "identifier", "value"],
            "nhs_number.format",
        ),
        (
            lambda d: d["subject"].update(
                identifier={"system": "https://fhir.nhs.uk/Id/nhs-number"}
            ),
            ["body", "subject", "identifier"],
            "nhs_number.missing",
        ),
        (lambda d: d.pop("code"), ["body", "code"], "fhir.invalid"),
        (
            lambda d: d.update(resourceType="Encounter"),
            ["body", "resourceType"],
            "fhir.resource_type",
        ),
    ],
    ids=[
        "inactive",
        "entered-in-error",
        "local-code-only",
        "text-only",
        "no-period",
        "partial-start",
        "summary-too-long",
        "unresolvable-subject",
        "no-subject",
        "nine-digits",
        "no-nhs-number",
        "no-code",
        "wrong-resource-type",
    ],
)
def test_rejections_name_the_element_and_rule(change: Change, loc: list[Any], rule: str) -> None:
    error = rejected(sample("flag-safeguarding", change), "Flag")
    assert (error.loc, error.rule) == (loc, rule)
    assert "99900003" not in error.msg


@given(valid_nhs_numbers(), st.integers(min_value=1, max_value=9))
def test_any_valid_nhs_number_is_kept_and_any_other_check_digit_refused_unechoed(
    number: str, shift: int
) -> None:
    def named(value: str) -> Change:
        return lambda d: d["subject"]["identifier"].update(value=value)

    assert mapped("flag-safeguarding", named(number)).data["subject"] == {"nhs_number": number}
    wrong = number[:9] + str((int(number[9]) + shift) % 10)
    error = rejected(sample("flag-safeguarding", named(wrong)), "Flag")
    assert (error.loc, error.rule) == (
        ["body", "subject", "identifier", "value"],
        "nhs_number.check_digit",
    )
    assert wrong not in error.msg
