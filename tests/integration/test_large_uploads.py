"""A large upload (a school's CSV export, a FHIR batch Bundle) is parsed in a worker
process, beside the service (services/backbone/offload.py), and answered as the service
answers it parsed in place: the same events, or the same 422 naming the same row or entry.
No Kafka: what the outbox takes is what is compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from deploy.bench.agency_bulk import SAMPLES, attendance_export, encounter_bundle, upns
from deploy.devstack.ports import free_listen_port
from services.backbone.offload import large
from tests.integration.agency_helpers import (
    CSV_QUERY,
    FHIR,
    SCHOOL_QUERY,
    SERVICES,
    Service,
    bearer,
    client_of,
    runtime_of,
    settings_for,
    token,
)

ROWS = 700  # about 70 KB of CSV
ENTRIES = 80  # about 80 KB of Bundle


async def _answers(
    service: Service, keyring_path: Path, root: Path, path: str, media: str, body: bytes
) -> list[tuple[int, Any, int]]:
    """The answer of the service parsing in place, then of one with a parsing worker: its
    status, its JSON (without the submission's id) and how many inputs its worker parsed
    (one parsed in place after all, the worker or its answer broken, does not count)."""
    assert large(body)
    answers = []
    for workers in (0, 1):
        url = f"sqlite:///{root / f'{service.name}-{workers}.db'}"
        settings = settings_for(
            service, keyring_path=keyring_path, database_url=url, parse_workers=workers
        )
        app = service.factory(settings)
        try:
            async with client_of(app) as api:
                got = await api.post(
                    path,
                    content=body,
                    headers={"content-type": media, **bearer(token(keyring_path, service.agency))},
                )
        finally:
            runtime_of(app).offload.close()
        answer = got.json()
        if isinstance(answer, dict):
            answer.pop("submission", None)
        offload = runtime_of(app).offload
        answers.append((got.status_code, answer, offload.sent - offload.died))
    return answers


async def test_a_large_csv_export_is_answered_alike_parsed_in_a_worker(
    keyring_path: Path, tmp_path: Path
) -> None:
    education = SERVICES["education"]
    path = "/attendance/upload" + CSV_QUERY
    body = attendance_export(ROWS, 70_000)
    (here, worker) = await _answers(education, keyring_path, tmp_path, path, "text/csv", body)
    assert here[0] == 202 and here[1]["events_published"] == ROWS
    assert worker == (here[0], here[1], 1)
    assert here[2] == 0

    lines = body.split(b"\r\n")
    lines[400] = lines[400].replace(lines[400][:13], b"A999400199999", 1)  # a wrong check letter
    bad = b"\r\n".join(lines)
    (here, worker) = await _answers(education, keyring_path, tmp_path, path, "text/csv", bad)
    assert here[0] == 422 and worker == (here[0], here[1], 1)


async def test_a_large_exclusions_export_is_answered_alike_parsed_in_a_worker(
    keyring_path: Path, tmp_path: Path
) -> None:
    header, first, *_ = (SAMPLES / "education" / "exclusions.csv").read_bytes().splitlines()
    rows = [first.replace(first[:13], upn.encode(), 1) for upn in upns(2 * ROWS, 71_000)]
    body = b"\r\n".join([header, *rows]) + b"\r\n"
    education = SERVICES["education"]
    path = "/exclusions/upload" + SCHOOL_QUERY
    (here, worker) = await _answers(education, keyring_path, tmp_path, path, "text/csv", body)
    assert here[0] == 202 and here[1]["events_published"] == 2 * ROWS
    assert worker == (here[0], here[1], 1)


async def test_a_large_bundle_is_answered_alike_parsed_in_a_worker(
    keyring_path: Path, tmp_path: Path
) -> None:
    health = SERVICES["health"]
    body = encounter_bundle(ENTRIES, 80_000)
    (here, worker) = await _answers(health, keyring_path, tmp_path, "/fhir", FHIR, body)
    assert here[0] == 202 and len(here[1]["events"]) == ENTRIES
    assert worker == (here[0], here[1], 1)

    doc = orjson.loads(body)
    doc["entry"][57]["resource"]["period"]["start"] = "the fourth of May"
    bad = orjson.dumps(doc)
    (here, worker) = await _answers(health, keyring_path, tmp_path, "/fhir", FHIR, bad)
    assert here[0] == 422 and worker == (here[0], here[1], 1)
    assert here[1]["detail"][0]["loc"][:3] == ["body", "entry", 57]

    cut = body[: len(body) - 10]  # a Bundle that stops short: not JSON, found in the worker
    (here, worker) = await _answers(health, keyring_path, tmp_path, "/fhir", FHIR, cut)
    assert here[0] == 422 and worker == (here[0], here[1], 1)
    assert here[1]["detail"][0]["type"] == "json_invalid"


async def test_a_service_that_stops_stops_its_parsing_worker(
    keyring_path: Path, tmp_path: Path
) -> None:
    """The service's lifespan, run whole (its relay finds no Kafka: nothing listens on its
    port), closes the worker its first large upload started."""
    education = SERVICES["education"]
    settings = settings_for(
        education,
        keyring_path=keyring_path,
        database_url=f"sqlite:///{tmp_path / 'lifespan.db'}",
        parse_workers=1,
        kafka_bootstrap=f"127.0.0.1:{free_listen_port()}",
        kafka_security_protocol="PLAINTEXT",
    )
    app = education.factory(settings)
    body = attendance_export(ROWS, 72_000)
    async with app.router.lifespan_context(app), client_of(app) as api:
        got = await api.post(
            "/attendance/upload" + CSV_QUERY,
            content=body,
            headers={"content-type": "text/csv", **bearer(token(keyring_path, education.agency))},
        )
        assert got.status_code == 202, got.text
        offload = runtime_of(app).offload
        assert offload.sent == 1 and offload.died == 0
        pool = offload._pool
        assert pool is not None
        workers = list(pool._processes.values())
        assert workers and all(w.is_alive() for w in workers)
    assert all(not w.is_alive() for w in workers)
