"""The record on ``audit.decisions``: the contract between the processor and the audit service.

Shaped on IHE BALP / FHIR AuditEvent. It names fields, never their values; the subject is a
keyed audit subject key, never an identifier.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationInfo, model_validator
from pydantic_core import PydanticUndefined

from services.backbone.keyed import keyed_mac

# The audit store's columns for a record's numbers (INTEGER, and BIGINT for the offset):
# a number outside them is not an audit record, refused as one (the ingester dead-letters
# it), rather than failing or being changed where it is stored.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1

_AUDIT_NS = uuid.UUID("6f0b1c1e-8d3a-4b8e-9b1a-0c5e2f7d9a11")


class AuditOutcome(StrEnum):
    SHARED = "shared"
    WITHHELD = "withheld"
    DEAD_LETTERED = "dead_lettered"
    RE_IDENTIFIED = "re_identified"
    SUPPRESSED = "suppressed"  # a duplicate of an event already decided
    UNDELIVERABLE = "undeliverable"  # a push channel gave up after its retry horizon
    RETRIED = "retried"  # a dead letter re-published to its origin topic
    ACCESSED = "accessed"  # someone read the audit trail about a child (watching the watchers)
    RECORDED = "recorded"  # a named person recorded something that unlocks disclosure (consent)
    RECALLED = "recalled"  # a disclosure withdrawn by its publisher: the recipient told


# What only the processor decides: whether an event is disclosed (shared or withheld, told
# back, suppressed as a repeat). Such a record arrives on the decisions topic, which only the
# processor's principal may write; the audit service refuses one from anywhere else
# (audit.activity). Others may withhold too (a re-identification refused), never share.
DISCLOSURE_OUTCOMES = frozenset({"shared", "suppressed"})
DISCLOSURE_ACTIONS = frozenset(
    {"disclose", "amend", "replay", "access_back", "suppress_duplicate", "recall"}
)


def is_disclosure_decision(decision: str, action: str) -> bool:
    return decision in DISCLOSURE_OUTCOMES or action in DISCLOSURE_ACTIONS


_NUL_FREE: dict[str, Any] = {}  # the context of a record whose JSON holds no NUL (from_json)


class AuditRecord(BaseModel):
    audit_id: str = Field(max_length=36, description="deterministic per input record and recipient")
    recorded_at: datetime
    occurred_at: datetime | None = None
    action: str = Field(
        max_length=32,
        description="disclose | amend | recall | replay | access_back | suppress_duplicate | "
        "recall_purge | dead_letter | deliver | dlq_retry",
    )
    decision: AuditOutcome
    reason_code: str = Field(max_length=64)
    reason: str
    actor: str = Field(max_length=128, description="the system or user that made the decision")
    event_id: str | None = Field(None, max_length=64)
    event_type: str | None = Field(None, max_length=128)
    source_agency: str | None = Field(None, max_length=64)
    recipient: str | None = Field(None, max_length=64)
    purpose: str | None = Field(None, max_length=64)
    protocol_id: str | None = Field(None, max_length=128)
    protocol_version: int | None = Field(None, ge=INT_MIN, le=INT_MAX)
    lawful_basis: str | None = None
    identity_level: str | None = Field(None, max_length=32)
    subject_key: str | None = Field(None, max_length=64, description="keyed audit subject key")
    subject_aliases: list[str] = Field(
        default_factory=list,
        description="the child's other identifiers (UPN, LA person id), keyed the same way",
    )
    fields_disclosed: list[str] = Field(default_factory=list)
    fields_pseudonymised: list[str] = Field(default_factory=list)
    fields_withheld: list[str] = Field(default_factory=list)
    fields_tokenised: list[str] = Field(default_factory=list)
    fields_encrypted: list[str] = Field(default_factory=list)
    key_id: str | None = Field(None, max_length=128)
    token_key_id: str | None = Field(None, max_length=128)
    consent_record_id: str | None = Field(None, max_length=64)
    consent_version: int | None = Field(None, ge=INT_MIN, le=INT_MAX)
    override_justification: str | None = Field(
        None, description="why the publisher shared without consent (reviewed by IG)"
    )
    override_role: str | None = Field(None, max_length=80)
    topic_in: str | None = Field(None, max_length=255)
    partition_in: int | None = Field(None, ge=INT_MIN, le=INT_MAX)
    offset_in: int | None = Field(None, ge=BIGINT_MIN, le=BIGINT_MAX)
    topic_out: str | None = Field(None, max_length=255)
    delivery_id: str | None = Field(
        None, max_length=64, description="the event id the recipient received"
    )
    trace_id: str | None = Field(None, max_length=32)
    refers_to: str | None = Field(
        None,
        max_length=36,
        description="the audit record this one is about (an IG officer's review of an override)",
    )

    @model_validator(mode="after")
    def _storable(self, info: ValidationInfo) -> AuditRecord:
        """No NUL in any text: PostgreSQL cannot store one, and a batch holding one record
        that cannot be stored would stop the trail. Such a record is dead-lettered instead.
        (Lengths are the store's column lengths, for the same reason.) One pass over the
        record, not a validator per field: the audit service validates every record it
        reads, and a call per field was a third of its ingest time. orjson writes each NUL
        as ``\\u0000``; only a record whose JSON holds that (a NUL, or text that spells
        one) is looked at field by field. ``from_json`` looks at its bytes instead."""
        if info.context is _NUL_FREE or b"\\u0000" not in orjson.dumps(self.__dict__):
            return self
        for name, value in self.__dict__.items():
            for text in value if isinstance(value, list) else (value,):
                if isinstance(text, str) and "\x00" in text:
                    raise ValueError(f"{name}: text may not contain NUL")
        return self

    @classmethod
    def from_json(cls, raw: bytes) -> AuditRecord:
        """``model_validate_json(raw)``, the NUL check made on ``raw`` itself: JSON text can
        hold a NUL only where it spells ``\\u0000`` (a bare one is not JSON, and refused), so
        a record whose bytes do not is not written out again to be looked at (the audit
        service reads every record so)."""
        return cls.model_validate_json(raw, context=None if b"\\u0000" in raw else _NUL_FREE)

    def columns(self) -> dict[str, Any]:
        """The record as a fresh dict of its fields (``model_dump()``'s result for this flat
        model, without its per-call cost; lists are shared, not copied)."""
        return dict(self.__dict__)

    @classmethod
    def about(cls, *, validate: bool = True, **arguments: Any) -> AuditRecord:
        """The record of a decision about the input record at ``topic[partition]@offset``
        (see ``coordinates`` for the arguments). ``validate=False`` skips validation, for
        hot paths building from typed values."""
        values = coordinates(**arguments)
        return cls(**values) if validate else cls.model_construct(**values)

    @classmethod
    def json_about(cls, **arguments: Any) -> bytes:
        """``about(..., validate=False).model_dump_json()``, byte for byte, a fifth of the
        cost: the processor writes several per event. Built as a dict in the model's field
        order and written by orjson (UTC as ``Z``, like pydantic). Nothing is validated, so
        only for values made from typed data; the audit service validates what it reads.
        A unit test holds the two to the same bytes."""
        values = dict(_defaults(cls))
        given = coordinates(**arguments)
        unknown = given.keys() - values.keys()
        if unknown:
            raise TypeError(f"not audit record fields: {', '.join(sorted(unknown))}")
        values.update(given)
        return orjson.dumps(values, option=orjson.OPT_UTC_Z)


def coordinates(
    *,
    topic: str,
    partition: int,
    offset: int,
    recipient: str | None = None,
    protocol: str | None = None,
    run: str | None = None,
    id_key: bytes | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An audit record's values: ``fields``, the input record's coordinates, and the audit id
    they give with ``recipient``, ``protocol`` (the protocol ref, or a word naming the kind
    of decision) and a replay ``run``. ``id_key``: the processor's audit id key (its ids are
    keyed: see audit_id_for)."""
    return {
        "audit_id": audit_id_for(
            topic=topic,
            partition=partition,
            offset=offset,
            recipient=recipient,
            protocol=protocol,
            run=run,
            key=id_key,
        ),
        "recipient": recipient,
        "topic_in": topic,
        "partition_in": partition,
        "offset_in": offset,
        **fields,
    }


@functools.cache
def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Every field in declaration order (the order pydantic writes), at its default; a
    required field as None until the caller sets it. Lists are empty tuples, which orjson
    writes as ``[]`` and nothing can append to."""
    return {
        name: ()
        if info.default_factory is list
        else info.default
        if info.default is not PydanticUndefined
        else None
        for name, info in model.model_fields.items()
    }


def audit_id_for(
    *,
    topic: str,
    partition: int,
    offset: int,
    recipient: str | None,
    protocol: str | None,
    run: str | None = None,
    key: bytes | None = None,
) -> str:
    """The same input record, recipient and protocol always give the same audit id, so the
    store keeps a decision once however often it is delivered; two protocols deciding for one
    recipient keep two. A replay ``run`` decides again, so it has ids of its own.

    With ``key`` (the processor's ``audit_id`` key, which no one else holds) the id is keyed
    (HMAC-SHA256, as a UUID): nobody can compute the id of a decision still to come, so no
    record written ahead of it can take its id and have the real one dropped as a repeat."""
    name = f"{topic}|{partition}|{offset}|{recipient or '-'}|{protocol or '-'}"
    if run is not None:
        name += f"|replay:{run}"
    if key is not None:
        mac = keyed_mac(key, "audit-id")
        mac.update(name.encode())
        return uuid4_text(mac.digest())
    return str(uuid.uuid5(_AUDIT_NS, name))


def uuid4_text(digest: bytes) -> str:
    """``str(uuid.UUID(bytes=digest[:16], version=4))`` without building a UUID (a third of
    the cost): the version and variant bits set, in the 8-4-4-4-12 form."""
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def protocol_parts(ref: str | None) -> tuple[str | None, int | None]:
    """A protocol ref (``name@version``) as the audit record's id and version."""
    if not ref or "@" not in ref:
        return ref, None
    name, _, version = ref.rpartition("@")
    # Only plain ASCII digits ("²" is a digit to str.isdigit), and only a version the
    # record's column can hold: a delivered event's protocol is not ours to trust.
    number = int(version) if version.isascii() and version.isdigit() else None
    return name, number if number is not None and number <= INT_MAX else None
