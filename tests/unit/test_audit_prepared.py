"""Audit records prepared away from the writer (services/audit/prepared.py): a worker
process binds values with a dialect built from the driver's name, and must bind them as the
store's own engine would; what it refuses, it refuses with the ingester's reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.audit.chain import canonical
from services.audit.models import CONTENT_FIELDS, AuditEntry, as_utc
from services.audit.prepared import (
    NOT_AN_AUDIT_RECORD,
    NOT_THE_PROCESSORS,
    Prepared,
    prepare,
    prepare_arrived,
)
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.bulk import row_binder
from services.backbone.database import engine_for

DRIVERS = {
    "sqlite": "sqlite:///:memory:",
    "postgresql+psycopg": "postgresql+psycopg://nobody@127.0.0.1:1/none",
}


def _record(**changes: object) -> AuditRecord:
    values: dict[str, object] = {
        "audit_id": "5f0e8c1c-3f4e-4a55-9d4b-2b8f3f1f1a01",
        "recorded_at": datetime(2026, 12, 7, 9, 30, 1, 250, tzinfo=timezone(timedelta(hours=1))),
        "occurred_at": datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
        "action": "disclose",
        "decision": AuditOutcome.SHARED,
        "reason_code": "shared.protocol_allows",
        "reason": 'allowed by "cp-is@1"\\',
        "actor": "infoshare-processor",
        "subject_key": "a" * 64,
        "subject_aliases": ["b" * 64, "c" * 64],
        "source_agency": "nhs-riverside-ed",
        "fields_disclosed": ["subject.nhs_number", "plan.type"],
        "offset_in": 2**40,
    }
    values.update(changes)
    return AuditRecord.model_validate(values)


def test_a_record_s_fields_are_what_the_hash_covers() -> None:
    """``prepare`` covers a record's own dict: it must name the hashed fields, no more."""
    assert tuple(AuditRecord.model_fields) == CONTENT_FIELDS
    assert tuple(_record().columns()) == CONTENT_FIELDS


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_values_are_bound_as_the_store_s_engine_binds_them(driver: str) -> None:
    record = _record()
    made = prepare(record, driver)
    engine = engine_for(DRIVERS[driver])
    assert engine.url.drivername == driver
    if driver == "sqlite":  # as a store's engine is by then: its dialect set by a connection
        with engine.connect():
            pass
    row = record.columns()
    row["recorded_at"] = as_utc(row["recorded_at"])
    row["occurred_at"] = as_utc(row["occurred_at"])
    bind = row_binder(AuditEntry.__table__, CONTENT_FIELDS, engine.dialect)  # type: ignore[attr-defined]
    assert made.values == bind(row)
    assert made.head + b"12" + made.tail == canonical(12, row, CONTENT_FIELDS)
    assert set(made.links) == {
        ("b" * 64, "a" * 64, "nhs-riverside-ed"),
        ("c" * 64, "a" * 64, "nhs-riverside-ed"),
    }
    assert made.recorded_at == record.recorded_at


def test_what_arrives_is_prepared_or_refused_with_the_ingester_s_reasons() -> None:
    shared = _record().model_dump_json().encode()
    recorded = _record(action="consent_record", decision=AuditOutcome.RECORDED)
    made = prepare_arrived(
        [shared, b"{not json", b"[]", shared, recorded.model_dump_json().encode()],
        [False, False, False, True, True],
        "sqlite",
    )
    assert isinstance(made[0], Prepared)
    assert made[1] == made[2] == NOT_AN_AUDIT_RECORD
    assert made[3] == NOT_THE_PROCESSORS  # a disclosure decision on the activity topic
    assert isinstance(made[4], Prepared)  # anything else is welcome there
    with pytest.raises(ValueError):
        prepare_arrived([shared], [], "sqlite")
