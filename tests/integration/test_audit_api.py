"""The audit service's HTTP API on a real database (SQLite and PostgreSQL): who may call
each endpoint, search by any of a child's identifiers, and every search recorded. The
ingester is not started (no lifespan): records are stored directly, as it would store them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.audit.app import AuditSettings, create_app
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.identifiers import (
    la_person_identifier,
    subject_identifier,
    upn_identifier,
)
from services.backbone.keyring import Keyring
from tests.audit_records import decision, subject_key
from tests.people import IG_OFFICER, PRACTITIONER, People

NHS = "9434765919"
UPN = "B801200005001"
LA_ID = "LA-77"
ED, LA, PH = "nhs-riverside-ed", "la-northshire", "ph-northshire"


def _key(keyring: Keyring, identifier: str) -> str:
    return subject_key(keyring, identifier)


def _decision(offset: int, keyring: Keyring, **fields: Any) -> AuditRecord:
    return decision(keyring, offset, **fields)


@pytest.fixture
async def audit(
    database_url: str, tmp_path: Path, keyring: Keyring, keyring_path: Path, people: People
) -> AsyncIterator[httpx.AsyncClient]:
    settings = AuditSettings(
        keyring_file=keyring_path,
        audit_database_url=database_url,
        audit_checkpoint_file=tmp_path / "cp.jsonl",
    )
    app = create_app(settings)
    store = AuditStore(database_url, sealing_from(keyring, tmp_path / "cp.jsonl"))
    child = _key(keyring, subject_identifier(nhs_number=NHS))
    aliases = [_key(keyring, upn_identifier(UPN)), _key(keyring, la_person_identifier(LA, LA_ID))]
    store.add_batch(
        [
            _decision(1, keyring),
            _decision(2, keyring, recipient=PH, purpose="planning", protocol_id="ph-analytics"),
            _decision(3, keyring, source_agency=LA, recipient=ED, subject_aliases=aliases),
            _decision(4, keyring, subject_key=_key(keyring, "nhs:somebody-else")),
            _decision(5, keyring, decision=AuditOutcome.WITHHELD, reason_code="withheld.x"),
        ]
    )
    assert child  # the decisions above are about this child but for the fourth
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://audit"
    ) as client:
        yield client


def _bearer(path: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {path.read_text().strip()}"}


@pytest.fixture
def tokens(keyring_path: Path, people: People) -> dict[str, dict[str, str]]:
    root = keyring_path.parent
    return {
        "none": {},
        "ig": people.bearer(IG_OFFICER),  # signed in as themselves (OIDC)
        "practitioner": people.bearer(PRACTITIONER),  # someone, but not IG
        "ed": _bearer(root / "agency-tokens" / f"{ED}.token"),
        "bogus": {"Authorization": "Bearer not-a-token"},
    }


ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/audit/decisions", None),
    ("POST", "/audit/decisions/search", {"child": {"nhs_number": NHS}}),
    ("POST", "/audit/disclosure-report", {"nhs_number": NHS}),
    ("GET", "/audit/overrides", None),
    (
        "POST",
        "/audit/overrides/some-id/review",
        {"note": "checked with the DSL", "outcome": "justified"},
    ),
]
# Who gets in (anything but 401/403): the IG officer everywhere; an agency only to search.
ALLOWED = {
    "ig": {e[1] for e in ENDPOINTS},
    "ed": {"/audit/decisions", "/audit/decisions/search"},
}


@pytest.mark.parametrize("who", ["none", "bogus", "practitioner", "ed", "ig"])
async def test_every_endpoint_admits_only_whom_it_should(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]], who: str
) -> None:
    for method, path, body in ENDPOINTS:
        response = await audit.request(method, path, json=body, headers=tokens[who])
        admitted = path in ALLOWED.get(who, set())
        assert (response.status_code not in (401, 403)) == admitted, (who, path, response.text)


async def test_an_agency_sees_only_the_decisions_about_what_it_published(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    mine = (await audit.get("/audit/decisions", headers=tokens["ed"])).json()
    assert mine["total"] == 4 and {i["source_agency"] for i in mine["items"]} == {ED}
    other = await audit.get(f"/audit/decisions?source_agency={LA}", headers=tokens["ed"])
    assert other.status_code == 403
    by_nhs = await audit.post(
        "/audit/decisions/search", json={"child": {"nhs_number": NHS}}, headers=tokens["ed"]
    )
    assert [i["offset_in"] for i in by_nhs.json()["items"]] == [1, 2, 5]
    # The LA's record linked the UPN and its person id to the child: the ED must not follow
    # that link (it would learn which of its patients the LA holds a plan for).
    for child in ({"upn": UPN}, {"la_person_id": LA_ID, "local_authority": LA}):
        found = await audit.post(
            "/audit/decisions/search", json={"child": child}, headers=tokens["ed"]
        )
        assert found.status_code == 200 and found.json()["total"] == 0


@pytest.mark.parametrize(
    "child",
    [
        {"nhs_number": "943 476 5919"},
        {"upn": "b801 2000 05001"},
        {"la_person_id": LA_ID, "local_authority": LA},
    ],
)
async def test_an_ig_officer_finds_a_child_by_any_of_its_identifiers(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]], child: dict[str, str]
) -> None:
    found = await audit.post("/audit/decisions/search", json={"child": child}, headers=tokens["ig"])
    assert found.status_code == 200, found.text
    assert [i["offset_in"] for i in found.json()["items"]] == [1, 2, 3, 5]
    report = await audit.post("/audit/disclosure-report", json=child, headers=tokens["ig"])
    assert report.json()["count"] == 4
    nhs_key = _key_of(report.json())
    assert nhs_key == found.json()["items"][0]["subject_key"]  # recorded under the child
    looks = await audit.get("/audit/decisions?decision=accessed", headers=tokens["ig"])
    assert {i["subject_key"] for i in looks.json()["items"]} == {nhs_key}


def _key_of(report: dict[str, Any]) -> str:
    return str(report["subject_key"])


async def test_filters_by_protocol_purpose_and_decision(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    async def total(query: str) -> int:
        response = await audit.get(f"/audit/decisions?{query}", headers=tokens["ig"])
        return int(response.json()["total"])

    assert await total("protocol_id=ph-analytics") == 1
    # 10:02:30 at UTC+1 is 09:02:30Z: decisions 3, 4 and 5 (recorded 09:03Z to 09:05Z).
    assert await total("since=2026-11-20T10:02:30%2B01:00") == 3
    assert await total("until=2026-11-20T09:02:30") == 2  # no offset: UTC
    assert await total("purpose=safeguarding") == 4
    assert await total("decision=withheld") == 1
    assert await total("purpose=safeguarding&decision=shared&limit=1") == 3
    search = await audit.post(
        "/audit/decisions/search",
        json={"child": {"nhs_number": NHS}, "purpose": "planning"},
        headers=tokens["ig"],
    )
    assert search.json()["total"] == 1


@pytest.mark.parametrize(
    ("query", "where", "rule"),
    [
        ("since=1468", "since", "iso_date"),  # pydantic would read Unix seconds
        ("until=-5", "until", "iso_date"),
        ("recipient=a&recipient=b", "recipient", "query.repeated"),  # FastAPI takes the last
        ("limit=5&limit=6", "limit", "query.repeated"),
    ],
)
async def test_a_filter_that_is_not_what_the_document_says_is_refused(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]], query: str, where: str, rule: str
) -> None:
    """Found by the OpenAPI fuzz drawing fresh examples: both were answered 200."""
    response = await audit.get(f"/audit/decisions?{query}", headers=tokens["ig"])
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert (problem["loc"][-1], problem["type"]) == (where, rule)
    timed = await audit.post("/audit/decisions/search", json={"since": 1468}, headers=tokens["ig"])
    assert timed.status_code == 422


@pytest.mark.parametrize(
    ("child", "rule"),
    [
        ({"upn": "A801200005001"}, "upn.check_letter"),
        ({"upn": "B80120000"}, "upn.format"),
        ({"nhs_number": NHS, "upn": UPN}, "child.one_identifier"),
        ({}, "child.one_identifier"),
        ({"la_person_id": LA_ID}, "child.local_authority"),
        ({"nhs_number": NHS, "local_authority": LA}, "child.local_authority"),
        ({"nhs_number": "9434765910"}, "nhs_number.check_digit"),
    ],
)
async def test_a_bad_identifier_is_refused_naming_the_rule_never_echoing_it(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]], child: dict[str, str], rule: str
) -> None:
    for path, body in (
        ("/audit/decisions/search", {"child": child}),
        ("/audit/disclosure-report", child),
    ):
        response = await audit.post(path, json=body, headers=tokens["ig"])
        assert response.status_code == 422, response.text
        assert rule in response.text
        for value in child.values():
            assert value not in response.text


async def test_an_identifier_linked_to_two_children_is_refused_not_merged(
    audit: httpx.AsyncClient,
    tokens: dict[str, dict[str, str]],
    keyring: Keyring,
    database_url: str,
    tmp_path: Path,
) -> None:
    store = AuditStore(database_url, sealing_from(keyring, tmp_path / "cp.jsonl"))
    other = _key(keyring, "nhs:another-child")
    upn_key = _key(keyring, upn_identifier(UPN))
    store.add_batch([_decision(9, keyring, subject_key=other, subject_aliases=[upn_key])])
    for path, body in (
        ("/audit/disclosure-report", {"upn": UPN}),
        ("/audit/decisions/search", {"child": {"upn": UPN}}),
    ):
        response = await audit.post(path, json=body, headers=tokens["ig"])
        assert response.status_code == 409 and "more than one child" in response.text
    store.engine.dispose()


async def test_a_report_over_its_limit_is_refused_whole_never_cut_short(
    audit: httpx.AsyncClient, tokens: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's limit (100,000 decisions a report), tried at a size a test can store:
    one decision over it is 413, naming the search to page with; at it, the whole report.
    A refused report is no look at the child, so none is recorded."""
    from services.audit import routes_ig

    assert routes_ig.MAX_REPORT == 100_000
    child = {"nhs_number": NHS}
    monkeypatch.setattr(routes_ig, "MAX_REPORT", 3)  # the child has four decisions
    over = await audit.post("/audit/disclosure-report", json=child, headers=tokens["ig"])
    assert over.status_code == 413, over.text
    (problem,) = over.json()["detail"]
    assert problem["type"] == "report.too_large"
    assert "POST /audit/decisions/search" in problem["msg"]
    looks = await audit.get("/audit/decisions?decision=accessed", headers=tokens["ig"])
    assert looks.json()["total"] == 0
    monkeypatch.setattr(routes_ig, "MAX_REPORT", 4)
    whole = await audit.post("/audit/disclosure-report", json=child, headers=tokens["ig"])
    assert whole.status_code == 200 and whole.json()["count"] == 4
