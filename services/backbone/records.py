"""A Kafka record as a stage read it, without the client: where it was, its key, value and
headers. The processor decides over it, and a stage that cannot process one dead-letters it
as it was (services/backbone/deadletter.py). And headers as a store keeps them until the
record is sent on (the outbox, the delivery store)."""

from __future__ import annotations

import base64
from binascii import b2a_base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Header = tuple[str, bytes | None]  # a Kafka header: its value may be null
StoredHeaders = list[list[str | None]]  # a JSON column: [name, the value in base64 or null]


@dataclass(frozen=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header]


def stored_headers(headers: Iterable[Header]) -> StoredHeaders:
    """Headers as a store's JSON column keeps them (``headers_from_stored`` reads them)."""
    return [[n, None if v is None else b2a_base64(v, newline=False).decode()] for n, v in headers]


def headers_from_stored(stored: Iterable[Sequence[str | None]]) -> list[Header]:
    return [(str(n), None if v is None else base64.b64decode(v)) for n, v in stored]
