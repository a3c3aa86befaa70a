"""Fixtures of the unit tests: loaded from the repository's own data files or built in
memory. Nothing here touches the network or Kafka."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import pytest

from consent.core.model import Protocol
from consent.policy.load import load_protocols
from consent.processor.handle import Context
from deploy.devstack.demo import scenario
from services.backbone.directory import Directory
from services.backbone.envelope import CloudEvent, agency_source, encode
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import Key, routing_key
from services.backbone.keyring import Keyring
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.unit.factories import (
    ATTENDANCE,
    ED,
    LA,
    PLAN_ENDED,
    PLAN_STARTED,
    attendance_data,
    plan_ended_data,
    plan_started_data,
)

SUBJECT = subject_identifier(nhs_number=scenario.ON_PLAN.nhs_number)
REFERENCE_PROTOCOLS = frozenset(
    {
        "cpis-attendance-notification",
        "cpis-protection-plan-flag",
        "public-health-attendance-analytics",
    }
)


@pytest.fixture(scope="session")
def schemas() -> SchemaRegistry:
    return SchemaRegistry.load()


@pytest.fixture(scope="session")
def protocols(directory: Directory, schemas: SchemaRegistry) -> tuple[Protocol, ...]:
    """The CP-IS reference protocols shipped in consent/protocols, by id, so the processor
    tests do not change as protocols are added (the consent-based early-help protocol and
    each agency's own protocols have tests of their own)."""
    shipped = load_protocols(None, directory=directory, schemas=schemas)
    return tuple(p for p in shipped if p.id in REFERENCE_PROTOCOLS)


@pytest.fixture(scope="session")
def keyring(directory: Directory) -> Keyring:
    """Random 32-byte secrets for routing, audit and every agency, held in memory only.

    Overrides the file-backed ``keyring`` of tests/conftest.py for the unit tests."""
    return Keyring(
        routing=Key("routing-unit", secrets.token_bytes(32)),
        audit_subject=Key("audit-subject-unit", secrets.token_bytes(32)),
        pseudonym={a.id: Key(f"pseudonym-{a.id}-unit", secrets.token_bytes(32)) for a in directory},
        tokens={"token-unit": Key("token-unit", secrets.token_bytes(64))},
        active_token="token-unit",
        audit_id=Key("audit-id-unit", secrets.token_bytes(32)),
    )


@pytest.fixture(scope="session")
def topics() -> Topics:
    return Topics(namespace="unit.")


@pytest.fixture(scope="session")
def authority_name(directory: Directory) -> str:
    """The name the social care service puts in ``authority.name``: the directory's."""
    return directory.get(LA).name


@pytest.fixture(scope="session")
def ctx(
    topics: Topics,
    protocols: tuple[Protocol, ...],
    schemas: SchemaRegistry,
    keyring: Keyring,
    directory: Directory,
) -> Context:
    return Context.from_keyring(
        topics=topics, protocols=protocols, schemas=schemas, directory=directory, keyring=keyring
    )


@pytest.fixture(scope="session")
def rkey(keyring: Keyring) -> str:
    return routing_key(keyring.require_routing(), SUBJECT)


@pytest.fixture(scope="session")
def build(ctx: Context, keyring: Keyring, authority_name: str) -> Callable[..., ReadRecord]:
    """A source record as an agency service publishes it (encode + routing_key)."""

    canonical = {
        PLAN_STARTED: plan_started_data(scenario.ON_PLAN, authority_name=authority_name),
        PLAN_ENDED: plan_ended_data(scenario.ON_PLAN, authority_name=authority_name),
        ATTENDANCE: attendance_data(scenario.ON_PLAN),
    }

    def build_record(event_type: str, *, source: str | None = None, offset: int = 41) -> ReadRecord:
        """The scenario's ``event_type`` event, from its usual agency unless ``source``."""
        source = source or (ED if event_type == ATTENDANCE else LA)
        event = CloudEvent(
            type=event_type,
            source=agency_source(source),
            data=canonical[event_type],
            key=routing_key(keyring.require_routing(), SUBJECT),
            dataschema=ctx.schemas.get(event_type).uri,
        )
        key, value, headers = encode(event)
        return ReadRecord(ctx.topics.source(source), 2, offset, key, value, headers)

    return build_record


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process in a zone other than UTC, as a server (or a verifier's machine) may be."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
