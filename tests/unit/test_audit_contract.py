"""The processor's fast audit record JSON is the pydantic model's JSON, byte for byte."""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.backbone.audit_contract import (
    AuditOutcome,
    AuditRecord,
    audit_id_for,
    protocol_parts,
    uuid4_text,
)

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
OPTIONAL_TEXT = st.none() | TEXT
TEXTS = st.lists(TEXT, max_size=4)
ZONES = st.sampled_from(
    [
        UTC,
        timezone(timedelta(0)),
        timezone(timedelta(hours=1)),
        timezone(timedelta(hours=-5, minutes=-30)),
    ]
)
MOMENTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES
)

REQUIRED: dict[str, Any] = {  # the model has no default for these: every record sets them
    "recorded_at": MOMENTS,
    "action": TEXT,
    "decision": st.sampled_from(list(AuditOutcome)),
    "reason_code": TEXT,
    "reason": TEXT,
    "actor": TEXT,
}
FIELDS: dict[str, Any] = {
    "occurred_at": st.none() | MOMENTS,
    "event_id": OPTIONAL_TEXT,
    "purpose": OPTIONAL_TEXT,
    "protocol_version": st.none() | st.integers(-(2**63), 2**63 - 1),
    "subject_key": OPTIONAL_TEXT,
    "subject_aliases": TEXTS,
    "fields_disclosed": TEXTS,
    "fields_withheld": TEXTS,
    "fields_encrypted": TEXTS,
    "consent_version": st.none() | st.integers(0, 10**6),
    "topic_out": OPTIONAL_TEXT,
    "trace_id": OPTIONAL_TEXT,
}


@settings(max_examples=400)
@given(
    coordinates=st.tuples(TEXT, st.integers(0, 10**4), st.integers(0, 2**62)),
    recipient=OPTIONAL_TEXT,
    protocol=OPTIONAL_TEXT,
    run=OPTIONAL_TEXT,
    id_key=st.none() | st.binary(min_size=1, max_size=32),
    fields=st.fixed_dictionaries(REQUIRED, optional=FIELDS),
)
def test_json_about_writes_the_models_json(
    coordinates: tuple[str, int, int],
    recipient: str | None,
    protocol: str | None,
    run: str | None,
    id_key: bytes | None,
    fields: dict[str, Any],
) -> None:
    topic, partition, offset = coordinates
    kwargs: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "recipient": recipient,
        "protocol": protocol,
        "run": run,
        "id_key": id_key,
        **fields,
    }
    model = AuditRecord.about(**kwargs, validate=False)
    assert AuditRecord.json_about(**kwargs) == model.model_dump_json().encode()


def test_json_about_refuses_a_field_the_record_does_not_have() -> None:
    with pytest.raises(TypeError, match="not audit record fields: colour"):
        AuditRecord.json_about(topic="t", partition=0, offset=0, colour="red")


def test_json_about_leaves_no_shared_default_to_change() -> None:
    first = AuditRecord.json_about(topic="t", partition=0, offset=0, fields_withheld=["a"])
    second = AuditRecord.json_about(topic="t", partition=0, offset=1)
    assert b'"fields_withheld":["a"]' in first
    assert b'"fields_withheld":[]' in second


@given(st.binary(min_size=16, max_size=32))
def test_audit_ids_are_formatted_as_uuid_would_format_them(digest: bytes) -> None:
    assert uuid4_text(digest) == str(uuid.UUID(bytes=digest[:16], version=4))


def test_a_keyed_audit_id_is_hmac_of_its_name() -> None:
    key = b"k" * 32
    name = "t|0|7|r|p@1"
    expected = hmac.digest(key, b"audit-id\x1f" + name.encode(), "sha256")
    assert audit_id_for(
        topic="t", partition=0, offset=7, recipient="r", protocol="p@1", key=key
    ) == str(uuid.UUID(bytes=expected[:16], version=4))


def _least() -> dict[str, Any]:
    """The fields a record cannot be without."""
    return {
        "audit_id": "a",
        "recorded_at": datetime.now(UTC),
        "action": "disclose",
        "decision": AuditOutcome.SHARED,
        "reason_code": "r",
        "reason": "ok",
        "actor": "infoshare-processor",
    }


TEXT_FIELDS = ("reason", "actor", "event_id", "lawful_basis", "override_justification")


@settings(max_examples=300)
@given(
    st.sampled_from((*TEXT_FIELDS, "fields_withheld")),
    st.text(alphabet=st.sampled_from(["a", "\\", "u", "0", "\x00", "é", '"']), max_size=12),
)
def test_a_record_is_refused_exactly_when_some_text_holds_a_nul(field: str, text: str) -> None:
    """Whatever the text, including text that spells ``\\u0000`` as JSON escapes a NUL; read
    from JSON as the audit service reads it (``from_json``) too."""
    value: Any = [text] if field == "fields_withheld" else text
    arguments = {**_least(), field: value}
    sent = AuditRecord.model_construct(**arguments).model_dump_json().encode()
    if "\x00" in text:
        with pytest.raises(ValueError, match="may not contain NUL"):
            AuditRecord(**arguments)
        with pytest.raises(ValueError, match="may not contain NUL"):
            AuditRecord.model_validate_json(sent)
        with pytest.raises(ValueError, match="may not contain NUL"):
            AuditRecord.from_json(sent)
    else:
        assert getattr(AuditRecord(**arguments), field) == value
        assert getattr(AuditRecord.from_json(sent), field) == value


NUMBERS = {  # a record's numbers and the columns that hold them: INTEGER, BIGINT
    "protocol_version": 2**31 - 1,
    "consent_version": 2**31 - 1,
    "partition_in": 2**31 - 1,
    "offset_in": 2**63 - 1,
}


@pytest.mark.parametrize(("field", "most"), NUMBERS.items())
def test_a_number_its_column_cannot_hold_is_not_an_audit_record(field: str, most: int) -> None:
    """Refused as not an audit record (the ingester dead-letters it), never left for the
    store to fail on: SQLite's driver raises OverflowError past 64 bits, which no database
    error handler catches."""
    arguments = _least()
    for fits in (most, -most - 1, 0):
        sent = AuditRecord.model_construct(**{**arguments, field: fits}).model_dump_json()
        assert getattr(AuditRecord.from_json(sent.encode()), field) == fits
    for too_far in (most + 1, -most - 2, 2**64):
        sent = AuditRecord.model_construct(**{**arguments, field: too_far}).model_dump_json()
        with pytest.raises(ValueError, match=field):
            AuditRecord.from_json(sent.encode())


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("cpis-attendance@1", ("cpis-attendance", 1)),
        ("flag@2147483647", ("flag", 2**31 - 1)),
        ("flag@2147483648", ("flag", None)),  # past its column: no version, never a refusal
        ("flag@²", ("flag", None)),  # a digit to str.isdigit, not to int()
        ("flag@v2", ("flag", None)),
        ("no-version", ("no-version", None)),
    ],
)
def test_a_protocol_ref_gives_a_version_only_when_the_record_can_hold_it(
    ref: str, parts: tuple[str, int | None]
) -> None:
    assert protocol_parts(ref) == parts
    name, version = parts
    record = AuditRecord(**_least(), protocol_id=name, protocol_version=version)
    assert AuditRecord.from_json(record.model_dump_json().encode()) == record
