"""A Kafka record as a stage read it, without the client: where it was, its key, value and
headers. The processor decides over it, and a stage that cannot process one dead-letters it
as it was (services/backbone/deadletter.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
