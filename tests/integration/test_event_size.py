"""An event Kafka would refuse is refused at the door: 413 ``event.too_large`` naming the
event, with nothing stored (a request can be under the body limit and still make an event
over the record limit: free text is the usual cause)."""

from __future__ import annotations

from pathlib import Path

import orjson

from deploy.devstack.demo import scenario
from services.agency.submission import MAX_RECORD_BYTES
from tests.integration.agency_helpers import (
    SERVICES,
    bearer,
    client_of,
    pending,
    routes_only,
    token,
)

HEALTH = SERVICES["health"]


def _attendance(notes: str) -> bytes:
    bundle = scenario.attendance_bundle(
        scenario.ON_PLAN, encounter_id="ED-90001", arrival="2026-11-20T21:14:00Z"
    )
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Encounter":
            resource["reasonCode"][0]["text"] = notes
    return orjson.dumps(bundle)


async def test_an_event_over_the_record_limit_is_refused_with_413(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(HEALTH, keyring_path, database_url)
    headers = {
        "content-type": "application/fhir+json",
        **bearer(token(keyring_path, HEALTH.agency)),
    }
    async with client_of(app) as api:
        # Just under: taken. Just over: refused, and nothing of it stored.
        fits = await api.post(
            "/fhir/Bundle", content=_attendance("n" * (MAX_RECORD_BYTES - 8192)), headers=headers
        )
        assert fits.status_code == 202, fits.text
        before = pending(app)
        over = await api.post(
            "/fhir/Bundle", content=_attendance("n" * MAX_RECORD_BYTES), headers=headers
        )
        assert over.status_code == 413, over.text
        (problem,) = over.json()["detail"]
        assert problem["type"] == "event.too_large"
        assert problem["loc"][0] == "event"
        assert "900 KiB" in problem["msg"]
        assert "nnnn" not in over.text  # never echoes what was sent
        assert pending(app) == before
