"""The HTTP edge of named people (people.py): who the bearer token names, or 401; whether
they hold the role a route needs, or 403; 503 where no identity provider is configured."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException

from services.backbone.people import PeopleVerifier, Person, PersonRole, Unauthenticated

CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def person_of(
    verifier: PeopleVerifier | None, authorization: str | None, *roles: PersonRole
) -> Person:
    """The verified person, holding one of ``roles``. Blocking (it may fetch the issuer's
    keys): call it from a sync route (FastAPI runs those on its threads), or use
    ``person_of_async``."""
    if verifier is None:
        raise HTTPException(
            503, detail="no identity provider is configured here (INFOSHARE_OIDC_ISSUER)"
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            401,
            detail="a person's bearer token is required (OIDC, from the identity provider)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        person = verifier.verify(token.strip())
    except Unauthenticated as exc:
        raise HTTPException(401, detail=str(exc), headers=CHALLENGE) from None
    if roles and not person.roles & set(roles):
        needed = " or ".join(r.value for r in roles)
        raise HTTPException(403, detail=f"this needs the {needed} role")
    return person


async def person_of_async(
    verifier: PeopleVerifier | None, authorization: str | None, *roles: PersonRole
) -> Person:
    """``person_of`` off the event loop."""
    return await asyncio.to_thread(person_of, verifier, authorization, *roles)


async def is_person(verifier: PeopleVerifier | None, token: str) -> bool:
    """Whether ``token`` is a valid person's (any role): for the gate before a body."""
    if verifier is None:
        return False
    try:
        await asyncio.to_thread(verifier.verify, token.strip())
    except Unauthenticated:
        return False
    return True
