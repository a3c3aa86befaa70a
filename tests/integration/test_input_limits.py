"""Input limits on every HTTP service, over the apps' real middleware and routes (no Kafka,
SQLite): a body is bounded before it is read, chunked or not, and a length beside a chunked
body is refused (the agency gate once trusted the length and let such a body past); a body
from nobody the service would admit is refused before it is parsed; JSON nests only so
deep; the audit search's filters and the override role header are bounded and checked; and
no refusal quotes what was sent."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from consent.registry.api import MAX_BODY_BYTES as CONSENT_LIMIT
from consent.registry.api import create_app as consent_app
from services.agency.gate import MAX_BODY_BYTES as AGENCY_LIMIT
from services.audit.app import MAX_BODY_BYTES as AUDIT_LIMIT
from services.audit.app import AuditSettings
from services.audit.app import create_app as audit_app
from services.audit.disclosures import COLUMNS
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditRecord
from services.backbone.keyring import Keyring
from services.backbone.settings import HttpSettings
from services.delivery.app import MAX_BODY_BYTES as DELIVERY_LIMIT
from services.delivery.app import create_app as delivery_app
from services.delivery.settings import DeliverySettings
from tests.audit_records import decision
from tests.bodies import SECRET, Pieces
from tests.integration.agency_helpers import (
    SERVICES,
    Service,
    bearer,
    client_of,
    pending,
    settings_for,
    token,
)
from tests.people import IG, PERSON_PRACTITIONER, People

NHS = "9434765919"
LA = "la-northshire"
PIECE = 64 * 1024
DEEP = b'{"a":' * 200 + b"1" + b"}" * 200


def _secret(keyring_path: Path, name: str, people: People) -> dict[str, str]:
    """An agency's token (a file beside the keyring) or a person's (``person:<login>``)."""
    if name.startswith("person:"):
        return people.bearer(name.removeprefix("person:"))
    return bearer((keyring_path.parent / name).read_text().strip())


# Each API that takes a body: the app, a route with a body, and who may call it.
APIS: dict[str, tuple[str, str, int]] = {
    "audit": ("/audit/decisions/search", IG, AUDIT_LIMIT),
    "consent": ("/consents", PERSON_PRACTITIONER, CONSENT_LIMIT),
    "delivery": (f"/recipients/{LA}/subscriptions", f"agency-tokens/{LA}.token", DELIVERY_LIMIT),
}


def _api_app(name: str, tmp_path: Path, keyring_path: Path) -> FastAPI:
    db = f"sqlite:///{tmp_path / 'api.db'}"
    if name == "audit":
        return audit_app(
            AuditSettings(
                keyring_file=keyring_path,
                audit_database_url=db,
                audit_checkpoint_file=tmp_path / "cp.jsonl",
            )
        )
    if name == "consent":
        return consent_app(
            HttpSettings(
                keyring_file=keyring_path,
                person_index_database_url=db,
                kafka_security_protocol="PLAINTEXT",  # no broker is reached: no lifespan
            )
        )
    return delivery_app(DeliverySettings(keyring_file=keyring_path, delivery_database_url=db))


@pytest.fixture(params=list(APIS))
async def api(
    request: pytest.FixtureRequest, tmp_path: Path, keyring_path: Path, people: People
) -> AsyncIterator[tuple[httpx.AsyncClient, str, dict[str, str], int]]:
    path, secret, limit = APIS[request.param]
    app = _api_app(request.param, tmp_path, keyring_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, path, _secret(keyring_path, secret, people), limit


def _refused(response: httpx.Response, status: int, rule: str) -> None:
    assert response.status_code == status, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body"] and problem["type"] == rule
    assert set(problem) == {"loc", "msg", "type"}
    assert SECRET.decode() not in response.text


async def test_a_chunked_body_over_the_limit_is_refused_without_being_read_whole(
    api: tuple[httpx.AsyncClient, str, dict[str, str], int],
) -> None:
    client, path, caller, limit = api
    body = Pieces(limit * 4, size=PIECE)
    response = await client.post(
        path, content=body, headers={**caller, "content-type": "application/json"}
    )
    _refused(response, 413, "body.too_large")
    assert body.sent <= limit // PIECE + 1 < len(body.body) // PIECE


async def test_a_declared_length_over_the_limit_is_refused_unread(
    api: tuple[httpx.AsyncClient, str, dict[str, str], int],
) -> None:
    client, path, caller, limit = api
    body = Pieces(limit + 1, size=PIECE)
    response = await client.post(
        path,
        content=body,
        headers={**caller, "content-type": "application/json", "content-length": str(limit + 1)},
    )
    _refused(response, 413, "body.too_large")
    assert body.sent == 0


async def test_a_length_beside_a_chunked_body_is_refused_unread(
    api: tuple[httpx.AsyncClient, str, dict[str, str], int],
) -> None:
    client, path, caller, limit = api
    body = Pieces(limit * 4, size=PIECE)
    headers = {"content-length": "2", "transfer-encoding": "chunked"}
    response = await client.post(path, content=body, headers={**caller, **headers})
    assert response.status_code == 400 and body.sent == 0


@pytest.mark.parametrize("who", [{}, {"Authorization": "Bearer not-a-token"}])
async def test_a_body_from_nobody_the_service_admits_is_refused_before_it_is_parsed(
    api: tuple[httpx.AsyncClient, str, dict[str, str], int], who: dict[str, str]
) -> None:
    client, path, _, limit = api
    malformed = b"{not json" + b" " * (limit // 2)
    response = await client.post(
        path, content=malformed, headers={**who, "content-type": "application/json"}
    )
    assert response.status_code == 401  # not 422: nothing about the input rules is learnt
    large = Pieces(limit * 4, size=PIECE)
    response = await client.post(
        path, content=large, headers={**who, "content-type": "application/json"}
    )
    assert response.status_code == 401 and large.sent == 0


async def test_json_nested_too_deep_is_refused_before_it_is_parsed(
    api: tuple[httpx.AsyncClient, str, dict[str, str], int],
) -> None:
    client, path, caller, _ = api
    response = await client.post(
        path, content=DEEP, headers={**caller, "content-type": "application/json"}
    )
    _refused(response, 422, "json_depth")


@pytest.fixture(params=list(SERVICES))
def agency(request: pytest.FixtureRequest) -> Service:
    return SERVICES[request.param]


async def test_a_length_beside_a_chunked_body_does_not_slip_past_an_agency_gate(
    agency: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = agency.factory(
        settings_for(agency, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    own = bearer(token(keyring_path, agency.agency))
    body = Pieces(AGENCY_LIMIT + 10 * PIECE, size=PIECE)
    headers = {
        "content-type": agency.sample.content_type,
        "content-length": str(len(agency.sample.body)),  # what the gate used to trust
        "transfer-encoding": "chunked",
    }
    async with client_of(app) as client:
        response = await client.post(agency.sample.path, content=body, headers={**own, **headers})
    assert response.status_code == 400 and body.sent == 0
    assert pending(app) == 0


async def test_an_agency_counts_a_chunked_body_and_stops_at_its_limit(
    agency: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = agency.factory(
        settings_for(agency, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    own = bearer(token(keyring_path, agency.agency))
    headers = {**own, "content-type": agency.sample.content_type}
    huge = Pieces(AGENCY_LIMIT + 10 * PIECE, size=PIECE)

    async def sample() -> AsyncIterator[bytes]:
        yield agency.sample.body

    async with client_of(app) as client:
        over = await client.post(agency.sample.path, content=huge, headers=headers)
        _refused(over, 413, "body.too_large")
        assert huge.sent == AGENCY_LIMIT // PIECE + 1
        assert pending(app) == 0
        # Within the limit, a chunked body is taken: it is counted, so no length is needed.
        within = await client.post(agency.sample.path, content=sample(), headers=headers)
    assert within.status_code == 202, within.text


LONG = SECRET.decode() * 13  # 130 characters: longer than any filter takes


@pytest.fixture
async def audit(
    tmp_path: Path, keyring_path: Path, people: People
) -> AsyncIterator[httpx.AsyncClient]:
    app = _api_app("audit", tmp_path, keyring_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://audit") as client:
        yield client


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("recipient", LONG[:65], "string_too_long"),
        ("source_agency", LONG[:65], "string_too_long"),
        ("purpose", LONG[:65], "string_too_long"),
        ("event_type", LONG[:129], "string_too_long"),
        ("protocol_id", LONG, "string_too_long"),
        ("recipient", f"{SECRET.decode()}\x00", "string_pattern_mismatch"),
        ("protocol_id", f"{SECRET.decode()}\r\n", "string_pattern_mismatch"),
    ],
)
async def test_audit_search_filters_are_bounded_and_never_echoed(
    audit: httpx.AsyncClient, keyring_path: Path, name: str, value: str, rule: str, people: People
) -> None:
    ig = _secret(keyring_path, IG, people)
    by_query = await audit.get("/audit/decisions", params={name: value}, headers=ig)
    by_body = await audit.post(
        "/audit/decisions/search", json={name: value, "child": {"nhs_number": NHS}}, headers=ig
    )
    for response, where in ((by_query, "query"), (by_body, "body")):
        assert response.status_code == 422, response.text
        (problem,) = response.json()["detail"]
        assert problem == {"loc": [where, name], "msg": problem["msg"], "type": rule}
        assert SECRET.decode() not in response.text
    fits = await audit.get("/audit/decisions", params={name: "la-northshire"}, headers=ig)
    assert fits.status_code == 200


ROLE = "Safeguarding-Override-Role"
OVERRIDE = {"Safeguarding-Override-Justification": "Risk of significant harm if parents told"}


@pytest.mark.parametrize(
    "role",
    ['=HYPERLINK("http://x")', "+1 consultant", "-1", "@SUM(1)", "ED consultant <b>", "DSL;x"],
)
async def test_an_override_role_outside_the_pattern_is_refused_unechoed(
    keyring_path: Path, tmp_path: Path, role: str
) -> None:
    socialcare = SERVICES["socialcare"]
    app = socialcare.factory(
        settings_for(
            socialcare, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db"
        )
    )
    own = bearer(token(keyring_path, socialcare.agency))
    async with client_of(app) as client:
        refused = await socialcare.sample.post(client, **own, **OVERRIDE, **{ROLE: role})
        assert refused.status_code == 422, refused.text
        (problem,) = refused.json()["detail"]
        assert problem["loc"] == ["header", ROLE]
        assert problem["type"] == "string_pattern_mismatch"
        assert role not in refused.text
        assert pending(app) == 0
        taken = await socialcare.sample.post(client, **own, **OVERRIDE, **{ROLE: "ED consultant"})
    assert taken.status_code == 202, taken.text


PAYLOADS = ['=HYPERLINK("http://x")', "+1", "-1", "@SUM(1)", "\t=1", "\r=1"]


def _decision(offset: int, keyring: Keyring, payload: str) -> AuditRecord:
    return decision(
        keyring,
        offset,
        reason_code="shared.safeguarding_override",
        reason=payload,
        protocol_id=payload,
        lawful_basis=payload,
        override_role=payload,
        fields_disclosed=[payload, "subject.nhs_number"],
    )


async def test_every_cell_of_the_csv_disclosure_report_is_inert(
    audit: httpx.AsyncClient, keyring: Keyring, keyring_path: Path, tmp_path: Path, people: People
) -> None:
    store = AuditStore(
        f"sqlite:///{tmp_path / 'api.db'}", sealing_from(keyring, tmp_path / "cp.jsonl")
    )
    store.add_batch([_decision(i, keyring, p) for i, p in enumerate(PAYLOADS)])
    report = await audit.post(
        "/audit/disclosure-report",
        params={"format": "csv"},
        json={"nhs_number": NHS},
        headers=_secret(keyring_path, IG, people),
    )
    assert report.status_code == 200, report.text
    rows = list(csv.DictReader(io.StringIO(report.text, newline="")))
    assert [r["reason"] for r in rows] == ["'" + p for p in PAYLOADS]
    for row in rows:
        assert set(row) == set(COLUMNS)
        for column in ("protocol_id", "lawful_basis", "override_role", "fields_disclosed"):
            assert row[column].startswith("'"), (column, row[column])
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
