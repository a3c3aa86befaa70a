"""Who is calling: every recipient endpoint takes ``Authorization: Bearer <agency API
token>``; the keyring holds only the tokens' SHA-256 hashes. 401 without a valid token,
403 for another agency's recipient path or subscription."""

from __future__ import annotations

from fastapi import HTTPException

from services.backbone.http import bearer_holder
from services.backbone.keyring import Keyring


def calling_agency(authorization: str | None, keyring: Keyring) -> str:
    return bearer_holder(authorization, keyring.agency)


def require_agency(authorization: str | None, keyring: Keyring, agency: str) -> str:
    """The caller, who must be ``agency``."""
    caller = calling_agency(authorization, keyring)
    if caller != agency:
        raise HTTPException(403, detail="this token belongs to another agency")
    return caller
