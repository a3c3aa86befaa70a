"""Who may call an agency service: ``Authorization: Bearer <API key>`` of this service's
own agency, with the scope the route needs (``events:publish`` for everything that
publishes or reads what was published, ``inbox:read`` for the inbox).

401 without a valid agency key (an IG officer's or practitioner's token is not one); 403
for another agency's key and for a key without the scope. The check runs before
the request body is read, so an unauthenticated caller learns nothing about the input
rules.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from services.backbone.api_keys import PUBLISH, READ_INBOX, AgencyCredential
from services.backbone.bearer import agency_key

bearer_scheme = agency_key  # the AgencyKey scheme every service names an agency's key by
# Routes of these tags need no key (health) or a scope other than publishing.
OPEN_TAGS = frozenset({"operations"})
INBOX_TAGS = frozenset({"inbox"})


def required_scope(tags: list[str]) -> str | None:
    """The scope a route of these tags needs; None for open routes."""
    if OPEN_TAGS & set(tags):
        return None
    return READ_INBOX if INBOX_TAGS & set(tags) else PUBLISH


def authenticate(request: Request) -> AgencyCredential | None:
    """The caller's credential, checked against the route's scope (None on open routes).
    The gate (``gate.py``) has found the key and checked its agency before the body was
    read; here only the route's scope is left to check."""
    route = request.scope.get("route")
    scope = required_scope(list(getattr(route, "tags", None) or []))
    if scope is None:
        return None
    found: AgencyCredential | None = getattr(request.state, "caller", None)
    if found is None:  # the gate lets no such request through; refuse all the same
        raise HTTPException(
            401,
            detail="a valid API key is required (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scope not in found.scopes:
        raise HTTPException(403, detail=f"this key does not have the {scope} scope")
    return found
