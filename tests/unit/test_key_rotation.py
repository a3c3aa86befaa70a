"""Every key kind but routing rotates: a new key for new work, the older ones kept, in each
role's own file only, to read what they made (trace seals in flight, a child's older audit
records, older checkpoints and chain links); what cannot be done is refused with nothing
written."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from consent.core.decide import pseudonym
from services.backbone import telemetry
from services.backbone.directory import load_directory
from services.backbone.errors import ConfigurationError
from services.backbone.key_roles import Role
from services.backbone.key_rotation import SLOTTED, retire_key, rotate_key
from services.backbone.keyring import generate_keyring, load_keyring
from services.backbone.settings import BackboneSettings

AGENCIES = [a.id for a in load_directory(None)]
LA, ED = "la-northshire", "nhs-riverside-ed"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return generate_keyring(tmp_path / "keyring.yaml", AGENCIES)


@pytest.mark.parametrize("kind", [k for k in SLOTTED if k != "pseudonym"])
def test_a_slotted_key_rotates_and_the_older_ones_stay_newest_first(path: Path, kind: str) -> None:
    first = load_keyring(path).keys_of(kind)
    second_id = rotate_key(path, kind)
    third_id = rotate_key(path, kind)
    ring = load_keyring(path)
    assert [k.key_id for k in ring.keys_of(kind)] == [third_id, second_id, first[0].key_id]
    assert getattr(ring, kind).key_id == third_id
    assert ring.keys_of(kind)[2].secret == first[0].secret  # kept as it was


def test_a_pseudonym_key_rotates_for_one_recipient_and_changes_only_its_pseudonyms(
    path: Path,
) -> None:
    before = load_keyring(path)
    with pytest.raises(ConfigurationError, match="name the agency"):
        rotate_key(path, "pseudonym")
    rotate_key(path, "pseudonym", LA)
    after = load_keyring(path)
    child = "nhs:9434765919"
    assert pseudonym(after.pseudonym[LA], LA, child) != pseudonym(before.pseudonym[LA], LA, child)
    assert pseudonym(after.pseudonym[ED], ED, child) == pseudonym(before.pseudonym[ED], ED, child)
    assert after.keys_of(f"pseudonym.{LA}")[1] == before.pseudonym[LA]
    with pytest.raises(ConfigurationError, match=r"no pseudonym\.nobody key"):
        rotate_key(path, "pseudonym", "nobody")


@pytest.mark.parametrize(
    ("kind", "why"), [("routing", "not rotated"), ("passwords", "no key kind 'passwords'")]
)
def test_what_cannot_rotate_is_refused_and_nothing_is_written(
    path: Path, kind: str, why: str
) -> None:
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match=why):
        rotate_key(path, kind)
    assert path.read_bytes() == before


def test_older_keys_go_only_to_the_roles_that_read_with_them(path: Path) -> None:
    for kind in ("audit_chain", "audit_subject", "trace_seal", "audit_signing"):
        rotate_key(path, kind)
    rotate_key(path, "pseudonym", LA)
    settings = BackboneSettings(keyring_file=path)
    held = {role: set(settings.keyring(role).previous) for role in Role if role != Role.AGENCY}
    assert held[Role.AUDIT] == {"audit_chain", "audit_subject"}  # signing: public halves only
    assert held[Role.DELIVERY] == {"trace_seal"}
    assert held[Role.PROCESSOR] == {"audit_subject"}  # the child's older keys, as aliases
    assert not held[Role.CONSENT]
    assert not settings.keyring(Role.AGENCY, LA).previous


def test_the_audit_service_checks_older_checkpoints_with_public_halves_only(path: Path) -> None:
    first = load_keyring(path).require_audit_signing()
    rotate_key(path, "audit_signing")
    second = load_keyring(path).require_audit_signing()
    rotate_key(path, "audit_signing")
    audit = BackboneSettings(keyring_file=path).keyring(Role.AUDIT)
    assert "audit_signing" not in audit.previous  # no older private seed
    older = [first[0], second[0]]
    assert list(audit.audit_verifying_keys())[:2] == older  # oldest first, the active last
    for key_id, private in (first, second):
        assert audit.audit_verifying_keys()[key_id].public_bytes_raw() == (
            private.public_key().public_bytes_raw()
        )
    assert list(load_keyring(path).audit_verifying_keys())[:2] == older  # the operator's too


def test_the_processor_holds_only_the_active_token_key(path: Path) -> None:
    rotate_key(path, "token")
    settings = BackboneSettings(keyring_file=path)
    assert len(settings.keyring(Role.PROCESSOR).tokens) == 1
    assert settings.keyring(Role.PROCESSOR).token_key() == load_keyring(path).token_key()
    assert len(settings.keyring(Role.CONSENT).tokens) == 2  # it reverses older tokens
    assert not settings.keyring(Role.AGENCY, LA).previous


def test_older_keys_retire_except_the_audit_trails_which_are_kept_for_good(path: Path) -> None:
    old_seal = load_keyring(path).require_audit_signing()[0]
    old_trace = load_keyring(path).trace_seal
    assert old_trace is not None
    new_trace = rotate_key(path, "trace_seal")
    rotate_key(path, "audit_signing")
    with pytest.raises(ConfigurationError, match="active key"):
        retire_key(path, new_trace)
    with pytest.raises(ConfigurationError, match="kept for good"):
        retire_key(path, old_seal)
    assert retire_key(path, old_trace.key_id) == "trace_seal"
    assert load_keyring(path).keys_of("trace_seal")[0].key_id == new_trace
    assert len(load_keyring(path).keys_of("trace_seal")) == 1
    with pytest.raises(ConfigurationError, match="no older key"):
        retire_key(path, "made-up")


def test_a_trace_sealed_before_the_rotation_still_opens_after_it(path: Path) -> None:
    old = load_keyring(path).trace_seal
    rotate_key(path, "trace_seal")
    ring = load_keyring(path)
    before, after = telemetry.TraceSeal.of(old), telemetry.TraceSeal.of(*ring.keys_of("trace_seal"))
    assert before is not None and after is not None
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("decide") as span:
        sealed_then, sealed_now = before.seal(), after.seal()
    trace_id = span.get_span_context().trace_id
    for sealed in (sealed_then, sealed_now):
        opened = after.open(sealed)
        assert opened is not None
        assert trace.get_current_span(opened).get_span_context().trace_id == trace_id
    assert before.open(sealed_now) is None  # the new key is not the old one
