"""The ``Authorization`` header as a route's OpenAPI operation states it: one of two security
schemes, not a header parameter of any string. ``AgencyKey`` is an agency's API key;
``PersonToken`` a person's OIDC token from the identity provider. A route that takes either
lists both (OpenAPI reads its ``security`` entries as alternatives).

These dependencies only declare the scheme and hand the header on: who the token names,
and whether they may call the route, is still decided where it was (``http.bearer_holder``,
``people_http.person_of``), so a missing or wrong token is answered 401 or 403 there."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

AGENCY_KEY = "AgencyKey"
PERSON_TOKEN = "PersonToken"  # noqa: S105  (a scheme's name)

agency_key = HTTPBearer(
    scheme_name=AGENCY_KEY,
    auto_error=False,
    description="An agency's API key: `infoshare keys generate` writes each agency's to "
    "agency-tokens/<agency>.token beside the keyring; `infoshare keys api-key issue` makes "
    "narrower ones. The keyring holds only the keys' hashes.",
)
person_token = HTTPBearer(
    scheme_name=PERSON_TOKEN,
    bearerFormat="JWT",
    auto_error=False,
    description="A named person's token (practitioner or IG officer) from the OIDC identity "
    "provider INFOSHARE_OIDC_ISSUER names, verified against its JWKS.",
)
Credentials = HTTPAuthorizationCredentials | None


def _header(request: Request) -> str | None:
    return request.headers.get("authorization")


async def _agency(request: Request, _: Annotated[Credentials, Depends(agency_key)]) -> str | None:
    return _header(request)


async def _person(request: Request, _: Annotated[Credentials, Depends(person_token)]) -> str | None:
    return _header(request)


async def _either(
    request: Request,
    _agency: Annotated[Credentials, Depends(agency_key)],
    _person: Annotated[Credentials, Depends(person_token)],
) -> str | None:
    return _header(request)


AgencyAuthorization = Annotated[str | None, Depends(_agency)]
"""The ``Authorization`` header of a route for agencies' API keys."""
PersonAuthorization = Annotated[str | None, Depends(_person)]
"""The ``Authorization`` header of a route for named people's tokens."""
AgencyOrPersonAuthorization = Annotated[str | None, Depends(_either)]
"""The ``Authorization`` header of a route taking an agency's key or a person's token."""

__all__ = [
    "AGENCY_KEY",
    "PERSON_TOKEN",
    "AgencyAuthorization",
    "AgencyOrPersonAuthorization",
    "PersonAuthorization",
    "agency_key",
    "person_token",
]
