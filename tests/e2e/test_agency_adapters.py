"""The agency services as an integrator uses them, on the whole stack (every component its own
process): each agency posts its native formats with its API key, the canonical events flow
to the recipients the protocols name, and no agency can act as another."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.demo import scenario
from deploy.devstack.demo.play import wait_for
from deploy.devstack.stack import Stack
from services.backbone.kafka_access import KafkaAccess
from tests.e2e.stacks import running_stack
from tests.integration.agency_helpers import CSV_QUERY, DATA
from tests.integration.kafka_helpers import end_offsets

LA, ED, SCHOOL = "la-northshire", "nhs-riverside-ed", "school-oakfield"
PH = "ph-northshire"  # a recipient only


@pytest.fixture(scope="module")
def stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(kafka_access, tmp_path_factory) as running:
        yield running


def auth(stack: Stack, agency: str) -> dict[str, str]:
    secret = (stack.config.state_dir / "agency-tokens" / f"{agency}.token").read_text().strip()
    return {"Authorization": f"Bearer {secret}"}


def sample(agency: str, name: str) -> bytes:
    return (DATA / agency / name).read_bytes()


def post(stack: Stack, service: str, agency: str, path: str, body: bytes, media: str) -> Any:
    got = httpx.post(
        stack.url(service) + path,
        content=body,
        headers={"content-type": media, **auth(stack, agency)},
        timeout=30,
    )
    assert got.status_code == 202, got.text
    return got.json()


def inbox_types(stack: Stack, service: str, agency: str) -> Callable[[], list[str]]:
    def types() -> list[str]:
        got = httpx.get(stack.url(service) + "/inbox?limit=1000", headers=auth(stack, agency))
        assert got.status_code == 200
        return [item["type"] for item in got.json()["items"]]

    return types


def test_each_agency_posts_its_native_formats_and_the_events_flow(stack: Stack) -> None:
    # The authority's case system: a child protection plan for the child the trust then
    # flags a safeguarding concern about (Flag) and does not see brought (Appointment).
    plan = scenario.plan_started(scenario.ON_PLAN)
    post(
        stack,
        "socialcare",
        LA,
        "/child-protection-plans",
        json.dumps(plan).encode(),
        "application/json",
    )
    la_inbox = inbox_types(stack, "socialcare", LA)
    ed_inbox = inbox_types(stack, "health", ED)
    wait_for("the ED receives the plan flag", lambda: len(ed_inbox()) >= 1)

    fhir = "application/fhir+json"
    accepted = post(
        stack,
        "health",
        ED,
        "/fhir/Appointment",
        sample("health", "appointment-was-not-brought.json"),
        fhir,
    )
    assert [e["type"] for e in accepted["events"]] == ["health.appointment.was_not_brought"]
    wait_for(
        "the authority is told the child on its plan was not brought",
        lambda: "health.appointment.was_not_brought" in la_inbox(),
    )

    # A child becomes looked after: CP-IS covers looked-after children too.
    post(
        stack,
        "socialcare",
        LA,
        "/looked-after-episodes",
        sample("socialcare", "looked-after-episodes.json"),
        "application/json",
    )
    wait_for(
        "the ED receives the looked-after flag",
        lambda: "socialcare.looked_after.started" in ed_inbox(),
    )

    # The school's MIS export, as the MIS writes it.
    upload = post(
        stack,
        "education",
        SCHOOL,
        "/attendance/upload" + CSV_QUERY,
        sample("education", "attendance.csv"),
        "text/csv",
    )
    assert upload["rows_read"] == 6 and len(upload["events"]) == 4
    wait_for(
        "the authority receives the attendance concerns",
        lambda: la_inbox().count("education.attendance.concern") == 4,
    )
    status = httpx.get(
        stack.url("education") + f"/submissions/{upload['submission']}", headers=auth(stack, SCHOOL)
    ).json()
    assert all(e["published_at"] for e in status["events"])


@pytest.mark.parametrize(
    ("service", "path", "as_agency"),
    [
        ("socialcare", "/child-protection-plans", ED),
        ("health", "/fhir/Appointment", LA),
        ("education", "/safeguarding-concerns", ED),
    ],
)
def test_no_agency_can_act_as_another(
    stack: Stack, service: str, path: str, as_agency: str
) -> None:
    own = {"socialcare": LA, "health": ED, "education": SCHOOL}[service]
    topic = f"{stack.config.namespace}source.{own}"
    before = _run(end_offsets(topic, stack.kafka))
    got = httpx.post(
        stack.url(service) + path,
        content=b"{}",
        headers={"content-type": "application/json", **auth(stack, as_agency)},
    )
    # This service holds only its own agency's key hashes (keys by role): another agency's
    # key is no key here at all.
    assert got.status_code == 401
    inbox = httpx.get(stack.url(service) + "/inbox", headers=auth(stack, as_agency))
    assert inbox.status_code == 401
    assert _run(end_offsets(topic, stack.kafka)) == before


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def test_an_api_key_issued_or_revoked_takes_effect_without_a_restart(stack: Stack) -> None:
    keyring = str(stack.keyring)
    issue = ["keys", "api-key", "issue", "--keyring", keyring, "--agency", SCHOOL]
    issued = CliRunner().invoke(
        app, [*issue, "--scope", "inbox:read", "--name", "viewer", "--expires-in", "1"]
    )
    assert issued.exit_code == 0, issued.output
    key = issued.stdout.strip().splitlines()[-1]
    key_id = issued.stderr.split("issued ")[1].split()[0]
    inbox = stack.url("education") + "/inbox"

    def status() -> int:
        return httpx.get(inbox, headers={"Authorization": f"Bearer {key}"}).status_code

    wait_for("the new key accepted", lambda: status() == 200, timeout=10)
    revoked = CliRunner().invoke(app, ["keys", "api-key", "revoke", "--keyring", keyring, key_id])
    assert revoked.exit_code == 0, revoked.output
    wait_for("the revoked key refused", lambda: status() == 401, timeout=10)


def test_a_renewed_agency_token_replaces_the_old_one_everywhere_without_a_restart(
    stack: Stack,
) -> None:
    old = auth(stack, PH)
    renewed = CliRunner().invoke(
        app, ["keys", "agency-token", "--keyring", str(stack.keyring), "--agency", PH]
    )
    assert renewed.exit_code == 0, renewed.output
    new = auth(stack, PH)  # the file the agency collects its token from
    assert new != old
    urls = (
        f"{stack.url('delivery')}/recipients/{PH}/subscriptions",  # the delivery service
        f"{stack.url('audit')}/audit/decisions",  # the audit service
    )
    for url in urls:

        def refused(url: str = url) -> bool:
            return httpx.get(url, headers=old).status_code == 401

        wait_for("the old token refused", refused)
        assert httpx.get(url, headers=new).status_code == 200, url
