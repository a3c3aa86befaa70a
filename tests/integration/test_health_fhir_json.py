"""The health service refuses FHIR whose primitives are not FHIR's JSON types, before the
models read them: a date of birth sent as Unix seconds (1460160000 is 9 April 2016) was
read as that date, a number for a date the models took. A 422 naming the element, and
nothing stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agency_helpers import (
    DATA,
    FHIR,
    SERVICES,
    bearer,
    client_of,
    pending,
    settings_for,
    token,
)

HEALTH = SERVICES["health"]


@pytest.mark.parametrize(
    ("element", "value"),
    [("birthDate", 1460160000), ("active", "true"), ("gender", 1)],
)
async def test_a_primitive_of_another_json_type_is_refused_and_nothing_stored(
    keyring_path: Path, tmp_path: Path, element: str, value: Any
) -> None:
    doc = json.loads((DATA / "health" / "bundle-collection-attendance.json").read_text())
    patient = next(
        i for i, e in enumerate(doc["entry"]) if e["resource"]["resourceType"] == "Patient"
    )
    doc["entry"][patient]["resource"][element] = value
    app = HEALTH.factory(
        settings_for(HEALTH, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    async with client_of(app) as api:
        got = await api.post(
            "/fhir/Bundle",
            content=json.dumps(doc).encode(),
            headers={"content-type": FHIR, **bearer(token(keyring_path, HEALTH.agency))},
        )
    assert got.status_code == 422, got.text
    (problem,) = got.json()["detail"]
    assert problem["loc"] == ["body", "entry", patient, "resource", element]
    assert problem["type"] == "fhir.invalid" and "FHIR R4 JSON" in problem["msg"]
    assert pending(app) == 0
