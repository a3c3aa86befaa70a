"""Keys by role: a process of each role, given the whole keyring, holds only its role's
keys; an agency service holds nothing that reverses a pseudonym, detokenises, opens a sealed
field or trace, or re-signs the audit trail; and no recipient's private key is on the hub."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consent.processor.main import context
from consent.processor.settings import ProcessorSettings
from services.backbone.directory import load_directory
from services.backbone.key_roles import ROLE_KEYS, Role
from services.backbone.key_split import split_keyring
from services.backbone.keyring import Keyring, generate_keyring, load_keyring
from services.backbone.settings import BackboneSettings, HttpSettings

AGENCIES = [a.id for a in load_directory(None)]
LA, ED = "la-northshire", "nhs-riverside-ed"
# Each keyring field by the document key it comes from.
FIELDS = {
    "routing": ("routing",),
    "audit_subject": ("audit_subject",),
    "pseudonym": ("pseudonym",),
    "token": ("tokens", "active_token"),
    "recipient_public": ("recipient_public",),
    "trace_seal": ("trace_seal",),
    "agency_tokens": ("agency_tokens",),
    "agency_api_keys": ("agency_api_keys",),
    "audit_chain": ("audit_chain",),
    "audit_signing": ("audit_signing",),
    "audit_id": ("audit_id",),
}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keyring.yaml"
    generate_keyring(path, AGENCIES)
    # As the demo registers them: recipients' public halves only.
    from services.backbone.recipient_keys import new_recipient_key, trust_recipient

    for agency in AGENCIES:
        public = new_recipient_key(path.parent / "recipients" / f"{agency}.key")
        trust_recipient(path, agency, public)
    return path


def _held(ring: Keyring) -> set[str]:
    """The document keys whose values this keyring holds."""
    return {doc for doc, fields in FIELDS.items() if any(getattr(ring, f) for f in fields)}


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.AGENCY])
def test_each_role_given_the_whole_keyring_holds_only_its_keys(full: Path, role: Role) -> None:
    ring = BackboneSettings(keyring_file=full).keyring(role)
    everything = _held(load_keyring(full))
    assert _held(ring) == ROLE_KEYS[role] & everything
    for absent in everything - ROLE_KEYS[role]:
        assert not any(getattr(ring, f) for f in FIELDS[absent]), absent


def test_an_agency_service_holds_its_own_api_keys_and_the_routing_key_only(full: Path) -> None:
    ring = BackboneSettings(keyring_file=full).keyring(Role.AGENCY, LA)
    assert _held(ring) == {"routing", "agency_tokens"}
    assert set(ring.agency_tokens) == {LA}  # not another agency's token hash


def test_a_compromised_agency_service_cannot_pseudonymise_detokenise_or_open(full: Path) -> None:
    ring = BackboneSettings(keyring_file=full).keyring(Role.AGENCY, ED)
    with pytest.raises(Exception, match="no pseudonym key"):
        ring.require_pseudonym_keys([LA])
    assert ring.token_key() is None and not ring.tokens  # no detokenising
    assert ring.trace_seal is None  # no opening the sealed trace
    assert ring.audit_chain is None and ring.audit_signing is None  # no re-signing
    assert ring.audit_subject is None
    # And no recipient's private key sits anywhere on the hub's side of the keyring.
    hub = full.parent
    assert not (hub / "agency-keys").exists()
    assert not [p for p in hub.iterdir() if p.suffix == ".key"]


def test_split_files_hold_each_role_its_part_readable_by_the_owner_only(
    full: Path, tmp_path: Path
) -> None:
    written = split_keyring(full, tmp_path / "roles", AGENCIES)
    assert set(written) == {str(r) for r in Role if r is not Role.AGENCY} | {
        f"agency:{a}" for a in AGENCIES
    }
    for name, path in written.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        role = Role.AGENCY if name.startswith("agency:") else Role(name)
        assert _held(load_keyring(path)) <= ROLE_KEYS[role]
    assert "pseudonym" not in written[f"agency:{LA}"].read_text()


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, Any]]]:
    """The roles the composition roots ask their keys for."""
    calls: list[tuple[Any, Any]] = []
    real = BackboneSettings.keyring

    def spy(self: BackboneSettings, role: Role | None, agency: str | None = None) -> Keyring:
        calls.append((role, agency))
        return real(self, role, agency)

    monkeypatch.setattr(BackboneSettings, "keyring", spy)
    yield calls


def test_each_component_asks_for_its_own_role(
    full: Path, tmp_path: Path, asked: list[tuple[Any, Any]]
) -> None:
    from consent.registry.api import create_app as consent_app
    from services.agency.runtime import AgencyServiceSettings
    from services.audit.app import AuditSettings
    from services.audit.app import create_app as audit_app
    from services.delivery.app import create_app as delivery_app
    from services.delivery.settings import DeliverySettings
    from services.socialcare.app import create_app as socialcare_app

    db = f"sqlite:///{tmp_path / 'x.db'}"
    audit_app(AuditSettings(keyring_file=full, audit_database_url=db))
    assert asked.pop() == (Role.AUDIT, None)
    delivery_app(DeliverySettings(keyring_file=full, delivery_database_url=db))
    assert asked.pop() == (Role.DELIVERY, None)
    consent_app(
        HttpSettings(
            keyring_file=full,
            person_index_database_url=db,
            kafka_security_protocol="PLAINTEXT",  # built, never started: no Kafka needed
        )
    )
    assert asked.pop() == (Role.CONSENT, None)
    socialcare_app(AgencyServiceSettings(keyring_file=full, agency_id=LA, outbox_database_url=db))
    assert asked.pop() == (Role.AGENCY, LA)
    context(ProcessorSettings(keyring_file=full, kafka_security_protocol="PLAINTEXT"))
    assert asked.pop() == (Role.PROCESSOR, None)
