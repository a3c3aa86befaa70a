"""Every agency service refuses an event about someone who was not a child on its date, with
a 422 naming the rule and nothing stored; social care accepts care leavers up to its
configured age. The adult is the published FHIR example's kind: an emergency department
attendance of a patient born in 1970."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from deploy.bench.agency_bulk import encounter_bundle
from services.agency.submission import CHECK_SLICE
from tests.integration.agency_helpers import (
    DATA,
    FHIR,
    SERVICES,
    Sample,
    bearer,
    client_of,
    pending,
    settings_for,
    token,
)

ADULT = "1970-06-01"


def _with_birth(agency: str, file: str, path: Sequence[str | int], born: str) -> bytes:
    doc: Any = json.loads((DATA / agency / file).read_text())
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = born
    return json.dumps(doc).encode()


# Each service's native form, with the subject's date of birth at the given path.
NATIVE: dict[str, tuple[str, str, Sequence[str | int], str]] = {
    "health": ("/fhir/Encounter", "encounter-emergency.json", ["contained", 0, "birthDate"], FHIR),
    "education": (
        "/attendance-concerns",
        "attendance-concern.json",
        ["pupil", "dateOfBirth"],
        "application/json",
    ),
    "socialcare": (
        "/looked-after-episodes",
        "looked-after-episodes.json",
        ["child", "dateOfBirth"],
        "application/json",
    ),
}


def _sample(name: str, born: str) -> Sample:
    path, file, where, content_type = NATIVE[name]
    return Sample(path, _with_birth(name, file, where, born), content_type)


def _app(name: str, keyring_path: Path, database_url: str, **extra: Any) -> FastAPI:
    service = SERVICES[name]
    return service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url, **extra)
    )


@pytest.mark.parametrize("name", sorted(NATIVE))
async def test_an_adult_is_refused_naming_the_rule_and_nothing_is_stored(
    name: str, keyring_path: Path, database_url: str
) -> None:
    app = _app(name, keyring_path, database_url)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SERVICES[name].agency))
        refused = await _sample(name, ADULT).post(api, **auth)
        assert refused.status_code == 422, refused.text
        (problem,) = refused.json()["detail"]
        assert problem["type"] == "subject.not_a_child"
        assert ADULT not in refused.text
        child = await _sample(name, "2014-11-23").post(api, **auth)
        assert child.status_code == 202, child.text
    assert pending(app) == 1  # the child's event only


async def test_social_care_accepts_care_leavers_up_to_its_configured_age(
    keyring_path: Path, database_url: str
) -> None:
    app = _app("socialcare", keyring_path, database_url)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SERVICES["socialcare"].agency))
        leaver = await _sample("socialcare", "2002-01-01").post(api, **auth)  # 24
        assert leaver.status_code == 202, leaver.text
        older = await _sample("socialcare", "2000-01-01").post(api, **auth)  # 26
        assert older.status_code == 422
    strict = _app("socialcare", keyring_path, database_url, care_leavers_to=18)
    async with client_of(strict) as api:
        auth = bearer(token(keyring_path, SERVICES["socialcare"].agency))
        leaver = await _sample("socialcare", "2002-01-01").post(api, **auth)
        assert leaver.status_code == 422  # the exception turned off
    health = _app("health", keyring_path, database_url)
    async with client_of(health) as api:
        auth = bearer(token(keyring_path, SERVICES["health"].agency))
        young_adult = await _sample("health", "2002-01-01").post(api, **auth)
        assert young_adult.status_code == 422  # the exception is social care's alone


async def test_an_adult_deep_in_a_bundle_is_refused_by_its_place_and_nothing_is_stored(
    keyring_path: Path, database_url: str
) -> None:
    """An upload's events are checked a slice at a time: the refusal still names the
    event's place in the whole request, and no event of the request is stored."""
    entries = 2 * CHECK_SLICE + 50
    doc = orjson.loads(encounter_bundle(entries, 90_000))
    adult = CHECK_SLICE * 2 + 30
    doc["entry"][adult]["resource"]["contained"][0]["birthDate"] = ADULT
    app = _app("health", keyring_path, database_url)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SERVICES["health"].agency))
        refused = await Sample("/fhir", orjson.dumps(doc), FHIR).post(api, **auth)
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["detail"]
    assert (problem["loc"], problem["type"]) == (["event", adult, "subject"], "subject.not_a_child")
    assert pending(app) == 0
