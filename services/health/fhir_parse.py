"""FHIR R4 JSON into fhir.resources models, or InputRejected naming the element and rule.

A body's bytes become a JSON document here too (:func:`json_document`), so that a large
Bundle is parsed wholly in a worker process, its bytes the only thing sent there
(services/backbone/offload.py).

Models come from ``fhir.resources.R4B``: R4B changed nothing in Bundle, Encounter, Flag,
Appointment, Patient, Organization or MessageHeader that this adapter reads, and
fhir.resources ships no separate R4 package. The models check structure, cardinality and
primitive formats (dates, instants, ids); they do not check required code bindings
(``status``, ``Bundle.type``), so the mapping modules check the codes they rely on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.messageheader import MessageHeader
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from pydantic import ValidationError

from services.backbone.errors import InputRejected
from services.health.fhir_json import type_problem

Loc = tuple[str | int, ...]
# Arrays and objects inside one another: a Bundle's contained resources' nested extensions
# reach about 15; FHIR validation recurses about five Python frames a level.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Mapped:
    """One canonical event a FHIR resource maps to: its type, its data and the record's
    native id (the app publishes it as an ``Outgoing``)."""

    event_type: str
    data: dict[str, Any]
    native_id: str


# The resources each mapped to an event, and those that only support them (the Patient a
# reference names, the site's Organization, a message's header).
MAPPED: dict[str, type[Any]] = {"Encounter": Encounter, "Flag": Flag, "Appointment": Appointment}
SUPPORTING: dict[str, type[Any]] = {
    "Patient": Patient,
    "Organization": Organization,
    "Location": Location,
    "Practitioner": Practitioner,
    "PractitionerRole": PractitionerRole,
    "MessageHeader": MessageHeader,
}


def json_document(body: bytes) -> Any:
    """The JSON document ``body`` holds, or InputRejected when it is not JSON
    (``json_invalid``) or nests arrays and objects deeper than :data:`MAX_DEPTH`
    (``json_depth``): FHIR validation would recurse into it and fail with RecursionError."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise InputRejected(["body"], "the body is not valid JSON", "json_invalid") from None
    if _depth(doc) > MAX_DEPTH:
        raise _too_deep()
    return doc


def _too_deep() -> InputRejected:
    msg = f"the body nests arrays and objects more than {MAX_DEPTH} deep"
    return InputRejected(["body"], msg, "json_depth")


def _depth(doc: Any) -> int:
    """How deeply arrays and objects nest in ``doc`` (0 for a scalar), level by level and
    without recursion; one level past the limit is enough to know."""
    if not isinstance(doc, dict | list):
        return 0
    level, nodes = 1, [doc]
    while level <= MAX_DEPTH:
        nodes = [
            child
            for node in nodes
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not nodes:
            break
        level += 1
    return level


def body_loc(*parts: str | int) -> list[str | int]:
    """A 422 ``loc``: where in the request body the problem is."""
    return ["body", *parts]


def validated(doc: Mapping[str, Any], model: type[Any], loc: Loc = ()) -> Any:
    """``doc`` as a ``model`` instance, or InputRejected (rule ``fhir.invalid``) naming the
    first invalid element. The message quotes the model's rule, never the value. Each
    element's JSON type is checked first: the models take a number for a date."""
    wrong = type_problem(doc, model)
    if wrong is not None:
        raise InputRejected(body_loc(*loc, *wrong[0]), wrong[1], "fhir.invalid")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise InputRejected(
            body_loc(*loc, *first["loc"]), f"FHIR R4 validation: {first['msg']}", "fhir.invalid"
        ) from None
    except KeyError:
        # fhir.resources looks a contained resource's type up in a table and raises
        # KeyError for a resourceType FHIR R4 does not define.
        raise InputRejected(
            body_loc(*loc),
            "FHIR R4 validation: a contained resource has a resourceType FHIR R4 does not define",
            "fhir.invalid",
        ) from None


def resource_type(doc: Any) -> str | None:
    """The ``resourceType`` a JSON document declares, if it is an object that declares one."""
    if isinstance(doc, Mapping) and isinstance(doc.get("resourceType"), str):
        return str(doc["resourceType"])
    return None


def parse_resource(doc: Any, expected: str) -> Any:
    """A single resource posted to ``/fhir/<expected>``, validated as FHIR R4."""
    if resource_type(doc) != expected:
        raise InputRejected(
            body_loc("resourceType"), f"expected a FHIR {expected} resource", "fhir.resource_type"
        )
    return validated(doc, MAPPED[expected])


def parse_bundle(doc: Any) -> Bundle:
    """A Bundle validated as FHIR R4. Entry types are checked first: fhir.resources cannot
    validate a resource type it does not know, and the error then names the entry."""
    if resource_type(doc) != "Bundle":
        raise InputRejected(
            body_loc("resourceType"), "expected a FHIR Bundle", "fhir.resource_type"
        )
    entries = doc.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if resource is None:
            continue  # a GET or DELETE entry: refused by the Bundle rules with its reason
        kind = resource_type(resource)
        if kind not in MAPPED and kind not in SUPPORTING:
            raise InputRejected(
                body_loc("entry", i, "resource", "resourceType"),
                "an entry must be one of " + ", ".join([*MAPPED, *SUPPORTING]),
                "bundle.entry_type",
            )
    bundle: Bundle = validated(doc, Bundle)
    return bundle
