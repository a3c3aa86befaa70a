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
from fhir.resources.R4B import get_fhir_model_class

from deploy.devstack.demo import scenario
from services.backbone.errors import InputRejected
from services.health import fhir_json
from services.health.fhir_json import type_problem
from services.health.fhir_mapping import attendance_from_bundle
from services.health.fhir_parse import MAPPED, SUPPORTING

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


def test_every_element_of_the_resources_read_has_a_known_json_type() -> None:
    """A model the check cannot read (an annotation of a new shape, after an upgrade of
    fhir.resources) would be skipped silently: none is."""
    seen: set[type[Any]] = set()
    unknown = []
    models = [get_fhir_model_class("Bundle"), *MAPPED.values(), *SUPPORTING.values()]
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            kind = fhir_json._kind(field.annotation)
            if kind is fhir_json._UNKNOWN:
                unknown.append(f"{model.__name__}.{name}")
            elif isinstance(kind, type):
                models.append(kind)
    assert unknown == [] and len(seen) > 50
