"""The IG console in Debian's Chromium, as an IG officer uses it: sign in at the identity
provider's form, search the demo child, open the report, export CSV, review an override,
look at consent, the protocols, the integrity page (verify now) and the access log, sign
out. Every page passes axe-core with no serious or critical violation, and is screenshot
(INFOSHARE_SCREENSHOTS_DIR=docs/console refreshes the README's images). And the refusals:
someone who is not an IG officer, and nobody signed in."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Page, expect

from deploy.devstack.demo import scenario
from deploy.devstack.identity.provider import CONSOLE_CLIENT, starter_logins
from deploy.devstack.ports import free_listen_port
from services.audit.app import AuditSettings, create_app
from services.audit.models import OVERRIDE_CODE
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from tests.audit_records import decision, subject_key
from tests.e2e.browser.conftest import AxeCheck, Screenshot
from tests.people import IG_OFFICER, PRACTITIONER, People

pytestmark = pytest.mark.e2e
CHILD = scenario.ON_PLAN.nhs_number
LA, ED, SCHOOL = "la-northshire", "nhs-riverside-ed", "school-riverside-primary"


@dataclass(frozen=True)
class Served:
    url: str
    people: People

    def password(self, name: str) -> str:
        return starter_logins(self.people.provider.directory)[name]


def _trail(keyring: Keyring) -> list[AuditRecord]:
    """What the demo leaves about the child on a plan: shared and withheld decisions, an
    override waiting for review, and consent granted then withdrawn."""
    key = subject_key(keyring, subject_identifier(nhs_number=CHILD))
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    consent = [
        AuditRecord(
            audit_id=str(uuid.uuid4()),
            recorded_at=at + timedelta(days=n),
            action="consent_record",
            decision=AuditOutcome.RECORDED,
            reason_code=f"consent.{status}",
            reason=f"consent {status} for early_help, recipients: *",
            actor="Asha Patel <asha.patel>",
            purpose="early_help",
            subject_key=key,
            consent_record_id="consent-1",
            consent_version=n + 1,
        )
        for n, status in enumerate(["granted", "withdrawn"])
    ]
    return [
        decision(keyring, 1, subject_key=key, fields_disclosed=["attendance.arrival_time"]),
        decision(
            keyring,
            2,
            subject_key=key,
            decision=AuditOutcome.WITHHELD,
            reason_code="withheld.no_protocol",
            reason="no protocol shares this event with the recipient",
            recipient=SCHOOL,
        ),
        decision(
            keyring,
            3,
            subject_key=key,
            reason_code=OVERRIDE_CODE,
            override_justification="asking the parent would put the child at risk",
            override_role="ED consultant",
        ),
        *consent,
    ]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, keyring: Keyring, keyring_path: Path, people: People
) -> Iterator[Served]:
    """The audit service's HTTP side, served by uvicorn on a loopback port of its own."""
    root = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{root / 'audit.db'}"
    app = create_app(
        AuditSettings(
            keyring_file=keyring_path,
            audit_database_url=url,
            audit_checkpoint_file=root / "cp.jsonl",
            audit_console_client_id=CONSOLE_CLIENT,
        )
    )
    store = AuditStore(url, sealing_from(keyring, root / "cp.jsonl"))
    store.add_batch(_trail(keyring))
    store.checkpoint()
    port = free_listen_port(1)
    # No lifespan: the trail is stored here directly, not ingested from Kafka.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    try:
        yield Served(base, people)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


async def _sign_in(page: Page, served: Served, name: str, path: str = "/console/search") -> None:
    """Open ``path`` signed out, and sign in as ``name`` at the provider's form."""
    await page.goto(f"{served.url}{path}")
    await expect(page.get_by_label("User name")).to_be_visible()  # the provider's form
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(served.password(name))
    await page.get_by_role("button", name="Sign in").click()


async def _clean(page: Page, axe_violations: AxeCheck, screenshot: Screenshot, name: str) -> None:
    found = await axe_violations(page)
    assert found == [], f"{name}: {found}"
    await screenshot(page, name)


async def test_an_ig_officer_answers_who_received_what_and_why(
    page: Page, served: Served, axe_violations: AxeCheck, screenshot: Screenshot
) -> None:
    await page.goto(f"{served.url}/console/search")
    await expect(page.get_by_label("User name")).to_be_visible()  # the provider's form
    await _clean(page, axe_violations, screenshot, "console-0-sign-in")
    await _sign_in(page, served, IG_OFFICER)
    await expect(page.get_by_role("heading", name="Search disclosures")).to_be_visible()
    await page.get_by_label("Number or id").fill(CHILD)
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("heading", name="5 decisions found")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-1-search")
    await page.get_by_role("button", name="Child's disclosure report").click()
    await expect(page.get_by_role("heading", name="A child's disclosure report")).to_be_visible()
    await expect(page.get_by_text("no protocol shares this event")).to_be_visible()
    assert CHILD not in page.url
    await _clean(page, axe_violations, screenshot, "console-2-report")
    async with page.expect_download() as started:
        await page.get_by_role("button", name="Export CSV").click()
    download = await started.value
    exported = await asyncio.to_thread(Path(await download.path()).read_text)
    table = list(csv.DictReader(io.StringIO(exported)))
    # The three decisions about disclosure, then the two consent records (oldest first).
    assert [r["decision"] for r in table] == ["shared", "withheld", "shared", *["recorded"] * 2]
    assert download.suggested_filename == "disclosure-report.csv"

    await page.get_by_role("link", name="Override reviews").click()
    await expect(page.get_by_text("asking the parent would put the child at risk")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-3-overrides")
    await page.get_by_label("Justified", exact=True).check()
    await page.get_by_label("Note (what you found, and what follows)").fill(
        "Spoke with the ED consultant: the risk was real."
    )
    await page.get_by_role("button", name="Record the review").click()
    await expect(page.get_by_text("the risk was real.")).to_be_visible()
    await expect(page.get_by_role("link", name="Reviewed")).to_have_attribute(
        "aria-current", "page"
    )

    await page.get_by_role("link", name="Consent", exact=True).click()
    await page.get_by_label("Number or id").fill(CHILD)
    await page.get_by_role("button", name="Show consent").click()
    await expect(page.get_by_role("heading", name="History")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-4-consent")

    await page.get_by_role("link", name="Protocols").click()
    await expect(page.locator("svg.map")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-5-protocols")
    await page.get_by_role("link", name="Unscheduled-care attendance notified").click()
    await expect(page.get_by_role("heading", name="Recipients")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-6-protocol")

    await page.get_by_role("link", name="Integrity").click()
    async with page.expect_navigation():  # the page after the post, not the one before it
        await page.get_by_role("button", name="Verify now").click()
    deadline = time.monotonic() + 30
    progress = page.get_by_role("link", name="Check progress")
    while await progress.count():  # asking again, as an officer would, until it has ended
        assert time.monotonic() < deadline, "the verification did not end"
        async with page.expect_navigation():
            await progress.click()
    await expect(page.get_by_text("Intact")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-7-integrity")

    await page.get_by_role("link", name="Access log").click()
    await expect(page.get_by_text("disclosure report (console page")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-8-access")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-9-signed-out")
    await page.goto(f"{served.url}/console/search")
    await expect(page.get_by_label("User name")).to_be_visible()  # signed out for real


async def test_someone_not_an_ig_officer_is_refused(
    page: Page, served: Served, axe_violations: AxeCheck, screenshot: Screenshot
) -> None:
    await _sign_in(page, served, PRACTITIONER)
    await expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    await _clean(page, axe_violations, screenshot, "console-refused")
    await page.goto(f"{served.url}/console/access")
    await expect(page.get_by_label("User name")).to_be_visible()  # no session was opened


async def test_a_logged_out_user_is_sent_to_sign_in(page: Page, served: Served) -> None:
    for path in ("/console/integrity", "/console/protocols", "/console/overrides"):
        await page.goto(f"{served.url}{path}")
        assert page.url.startswith(f"{served.people.issuer}/authorize?")
        await expect(page.get_by_label("User name")).to_be_visible()


async def test_the_keyboard_reaches_everything_and_shows_where_it_is(
    page: Page, served: Served
) -> None:
    await page.goto(f"{served.url}/console/search")
    await page.get_by_label("User name").fill(IG_OFFICER)
    await page.get_by_label("Password").fill(served.password(IG_OFFICER))
    await page.keyboard.press("Enter")  # the form submits from the keyboard
    await expect(page.get_by_role("heading", name="Search disclosures")).to_be_visible()
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    await expect(skip).to_be_focused()
    outline = await skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"  # a visible focus ring
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")  # into the form, past the header
    focused = await page.evaluate("() => document.activeElement.id")
    assert focused == "kind"
