"""The person index through the agency services, on SQLite and PostgreSQL: once a local
authority's record has carried a child's NHS number and UPN together, a school that knows
the child only by UPN publishes under the same subject (same routing key) as the NHS; a
record whose identifiers belong to two children is still accepted, keyed by its own
identifier, and queued for review, never merged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from services.backbone.identifiers import subject_identifier, upn_identifier
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.outbox.tables import OutboxRow
from services.personindex.store import PersonIndex
from tests.integration.agency_helpers import (
    DATA,
    SERVICES,
    bearer,
    client_of,
    runtime_of,
    settings_for,
    token,
)

UPN = "H999400116001"  # the school's pupil in tests/data/education
NHS = "9990000123"
OTHER_NHS = "9990000239"


def _referral(nhs: str, upn: str, person: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / "socialcare" / "referrals.json").read_text())
    doc["child"].update({"nhsNumber": nhs, "upn": upn, "personId": person})
    doc["referral"]["id"] = f"REF-{person}"
    return doc


def _concern_by_upn_only(concern_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / "education" / "safeguarding-concern.json").read_text())
    pupil = copy.deepcopy(doc["pupil"])
    pupil.pop("nhsNumber")
    doc["pupil"] = pupil
    doc["concern"]["id"] = concern_id
    return doc


def _keys(app: Any) -> list[bytes | None]:
    from sqlmodel import Session, col, select

    with Session(runtime_of(app).outbox.engine) as s:
        rows = s.exec(select(OutboxRow).order_by(col(OutboxRow.seq))).all()
    return [r.record_key for r in rows]


async def _post(api: httpx.AsyncClient, path: str, doc: dict[str, Any], secret: str) -> None:
    got = await api.post(path, json=doc, headers=bearer(secret))
    assert got.status_code == 202, got.text


async def test_a_school_knowing_only_the_upn_publishes_under_the_childs_subject(
    keyring_path: Path, keyring: Keyring, database_url: str
) -> None:
    la_app = SERVICES["socialcare"].factory(
        settings_for(SERVICES["socialcare"], keyring_path=keyring_path, database_url=database_url)
    )
    school_app = SERVICES["education"].factory(
        settings_for(SERVICES["education"], keyring_path=keyring_path, database_url=database_url)
    )
    la, school = (token(keyring_path, a) for a in ("la-northshire", "school-oakfield"))
    async with client_of(la_app) as la_api, client_of(school_app) as school_api:
        await _post(la_api, "/referrals", _referral(NHS, UPN, "NS-1"), la)
        await _post(school_api, "/safeguarding-concerns", _concern_by_upn_only("C-1"), school)
    routing = keyring.require_routing()
    childs = routing_key(routing, subject_identifier(nhs_number=NHS)).encode()
    assert _keys(la_app)[-1] == childs
    assert _keys(school_app)[-1] == childs  # not the UPN's own routing key
    assert routing_key(routing, upn_identifier(UPN)).encode() != childs
    assert runtime_of(la_app).index.reviews() == []


async def test_identifiers_of_two_children_are_accepted_unmerged_and_queued(
    keyring_path: Path, keyring: Keyring, database_url: str
) -> None:
    la_app = SERVICES["socialcare"].factory(
        settings_for(SERVICES["socialcare"], keyring_path=keyring_path, database_url=database_url)
    )
    school_app = SERVICES["education"].factory(
        settings_for(SERVICES["education"], keyring_path=keyring_path, database_url=database_url)
    )
    la, school = (token(keyring_path, a) for a in ("la-northshire", "school-oakfield"))
    async with client_of(la_app) as la_api, client_of(school_app) as school_api:
        await _post(school_api, "/safeguarding-concerns", _concern_by_upn_only("C-2"), school)
        await _post(la_api, "/referrals", _referral(OTHER_NHS, "G823412626001", "NS-2"), la)
        # The authority's record pairs the other child's NHS number with this pupil's UPN.
        await _post(la_api, "/referrals", _referral(OTHER_NHS, UPN, "NS-3"), la)
    routing = keyring.require_routing()
    assert (
        _keys(la_app)[-1] == routing_key(routing, subject_identifier(nhs_number=OTHER_NHS)).encode()
    )
    index: PersonIndex = runtime_of(la_app).index
    (review,) = index.reviews()
    assert review.kind == "conflict" and review.source_agency == "la-northshire"
    assert index.identity_of(upn_identifier(UPN)) == upn_identifier(UPN)  # nothing moved
