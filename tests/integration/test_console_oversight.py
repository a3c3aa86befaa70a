"""The IG console's oversight pages over HTTP: the override queue and its reviews (sealed,
once, with an outcome), a child's consent history, the access log, the protocols with their
warnings, and the integrity page's "verify now". Each look is recorded in the trail."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import httpx
import pytest

from services.audit.app import AuditSettings, create_app
from services.audit.models import OVERRIDE_CODE
from services.audit.sealing import sealing_from
from services.audit.store import AuditQuery, AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from tests.audit_records import NHS, decision, subject_key
from tests.console import CONSOLE_CLIENT, sign_in
from tests.integration.kafka_helpers import eventually
from tests.people import IG_OFFICER, OFFICER, People

BASE = "http://127.0.0.1:8998"


def _consent(keyring: Keyring, status: str, version: int, minutes: int) -> AuditRecord:
    return AuditRecord(
        audit_id=str(uuid.uuid4()),
        recorded_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        action="consent_record",
        decision=AuditOutcome.RECORDED,
        reason_code=f"consent.{status}",
        reason=f"consent {status} for early_help, recipients: *",
        actor="Asha Patel <asha.patel>",
        purpose="early_help",
        subject_key=subject_key(keyring, subject_identifier(nhs_number=NHS)),
        consent_record_id="c-1",
        consent_version=version,
    )


@pytest.fixture
async def console(
    tmp_path: Path, keyring: Keyring, keyring_path: Path, people: People
) -> AsyncIterator[tuple[httpx.AsyncClient, AuditStore, str]]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    app = create_app(
        AuditSettings(
            keyring_file=keyring_path,
            audit_database_url=url,
            audit_checkpoint_file=tmp_path / "cp.jsonl",
            audit_console_client_id=CONSOLE_CLIENT,
        )
    )
    store = AuditStore(url, sealing_from(keyring, tmp_path / "cp.jsonl"))
    override = decision(
        keyring,
        1,
        reason_code=OVERRIDE_CODE,
        override_justification="asking the parent would put the child at risk",
        override_role="ED consultant",
    )
    store.add_batch(
        [
            override,
            decision(keyring, 2),
            _consent(keyring, "granted", 1, 0),
            _consent(keyring, "withdrawn", 2, 60),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await sign_in(client, people, IG_OFFICER)
        page = await client.get("/console/search")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        yield client, store, csrf.group(1)


def _looks(store: AuditStore) -> list[str]:
    rows, _ = store.search(AuditQuery(decision="accessed"))
    return [r.reason_code for r in rows]


async def test_an_override_is_reviewed_once_with_its_outcome_sealed(
    console: tuple[httpx.AsyncClient, AuditStore, str],
) -> None:
    client, store, csrf = console
    queue = await client.get("/console/overrides")
    assert "asking the parent would put the child at risk" in queue.text
    (audit_id,) = re.findall(r'action="/console/overrides/([^/]+)/review"', queue.text)
    target = f"/console/overrides/{audit_id}/review"
    missing = await client.post(target, data={"csrf": csrf, "note": "kept as typed"})
    assert missing.status_code == 422 and "outcome" in missing.text  # none chosen
    assert ">kept as typed</textarea>" in missing.text  # nothing typed is lost
    done = await client.post(
        target, data={"csrf": csrf, "outcome": "justified", "note": "risk was real"}
    )
    assert (done.status_code, done.headers["location"]) == (
        303,
        "/console/overrides?status=reviewed&recorded=1",
    )
    again = await client.post(target, data={"csrf": csrf, "outcome": "follow_up", "note": "x2"})
    assert again.status_code == 409
    reviewed = await client.get(done.headers["location"])
    assert "Review recorded" in reviewed.text
    assert f"by {escape(OFFICER)}" in reviewed.text and "justified. risk was real" in reviewed.text
    rows, _ = store.search(AuditQuery(action="override_review"))
    assert [(r.reason_code, r.reason, r.refers_to) for r in rows] == [
        ("override.reviewed.justified", "risk was real", audit_id)
    ]
    assert _looks(store).count("access.override_queue") == 3  # each page shown


async def test_a_childs_consent_history_shows_what_is_in_force(
    console: tuple[httpx.AsyncClient, AuditStore, str],
) -> None:
    client, store, csrf = console
    page = await client.post(
        "/console/consent", data={"csrf": csrf, "kind": "nhs_number", "identifier": NHS}
    )
    assert page.status_code == 200
    in_force = page.text.split("<h2>In force now</h2>", 1)[1].split("<h2>History</h2>", 1)[0]
    assert "withdrawn" in in_force and "granted" not in in_force
    history = page.text.split("<h2>History</h2>", 1)[1]
    assert history.index("granted") < history.index("withdrawn")
    assert _looks(store) == ["access.consent_history"]


async def test_the_access_log_lists_looks_newest_first(
    console: tuple[httpx.AsyncClient, AuditStore, str],
) -> None:
    client, store, csrf = console
    await client.post("/console/search", data={"csrf": csrf, "kind": "nhs_number"})
    log = await client.get("/console/access")
    assert log.status_code == 200
    assert f"ig-officer:{escape(OFFICER)}" in log.text and "searched the audit trail" in log.text
    assert _looks(store) == ["access.search", "access.access_log"]


async def test_protocols_are_mapped_and_each_has_its_page(
    console: tuple[httpx.AsyncClient, AuditStore, str],
) -> None:
    client, store, _ = console
    page = await client.get("/console/protocols")
    assert page.status_code == 200
    assert "<svg" in page.text and "cpis-attendance-notification@2" in page.text
    detail = await client.get("/console/protocols/cpis-attendance-notification/2")
    assert detail.status_code == 200
    assert "UK GDPR Art 6(1)(e) public task" in detail.text
    assert "attendance.arrival_time" in detail.text
    assert (await client.get("/console/protocols/nothing/1")).status_code == 404
    assert _looks(store) == ["access.protocols"] * 2  # each page seen, not the refusal


async def test_verify_now_walks_the_trail_and_says_so(
    console: tuple[httpx.AsyncClient, AuditStore, str],
) -> None:
    client, store, csrf = console
    store.checkpoint()
    started = await client.post("/console/integrity/verify", data={"csrf": csrf})
    assert (started.status_code, started.headers["location"]) == (
        303,
        "/console/integrity?progress=1",
    )

    async def finished() -> bool:
        page = await client.get("/console/integrity?progress=1")  # not recorded as a look
        return "Intact" in page.text

    await eventually("the verification to end intact", finished)
    page = await client.get("/console/integrity")
    assert f"by ig-officer:{escape(OFFICER)}" in page.text
    assert _looks(store) == ["access.verify", "access.integrity"]  # progress checks are not


async def test_an_unreadable_checkpoint_file_is_said_not_a_500(
    console: tuple[httpx.AsyncClient, AuditStore, str],
) -> None:
    client, store, _ = console
    store.checkpoint()
    path = store.sealing.checkpoint_file
    assert path is not None
    path.write_text(path.read_text() + "{not json\n")
    page = await client.get("/console/integrity")
    assert page.status_code == 200
    assert "the checkpoint file cannot be read (JSONDecodeError)" in page.text
    odd = await client.get("/console/access", params={"offset": "abc"})
    assert odd.status_code == 200  # the newest page, not a JSON error
