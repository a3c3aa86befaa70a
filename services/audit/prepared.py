"""An audit record made ready to be sealed and written, everywhere but in the chain's own
turn: parsed and validated, its canonical bytes made around the sequence number it does not
have yet, its values bound as the database's writer takes them, and the alias links it
makes.

The writer (``AuditStore.add_batch``) then only numbers, chains and writes. The
ingester prepares a batch in a worker process while the writer stores the one before
(services/audit/ingest.py): on SQLite the writer's share of a record was some 30 µs and
the rest of the store's work as much again, in one thread, so the two now overlap.

Pure: given no key, database or socket. Binding needs the database's dialect, which is
built from its driver's name (``postgresql+psycopg``), not from an engine.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError
from sqlalchemy import Dialect
from sqlalchemy.engine import make_url

from services.audit.chain import canonical_halves
from services.audit.models import CONTENT_FIELDS, AuditEntry, in_utc
from services.backbone.audit_contract import AuditRecord, is_disclosure_decision
from services.backbone.bulk import Prepare, json_text, row_binder

# The columns a prepared record's values fill, in the table's order, and then the three the
# writer fills (``sealed_values``).
SEALED_COLUMNS = ("seq", "entry_hash", "chain_hash")
COLUMNS = (*CONTENT_FIELDS, *SEALED_COLUMNS)

NOT_AN_AUDIT_RECORD = "not an audit record (schema validation failed)"
NOT_THE_PROCESSORS = (
    "a disclosure decision on the activity topic: only the processor decides disclosures, "
    "and only on the decisions topic, which no one else may write"
)


class Prepared(NamedTuple):
    audit_id: str
    head: bytes  # the canonical bytes before the sequence number (chain.canonical_halves)
    tail: bytes  # and after it
    values: tuple[Any, ...]  # the content columns' values, bound (CONTENT_FIELDS' order)
    links: tuple[tuple[str, str, str], ...]  # (alias key, subject key, agency) it makes
    recorded_at: datetime  # as the record said it, for the ingestion delay metric


Ready = AuditRecord | Prepared
"""What a store takes: a record, prepared as it is written, or one prepared already."""


def prepared(ready: Ready, driver: str) -> Prepared:
    return ready if isinstance(ready, Prepared) else prepare(ready, driver)


def prepare(record: AuditRecord, driver: str) -> Prepared:
    """``record`` ready for a store on the database of ``driver`` (an engine's
    ``url.drivername``)."""
    row = record.columns()  # CONTENT_FIELDS, no more (a unit test holds it)
    in_utc(row)
    head, tail = canonical_halves(row)
    return Prepared(
        row["audit_id"],
        head,
        tail,
        _binder(driver)(row),
        tuple(sealed_links(row)),
        record.recorded_at,
    )


def prepare_arrived(
    values: Sequence[bytes], activity: Sequence[bool], driver: str, *, complete: bool = True
) -> list[Ready | str]:
    """Each of ``values`` (Kafka record values, as they arrived) prepared, or the reason it
    is refused: not an audit record, or a disclosure decision arriving on the activity topic
    (``activity``, value by value), which only the processor may decide. In the ingester's
    worker process; in the service itself, ``complete=False`` leaves each record parsed
    only, to be prepared as it is written (on PostgreSQL, while the server stores the rows
    before)."""
    made: list[Ready | str] = []
    for value, from_activity in zip(values, activity, strict=True):
        try:
            record = AuditRecord.from_json(value)
        except ValidationError:
            made.append(NOT_AN_AUDIT_RECORD)
            continue
        if from_activity and is_disclosure_decision(record.decision, record.action):
            made.append(NOT_THE_PROCESSORS)
        else:
            made.append(prepare(record, driver) if complete else record)
    return made


def sealed_links(content: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """The alias links one sealed record makes (as ``AuditStore`` stores them)."""
    subject = content.get("subject_key")
    if not subject:
        return set()
    agency = content.get("source_agency") or ""
    return {(alias, subject, agency) for alias in content.get("subject_aliases") or ()}


@functools.lru_cache(maxsize=4)
def _binder(driver: str) -> Prepare:
    return row_binder(AuditEntry.__table__, CONTENT_FIELDS, dialect_of(driver))  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=4)
def dialect_of(driver: str) -> Dialect:
    """The dialect of ``driver`` as ``engine_for`` configures it (JSON through orjson),
    without an engine or a connection."""
    made: Any = make_url(f"{driver}://").get_dialect()
    dialect: Dialect = made(json_serializer=json_text, json_deserializer=orjson.loads)
    return dialect
