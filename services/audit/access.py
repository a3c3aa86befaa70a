"""Who reads the audit trail: an IG officer sees every decision; an agency, with its API
token, sees the decisions about the data it published and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException

from services.backbone.http import bearer_holder
from services.backbone.keyring import Keyring


@dataclass(frozen=True)
class Reader:
    actor: str
    agency: str | None  # None: an IG officer, across agencies


def reader(authorization: str | None, keyring: Keyring) -> Reader:
    """The IG officer or agency a bearer token belongs to, or 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token:
        officer = keyring.ig_officer(token)
        if officer is not None:
            return Reader(f"ig-officer:{officer}", None)
        agency = keyring.agency(token)
        if agency is not None:
            return Reader(f"agency:{agency}", agency)
    bearer_holder(None, lambda _: None)  # raises the 401 every endpoint answers
    raise HTTPException(401)  # not reached
