"""The IG console over HTTP (the audit app in process, the worker's identity provider a real
server): sign-in by the code flow, only IG officers, CSRF on every form, sessions that end,
searches and reports recorded in the trail, and no identifier in any URL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.audit.app import AuditSettings, create_app
from services.audit.sealing import sealing_from
from services.audit.store import AuditQuery, AuditStore
from services.backbone.audit_contract import AuditOutcome
from services.backbone.keyring import Keyring
from tests.audit_records import NHS, decision, subject_key
from tests.console import CONSOLE_CLIENT, sign_in
from tests.people import IG_OFFICER, OFFICER, PRACTITIONER, People

BASE = "http://127.0.0.1:8999"  # loopback: the client's registered callback, any port
CSRF_FIELD = 'name="csrf" value="'


class Console:
    def __init__(self, client: httpx.AsyncClient, store: AuditStore) -> None:
        self.client = client
        self.store = store
        self.urls: list[str] = []

    async def csrf(self) -> str:
        page = await self.client.get("/console/search")
        assert page.status_code == 200, page.text
        return page.text.split(CSRF_FIELD, 1)[1].split('"', 1)[0]


@pytest.fixture
async def console(
    tmp_path: Path, keyring: Keyring, keyring_path: Path, people: People
) -> AsyncIterator[Console]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    settings = AuditSettings(
        keyring_file=keyring_path,
        audit_database_url=url,
        audit_checkpoint_file=tmp_path / "cp.jsonl",
        audit_console_client_id=CONSOLE_CLIENT,
    )
    app = create_app(settings)
    store = AuditStore(url, sealing_from(keyring, tmp_path / "cp.jsonl"))
    store.add_batch(
        [
            decision(keyring, 1),
            decision(keyring, 2, decision=AuditOutcome.WITHHELD, reason_code="withheld.x"),
            decision(keyring, 3, subject_key=subject_key(keyring, "nhs:somebody-else")),
        ]
    )
    seen: list[str] = []

    async def note(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE,
        event_hooks={"request": [note]},
    ) as client:
        c = Console(client, store)
        c.urls = seen
        yield c


def _accessed(store: AuditStore) -> list[str]:
    rows, _ = store.search(AuditQuery(decision="accessed"))
    return [f"{r.actor} | {r.reason_code}" for r in rows]


async def test_an_officer_signs_in_searches_and_reports_and_each_look_is_recorded(
    console: Console, people: People
) -> None:
    landed = await sign_in(console.client, people, IG_OFFICER)
    assert (landed.status_code, landed.headers["location"]) == (303, "/console/search")
    csrf = await console.csrf()
    found = await console.client.post(
        "/console/search",
        data={"csrf": csrf, "kind": "nhs_number", "identifier": NHS},
    )
    assert found.status_code == 200
    assert "2 decisions found" in found.text
    assert "withheld" in found.text and "cpis-attendance-notification" in found.text
    assert NHS not in found.text.split("<table", 1)[1]  # typed into the form, never shown back
    report = await console.client.post(
        "/console/report", data={"csrf": csrf, "kind": "nhs_number", "identifier": NHS}
    )
    assert report.status_code == 200 and "2 decisions" in report.text
    exported = await console.client.post(
        "/console/report/export",
        data={"csrf": csrf, "kind": "nhs_number", "identifier": NHS, "format": "csv"},
    )
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["decision"] for r in table] == ["shared", "withheld"]
    assert _accessed(console.store) == [
        f"ig-officer:{OFFICER} | access.search",
        f"ig-officer:{OFFICER} | access.disclosure_report",
        f"ig-officer:{OFFICER} | access.disclosure_report",
    ]
    assert not [u for u in console.urls if NHS in u]


async def test_pages_are_locked_down(console: Console, people: People) -> None:
    await sign_in(console.client, people, IG_OFFICER)
    page = await console.client.get("/console/search")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    cookie = page.request.headers["cookie"]
    assert "infoshare_console=" in cookie


async def test_someone_who_is_not_an_ig_officer_is_refused(
    console: Console, people: People
) -> None:
    refused = await sign_in(console.client, people, PRACTITIONER)
    assert refused.status_code == 403
    assert "ig_officer" in refused.text
    after = await console.client.get("/console/search")
    assert (after.status_code, after.headers["location"]) == (303, "/console/signin")


async def test_nobody_signed_in_is_sent_to_sign_in_and_reads_nothing(console: Console) -> None:
    for method, path in [("GET", "/console/search"), ("POST", "/console/search")]:
        answer = await console.client.request(
            method, path, data={"identifier": NHS} if method == "POST" else None
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/console/signin")
    assert _accessed(console.store) == []


async def test_a_form_without_the_sessions_token_or_from_elsewhere_is_refused(
    console: Console, people: People
) -> None:
    await sign_in(console.client, people, IG_OFFICER)
    csrf = await console.csrf()
    form = {"kind": "nhs_number", "identifier": NHS}
    assert (await console.client.post("/console/search", data=form)).status_code == 403
    bad = {**form, "csrf": "x" * len(csrf)}
    assert (await console.client.post("/console/search", data=bad)).status_code == 403
    elsewhere = await console.client.post(
        "/console/report", data={**form, "csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert _accessed(console.store) == []


async def test_a_callback_not_begun_here_or_replayed_opens_no_session(
    console: Console, people: People
) -> None:
    forged = await console.client.get("/console/callback", params={"code": "x", "state": "y"})
    assert forged.status_code == 400
    landed = await sign_in(console.client, people, IG_OFFICER)
    again = await console.client.get("/console/callback", params=dict(landed.request.url.params))
    assert again.status_code == 400  # the sign-in was used


async def test_signing_out_ends_the_session(console: Console, people: People) -> None:
    await sign_in(console.client, people, IG_OFFICER)
    csrf = await console.csrf()
    cookie = console.client.cookies.get("infoshare_console")
    out = await console.client.post("/console/signout", data={"csrf": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/console/signed-out")
    console.client.cookies.set("infoshare_console", cookie or "", path="/console")
    after = await console.client.get("/console/search")  # the old cookie, replayed
    assert (after.status_code, after.headers["location"]) == (303, "/console/signin")


async def test_a_bad_identifier_is_explained_without_echoing_it(
    console: Console, people: People
) -> None:
    await sign_in(console.client, people, IG_OFFICER)
    csrf = await console.csrf()
    wrong = "9434765918"  # the check digit is wrong
    answer = await console.client.post(
        "/console/report", data={"csrf": csrf, "kind": "nhs_number", "identifier": wrong}
    )
    assert answer.status_code == 422
    assert "nhs number" in answer.text.lower()
    assert answer.text.count(wrong) == 1  # only in the field, as typed, to correct it


async def test_odd_input_is_refused_or_answered_never_a_500(
    console: Console, people: People
) -> None:
    await sign_in(console.client, people, IG_OFFICER)
    csrf = await console.csrf()
    odd = await console.client.post("/console/search", data={"csrf": "é" * 10})
    assert odd.status_code == 403
    last_day = await console.client.post(
        "/console/search", data={"csrf": csrf, "since": "0001-01-01", "until": "9999-12-31"}
    )
    assert last_day.status_code == 200 and "3 decisions found" in last_day.text
    not_a_day = await console.client.post("/console/search", data={"csrf": csrf, "until": "x"})
    assert not_a_day.status_code == 422 and "YYYY-MM-DD" in not_a_day.text
    refused = await console.client.get(
        "/console/callback", params={"error": "access_denied", "state": "s"}
    )
    assert refused.status_code == 401 and "access_denied" in refused.text


async def test_sign_out_needs_the_sessions_form_and_a_new_sign_in_ends_the_old_session(
    console: Console, people: People
) -> None:
    await sign_in(console.client, people, IG_OFFICER)
    first = console.client.cookies.get("infoshare_console")
    forged = await console.client.post("/console/signout", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert (await console.client.get("/console/search")).status_code == 200  # still in
    await sign_in(console.client, people, IG_OFFICER)
    assert console.client.cookies.get("infoshare_console") != first
    console.client.cookies.set("infoshare_console", first or "", path="/console")
    stale = await console.client.get("/console/search")
    assert (stale.status_code, stale.headers["location"]) == (303, "/console/signin")


async def test_behind_a_proxy_the_public_url_decides_origin_and_secure_cookies(
    tmp_path: Path, keyring_path: Path, people: People
) -> None:
    public = "https://ig.example.org"
    app = create_app(
        AuditSettings(
            keyring_file=keyring_path,
            audit_database_url=f"sqlite:///{tmp_path / 'audit.db'}",
            audit_checkpoint_file=tmp_path / "cp.jsonl",
            audit_console_client_id=CONSOLE_CLIENT,
            audit_console_url=public,
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        begun = await client.get("/console/signin")
        assert "secure" in begun.headers["set-cookie"].lower()
        assert (
            "redirect_uri=https%3A%2F%2Fig.example.org%2Fconsole%2Fcallback"
            in (begun.headers["location"])
        )
