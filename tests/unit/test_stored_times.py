"""Every time any store keeps is sqlmodel's UTCDateTime: an aware value in, the same instant
in UTC out, on SQLite as on PostgreSQL (a plain DateTime column reads back without its
offset on SQLite), and a time without an offset is refused rather than guessed."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, create_engine, insert, select
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

TABLE_MODULES = (
    "services.agency.inbox_store",
    "services.audit.models",
    "services.backbone.lease",
    "services.delivery.tables",
    "services.outbox.tables",
    "services.personindex.tables",
)


def _time_columns() -> list[str]:
    for module in TABLE_MODULES:
        importlib.import_module(module)
    return [
        f"{table.name}.{column.name}"
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, (DateTime, UTCDateTime))
    ]


def test_every_stored_time_is_utc_with_its_offset() -> None:
    columns = _time_columns()
    assert {
        "audit_entry.recorded_at",
        "override_review.reviewed_at",
        "delivery_notification.created_at",
        "person_index_person.created_at",
    } <= set(columns)
    plain = [
        name
        for name in columns
        if not isinstance(
            SQLModel.metadata.tables[name.split(".")[0]].columns[name.split(".")[1]].type,
            UTCDateTime,
        )
    ]
    assert not plain, f"times stored without their offset: {plain}"


def test_a_stored_time_comes_back_as_the_same_instant_in_utc() -> None:
    importlib.import_module("services.audit.models")
    table = SQLModel.metadata.tables["override_review"]
    engine = create_engine("sqlite://")
    table.create(engine)
    in_paris = datetime(2026, 12, 5, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    with engine.begin() as db:
        db.execute(insert(table), [_review("a", in_paris)])
        back = db.execute(select(table.c.reviewed_at)).scalar_one()
        assert back == in_paris and back.utcoffset() == timedelta(0)
        assert back.isoformat() == "2026-12-05T10:00:00+00:00"
        with pytest.raises(Exception, match="timezone"):
            db.execute(insert(table), [_review("b", datetime(2026, 1, 1))])
    engine.dispose()
    assert back.tzinfo == UTC


def _review(audit_id: str, at: datetime) -> dict[str, object]:
    return {"audit_id": audit_id, "reviewed_at": at, "note": "seen", "reviewer": "ig-officer"}
