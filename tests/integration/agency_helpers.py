"""The agency services under test: each one's app, the agency it runs as, and a valid
native request for it (from the sample files under tests/data/)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.agency.runtime import AgencyRuntime, AgencyServiceSettings

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Sample:
    """One valid native request: where it goes, its body and content type."""

    path: str
    body: bytes
    content_type: str = "application/json"

    def post(self, client: httpx.AsyncClient, **headers: str) -> Any:
        return client.post(
            self.path, content=self.body, headers={"content-type": self.content_type, **headers}
        )


@dataclass(frozen=True)
class Service:
    name: str
    agency: str
    factory: Callable[[AgencyServiceSettings], FastAPI]
    sample: Sample


def _socialcare(settings: AgencyServiceSettings) -> FastAPI:
    from services.socialcare.app import create_app

    return create_app(settings)


def _health(settings: AgencyServiceSettings) -> FastAPI:
    from services.health.app import create_app

    return create_app(settings)


def _education(settings: AgencyServiceSettings) -> FastAPI:
    from services.education.app import create_app

    return create_app(settings)


SCHOOL_QUERY = "?urn=999001&dsl_name=Alex%20Teacher&dsl_phone=01632%20960123"
CSV_QUERY = SCHOOL_QUERY + "&period_start=2026-09-03&period_end=2026-12-18"
FHIR = "application/fhir+json"


def sample(agency: str, path: str, file: str, content_type: str = "application/json") -> Sample:
    return Sample(path, (DATA / agency / file).read_bytes(), content_type)


# Every sample file under tests/data/, the endpoint it is for, and how many events it makes.
SAMPLES: dict[str, list[tuple[Sample, int]]] = {
    "socialcare": [
        (sample("socialcare", f"/{name}", f"{name.replace('/', '-')}.json"), 1)
        for name in (
            "child-protection-plans",
            "child-protection-plans/ended",
            "referrals",
            "assessments",
            "case-closures",
            "looked-after-episodes",
            "looked-after-episodes/ended",
        )
    ],
    "health": [
        (sample("health", "/fhir/Encounter", "encounter-emergency.json", FHIR), 1),
        (sample("health", "/fhir/Encounter", "ukcore-encounter-utc.json", FHIR), 1),
        (sample("health", "/fhir/Flag", "flag-safeguarding.json", FHIR), 1),
        (sample("health", "/fhir/Appointment", "appointment-was-not-brought.json", FHIR), 1),
        (
            sample("health", "/fhir/Appointment", "ukcore-appointment-logical-subject.json", FHIR),
            1,
        ),
        (sample("health", "/fhir", "bundle-transaction.json", FHIR), 3),
        (sample("health", "/fhir", "bundle-message.json", FHIR), 1),
        (sample("health", "/fhir", "bundle-batch.json", FHIR), 2),
        (sample("health", "/fhir/Bundle", "bundle-collection-attendance.json", FHIR), 1),
    ],
    "education": [
        (sample("education", "/attendance/upload" + CSV_QUERY, "attendance.csv", "text/csv"), 4),
        (
            sample(
                "education",
                "/attendance/upload" + CSV_QUERY,
                "attendance-windows-1252.csv",
                "text/csv",
            ),
            4,
        ),
        (sample("education", "/exclusions/upload" + SCHOOL_QUERY, "exclusions.csv", "text/csv"), 3),
        (sample("education", "/attendance-concerns", "attendance-concern.json"), 1),
        (sample("education", "/exclusions", "exclusion.json"), 1),
        (sample("education", "/children-missing-education", "child-missing-education.json"), 1),
        (sample("education", "/safeguarding-concerns", "safeguarding-concern.json"), 1),
    ],
}

SERVICES = {
    "socialcare": Service("socialcare", "la-northshire", _socialcare, SAMPLES["socialcare"][0][0]),
    "health": Service("health", "nhs-riverside-ed", _health, SAMPLES["health"][5][0]),
    "education": Service("education", "school-oakfield", _education, SAMPLES["education"][3][0]),
}


def token(keyring_path: Path, agency: str) -> str:
    return (keyring_path.parent / "agency-tokens" / f"{agency}.token").read_text().strip()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def settings_for(
    service: Service, *, keyring_path: Path, database_url: str, **extra: Any
) -> AgencyServiceSettings:
    return AgencyServiceSettings(
        agency_id=service.agency,
        keyring_file=keyring_path,
        outbox_database_url=database_url,
        person_index_database_url=database_url,
        **extra,
    )


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app's routes (its background tasks, relay and inbox reader, not
    started: these tests need no Kafka)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agency") as client:
        yield client


def runtime_of(app: FastAPI) -> AgencyRuntime:
    rt: AgencyRuntime = app.state.runtime
    return rt


def pending(app: FastAPI) -> int:
    """How many of the app's agency's events wait in its outbox."""
    rt = runtime_of(app)
    return rt.outbox.backlog(rt.source_topic).pending


def routes_only(service: Service, keyring_path: Path, database_url: str) -> FastAPI:
    """``service``'s app, its routes only (no Kafka: what the outbox takes is looked at)."""
    app: FastAPI = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    return app
