"""CloudEvents 1.0 in Kafka binary content mode: encode, decode, and what decode refuses."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from hypothesis import given
from hypothesis import strategies as st

from deploy.devstack.demo import scenario
from services.backbone import envelope
from services.backbone.envelope import CloudEvent, agency_source, decode, encode
from services.backbone.errors import EnvelopeError
from tests.unit.factories import ATTENDANCE, ED, attendance_data

TIME = datetime(2026, 11, 20, 21, 14, 0, 123456, tzinfo=UTC)
SCHEMA = f"https://infoshare.example/schemas/{ATTENDANCE}/v1.json"


def event(**changes: Any) -> CloudEvent:
    fields: dict[str, Any] = {
        "type": ATTENDANCE,
        "source": agency_source(ED),
        "data": attendance_data(scenario.ON_PLAN),
        "key": "routingkeyabc",
        "id": "0b7c4e1e-1111-4a7b-9c5e-6f3a2d9e8b01",
        "time": TIME,
        "dataschema": SCHEMA,
    }
    return CloudEvent(**(fields | changes))


def headers_of(ev: CloudEvent) -> dict[str, bytes]:
    return dict(encode(ev)[2])


def test_encodes_attributes_as_ce_headers() -> None:
    key, value, headers = encode(event())
    assert key == b"routingkeyabc"
    assert orjson.loads(value) == attendance_data(scenario.ON_PLAN)
    assert dict(headers) == {
        "ce_specversion": b"1.0",
        "ce_id": b"0b7c4e1e-1111-4a7b-9c5e-6f3a2d9e8b01",
        "ce_source": b"/agencies/nhs-riverside-ed",
        "ce_type": ATTENDANCE.encode(),
        "ce_time": b"2026-11-20T21:14:00.123456Z",
        "content-type": b"application/json",
        "ce_dataschema": SCHEMA.encode(),
    }


def test_extensions_and_extra_headers_are_appended() -> None:
    ev = event(extensions={envelope.EXT_PROTOCOL: "p@1", envelope.EXT_IDENTITY: "identified"})
    _, _, headers = encode(ev, extra_headers=[("traceparent", b"00-abc-def-01")])
    assert headers[-3:] == [
        ("ce_protocol", b"p@1"),
        ("ce_identitylevel", b"identified"),
        ("traceparent", b"00-abc-def-01"),
    ]


def test_no_identifier_reaches_the_key_or_a_header() -> None:
    key, _, headers = encode(event())
    for name, raw in [("key", key), *headers]:
        assert scenario.ON_PLAN.nhs_number.encode() not in raw, name
        assert scenario.ON_PLAN.family_name.encode() not in raw, name


def test_round_trips() -> None:
    ev = event(extensions={"protocol": "cpis-attendance-notification@2"})
    assert decode(*encode(ev)) == ev


def test_a_local_time_is_written_in_utc() -> None:
    local = datetime(2026, 11, 20, 22, 14, tzinfo=timezone(timedelta(hours=1)))
    assert headers_of(event(time=local))["ce_time"] == b"2026-11-20T21:14:00Z"


def test_the_official_sdk_reads_an_encoded_record() -> None:
    key, value, headers = encode(event())
    ce = from_binary(KafkaMessage(headers=dict(headers), key=key, value=value), JSONFormat())
    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == event().id
    assert ce.get_source() == "/agencies/nhs-riverside-ed"
    assert ce.get_type() == ATTENDANCE
    assert ce.get_dataschema() == SCHEMA
    assert ce.get_data() == attendance_data(scenario.ON_PLAN)


def test_source_agency() -> None:
    assert event().source_agency == ED
    with pytest.raises(EnvelopeError, match="does not name an agency"):
        _ = event(source="https://elsewhere.example/x").source_agency


def test_decode_accepts_case_insensitive_headers_and_a_charset() -> None:
    key, value, headers = encode(event())
    shouted = [(n.upper(), v) for n, v in headers if n != "content-type"]
    shouted.append(("Content-Type", b"application/json; charset=utf-8"))
    assert decode(key, value, shouted).id == event().id


def test_decode_without_time_uses_now() -> None:
    key, value, headers = encode(event())
    before = datetime.now(UTC)
    decoded = decode(key, value, [h for h in headers if h[0] != "ce_time"])
    assert before <= decoded.time <= datetime.now(UTC)


def valid_record() -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return encode(event())


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_decode_refuses_a_missing_required_header(missing: str) -> None:
    key, value, headers = valid_record()
    with pytest.raises(EnvelopeError, match=f"missing CloudEvents header {missing}"):
        decode(key, value, [h for h in headers if h[0] != missing])


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("ce_specversion", b"0.3", "unsupported specversion"),
        ("content-type", b"application/xml", "unsupported content-type"),
        ("ce_time", b"yesterday", "not RFC 3339"),
        ("ce_type", b"\xff\xfe", "header ce_type is not UTF-8"),
        ("ce_id", b"", "missing CloudEvents header ce_id"),
        ("ce_id", b"evt-\x00-1", "header ce_id holds control characters"),
        ("ce_source", b"/agency/x\n", "header ce_source holds control characters"),
    ],
)
def test_decode_refuses_a_bad_header(name: str, raw: bytes, match: str) -> None:
    key, value, headers = valid_record()
    changed = [(n, raw if n == name else v) for n, v in headers]
    with pytest.raises(EnvelopeError, match=match) as refused:
        decode(key, value, changed)
    # The publisher's value is never repeated (it goes into audit records and DLQ headers).
    shown = raw.decode(errors="ignore")
    assert not shown or shown not in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (None, b"{}", "no key"),
        (b"", b"{}", "no key"),
        (b"k", None, "no value"),
        (b"k", b'{"subject": {"nhs_number": "9990000123"', "not JSON"),
        (b"k", b"[1, 2]", "not a JSON object"),
        (b"k", b'"9990000123"', "not a JSON object"),
    ],
)
def test_decode_refuses_a_bad_key_or_value(
    key: bytes | None, value: bytes | None, match: str
) -> None:
    with pytest.raises(EnvelopeError, match=match) as info:
        decode(key, value, valid_record()[2])
    assert "9990000123" not in str(info.value)


CORE_ATTRIBUTES = {"specversion", "id", "source", "type", "time", "dataschema"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    data=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    key=st.text(min_size=1, max_size=30),
    # Printable: a header holding control characters is refused (test_decode_refuses...).
    ext=st.dictionaries(
        st.from_regex(r"\A[a-z0-9]{1,12}\Z"),
        st.text(st.characters(exclude_categories=["C"]), max_size=20),
        max_size=3,
    ),
)
def test_any_event_round_trips(data: dict[str, Any], key: str, ext: dict[str, str]) -> None:
    ext = {k: v for k, v in ext.items() if k not in CORE_ATTRIBUTES}
    ev = event(data=data, key=key, extensions=ext)
    assert decode(*encode(ev)) == ev


@pytest.mark.parametrize("raw", [b"2026-11-20T21:14:00", b"2026-11-20"])
def test_decode_refuses_a_time_without_offset(raw: bytes) -> None:
    key, value, headers = valid_record()
    changed = [(n, raw if n == "ce_time" else v) for n, v in headers]
    with pytest.raises(EnvelopeError, match="not RFC 3339"):
        decode(key, value, changed)


def test_every_control_character_is_found_and_nothing_else() -> None:
    """The fast check finds exactly what Unicode calls a control character (category Cc),
    over every code point."""
    for code in range(0x110000):
        c = chr(code)
        assert envelope.has_control_characters(c) is (unicodedata.category(c) == "Cc"), hex(code)
