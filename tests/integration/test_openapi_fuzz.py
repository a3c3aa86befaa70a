"""The delivery service, the consent registry and the audit service against their own
OpenAPI documents (schemathesis), as test_agency_openapi_fuzz.py holds the agency services
to theirs: whatever a client sends, valid or not, signed in or not, as whom, the answer is
never a 5xx, its status is one the operation documents, and its content type, headers and
body (times with their UTC offset) are the ones documented for that status; input that
breaks the document is refused, and a route that says it needs a token does.

Each is fuzzed with the credentials that reach its routes' rules (the recipient's key, a
practitioner's or an IG officer's token from the session's identity provider), with ones
it must refuse, and with none. The ids in paths name what the test stored (a
subscription, a delivery, an override), so generated requests reach the answers that hold
data, not only 404s; with the credentials that reach the rules, every operation answers a
success at least once but those that need what no generator makes (a valid NHS number, a
real token to reverse, a known event type), whose successes are checked with requests
written here, against the same checks. Each run sends requests of its own, from a new seed
it prints and names in any failure; INFOSHARE_FUZZ_SEED=<seed> replays a run's.

Delivery and audit run without their lifespan (no Kafka: their readers are not started),
on SQLite and, with the credentials that reach the rules, on PostgreSQL too (it refuses
what SQLite stores, a NUL in text); the consent registry cannot answer without its topics,
so it runs with its lifespan against the session's broker, on topics of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiokafka.structs import ConsumerRecord

from consent.core.tokens import tokenise
from consent.registry.api import create_app as consent_app
from deploy.devstack.postgres import PostgresNode
from services.audit.app import AuditSettings
from services.audit.app import create_app as audit_app
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone import kafka
from services.backbone.audit_contract import AuditRecord
from services.backbone.bearer import AGENCY_KEY, PERSON_TOKEN
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.settings import HttpSettings
from services.delivery.app import create_app as delivery_app
from services.delivery.kafka_edge import incoming
from services.delivery.settings import DeliverySettings
from services.delivery.store import DeliveryStore
from tests.audit_records import decision
from tests.integration.fuzz_helpers import (
    CHECKS,
    ASGIApp,
    api_schema,
    fuzz_operations,
    without_lifespan,
)
from tests.integration.test_delivery_harness import ATTENDANCE, ED, LA, delivery, inbox_subscription
from tests.people import IG_OFFICER, PRACTITIONER, People

NHS = "9434765919"
WEBHOOK = "https://hooks.example.org/infoshare"
OVERRIDE = "shared.safeguarding_override"
REASON = "Section 47 enquiry: the strategy meeting needs the child's NHS number"


@dataclass(frozen=True)
class Caller:
    """Who sends the requests: a token per security scheme (none: no token at all), and
    how many requests each operation gets."""

    examples: int
    bearers: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        (token,) = self.bearers.values()
        return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Target:
    """A service under test: its app, and the path parameters naming what it holds."""

    app: ASGIApp
    parameters: Mapping[str, str] = field(default_factory=dict)

    def schema(self, caller: Caller) -> schemathesis.BaseSchema:
        return api_schema(self.app, bearers=caller.bearers)

    def fuzz(
        self, caller: Caller, subtests: pytest.Subtests, **options: Any
    ) -> dict[str, set[int]]:
        """Fuzz every operation as ``caller``; the statuses each answered."""
        return fuzz_operations(
            self.schema(caller),
            examples=caller.examples,
            subtests=subtests,
            path_parameters=self.parameters,
            **options,
        )


def call(
    schema: schemathesis.BaseSchema, method: str, path: str, caller: Caller, **request: Any
) -> Any:
    """One request written here, its answer checked as the generated ones are."""
    case = schema[path][method].Case(headers=caller.headers(), **request)
    return case.call_and_validate(checks=CHECKS)


def unsucceeded(answered: Mapping[str, set[int]]) -> set[str]:
    """The operations that never answered a success."""
    return {label for label, codes in answered.items() if not any(200 <= c < 300 for c in codes)}


def agency_token(keyring_path: Path, agency: str) -> str:
    return (keyring_path.parent / "agency-tokens" / f"{agency}.token").read_text().strip()


def callers(people: People, keyring_path: Path, service: str) -> dict[str, Caller]:
    la, ed = agency_token(keyring_path, LA), agency_token(keyring_path, ED)
    ig, practitioner = people.token(IG_OFFICER), people.token(PRACTITIONER)
    return {
        "delivery": {
            "the recipient's key": Caller(30, {AGENCY_KEY: la}),
            "another agency's key": Caller(5, {AGENCY_KEY: ed}),
            "no token": Caller(5),
        },
        "audit": {
            "an IG officer": Caller(30, {PERSON_TOKEN: ig}),
            "an agency's key": Caller(15, {AGENCY_KEY: ed}),
            "a practitioner": Caller(5, {PERSON_TOKEN: practitioner}),
            "no token": Caller(5),
        },
        "consent": {
            "a practitioner": Caller(20, {PERSON_TOKEN: practitioner}),
            "an IG officer": Caller(10, {PERSON_TOKEN: ig}),
            "no token": Caller(5),
        },
    }[service]


def database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A new, empty database on ``backend``, dropped after the test (PostgreSQL)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    node: PostgresNode = request.getfixturevalue("postgres")
    name = f"t{uuid.uuid4().hex[:12]}"
    url = node.ensure_database(name)
    request.addfinalizer(lambda: node.drop_database(name))
    return url


async def resolver(host: str) -> Sequence[str]:
    """Webhook hosts: one that resolves to a public address; every other one, none."""
    if host != "hooks.example.org":
        raise OSError("no such name")
    return ["93.184.215.14"]


def deliver(settings: DeliverySettings, count: int, *, first: int = 0) -> list[str]:
    """Store ``count`` deliveries to the recipient as its reader would (numbered for every
    subscription that wants them); their event ids."""
    store = DeliveryStore(settings.delivery_database_url.get_secret_value())
    topic = settings.topics().deliver(LA)
    events = [delivery(n=n) for n in range(first, first + count)]
    batch = [
        incoming(ConsumerRecord(topic, 0, n, 0, 0, key, value, None, -1, len(value), headers), LA)
        for n, (_, (key, value, headers)) in enumerate(events, start=first)
    ]
    store.ingest(batch, {(topic, 0): first + count}, now=datetime.now(UTC))
    store.engine.dispose()
    return [event.id for event, _ in events]


def delivery_target(keyring_path: Path, url: str) -> tuple[Target, DeliverySettings]:
    """The delivery service holding an inbox subscription of the recipient's that three
    deliveries have been numbered for."""
    settings = DeliverySettings(keyring_file=keyring_path, delivery_database_url=url)
    app = delivery_app(settings, resolver=resolver)
    store = DeliveryStore(url)
    sub = inbox_subscription(store)
    store.engine.dispose()
    first, *_ = deliver(settings, 3)
    parameters = {"agency": LA, "sub_id": sub.id, "event_id": first}
    return Target(without_lifespan(app), parameters), settings


def _decision(keyring: Keyring, offset: int, **fields: Any) -> AuditRecord:
    return decision(
        keyring,
        offset,
        occurred_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        purpose="direct_safeguarding",
        **fields,
    )


def audit_target(
    keyring: Keyring, keyring_path: Path, tmp_path: Path, url: str, **settings: Any
) -> Target:
    """The audit service holding decisions about one child, one of them shared under a
    safeguarding override (not yet reviewed)."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    app = audit_app(
        AuditSettings(
            keyring_file=keyring_path,
            audit_database_url=url,
            audit_checkpoint_file=checkpoints,
            **settings,
        )
    )
    store = AuditStore(url, sealing_from(keyring, checkpoints))
    override = _decision(
        keyring,
        3,
        reason_code=OVERRIDE,
        override_justification="Risk of significant harm if parents told",
        override_role="ED consultant",
    )
    store.add_batch([_decision(keyring, 1), _decision(keyring, 2), override])
    store.engine.dispose()
    return Target(without_lifespan(app), {"audit_id": override.audit_id})


@pytest.fixture
async def consent(
    kafka_access: KafkaAccess,
    namespace: str,
    directory: Directory,
    keyring_path: Path,
    tmp_path: Path,
    people: People,
) -> AsyncIterator[Target]:
    """The consent registry on topics of its own, its lifespan (the topics' producer and
    reader) started by schemathesis's first request and stopped after the test."""
    settings = HttpSettings(
        **kafka_access.settings(),
        topic_namespace=namespace,
        keyring_file=keyring_path,
        person_index_database_url=f"sqlite:///{tmp_path / 'index.db'}",
    )
    topics = settings.topics()
    wanted = {topics.consent_records, topics.audit_activity}
    await kafka.ensure_topics(
        kafka_access, [s for s in topics.all_specs(directory) if s.name in wanted]
    )
    yield Target(consent_app(settings))


# The main caller, on both databases; the others, on SQLite.
DELIVERY_RUNS = [
    ("the recipient's key", "sqlite"),
    ("the recipient's key", "postgresql"),
    ("another agency's key", "sqlite"),
    ("no token", "sqlite"),
]
AUDIT_RUNS = [
    ("an IG officer", "sqlite"),
    ("an IG officer", "postgresql"),
    ("an agency's key", "sqlite"),
    ("a practitioner", "sqlite"),
    ("no token", "sqlite"),
]


@pytest.mark.parametrize(("caller", "backend"), DELIVERY_RUNS)
def test_delivery_answers_as_documented(
    caller: str,
    backend: str,
    people: People,
    keyring_path: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    subtests: pytest.Subtests,
) -> None:
    target, _ = delivery_target(keyring_path, database(request, backend, tmp_path))
    answered = target.fuzz(callers(people, keyring_path, "delivery")[caller], subtests)
    assert len(answered) >= 15, answered
    if caller == "the recipient's key":  # no event type a generator knows; an inbox's
        assert unsucceeded(answered) <= {
            "POST /recipients/{agency}/subscriptions",
            "POST /subscriptions/{sub_id}/resend",
        }, answered


def test_delivery_answers_a_subscriber_as_documented(
    people: People, keyring_path: Path, tmp_path: Path
) -> None:
    """What the generated requests cannot reach: subscriptions made, a webhook's events
    sent again, an inbox read, acknowledged too far, and a range the wrong way round."""
    target, settings = delivery_target(keyring_path, f"sqlite:///{tmp_path / 'delivery.db'}")
    la = callers(people, keyring_path, "delivery")["the recipient's key"]
    schema = target.schema(la)
    subscribe = "/recipients/{agency}/subscriptions"
    ids = {}
    for channel, extra in (("webhook", {"endpoint": WEBHOOK}), ("inbox", {})):
        body = {"event_types": [ATTENDANCE], "channel": channel, "content": "full", **extra}
        made = call(schema, "POST", subscribe, la, path_parameters={"agency": LA}, body=body)
        assert made.status_code == 201, made.text
        ids[channel] = made.json()["id"]
    deliver(settings, 2, first=3)
    webhook, inbox = {"sub_id": ids["webhook"]}, {"sub_id": ids["inbox"]}
    sub = "/subscriptions/{sub_id}"
    resent = call(schema, "POST", f"{sub}/resend", la, path_parameters=webhook)
    assert resent.json()["requeued"] == 2, resent.text
    status = call(schema, "GET", f"{sub}/status", la, path_parameters=webhook)
    assert status.json()["events_since_subscription_start"] == 2, status.text
    read = call(schema, "GET", f"{sub}/notifications", la, path_parameters=inbox)
    assert len(read.json()["notification_events"]) == 2, read.text
    beyond = call(schema, "POST", f"{sub}/ack", la, path_parameters=inbox, body={"through": 987})
    assert beyond.status_code == 409 and "987" not in beyond.text, beyond.text
    reversed_ = call(
        schema, "GET", f"{sub}/events", la, path_parameters=inbox, query={"since": 2, "until": 1}
    )
    assert reversed_.status_code == 422, reversed_.text
    assert reversed_.json()["detail"][0]["type"] == "range.reversed"


@pytest.mark.parametrize(("caller", "backend"), AUDIT_RUNS)
def test_audit_answers_as_documented(
    caller: str,
    backend: str,
    people: People,
    keyring: Keyring,
    keyring_path: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    subtests: pytest.Subtests,
) -> None:
    url = database(request, backend, tmp_path)
    target = audit_target(keyring, keyring_path, tmp_path, url)
    answered = target.fuzz(callers(people, keyring_path, "audit")[caller], subtests)
    assert len(answered) >= 7, answered
    if caller == "an IG officer":  # no valid NHS number is generated
        assert unsucceeded(answered) <= {"POST /audit/disclosure-report"}, answered


def test_audit_answers_about_a_child_as_documented(
    people: People, keyring: Keyring, keyring_path: Path, tmp_path: Path
) -> None:
    """What the generated requests cannot reach: a child named by a valid NHS number, in
    every report format and in a search; each time read back with its UTC offset."""
    target = audit_target(keyring, keyring_path, tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    ig = callers(people, keyring_path, "audit")["an IG officer"]
    agency = callers(people, keyring_path, "audit")["an agency's key"]
    schema = target.schema(ig)
    for fmt in ("json", "csv", "fhir", "pdf"):
        report = call(
            schema,
            "POST",
            "/audit/disclosure-report",
            ig,
            query={"format": fmt},
            body={"nhs_number": NHS},
        )
        assert report.status_code == 200, (fmt, report.text)
    for who in (ig, agency):
        found = call(
            target.schema(who),
            "POST",
            "/audit/decisions/search",
            who,
            body={"child": {"nhs_number": NHS}},
        )
        items = found.json()["items"]
        assert len(items) == 3, found.text
        assert all(i["recorded_at"].endswith(("Z", "+00:00")) for i in items), items
    reviewed = call(
        schema,
        "POST",
        "/audit/overrides/{audit_id}/review",
        ig,
        path_parameters=target.parameters,
        body={"note": "checked with the DSL", "outcome": "justified"},
    )
    assert reviewed.status_code == 201, reviewed.text
    assert reviewed.json()["reviewed_at"].endswith(("Z", "+00:00")), reviewed.text
    # What no database stores is refused before it is tried: an offset past 64 bits and a
    # NUL in a note were each a 500 (SQLite's OverflowError, PostgreSQL's refusal).
    far = call(schema, "GET", "/audit/decisions", ig, query={"offset": 2**63})
    assert far.status_code == 422, far.text
    nul = call(
        schema,
        "POST",
        "/audit/overrides/{audit_id}/review",
        ig,
        path_parameters={"audit_id": "an-id"},
        body={"note": "checked\x00", "outcome": "justified"},
    )
    assert nul.status_code == 422 and nul.json()["detail"][0]["loc"] == ["body", "note"]


def test_audit_without_an_identity_provider_answers_as_documented(
    people: People,
    keyring: Keyring,
    keyring_path: Path,
    tmp_path: Path,
    subtests: pytest.Subtests,
) -> None:
    """People's routes answer 503 where no identity provider is configured, as documented
    (so a server error is expected here: only that it is documented is checked)."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    target = audit_target(keyring, keyring_path, tmp_path, url, oidc_issuer=None)
    ig = Caller(5, {PERSON_TOKEN: people.token(IG_OFFICER)})
    documented = [c for c in CHECKS if c.__name__ != "not_a_server_error"]
    answered = target.fuzz(ig, subtests, checks=documented)
    assert 503 in answered["GET /audit/overrides"], answered


@pytest.mark.kafka
# The registry's Kafka reader runs beside the generator (schemathesis's event loop thread)
# and uses the random module: Hypothesis takes that for the strategy's own use, which it is
# not (generation is from the run's fuzz seed, never the random module).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("caller", ["a practitioner", "an IG officer", "no token"])
def test_consent_answers_as_documented(
    caller: str, consent: Target, people: People, keyring_path: Path, subtests: pytest.Subtests
) -> None:
    answered = consent.fuzz(callers(people, keyring_path, "consent")[caller], subtests)
    assert len(answered) >= 5, answered


@pytest.mark.kafka
def test_consent_answers_about_a_child_as_documented(
    consent: Target, people: People, keyring: Keyring, keyring_path: Path
) -> None:
    """What the generated requests cannot reach: consent recorded and looked up for a
    valid NHS number, a real token reversed, and one naming a key nobody holds refused
    without its key id echoed."""
    practitioner = callers(people, keyring_path, "consent")["a practitioner"]
    ig = callers(people, keyring_path, "consent")["an IG officer"]
    schema = consent.schema(practitioner)
    body = {"nhs_number": NHS, "purpose": "early_help", "status": "granted", "given_by": "parent"}
    recorded = call(schema, "POST", "/consents", practitioner, body=body)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["recorded_at"].endswith(("Z", "+00:00")), recorded.text
    found = call(schema, "POST", "/consents/search", practitioner, body={"nhs_number": NHS})
    assert [r["status"] for r in found.json()["items"]] == ["granted"], found.text
    key = keyring.token_key()
    assert key is not None
    token = tokenise(key, recipient=LA, path="subject.nhs_number", value=NHS)
    asked = {"recipient": LA, "field": "subject.nhs_number", "reason": REASON}
    schema = consent.schema(ig)
    reversed_ = call(schema, "POST", "/reidentify", ig, body={**asked, "token": token})
    assert reversed_.json()["value"] == NHS, reversed_.text
    unknown = token.replace(key.key_id, "k-nobody-holds")
    refused = call(schema, "POST", "/reidentify", ig, body={**asked, "token": unknown})
    assert refused.status_code == 422 and "k-nobody-holds" not in refused.text, refused.text
