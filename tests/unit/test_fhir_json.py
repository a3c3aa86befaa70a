"""FHIR's JSON types, checked before the models read a document (services/health/
fhir_json.py): the fhir.resources models took ``"birthDate": 0`` as 1 January 1970, a
number of seconds as an arrival time and ``"true"`` as true. Every published example still
passes; any one primitive given another JSON type is refused, naming it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import fhirtypes, get_fhir_model_class

from deploy.devstack.demo import scenario
from services.backbone.errors import InputRejected
from services.health import fhir_json
from services.health.fhir_json import type_problem
from services.health.fhir_mapping import attendance_from_bundle

DATA = Path(__file__).resolve().parents[1] / "data" / "health"
EXAMPLES = sorted(DATA.rglob("*.json"))
Loc = tuple[str | int, ...]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.relative_to(DATA).as_posix() for p in EXAMPLES])
def test_every_published_and_sample_resource_has_its_fhir_json_types(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert type_problem(doc, get_fhir_model_class(doc["resourceType"])) is None


def test_a_date_of_birth_sent_as_a_number_is_refused_not_read_as_1970() -> None:
    doc = copy.deepcopy(scenario.attendance_bundle(scenario.ON_PLAN))
    doc["entry"][0]["resource"]["birthDate"] = 0
    with pytest.raises(InputRejected) as refused:
        attendance_from_bundle(doc)
    assert refused.value.loc == ["body", "entry", 0, "resource", "birthDate"]
    assert (refused.value.rule, refused.value.msg) == (
        "fhir.invalid",
        "FHIR R4 JSON: this element must be a string",
    )


def _leaves(doc: Any, loc: Loc = ()) -> list[tuple[Loc, Any]]:
    """Every primitive in ``doc``, where it is."""
    if isinstance(doc, dict):
        return [
            leaf for k, v in doc.items() if k != "resourceType" for leaf in _leaves(v, (*loc, k))
        ]
    if isinstance(doc, list):
        return [leaf for i, v in enumerate(doc) for leaf in _leaves(v, (*loc, i))]
    return [(loc, doc)]


def _wrong(value: Any) -> list[Any]:
    """Values of every other JSON type than ``value``'s, as a careless sender writes them."""
    if isinstance(value, bool):
        return [str(value).lower(), int(value)]
    if isinstance(value, int | float):
        return [str(value), True]
    return [0, 1790000000, True, False]


BUNDLES = [scenario.attendance_bundle(scenario.ON_PLAN)]
SAMPLES = [json.loads(p.read_text()) for p in EXAMPLES]
CASES = [
    (doc, loc, wrong)
    for doc in [*BUNDLES, *SAMPLES]
    for loc, value in _leaves(doc)
    for wrong in _wrong(value)
]


def test_any_primitive_given_another_json_type_is_named() -> None:
    """Every primitive of every sample and published example, one at a time, given each
    other JSON type: each is refused where it is."""
    missed = []
    for original, loc, wrong in CASES:
        doc = copy.deepcopy(original)
        holder = doc
        for key in loc[:-1]:
            holder = holder[key]
        holder[loc[-1]] = wrong
        found = type_problem(doc, get_fhir_model_class(doc["resourceType"]))
        if found is None or found[0] != loc:
            missed.append((doc["resourceType"], loc, wrong))
    assert missed == [] and len(CASES) > 1000
    assert {type(wrong) for _, _, wrong in CASES} == {bool, int, str}


# FHIR JSON whose shapes the samples lack, each valid: a repeated primitive padded with
# nulls beside its extensions, comments, a contained resource inside a contained one, an
# integer-valued decimal and a very large one, a quantity.
VALID_SHAPES: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "fhir_comments": ["a comment"],
    "name": [{"given": ["Ann", None, "Lee"], "_given": [None, {"extension": []}, None]}],
    "_birthDate": {"fhir_comments": "given by the parent"},
    "birthDate": "2016-04-09",
    "multipleBirthInteger": 2,
    "extension": [
        {"url": "http://example.org/weight", "valueDecimal": 100},
        {"url": "http://example.org/count", "valueDecimal": 12345678901234567890},
        {"url": "http://example.org/height", "valueQuantity": {"value": 1.5e2, "unit": "cm"}},
        {"url": "http://example.org/flag", "valueBoolean": False},
    ],
    "contained": [
        {
            "resourceType": "Organization",
            "id": "o1",
            "active": True,
            "contained": [{"resourceType": "Location", "id": "l1", "status": "active"}],
        }
    ],
}


def test_valid_fhir_json_of_every_shape_passes_and_the_model_reads_it() -> None:
    patient = get_fhir_model_class("Patient")
    assert type_problem(VALID_SHAPES, patient) is None
    patient.model_validate(VALID_SHAPES)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"multipleBirthInteger": 2.0}, ("multipleBirthInteger",)),  # an integer, no point
        ({"birthDate__ext": {"extension": []}}, ("birthDate__ext",)),  # the Python name
        (
            {"contained": [{"resourceType": "Organization", "active": "true"}]},
            ("contained", 0, "active"),
        ),
        (
            {"_birthDate": {"extension": [{"url": "u", "valueDateTime": 0}]}},
            ("_birthDate", "extension", 0, "valueDateTime"),
        ),
    ],
    ids=["integer-as-decimal", "python-name", "in-a-contained-resource", "in-an-extension"],
)
def test_what_the_models_take_and_fhir_json_does_not_is_named(
    change: dict[str, Any], loc: Loc
) -> None:
    patient = get_fhir_model_class("Patient")
    doc = {k: v for k, v in VALID_SHAPES.items() if k != "_birthDate"}  # one of the two names
    doc.update(change)
    patient.model_validate(doc)  # the models alone take it
    found = type_problem(doc, patient)
    assert found is not None and found[0] == loc


def test_every_fhir_r4_model_has_a_known_json_type_for_each_element() -> None:
    """An annotation of a shape the check cannot read (after an upgrade of fhir.resources)
    would be skipped silently: every model of R4B is read, since a Bundle entry or a
    contained resource may be any of them."""
    models = {
        getattr(fhirtypes, name).get_model_klass()
        for name in dir(fhirtypes)
        if hasattr(getattr(fhirtypes, name), "get_model_klass")
    }
    unknown = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if fhir_json._kind(field.annotation) is fhir_json._UNKNOWN
    ]
    assert unknown == [] and len(models) > 600
