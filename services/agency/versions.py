"""Amended records: a record of an agency's own system sent again with changed content
(an amended plan under the same plan id) is a new version, published as a new event that
says which event it supersedes; sent again unchanged, it is the same event (a duplicate,
dropped by the processor).

Versions are kept in the outbox's database (``outbox_native_version``), by the first
version's event id (keyed: a native id may hold an identifier) with a hash of the content
sent; the change is written in the submission's own transaction, from the version it was
read at, so two requests amending one record at once cannot both win
(``AmendedMeanwhile``: the loser is asked to send again)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.backbone.publisher import EventBuilder
from services.outbox.store import OutboxStore, Version, VersionChange

Native = tuple[str, str]  # (event type, native id)


@dataclass(frozen=True)
class Versioned:
    """Which version of its native record an event is, and the event it supersedes."""

    version: int
    supersedes: str | None = None


class RecordVersions:
    """Each event's version of its record: the first time, 1; sent again unchanged, the
    version it is; changed, one more, superseding the last. Read once for a batch of
    submissions and carried from one to the next, so two amendments in one batch follow
    each other."""

    def __init__(
        self, builder: EventBuilder, outbox: OutboxStore, agency: str, natives: Sequence[Native]
    ) -> None:
        self.builder = builder
        firsts = [builder.event_id(event_type, native_id) for event_type, native_id in natives]
        self.latest = outbox.versions(agency, firsts)
        self.made: set[str] = set()  # records whose latest version this batch made

    def of(
        self, natives: Sequence[Native], datas: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Versioned], list[VersionChange]]:
        """One submission's events' versions, and the changes its commit must write."""
        versioned: list[Versioned] = []
        changes: list[VersionChange] = []
        for (event_type, native_id), data in zip(natives, datas, strict=True):
            first = self.builder.event_id(event_type, native_id)
            digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
            known = self.latest.get(first)
            if known is not None and known.digest == digest:
                version = known.version  # sent again unchanged
                if first in self.made:
                    # Unchanged from a version an earlier request of this batch made, which
                    # may yet fail: its commit checks that version is stored (a write of the
                    # same version from itself), or asks this one to send again.
                    changes.append(VersionChange(first, version, known))
            else:
                version = known.version + 1 if known else 1
                now = Version(
                    version, digest, self.builder.event_id(event_type, native_id, version)
                )
                # Written from the version read; a record from before versions were kept
                # (no digest) has no row to update yet.
                read = known.version if known is not None and known.digest else None
                changes.append(VersionChange(first, read, now))
                self.latest[first] = now
                self.made.add(first)
            before = self.builder.event_id(event_type, native_id, version - 1)
            versioned.append(Versioned(version, before if version > 1 else None))
        return versioned, changes
