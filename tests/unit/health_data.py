"""The health service's sample FHIR R4 inputs (tests/data/health/) and helpers to map them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from services.backbone.errors import InputRejected
from services.health.fhir_mapping import event_from_resource, events_from_bundle
from services.health.fhir_parse import Mapped

DATA = Path(__file__).resolve().parents[1] / "data" / "health"
Change = Callable[[dict[str, Any]], Any]

# Each sample and the endpoint it goes to (the README in tests/data/health says the same).
SINGLE = {
    "encounter-emergency": "Encounter",
    "ukcore-encounter-utc": "Encounter",
    "flag-safeguarding": "Flag",
    "appointment-was-not-brought": "Appointment",
    "ukcore-appointment-logical-subject": "Appointment",
}
BUNDLES = ["bundle-transaction", "bundle-message", "bundle-batch", "bundle-collection-attendance"]


@cache
def _text(name: str) -> str:
    return (DATA / f"{name}.json").read_text(encoding="utf-8")


def sample(name: str, change: Change | None = None) -> dict[str, Any]:
    """A fresh copy of ``tests/data/health/<name>.json``, changed by ``change`` if given."""
    doc: dict[str, Any] = copy.deepcopy(json.loads(_text(name)))
    if change:
        change(doc)
    return doc


def mapped(name: str, change: Change | None = None) -> Mapped:
    """The event a single-resource sample maps to."""
    return event_from_resource(sample(name, change), SINGLE[name])


def rejected(doc: Any, resource_type: str | None = None) -> InputRejected:
    """The rejection of ``doc`` posted as ``resource_type`` (a Bundle when None)."""
    with pytest.raises(InputRejected) as info:
        if resource_type is None:
            events_from_bundle(doc)
        else:
            event_from_resource(doc, resource_type)
    return info.value


def entry(doc: dict[str, Any], i: int) -> dict[str, Any]:
    """The resource of a Bundle's entry ``i``."""
    resource: dict[str, Any] = doc["entry"][i]["resource"]
    return resource
