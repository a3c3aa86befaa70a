"""The CP-IS scenario driven as the agencies drive it: HTTP in (case-system JSON, FHIR R4),
every component as its own process on the real broker, deliveries and audit read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy
from aiokafka import ConsumerRecord
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from consent.processor.access_back import ACCESS_BACK
from deploy.devstack.demo import scenario
from deploy.devstack.demo.play import Outcome, wait_for
from deploy.devstack.postgres.databases import OUTBOX_URL
from deploy.devstack.stack import Stack
from services.agency.runtime import AgencyServiceSettings
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.recall import RECALLED
from services.backbone.topics import Topics
from services.ops.components import BY_NAME
from tests.e2e.scenario_data import IDENTIFYING
from tests.integration.kafka_helpers import end_offsets, read_all, read_topic
from tests.people import IG, OFFICER, PRACTITIONER_ACTOR, stack_token
from tests.people import PERSON_PRACTITIONER as PRACTITIONER
from tests.unit.factories import FLAG_FIELDS

LA = "la-northshire"
ED = "nhs-riverside-ed"

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

ATTENDANCE = "health.unscheduled_care.attendance"


def delivered(outcome: Outcome, agency: str) -> list[dict[str, Any]]:
    """What ``agency`` received, but for recall notices."""
    return [i for i in outcome.received[agency] if i["type"] != RECALLED]


def test_ed_receives_exactly_the_plan_flag(outcome: Outcome) -> None:
    # The flag, then its correction (the category), which says it supersedes the flag.
    flag, correction = outcome.received["nhs-riverside-ed"]
    assert correction["supersedes"] == flag["id"] and flag["supersedes"] is None
    assert correction["data"]["plan"] == {"start_date": "2026-11-02", "category": "emotional_abuse"}
    assert flag["type"] == "socialcare.child_protection_plan.started"
    assert flag["protocol"] == "cpis-protection-plan-flag@2"
    assert flag["identity_level"] == "identified"
    assert flag["data"] == {
        "subject": {"nhs_number": scenario.ON_PLAN.nhs_number},
        "plan": {"start_date": "2026-11-02", "category": "neglect"},
        "authority": {
            "name": "Northshire County Council, children's social care",
            "contact": {
                "team": "Northshire MASH",
                "phone": "0300 555 0142",
                "email": "mash@northshire.example",
            },
        },
    }


def test_authority_is_notified_only_of_the_child_on_its_plan(outcome: Outcome) -> None:
    # The attendance sent under the wrong child and recalled (step 10) is gone: its notice
    # is in its place.
    (notice,) = [
        n
        for n in delivered(outcome, "la-northshire")
        if n["protocol"] == "cpis-attendance-notification@2"
    ]
    assert notice["type"] == ATTENDANCE
    assert notice["data"] == {
        "subject": {"nhs_number": scenario.ON_PLAN.nhs_number},
        "attendance": {
            "arrival_time": "2026-11-20T21:14:00Z",
            "setting_type": "emergency_department",
            "site": {"ods_code": "RVR01", "name": "Riverside General Hospital ED"},
            "presenting_complaint_category": "injury",
        },
    }


def test_authority_is_told_the_ed_received_its_plan_and_nothing_identifying(
    outcome: Outcome,
) -> None:
    # Of the plan, and of its correction.
    told, _ = [n for n in outcome.received["la-northshire"] if n["type"] == ACCESS_BACK]
    assert (told["source"], told["protocol"]) == ("/infoshare/processor", None)
    assert told["data"]["event_type"] == "socialcare.child_protection_plan.started"
    assert told["data"]["shared_with"] == [
        {
            "recipient": "nhs-riverside-ed",
            "protocol": "cpis-protection-plan-flag@2",
            "identity": "identified",
            "fields": FLAG_FIELDS,
            "fields_pseudonymised": [],
            "fields_tokenised": [],
            "fields_encrypted": [],
        }
    ]
    child = scenario.ON_PLAN
    text = orjson.dumps(told).decode()
    for value in (child.nhs_number, child.person_id, child.given_name, child.date_of_birth):
        assert value not in text


def test_public_health_gets_pseudonymised_attendances(outcome: Outcome) -> None:
    # In arrival order: two children's deliveries sit on different partitions, whose order
    # between them Kafka does not keep.
    by_arrival = sorted(
        delivered(outcome, "ph-northshire"), key=lambda i: i["data"]["attendance"]["arrival_time"]
    )
    first, second, *rest = by_arrival
    assert len(rest) == 3  # every attendance, consent or not: planning needs no consent
    assert first["identity_level"] == "pseudonymised"
    pseudonym = first["data"]["subject"]["pseudonym"]
    token = first["data"]["attendance"].pop("encounter_token")
    assert token.startswith("tok1.") and "ED-" not in token
    assert first["data"] == {
        "subject": {"pseudonym": pseudonym, "year_of_birth": "2016", "postcode_district": "NS1"},
        "attendance": {
            "arrival_time": "2026-11-20T21:14:00Z",
            "setting_type": "emergency_department",
            "site": {"ods_code": "RVR01"},
            "presenting_complaint_category": "injury",
        },
    }
    assert second["data"]["subject"]["year_of_birth"] == "2014"
    assert second["data"]["subject"]["pseudonym"] != pseudonym
    text = orjson.dumps(outcome.received["ph-northshire"]).decode()
    for child in (scenario.ON_PLAN, scenario.NOT_ON_PLAN, scenario.THIRD):
        for value in (
            child.nhs_number,
            child.given_name,
            child.family_name,
            child.date_of_birth,
            child.postcode,
        ):
            assert value not in text


def test_a_recall_removes_the_record_from_every_store_and_tells_each_recipient(
    stack: Stack, outcome: Outcome
) -> None:
    """Step 10: the attendance sent under the wrong child, recalled. Each of its recipients
    holds a notice naming its own id for it, and no longer the attendance; the trail has the
    recall to each and each store's deletion, and the child's report shows them."""
    notices = {}
    for agency in ("la-northshire", "ph-northshire"):
        (notice,) = [i for i in outcome.received[agency] if i["type"] == RECALLED]
        assert notice["data"]["reason"] == "wrong_subject"
        assert notice["data"]["recalled_type"] == ATTENDANCE
        recalled = notice["data"]["recalls"]
        assert recalled not in {i["id"] for i in outcome.received[agency]}  # deleted
        notices[agency] = (notice["id"], recalled)
    assert notices["la-northshire"][1] != notices["ph-northshire"][1]  # each its own id
    assert "nhs_number" not in orjson.dumps(notices).decode()

    rows = outcome.audit
    recalls = [r for r in rows if r["action"] == "recall"]
    assert {(r["recipient"], r["decision"], r["delivery_id"]) for r in recalls} == {
        (agency, "recalled", notice_id) for agency, (notice_id, _) in notices.items()
    }
    disclosures = {r["audit_id"]: r for r in rows if r["action"] == "disclose"}
    for r in recalls:
        withdrawn = disclosures[r["refers_to"]]  # the disclosure it withdraws
        assert (withdrawn["recipient"], withdrawn["event_id"]) == (r["recipient"], r["event_id"])
    purges = sorted(
        (r["recipient"], r["actor"], r["reason_code"])
        for r in rows
        if r["action"] == "recall_purge"
    )
    # The authority's copy in its own inbox and in the delivery store; public health's in
    # the delivery store (it has no agency service).
    assert [(p[0], p[2]) for p in purges] == [
        ("la-northshire", "recall_purge.deleted"),
        ("la-northshire", "recall_purge.deleted"),
        ("ph-northshire", "recall_purge.deleted"),
    ]
    report = httpx.post(
        stack.url("audit") + "/audit/disclosure-report",
        json={"nhs_number": scenario.ON_PLAN.nhs_number},
        headers={"Authorization": f"Bearer {_token(stack, IG)}"},
        timeout=10,
    ).json()["items"]
    shown = {(r["action"], r["recipient"]) for r in report}
    assert {("recall", "la-northshire"), ("recall", "ph-northshire")} <= shown
    assert ("recall_purge", "ph-northshire") in shown


def test_audit_records_every_decision_with_its_reason(outcome: Outcome) -> None:
    codes = sorted(
        (r["recipient"] or "-", r["protocol_id"] or "-", r["reason_code"]) for r in outcome.audit
    )
    cpis, early, ph = (
        "cpis-attendance-notification",
        "early-help-attendance",
        "public-health-attendance-analytics",
    )
    assert codes == sorted(
        [
            *[("nhs-riverside-ed", "cpis-protection-plan-flag", "shared.protocol_allows")] * 2,
            # Told the ED received its plan, and its correction.
            *[("la-northshire", "-", "shared.access_back")] * 2,
            ("-", "-", "duplicate.identical"),  # the correction sent again
            *[("la-northshire", cpis, "shared.protocol_allows")] * 2,
            *[("la-northshire", cpis, "withheld.condition_not_met")] * 4,
            # On a plan: CP-IS covers it (the child's attendances, and the one recalled).
            *[("la-northshire", early, "withheld.condition_not_met")] * 2,
            ("la-northshire", early, "withheld.no_consent"),
            ("la-northshire", early, "shared.protocol_allows"),
            ("la-northshire", early, "withheld.consent_withdrawn"),
            ("la-northshire", early, "shared.safeguarding_override"),
            *[("ph-northshire", ph, "shared.protocol_allows")] * 6,
            # The attendance sent under the wrong child, recalled: each recipient told, and
            # each copy infoshare held deleted (the authority's inbox, the delivery store).
            ("la-northshire", cpis, "recall.wrong_subject"),
            ("ph-northshire", ph, "recall.wrong_subject"),
            *[("la-northshire", cpis, "recall_purge.deleted")] * 2,
            ("ph-northshire", ph, "recall_purge.deleted"),
            ("-", "-", "duplicate.identical"),  # the attendance sent twice: decided once
            # The practitioner's consent for early help, given and withdrawn.
            ("la-northshire", "-", "consent.granted"),
            ("la-northshire", "-", "consent.withdrawn"),
            # The school's attendance export: two pupils at or below 90%.
            *[
                (
                    "la-northshire",
                    "school-notifications-to-local-authority",
                    "shared.protocol_allows",
                )
            ]
            * 2,
        ]
    )
    withheld = next(
        r
        for r in outcome.audit
        if r["reason_code"] == "withheld.condition_not_met" and r["protocol_id"] == cpis
    )
    assert "active child protection plan held by the recipient" in withheld["reason"]
    assert withheld["fields_disclosed"] == []
    shared = next(r for r in outcome.audit if r["protocol_id"] == ph)
    assert shared["lawful_basis"].startswith("UK GDPR Art 6(1)(e); Art 9(2)(i)")
    assert shared["fields_pseudonymised"] == ["subject.pseudonym"]
    assert "attendance.clinical_notes" in shared["fields_withheld"]
    # (A store's deletion on a recall names the notice, never the child.)
    assert all(
        len(r["trace_id"]) == 32 and r["subject_key"]
        for r in outcome.audit
        if r["action"] != "recall_purge"
    )
    text = orjson.dumps(outcome.audit).decode()
    for child in (scenario.ON_PLAN, scenario.NOT_ON_PLAN, scenario.THIRD):
        assert child.nhs_number not in text
    assert "Bruising" not in text  # never a payload


def test_consent_is_honoured_and_its_withdrawal_applies_at_once(outcome: Outcome) -> None:
    early = [
        r
        for r in outcome.audit
        if r["protocol_id"] == "early-help-attendance"
        and r["reason_code"] != "withheld.condition_not_met"
    ]
    assert [r["reason_code"] for r in early] == [
        "withheld.no_consent",
        "shared.protocol_allows",
        "withheld.consent_withdrawn",
        "shared.safeguarding_override",
    ]
    granted, withdrawn = early[1], early[2]
    assert granted["consent_record_id"] == withdrawn["consent_record_id"]
    assert (granted["consent_version"], withdrawn["consent_version"]) == (1, 2)
    la = [
        n for n in outcome.received["la-northshire"] if n["protocol"] == "early-help-attendance@1"
    ]
    assert [n["data"]["attendance"]["arrival_time"] for n in la] == [
        "2026-11-22T19:40:00Z",  # under consent
        "2026-11-25T02:30:00Z",  # under the override
    ]


def test_an_override_is_audited_and_queued_for_ig_review(stack: Stack, outcome: Outcome) -> None:
    (pending,) = outcome.pending_reviews
    decision = pending["decision"]
    assert decision["reason_code"] == "shared.safeguarding_override"
    assert decision["override_justification"] == scenario.OVERRIDE_REASON
    assert decision["override_role"] == "ED consultant" and pending["review"] is None
    url = f"{stack.url('audit')}/audit/overrides"
    review = {"note": "Justified: risk of harm if asked.", "outcome": "justified"}
    target = f"{url}/{decision['audit_id']}/review"
    assert httpx.post(target, json=review).status_code == 401  # IG officers only
    practitioner = _token(stack, PRACTITIONER)
    as_practitioner = {"Authorization": f"Bearer {practitioner}"}
    # A practitioner is someone, but not an IG officer.
    assert httpx.post(target, json=review, headers=as_practitioner).status_code == 403
    officer = _token(stack, IG)
    auth = {"Authorization": f"Bearer {officer}"}
    assert httpx.post(target, json=review, headers=auth).status_code == 201
    assert httpx.post(target, json=review, headers=auth).status_code == 409
    missing = httpx.post(f"{url}/not-an-override/review", json=review, headers=auth)
    assert missing.status_code == 404
    assert httpx.get(url).status_code == 401  # the queue is IG's too
    assert httpx.get(url, headers=auth).json() == []
    (done,) = httpx.get(url, params={"status": "reviewed"}, headers=auth).json()
    # The signed-in officer, from their token, never from the body.
    assert done["review"] == {**review, "reviewer": OFFICER}


def test_consent_recorded_withdrawn_and_searched_each_name_the_person(
    stack: Stack, outcome: Outcome
) -> None:
    practitioner = _bearer(stack, PRACTITIONER)
    url = stack.url("consent")
    child = {"nhs_number": scenario.NOT_ON_PLAN.nhs_number}
    found = httpx.post(f"{url}/consents/search", json=child, headers=practitioner)
    assert found.status_code == 200
    (record,) = found.json()["items"]
    assert record["status"] == "withdrawn" and record["recorded_by"] == PRACTITIONER_ACTOR
    audit, ig = stack.url("audit") + "/audit/decisions", _bearer(stack, IG)

    def by_person(decision: str, action: str) -> list[dict[str, Any]]:
        page = httpx.get(audit, params={"decision": decision, "limit": 1000}, headers=ig).json()
        return [r for r in page["items"] if r["action"] == action]

    recorded = by_person("recorded", "consent_record")
    assert sorted(r["reason_code"] for r in recorded) == ["consent.granted", "consent.withdrawn"]
    assert {r["actor"] for r in recorded} == {PRACTITIONER_ACTOR}
    assert all(r["subject_key"] and r["purpose"] == "early_help" for r in recorded)
    wait_for("the search in the trail", lambda: bool(by_person("accessed", "consent_search")))
    (searched,) = by_person("accessed", "consent_search")
    assert searched["actor"] == PRACTITIONER_ACTOR
    assert searched["subject_key"] == recorded[0]["subject_key"]  # the same child, keyed


def test_consent_cannot_be_recorded_without_a_practitioners_token(stack: Stack) -> None:
    body = {
        "nhs_number": scenario.THIRD.nhs_number,
        "purpose": "early_help",
        "scope": "la-northshire",
        "status": "granted",
        "given_by": "parent",
    }
    url = stack.url("consent")
    assert httpx.post(f"{url}/consents", json=body).status_code == 401
    search = {"nhs_number": scenario.THIRD.nhs_number}
    assert httpx.post(f"{url}/consents/search", json=search).status_code == 401


async def test_pseudonyms_are_stable_per_recipient_and_differ_across_recipients(
    stack: Stack, outcome: Outcome
) -> None:
    health = stack.url("health")
    bundle = scenario.attendance_bundle(
        scenario.ON_PLAN, encounter_id="ED-79001", arrival="2026-11-24T08:30:00Z"
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{health}/fhir/Bundle",
            content=orjson.dumps(bundle),
            headers={"content-type": "application/fhir+json", **agency_auth(stack, ED)},
        )
    assert response.status_code == 202
    topics = Topics(namespace=stack.config.namespace)
    nhs = scenario.ON_PLAN.nhs_number

    def attendances(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
        return [
            orjson.loads(r.value)
            for r in records
            if dict(r.headers)["ce_type"] == ATTENDANCE.encode()
        ]

    # The child's three attendances: the demo's, the one it sent in error and recalled (its
    # copy on the topic goes with the topic's retention), and this one.
    ph = await read_topic(
        topics.deliver("ph-northshire"),
        stack.kafka,
        until=lambda rs: sum(a["subject"]["year_of_birth"] == "2016" for a in attendances(rs)) >= 3,
    )
    la_all = await read_topic(
        topics.deliver("la-northshire"),
        stack.kafka,
        until=lambda rs: sum(a["subject"]["nhs_number"] == nhs for a in attendances(rs)) >= 3,
    )
    on_plan = [
        r
        for r in ph
        if dict(r.headers)["ce_type"] == ATTENDANCE.encode()
        and orjson.loads(r.value)["subject"]["year_of_birth"] == "2016"
    ]
    assert len(on_plan) == 3
    assert len({r.key for r in on_plan}) == 1  # same child, same recipient: same pseudonym
    assert orjson.loads(on_plan[0].value)["subject"]["pseudonym"] == on_plan[0].key.decode()
    la = [
        r
        for r in la_all
        if dict(r.headers)["ce_type"] == ATTENDANCE.encode()
        and orjson.loads(r.value)["subject"]["nhs_number"] == nhs
    ]
    assert len(la) == 3 and len({r.key for r in la}) == 1
    assert la[0].key != on_plan[0].key  # two recipients cannot link their records


@pytest.mark.parametrize(
    ("path", "body", "loc_end", "rule"),
    [
        (
            "/child-protection-plans",
            {
                **scenario.plan_started(scenario.ON_PLAN),
                "child": {
                    **scenario.plan_started(scenario.ON_PLAN)["child"],
                    "nhsNumber": "9990000124",
                },
            },
            "nhsNumber",
            "nhs_number.check_digit",
        ),
        (
            "/child-protection-plans",
            {**scenario.plan_started(scenario.ON_PLAN), "plan": {"id": "P1"}},
            "startDate",
            "missing",
        ),
    ],
)
async def test_bad_social_care_input_is_rejected_and_nothing_is_published(
    stack: Stack,
    directory: Directory,
    path: str,
    body: dict[str, object],
    loc_end: str,
    rule: str,
) -> None:
    topic = Topics(namespace=stack.config.namespace).source("la-northshire")
    before = await end_offsets(topic, stack.kafka), _outbox_events(stack, "socialcare", LA)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            stack.url("socialcare") + path, json=body, headers=agency_auth(stack, LA)
        )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["loc"][-1] == loc_end and d["type"] == rule for d in detail), detail
    # The outbox is written in the request, before the answer, so counting it cannot race
    # the relay: nothing was taken, so nothing can be published later.
    after = await end_offsets(topic, stack.kafka), _outbox_events(stack, "socialcare", LA)
    assert after == before


async def test_bad_fhir_is_rejected_naming_the_element(stack: Stack) -> None:
    topic = Topics(namespace=stack.config.namespace).source("nhs-riverside-ed")
    before = await end_offsets(topic, stack.kafka), _outbox_events(stack, "health", ED)
    bundle = scenario.attendance_bundle(scenario.NOT_ON_PLAN)
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "9990000230"
    async with httpx.AsyncClient() as http:
        response = await http.post(
            stack.url("health") + "/fhir/Bundle",
            content=orjson.dumps(bundle),
            headers={"content-type": "application/fhir+json", **agency_auth(stack, ED)},
        )
        wrong_class = scenario.attendance_bundle(scenario.NOT_ON_PLAN)
        wrong_class["entry"][1]["resource"]["class"]["code"] = "AMB"
        response2 = await http.post(
            stack.url("health") + "/fhir/Bundle",
            content=orjson.dumps(wrong_class),
            headers={"content-type": "application/fhir+json", **agency_auth(stack, ED)},
        )
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "entry", 0, "resource", "identifier", 0, "value"]
    assert detail["type"] == "nhs_number.check_digit"
    assert "9990000230" not in response.text
    assert response2.status_code == 422
    assert response2.json()["detail"][0]["loc"][-1] == "class"
    after = await end_offsets(topic, stack.kafka), _outbox_events(stack, "health", ED)
    assert after == before  # nothing taken into the outbox, so nothing published later


def test_services_document_every_endpoint(stack: Stack) -> None:
    for name in ("socialcare", "health", "delivery", "audit"):
        spec = httpx.get(stack.url(name) + "/openapi.json").json()
        for path, methods in spec["paths"].items():
            for method, op in methods.items():
                assert op.get("summary"), f"{name} {method.upper()} {path} has no summary"


def _bearer(stack: Stack, credentials: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(stack, credentials)}"}


def test_audit_filters(stack: Stack, outcome: Outcome) -> None:
    audit = stack.url("audit") + "/audit/decisions"
    ig = _bearer(stack, IG)
    expected = sum(r["decision"] == "withheld" for r in outcome.audit)
    withheld = httpx.get(audit, params={"decision": "withheld", "limit": 1000}, headers=ig)
    assert withheld.json()["total"] >= expected == 8
    assert {i["recipient"] for i in withheld.json()["items"]} == {"la-northshire"}
    ph = httpx.get(audit, params={"recipient": "ph-northshire"}, headers=ig).json()
    assert ph["total"] >= 5 and {i["recipient"] for i in ph["items"]} == {"ph-northshire"}
    assert httpx.get(audit, params={"decision": "bogus"}, headers=ig).status_code == 422


def test_only_ig_searches_across_agencies_and_an_agency_sees_what_it_published(
    stack: Stack, outcome: Outcome
) -> None:
    audit = stack.url("audit") + "/audit/decisions"
    assert httpx.get(audit).status_code == 401
    practitioner = _bearer(stack, PRACTITIONER)
    assert httpx.get(audit, headers=practitioner).status_code == 403  # not an IG officer
    la = _bearer(stack, "agency-tokens/la-northshire.token")
    mine = httpx.get(audit, params={"limit": 1000}, headers=la).json()
    assert mine["total"] >= 1
    assert {i["source_agency"] for i in mine["items"]} == {"la-northshire"}
    other = httpx.get(audit, params={"source_agency": "nhs-riverside-ed"}, headers=la)
    assert other.status_code == 403
    ph = _bearer(stack, "agency-tokens/ph-northshire.token")  # publishes nothing
    assert httpx.get(audit, headers=ph).json()["total"] == 0
    assert httpx.get(stack.url("audit") + "/audit/overrides", headers=la).status_code == 401
    # Every search is itself on record, by whom.
    ig = _bearer(stack, IG)
    looks = httpx.get(audit, params={"decision": "accessed", "limit": 1000}, headers=ig)
    assert {"agency:la-northshire", "agency:ph-northshire"} <= {
        r["actor"] for r in looks.json()["items"]
    }
    future = httpx.get(audit, params={"since": "2999-01-01T00:00:00Z"}, headers=ig).json()
    assert future["total"] == 0


async def test_no_identifier_in_logs_keys_or_headers(stack: Stack, outcome: Outcome) -> None:
    identifiers = IDENTIFYING
    logs = stack.config.state_dir / "logs"
    for log in logs.iterdir():
        text = log.read_text(errors="replace")
        assert not [v for v in identifiers if v in text], log.name
    topics = Topics(namespace=stack.config.namespace)
    for topic in (
        topics.source("la-northshire"),
        topics.source("nhs-riverside-ed"),
        topics.deliver("la-northshire"),
        topics.deliver("ph-northshire"),
        topics.deliver("nhs-riverside-ed"),
        topics.audit,
        topics.state("protection-plans"),
    ):
        records = await read_topic(topic, stack.kafka, until=lambda rs: len(rs) >= 1)
        for record in records:
            exposed = (record.key or b"") + b"".join(n.encode() + v for n, v in record.headers)
            if topic in (topics.audit, topics.state("protection-plans")):
                exposed += record.value or b""  # these never carry a payload at all
            assert not [v for v in identifiers if v.encode() in exposed], topic


def agency_auth(stack: Stack, agency: str) -> dict[str, str]:
    """The Authorization header of ``agency``'s API key, which ``infoshare up`` wrote."""
    secret = (stack.config.state_dir / "agency-tokens" / f"{agency}.token").read_text().strip()
    return {"Authorization": f"Bearer {secret}"}


def test_a_retried_request_publishes_the_same_event_id(stack: Stack, outcome: Outcome) -> None:
    url = stack.url("socialcare") + "/child-protection-plans"
    body = scenario.plan_started(scenario.ON_PLAN, plan_id="CPP-2026-0999")
    la = agency_auth(stack, LA)
    first, again = httpx.post(url, json=body, headers=la), httpx.post(url, json=body, headers=la)
    assert first.status_code == again.status_code == 202
    assert first.json()["events"] == again.json()["events"]
    health = stack.url("health") + "/inbox"
    ed = agency_auth(stack, ED)

    def received() -> list[dict[str, object]]:
        got: list[dict[str, object]] = httpx.get(health, headers=ed).json()["items"]
        return got

    # The retry is published again and suppressed as a copy: once that is audited, nothing
    # of it is still on its way, so the count below cannot be passed by a late duplicate.
    (event,) = first.json()["events"]
    copy = (event["id"], "suppress_duplicate", "suppressed", None)
    wait_for("the retry's copy suppressed", lambda: copy in _decided(stack, {event["id"]}))
    # The scenario's plan and its correction, then this plan once.
    wait_for("the second plan's flag", lambda: len(received()) >= 3)
    items = received()
    assert len(items) == 3  # the retry's duplicate delivery is dropped by its event id


def test_a_422_never_echoes_what_was_sent(stack: Stack) -> None:
    body = scenario.plan_started(scenario.ON_PLAN)
    body["child"]["nhsNumber"] = "9990000124"
    response = httpx.post(
        stack.url("socialcare") + "/child-protection-plans",
        json=body,
        headers=agency_auth(stack, LA),
    )
    assert response.status_code == 422
    assert "9990000124" not in response.text and "input" not in response.json()["detail"][0]


def test_an_ig_officer_reidentifies_a_token_stating_why_and_it_is_audited(
    stack: Stack, outcome: Outcome
) -> None:
    agency_token = (stack.config.state_dir / "agency-tokens" / "ph-northshire.token").read_text()
    inbox = stack.url("delivery") + "/recipients/ph-northshire/inbox"
    assert httpx.get(inbox).status_code == 401, "the inbox answers without a token"
    delivered = httpx.get(inbox, headers={"Authorization": f"Bearer {agency_token.strip()}"}).json()
    # The child on the plan's attendance (ED-77801), whichever partition brought it first.
    (attended,) = [
        i
        for i in delivered["items"]
        if i["type"] == ATTENDANCE
        and i["data"]["attendance"]["arrival_time"] == "2026-11-20T21:14:00Z"
    ]
    token = attended["data"]["attendance"]["encounter_token"]
    url = stack.url("consent") + "/reidentify"
    reason = "Data quality query DQ-118: duplicate attendance suspected by the PH analyst"
    body = {
        "token": token,
        "recipient": "ph-northshire",
        "field": "attendance.encounter_id",
        "reason": reason,
    }
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer guess"}).status_code == 401
    officer = _token(stack, IG)
    auth = {"Authorization": f"Bearer {officer}"}
    answer = httpx.post(url, json=body, headers=auth)
    assert answer.status_code == 200 and answer.json()["value"] == "ED-77801"
    wrong = httpx.post(url, json={**body, "recipient": "la-northshire"}, headers=auth)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["type"] == "token.invalid"

    audit = stack.url("audit") + "/audit/decisions"
    ig = _bearer(stack, IG)
    wait_for(
        "the re-identification in the audit trail",
        lambda: (
            httpx.get(audit, params={"decision": "re_identified"}, headers=ig).json()["total"] == 1
        ),
    )
    (row,) = httpx.get(audit, params={"decision": "re_identified"}, headers=ig).json()["items"]
    assert (row["actor"], row["reason"], row["recipient"]) == (
        OFFICER,
        reason,
        "ph-northshire",
    )
    assert row["fields_disclosed"] == ["attendance.encounter_id"]
    assert "ED-77801" not in orjson.dumps(row).decode()
    wait_for(
        "the refused attempt in the audit trail",
        lambda: any(
            r["reason_code"] == "re_identify.refused" and r["recipient"] == "la-northshire"
            for r in httpx.get(audit, params={"limit": 1000}, headers=ig).json()["items"]
        ),
    )


def test_no_log_line_of_any_component_holds_a_childs_identifier(
    stack: Stack, outcome: Outcome
) -> None:
    """Every component's log after the whole scenario: JSON lines, none of them naming a
    child (identifiers, names, dates of birth, postcodes of the scenario's children)."""
    logs = sorted((stack.config.state_dir / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"processor", "health", "socialcare", "education"}
    secrets = IDENTIFYING
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{path.name} holds {len(leaked)} identifying value(s)"
        for line in text.splitlines():
            if line.startswith("{"):
                assert orjson.loads(line)["service"] == f"infoshare-{path.stem}"


async def test_every_record_on_the_agencies_topics_reads_as_a_cloudevent(
    stack: Stack, outcome: Outcome, directory: Directory
) -> None:
    # The official SDK's Kafka binding reads every header as text: one raw byte fails it.
    topics = Topics(namespace=stack.config.namespace)
    names = [topics.source(a.id) for a in directory.publishers]
    names += [topics.deliver(a.id) for a in directory]
    read = 0
    for name in names:
        for event in await read_all(name, stack.kafka, _as_cloudevent):
            assert event.get_specversion() == "1.0"
            assert event.get_id()
            read += 1
    assert read >= len(outcome.received["la-northshire"]) + len(outcome.received[ED])


async def test_a_recipient_reads_its_own_topic_as_itself_with_the_sdk(
    stack: Stack, outcome: Outcome
) -> None:
    # The authority's own system, on the Kafka channel: its principal, a group of its own.
    topics, names = Topics(namespace=stack.config.namespace), stack.principals.names
    itself = stack.principals.access(stack.kafka, names.recipient(LA))
    group = f"{stack.config.namespace}{LA}.case-system"
    reader = kafka.consumer(topics.deliver(LA), access=itself, group_id=group)
    await reader.start()
    try:
        batch = await reader.getmany(timeout_ms=10_000)
        await reader.commit()
    finally:
        await reader.stop()
    events = [_as_cloudevent(r) for records in batch.values() for r in records]
    got = {e.get_id() for e in events}
    assert {n["id"] for n in outcome.received["la-northshire"]} <= got


def _as_cloudevent(record: ConsumerRecord) -> BaseCloudEvent:
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    return from_binary(message, JSONFormat())


def _token(stack: Stack, credentials: str) -> str:
    return stack_token(stack.config.state_dir, credentials)


def _outbox_events(stack: Stack, service: str, agency: str) -> int:
    """Events ``agency``'s service has taken into its outbox, published or not, read from
    its database (where its own settings say it is)."""
    env = stack._env(BY_NAME[service])
    settings = AgencyServiceSettings(
        agency_id=agency,
        keyring_file=Path(env["INFOSHARE_KEYRING_FILE"]),
        outbox_database_url=env.get(OUTBOX_URL),
    )
    engine = sqlalchemy.create_engine(settings.outbox_url())
    try:
        with engine.connect() as db:
            return int(
                db.execute(sqlalchemy.text("SELECT count(*) FROM outbox_event")).scalar_one()
            )
    finally:
        engine.dispose()


def _decided(stack: Stack, event_ids: set[str]) -> set[tuple[str, str, str, str | None]]:
    """(event id, action, decision, recipient) of the trail's records of ``event_ids``."""
    rows: list[dict[str, Any]] = httpx.get(
        stack.url("audit") + "/audit/decisions",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {_token(stack, IG)}"},
    ).json()["items"]
    return {
        (r["event_id"], r["action"], r["decision"], r["recipient"])
        for r in rows
        if r["event_id"] in event_ids
    }


def test_an_amended_plan_reaches_the_ed_and_an_identical_resend_does_not(
    stack: Stack, outcome: Outcome
) -> None:
    # Last in the module: it adds to what the emergency department received.
    url = stack.url("socialcare") + "/child-protection-plans"
    la = agency_auth(stack, LA)
    child = scenario.THIRD
    plan = scenario.plan_started(child, plan_id="CPP-2026-0555")
    corrected = {**plan, "plan": {**plan["plan"], "category": "emotional_abuse"}}
    (first,) = httpx.post(url, json=plan, headers=la).json()["events"]
    (amended,) = httpx.post(url, json=corrected, headers=la).json()["events"]
    assert (amended["version"], amended["supersedes"]) == (2, first["id"])
    again = httpx.post(url, json=corrected, headers=la)  # sent again, unchanged
    assert again.status_code == 202 and again.json()["events"] == [amended]
    health = stack.url("health") + "/inbox"
    ed = agency_auth(stack, ED)

    def flags() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = httpx.get(health, headers=ed).json()["items"]
        return [i for i in items if i["data"]["subject"]["nhs_number"] == child.nhs_number]

    # The first, the amendment (recorded as one), and the identical re-send suppressed:
    # once the copy is audited as suppressed, it can no longer arrive late at the ED.
    expected = {
        (first["id"], "disclose", "shared", ED),
        (amended["id"], "amend", "shared", ED),
        (amended["id"], "suppress_duplicate", "suppressed", None),
    }
    ids = {first["id"], amended["id"]}
    wait_for("the amendment's decisions", lambda: expected <= _decided(stack, ids))
    wait_for("the plan and its amendment at the ED", lambda: len(flags()) >= 2)
    original, correction = flags()
    assert original["data"]["plan"]["category"] == "neglect" and original["supersedes"] is None
    assert correction["data"]["plan"]["category"] == "emotional_abuse"
    assert correction["supersedes"] == original["id"]  # in the ED's own ids
    assert len(flags()) == 2  # the re-send reached nobody
