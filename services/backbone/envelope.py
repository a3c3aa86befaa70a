"""The event envelope: CloudEvents 1.0 in Kafka binary content mode.

Attributes ride as ``ce_*`` headers, the data is the JSON record value, and the record
key is the subject routing key (a keyed hash, never an identifier). Only the attributes
below are ever written as headers, so no identifier can reach a header by accident.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.backbone.errors import EnvelopeError

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
SOURCE_PREFIX = "/agencies/"
Headers = list[tuple[str, bytes]]

# Extension attributes infoshare uses on delivered records (CloudEvents names: [a-z0-9]).
EXT_PROTOCOL = "protocol"
EXT_IDENTITY = "identitylevel"
EXT_REPLAY = "replay"  # the replay run that re-decided this delivery
# On an amended record: the event it supersedes (its publisher's event id); on a delivery,
# the recipient's own id of the delivery it supersedes.
EXT_SUPERSEDES = "supersedes"
# On a recall notice (services/backbone/recall.py): the recipient's own id of the delivery
# it withdraws.
EXT_RECALLS = "recalls"


@dataclass(frozen=True)
class CloudEvent:
    """One event as infoshare carries it. ``key`` is the Kafka record key."""

    type: str
    source: str
    data: Mapping[str, Any]
    key: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    dataschema: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)

    @property
    def source_agency(self) -> str:
        """The agency id in ``source`` (``/agencies/<id>``)."""
        if not self.source.startswith(SOURCE_PREFIX):
            raise EnvelopeError(f"source {self.source!r} does not name an agency")
        return self.source[len(SOURCE_PREFIX) :]


def agency_source(agency_id: str) -> str:
    return SOURCE_PREFIX + agency_id


def encode(
    event: CloudEvent, *, extra_headers: Iterable[tuple[str, bytes]] = ()
) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of the Kafka record for ``event``."""
    headers: Headers = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", _format_time(event.time).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if event.dataschema:
        headers.append(("ce_dataschema", event.dataschema.encode()))
    headers += [(f"ce_{name}", value.encode()) for name, value in event.extensions.items()]
    headers += list(extra_headers)
    return event.key.encode(), orjson.dumps(event.data), headers


MAX_ID = 64


# Unicode's control characters (general category Cc): exactly C0, DEL and C1. One regular
# expression search instead of a category lookup per character (a third of decoding a 1 KB
# event went there).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control_characters(*texts: str) -> bool:
    """Whether any text holds a control character (NUL above all): such text cannot go
    into a header, an audit record or a dead-letter reason."""
    return any(_CONTROL.search(text) for text in texts)


def decode(
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    *,
    require_key: bool = True,
) -> CloudEvent:
    """Parse a record written by :func:`encode`; EnvelopeError says what is wrong."""
    attrs: dict[str, str] = {}
    for name, raw in headers:
        lowered = name.lower()
        if lowered.startswith("ce_") or lowered == "content-type":
            if raw is None:
                raise EnvelopeError(f"header {name} is null")
            try:
                attrs[lowered] = raw.decode()
            except UnicodeDecodeError:
                raise EnvelopeError(f"header {name} is not UTF-8") from None
    for required in ("ce_specversion", "ce_id", "ce_source", "ce_type"):
        if not attrs.get(required):
            raise EnvelopeError(f"missing CloudEvents header {required}")
    if len(attrs["ce_id"]) > MAX_ID:
        raise EnvelopeError(f"ce_id is longer than {MAX_ID} characters")
    # Reasons name the header, never its value: it is the publisher's, unchecked, and goes
    # into audit records and dead-letter headers.
    if has_control_characters("".join(attrs.values())):  # one search, then which
        for name, text in attrs.items():
            if has_control_characters(text):
                raise EnvelopeError(f"header {name} holds control characters")
    if attrs["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported specversion (expected {SPECVERSION})")
    if attrs.get("content-type", CONTENT_TYPE).split(";")[0].strip() != CONTENT_TYPE:
        raise EnvelopeError(f"unsupported content-type (expected {CONTENT_TYPE})")
    if not key and require_key:
        raise EnvelopeError("record has no key (the subject routing key)")
    if value is None:
        raise EnvelopeError("record has no value")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("data is not a JSON object")
    known = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_dataschema"}
    return CloudEvent(
        type=attrs["ce_type"],
        source=attrs["ce_source"],
        data=data,
        key=(key or b"").decode(errors="replace"),
        id=attrs["ce_id"],
        time=parse_time(attrs.get("ce_time")),
        dataschema=attrs.get("ce_dataschema"),
        extensions={k[3:]: v for k, v in attrs.items() if k.startswith("ce_") and k not in known},
    )


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(raw: str | None) -> datetime:
    """A ``ce_time`` value (RFC 3339 with a time and an offset); now if there is none."""
    if not raw:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError("ce_time is not RFC 3339") from None
    if moment.tzinfo is None or "T" not in raw:
        raise EnvelopeError("ce_time is not RFC 3339: it needs a time and an offset")
    return moment
