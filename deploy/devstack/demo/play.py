"""Play the demo scenario against a running stack: the CP-IS flow, then consent given and
withdrawn for early help, a safeguarding override, a resent request, and a school's MIS
attendance export; return what each agency received,
the audit trail and the IG review queue. Rendering lives in ``demo_render``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from deploy.devstack.demo import scenario
from deploy.devstack.identity import provider
from deploy.devstack.stack import Stack

# People sign in as themselves with the stack's identity provider (infoshare users).
IG_OFFICER = f"person:{provider.IG_OFFICER}"
PRACTITIONER = f"person:{provider.PRACTITIONER}"


def agency_credentials(agency: str) -> str:
    return f"agency-tokens/{agency}.token"


# A plan flag, the authority told the ED received it (access back), five attendances
# decided under three protocols each, one suppressed copy, two attendance concerns; and
# the practitioner's two consent records (granted, withdrawn), audited as she made them.
SCHOOL_CONCERNS = 2
CONSENT_RECORDS = 2
# The correction: its flag to the emergency department, the authority's access-back notice,
# and the copy sent again, suppressed.
AMENDMENT_DECISIONS = 3
BEFORE_AMENDMENT = 1 + 1 + 5 * 3 + 1 + SCHOOL_CONCERNS + CONSENT_RECORDS
# The attendance sent under the wrong child (three protocols decide it: the authority and
# public health receive it); its recall, one notice to each; and what the notices deleted:
# the authority's copy in its inbox and both copies in the delivery store.
RECALLED_ATTENDANCE = 3
RECALL_NOTICES = 2
RECALL_PURGES = 3
BEFORE_RECALL = BEFORE_AMENDMENT + AMENDMENT_DECISIONS
EXPECTED_DECISIONS = BEFORE_RECALL + RECALLED_ATTENDANCE + RECALL_NOTICES + RECALL_PURGES


class ScenarioFailed(RuntimeError):
    """The system did not do what the scenario expects within the time allowed."""


@dataclass
class Outcome:
    received: dict[str, list[dict[str, Any]]]
    audit: list[dict[str, Any]]
    pending_reviews: list[dict[str, Any]]


def wait_for(what: str, check: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _expect(response: httpx.Response, code: int) -> dict[str, Any]:
    if response.status_code != code:
        raise ScenarioFailed(
            f"{response.request.url} answered {response.status_code}: {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return body


class _Driver:
    """The agencies' and practitioners' HTTP calls, and the conditions the demo waits on."""

    def __init__(self, stack: Stack, http: httpx.Client, timeout: float) -> None:
        self.stack, self.http, self.timeout = stack, http, timeout
        self.encounters = 0
        self.last: tuple[dict[str, str], bytes] = ({}, b"")
        self.submission = ""  # the last attendance's

    def url(self, name: str) -> str:
        return self.stack.url(name)

    def bearer(self, credentials: str) -> dict[str, str]:
        """The Authorization header of a person (``person:<login>``: a token from the stack's
        identity provider) or of an agency (``agency-tokens/<agency>.token``, a file in the
        state directory)."""
        state = self.stack.config.state_dir
        if credentials.startswith("person:"):
            login = credentials.removeprefix("person:")
            token = provider.DevIdentityProvider(state / "identity").token(login, ttl_s=600)
        else:
            token = (state / credentials).read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def items(self, url: str, *, credentials: str | None = None) -> list[dict[str, Any]]:
        headers = self.bearer(credentials) if credentials else {}
        got = _expect(self.http.get(url, headers=headers), 200)
        items: list[dict[str, Any]] = got["items"]
        return items

    def audit_rows(self) -> list[dict[str, Any]]:
        return self.items(f"{self.url('audit')}/audit/decisions?limit=1000", credentials=IG_OFFICER)

    def decided(self, count: int, what: str) -> None:
        wait_for(what, lambda: len(self.audit_rows()) >= count, timeout=self.timeout)

    def attend(self, child: scenario.Child, arrival: str, override: str | None = None) -> None:
        self.encounters += 1
        headers = {
            "content-type": "application/fhir+json",
            **self.bearer(agency_credentials("nhs-riverside-ed")),
        }
        if override:
            headers["Safeguarding-Override-Justification"] = override
            headers["Safeguarding-Override-Role"] = "ED consultant"
        bundle = scenario.attendance_bundle(
            child, encounter_id=f"ED-{77800 + self.encounters}", arrival=arrival
        )
        self.last = (headers, orjson.dumps(bundle))
        self.send_last()

    def send_last(self) -> None:
        """The last attendance again, byte for byte: the same encounter, so the same event."""
        headers, body = self.last
        answer = _expect(
            self.http.post(f"{self.url('health')}/fhir/Bundle", headers=headers, content=body), 202
        )
        self.submission = str(answer["submission"])

    def recall_last(self, reason: str) -> None:
        """The last attendance's submission recalled, as the hospital's system would."""
        _expect(
            self.http.post(
                f"{self.url('health')}/submissions/{self.submission}/recall",
                json={"reason": reason},
                headers=self.bearer(agency_credentials("nhs-riverside-ed")),
            ),
            202,
        )

    def correct_plan(self) -> None:
        """The plan sent again under its id with its category corrected: a new version."""
        corrected = scenario.plan_started(scenario.ON_PLAN)
        corrected["plan"]["category"] = "emotional_abuse"
        url = f"{self.url('socialcare')}/child-protection-plans"
        auth = self.bearer(agency_credentials("la-northshire"))
        for _ in range(2):  # the second time unchanged: the same event, dropped
            (event,) = _expect(self.http.post(url, json=corrected, headers=auth), 202)["events"]
            if event.get("version") != 2:
                raise ScenarioFailed(f"the correction was not taken as an amendment: {event}")

    def upload_attendance(self) -> None:
        start, end = scenario.ATTENDANCE_PERIOD
        _expect(
            self.http.post(
                f"{self.url('education')}/attendance/upload",
                params={
                    "period_start": start,
                    "period_end": end,
                    "urn": "999001",
                    "dsl_name": "Alex Teacher",
                    "dsl_phone": "01632 960123",
                },
                headers={
                    "content-type": "text/csv",
                    **self.bearer(agency_credentials("school-oakfield")),
                },
                content=scenario.attendance_export(),
            ),
            202,
        )

    def consent(self, child: scenario.Child, status: str) -> None:
        _expect(
            self.http.post(
                f"{self.url('consent')}/consents",
                headers=self.bearer(PRACTITIONER),
                json={
                    "nhs_number": child.nhs_number,
                    "purpose": "early_help",
                    "scope": "la-northshire",
                    "status": status,
                    "given_by": "parent",
                    "evidence_ref": "consent form EH-2026-311",
                },
            ),
            201,
        )


def play(stack: Stack, *, say: Callable[[str], None] = print, timeout: float = 30.0) -> Outcome:
    with httpx.Client(timeout=10.0) as http:
        run = _Driver(stack, http, timeout)
        say("1. Social care places a child on a child protection plan")
        _expect(
            http.post(
                f"{run.url('socialcare')}/child-protection-plans",
                json=scenario.plan_started(scenario.ON_PLAN),
                headers=run.bearer(agency_credentials("la-northshire")),
            ),
            202,
        )
        run.decided(2, "the plan flag decision and the authority's access-back notice")
        say("2. The child attends the emergency department")
        run.attend(scenario.ON_PLAN, "2026-11-20T21:14:00Z")
        say("3. A child who is not on a plan attends: no consent for early help yet")
        run.attend(scenario.NOT_ON_PLAN, "2026-11-20T22:03:00Z")
        run.decided(8, "the first attendances' decisions")
        say("4. The family consents to early help; the child attends again")
        run.consent(scenario.NOT_ON_PLAN, "granted")
        run.attend(scenario.NOT_ON_PLAN, "2026-11-22T19:40:00Z")
        run.decided(11, "the attendance under consent")
        say("5. The family withdraws consent; the child attends again")
        run.consent(scenario.NOT_ON_PLAN, "withdrawn")
        run.attend(scenario.NOT_ON_PLAN, "2026-11-24T08:15:00Z")
        run.decided(14, "the attendance after the withdrawal")
        say("6. A clinician shares a third child's attendance without consent, saying why")
        run.attend(scenario.THIRD, "2026-11-25T02:30:00Z", override=scenario.OVERRIDE_REASON)
        run.decided(BEFORE_AMENDMENT - SCHOOL_CONCERNS - 1, "the override's decisions")
        say("7. The hospital's system, unsure its request arrived, sends it again")
        run.send_last()
        run.decided(BEFORE_AMENDMENT - SCHOOL_CONCERNS, "the copy, suppressed")
        say(
            "8. The school uploads its MIS attendance export: the authority hears of the pupils "
            "whose attendance gives concern"
        )
        run.upload_attendance()
        run.decided(BEFORE_AMENDMENT, "the school's concerns")
        say(
            "9. Social care corrects the plan's category: the emergency department is sent the "
            "correction, marked as superseding what it holds; sent again, it reaches nobody"
        )
        run.correct_plan()
        run.decided(BEFORE_RECALL, "the correction's decisions")
        say(
            "10. The hospital sends an attendance under the wrong child's record, then recalls "
            "it: the authority and public health are told to delete it, and infoshare deletes "
            "its own copies"
        )
        run.attend(scenario.ON_PLAN, "2026-11-26T10:05:00Z")
        run.decided(BEFORE_RECALL + RECALLED_ATTENDANCE, "the misfiled attendance's decisions")
        run.recall_last("wrong_subject")
        run.decided(EXPECTED_DECISIONS, "every decision in the audit trail")
        queue = http.get(f"{run.url('audit')}/audit/overrides", headers=run.bearer(IG_OFFICER))
        queue.raise_for_status()
        pending: list[dict[str, Any]] = queue.json()
        return Outcome(
            received={
                "nhs-riverside-ed": run.items(
                    f"{run.url('health')}/inbox",
                    credentials=agency_credentials("nhs-riverside-ed"),
                ),
                "la-northshire": run.items(
                    f"{run.url('socialcare')}/inbox",
                    credentials=agency_credentials("la-northshire"),
                ),
                "ph-northshire": run.items(
                    f"{run.url('delivery')}/recipients/ph-northshire/inbox",
                    credentials=agency_credentials("ph-northshire"),
                ),
            },
            audit=run.audit_rows(),
            pending_reviews=pending,
        )
