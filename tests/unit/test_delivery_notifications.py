"""What a notification carries under each content mode; the webhook endpoints a
subscription may name; what a dead letter and its audit record hold (never a payload)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.backbone.audit_contract import AuditOutcome
from services.backbone.records import ReadRecord
from services.delivery.deadletter import (
    Undeliverable,
    dlq_record,
    undeliverable_audit,
    undeliverable_audit_id,
)
from services.delivery.endpoints import check_endpoint, origin
from services.delivery.errors import InvalidSubscription
from services.delivery.model import Content, Delivered, NotificationType
from services.delivery.notifications import Entry, notification

AT = datetime(2026, 11, 20, 21, 14, tzinfo=UTC)
EVENT = Delivered(
    event_id="d-42",
    type="health.unscheduled_care.attendance",
    source="/agencies/nhs-riverside-ed",
    time=AT,
    protocol="cpis-attendance@2",
    identity_level="identified",
    data={"subject": {"nhs_number": "9990000123"}, "attendance": {"site": "RVR01"}},
)
LA = "la-northshire"


def body(content: Content, base_url: str = "") -> dict[str, Any]:
    return notification(
        subscription_id="sub-1",
        kind=NotificationType.EVENT,
        status="active",
        events_since_start=7,
        entries=[Entry(7, AT, EVENT)],
        content=content,
        agency=LA,
        base_url=base_url,
    )


def test_full_content_carries_the_delivered_event() -> None:
    note = body(Content.FULL)
    (entry,) = note["notification_events"]
    assert note["type"] == "event-notification" and note["events_since_subscription_start"] == 7
    assert entry["event_number"] == 7
    assert entry["focus"] == {
        "id": "d-42",
        "type": EVENT.type,
        "url": f"/recipients/{LA}/deliveries/d-42",
    }
    assert entry["event"] == {
        "specversion": "1.0",
        "id": "d-42",
        "source": "/agencies/nhs-riverside-ed",
        "type": EVENT.type,
        "time": "2026-11-20T21:14:00Z",
        "datacontenttype": "application/json",
        "protocol": "cpis-attendance@2",
        "identitylevel": "identified",
        "data": dict(EVENT.data),
    }


def test_id_only_points_to_the_event_and_carries_no_data() -> None:
    note = body(Content.ID_ONLY, base_url="https://delivery.example/")
    (entry,) = note["notification_events"]
    assert "event" not in entry
    assert entry["focus"]["url"] == f"https://delivery.example/recipients/{LA}/deliveries/d-42"
    assert b"9990000123" not in orjson.dumps(note)


def test_empty_carries_the_number_and_type_only() -> None:
    note = body(Content.EMPTY)
    assert note["notification_events"] == [{"event_number": 7, "type": EVENT.type}]
    assert b"d-42" not in orjson.dumps(note) and b"9990000123" not in orjson.dumps(note)


def test_a_heartbeat_has_no_events_and_keeps_the_count() -> None:
    beat = notification(
        subscription_id="sub-1",
        kind=NotificationType.HEARTBEAT,
        status="active",
        events_since_start=7,
    )
    assert beat == {
        "subscription": "sub-1",
        "type": "heartbeat",
        "status": "active",
        "events_since_subscription_start": 7,
        "notification_events": [],
    }


@pytest.mark.parametrize(
    ("url", "allow", "rule"),
    [
        ("https://hooks.example.org/a?b=1", False, None),
        ("http://hooks.example.org/a", True, "endpoint.https_required"),
        ("http://127.0.0.1:8080/a", False, "endpoint.https_required"),
        ("http://127.0.0.1:8080/a", True, None),
        ("http://[::1]:8080/a", True, None),
        ("http://localhost/a", True, None),
        ("ftp://hooks.example.org/a", True, "endpoint.url"),
        ("/relative/path", True, "endpoint.url"),
        ("https://hooks.example.org:99999/a", True, "endpoint.url"),
        ("https://u:p@hooks.example.org/a", True, "endpoint.credentials"),
        ("https://hooks.example.org/a#frag", True, "endpoint.url"),
        ("https://hooks.example.org/" + "a" * 2048, True, "endpoint.length"),
    ],
)
def test_webhook_endpoints(url: str, allow: bool, rule: str | None) -> None:
    if rule is None:
        assert check_endpoint(url, allow_http_loopback=allow) == url
        return
    with pytest.raises(InvalidSubscription) as caught:
        check_endpoint(url, allow_http_loopback=allow)
    assert caught.value.rule == rule and "example" not in caught.value.message


def test_one_breaker_guards_one_origin() -> None:
    assert origin("https://Hooks.Example.org/a") == origin("https://hooks.example.org:443/b")
    assert origin("http://127.0.0.1:8080/x") != origin("http://127.0.0.1:8081/x")


LETTER = Undeliverable(
    subscription_id="sub-1",
    event_number=7,
    agency=LA,
    origin=ReadRecord(
        "deliver.la-northshire", 2, 41, b"key", orjson.dumps(EVENT.data), [("ce_id", b"d-42")]
    ),
    event=EVENT,
    attempts=12,
    last_error="HTTP 503",
    horizon_s=86400,
)


def test_a_dead_letter_is_the_record_as_read_plus_why_and_where() -> None:
    key, value, headers = dlq_record(LETTER)
    assert (key, value) == (b"key", orjson.dumps(EVENT.data))
    found = dict(headers)
    assert headers[0] == ("ce_id", b"d-42")
    assert found["dlq_topic"] == b"deliver.la-northshire"
    assert (found["dlq_partition"], found["dlq_offset"]) == (b"2", b"41")
    assert (found["dlq_subscription"], found["dlq_event_number"]) == (b"sub-1", b"7")
    reason = found["dlq_reason"] or b""
    assert b"12 attempts" in reason and b"HTTP 503" in reason


def test_the_undeliverable_audit_record_names_fields_and_ids_never_values() -> None:
    record = undeliverable_audit(LETTER, now=AT, dlq_topic="dlq.delivery")
    assert record.audit_id == undeliverable_audit_id("sub-1", 7)
    assert undeliverable_audit_id("sub-1", 7) != undeliverable_audit_id("sub-1", 8)
    assert undeliverable_audit_id("sub-1", 7) != undeliverable_audit_id("sub-2", 7)
    assert (record.action, record.decision) == ("deliver", AuditOutcome.UNDELIVERABLE)
    assert (record.protocol_id, record.protocol_version) == ("cpis-attendance", 2)
    assert (record.source_agency, record.recipient) == ("nhs-riverside-ed", LA)
    assert (record.topic_in, record.partition_in, record.offset_in) == (
        "deliver.la-northshire",
        2,
        41,
    )
    assert record.delivery_id == "d-42" and record.topic_out == "dlq.delivery"
    assert "9990000123" not in record.model_dump_json() and "RVR01" not in record.model_dump_json()


PURE = [
    "services.delivery.model",
    "services.delivery.filters",
    "services.delivery.numbering",
    "services.delivery.backoff",
    "services.delivery.breaker",
    "services.delivery.signing",
    "services.delivery.notifications",
    "services.delivery.endpoints",
    "services.delivery.deadletter",
]
EDGES = ["aiokafka", "fastapi", "sqlmodel", "sqlalchemy", "starlette", "httpx"]


def _loaded(extra: str = "") -> list[str]:
    program = (
        "import importlib, sys\n"
        f"{extra}\n"
        f"for name in {PURE!r}: importlib.import_module(name)\n"
        f"print(','.join(sorted(m for m in {EDGES!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_the_pure_part_of_delivery_imports_no_edge_library() -> None:
    assert _loaded() == []
    assert _loaded("import httpx") == ["httpx"]  # the check sees one when there is one


def test_the_focus_url_quotes_the_event_id() -> None:
    from services.delivery.notifications import fetch_path

    assert fetch_path(LA, "a/../b?c#d e") == f"/recipients/{LA}/deliveries/a%2F..%2Fb%3Fc%23d%20e"
