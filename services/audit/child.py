"""How an IG officer names a child: by NHS number, UPN or a local authority's person id.
The service keys what was typed like every audit subject key (the store holds no
identifier), then follows the aliases the trail has recorded to every key the child's
decisions are stored under."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from fastapi import HTTPException
from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from services.audit.store import AuditStore
from services.backbone.errors import ConfigurationError
from services.backbone.http import NhsNumber, Upn
from services.backbone.identifiers import (
    la_person_identifier,
    subject_identifier,
    upn_identifier,
)
from services.backbone.keyed import Key, keyed_id

AMBIGUOUS = "the identifier is linked to more than one child in the audit trail"


class ChildQuery(BaseModel):
    """Exactly one identifier of the child. It travels in a request body, never a URL."""

    nhs_number: NhsNumber | None = Field(
        None, description="the child's NHS number (10 digits, check digit)"
    )
    upn: Upn | None = Field(
        None, description="the child's Unique Pupil Number (check letter, 12 characters)"
    )
    la_person_id: str | None = Field(
        None, min_length=1, max_length=64, description="a local authority's person id"
    )
    local_authority: str | None = Field(
        None,
        min_length=2,
        max_length=63,
        description="the agency id of the authority whose person id it is (with la_person_id)",
    )

    @model_validator(mode="after")
    def _one_identifier(self) -> ChildQuery:
        given = [n for n in ("nhs_number", "upn", "la_person_id") if getattr(self, n)]
        if len(given) != 1:
            raise PydanticCustomError(
                "child.one_identifier", "give exactly one of nhs_number, upn or la_person_id"
            )
        if bool(self.la_person_id) != bool(self.local_authority):
            raise PydanticCustomError(
                "child.local_authority",
                "an la_person_id needs its local_authority, and only it takes one",
            )
        return self

    @property
    def kind(self) -> str:
        return "NHS number" if self.nhs_number else "UPN" if self.upn else "LA person id"

    def identifier(self) -> str:
        """The canonical identifier string subject keys and aliases are keyed over."""
        if self.nhs_number:
            return subject_identifier(nhs_number=self.nhs_number)
        if self.upn:
            return upn_identifier(self.upn)
        assert self.la_person_id and self.local_authority
        return la_person_identifier(self.local_authority, self.la_person_id)


@dataclass(frozen=True)
class Child:
    typed_key: str  # the keyed form of what the officer typed (under the active key)
    subject_keys: list[str]  # every key the child's decisions are stored under
    kind: str
    # The one key to record a look-up under: the child's own subject key when the identifier
    # typed leads to exactly one, else the key of what was typed.
    key: str


def find_child(
    query: ChildQuery,
    store: AuditStore,
    audit_keys: Sequence[Key],
    *,
    linked_by: str | None = None,
) -> Child:
    """The child's keys under every audit subject key (``audit_keys``, the active one first:
    the records made before a rotation are keyed under the older ones); ``linked_by``:
    follow only links that agency's records made (an agency must not learn what another
    agency linked). 409 if the identifier is ambiguous: linked to two children under one
    key, or to children under different keys that the trail does not show are one (the
    processor records a child's older subject keys as aliases of its new one)."""
    if not audit_keys:
        raise ConfigurationError("the keyring has no 'audit_subject' key")
    typed_keys = [keyed_id(k.secret, "audit-subject", query.identifier()) for k in audit_keys]
    keys: list[str] = []
    linked_to: list[str] = []  # the child each key's identifier is linked to, if any
    for typed in typed_keys:
        linked = store.subject_keys(typed, linked_by=linked_by)
        others = [k for k in linked if k != typed]
        # An identifier linked to more than one child's subject key (a publisher re-used an
        # id, or mixed two children up): no report may merge them.
        if len(others) > 1:
            raise _ambiguous(query)
        linked_to += others
        keys += linked
    for a, b in combinations(sorted(set(linked_to)), 2):
        if b not in store.subject_keys(a, linked_by=linked_by) and a not in store.subject_keys(
            b, linked_by=linked_by
        ):
            raise _ambiguous(query)
    own = next((k for k in linked_to), None)
    return Child(typed_keys[0], sorted(set(keys)), query.kind, own or typed_keys[0])


def _ambiguous(query: ChildQuery) -> HTTPException:
    return HTTPException(
        409,
        detail=f"this {query.kind} is linked to more than one child in the audit trail; "
        "the publishers' records need correcting before a report can be made",
    )
