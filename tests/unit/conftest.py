"""Fixtures of the unit tests: loaded from the repository's own data files or built in
memory. Nothing here touches the network or Kafka."""

from __future__ import annotations

import secrets

import pytest

from consent.core.model import Protocol
from consent.protocol_set import load_protocols
from services.backbone.directory import Directory
from services.backbone.keyed import Key
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.unit.factories import LA


@pytest.fixture(scope="session")
def schemas() -> SchemaRegistry:
    return SchemaRegistry.load()


@pytest.fixture(scope="session")
def protocols(directory: Directory, schemas: SchemaRegistry) -> tuple[Protocol, ...]:
    """The CP-IS reference protocols shipped in consent/protocols (the consent-based
    early-help protocol has tests of its own)."""
    shipped = load_protocols(None, directory=directory, schemas=schemas)
    return tuple(p for p in shipped if p.id != "early-help-attendance")


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
    )


@pytest.fixture(scope="session")
def topics() -> Topics:
    return Topics(namespace="unit.")


@pytest.fixture(scope="session")
def authority_name(directory: Directory) -> str:
    """The name the social care service puts in ``authority.name``: the directory's."""
    return directory.get(LA).name
