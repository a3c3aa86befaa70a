"""Named people: practitioners and IG officers prove who they are with an OIDC bearer JWT
from the organisation's identity provider, verified against its published keys (JWKS).

Checked on every request: the signature (asymmetric algorithms only, so a token signed with
the JWKS as an HMAC secret is refused), the issuer, the audience, the expiry (and
not-before), and a subject. What a person may do comes from the roles claim. The
embedded default (``infoshare users``, deploy/devstack/identity) is an identity provider of
this shape for development; production points INFOSHARE_OIDC_ISSUER at the organisation's.

A token, a claim value or a name never reaches a log: a refusal says which check failed.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import jwt

from services.backbone.hosts import is_loopback

ALGORITHMS = ("EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256")
ACTOR_MAX = 128  # AuditRecord.actor
SUBJECT_MAX = 100  # the identity provider's subject, kept whole in every record
LEEWAY_S = 30  # clocks of the identity provider and this host may differ a little
RETRY_DISCOVERY_S = 30.0  # an unreachable identity provider is asked again after this


class PersonRole(StrEnum):
    PRACTITIONER = "practitioner"  # records and searches consent
    IG_OFFICER = "ig_officer"  # searches the trail, reviews overrides, re-identifies


@dataclass(frozen=True)
class Person:
    """Who a verified token names. ``subject`` is the identity provider's stable id; ``name``
    what the person is called in the records they leave (never logged)."""

    issuer: str
    subject: str
    name: str
    roles: frozenset[PersonRole]

    @property
    def actor(self) -> str:
        """How an audit record names them: the display name, then the stable subject in
        angle brackets, within the 128 characters an audit record's actor holds. Only the
        name is ever cut, and it is shown without control characters or angle brackets,
        so a name a person can edit cannot spell out or push away anyone's subject."""
        name = " ".join("".join(c for c in self.name if c.isprintable() and c not in "<>").split())
        room = ACTOR_MAX - len(self.subject) - 3
        if len(name) > room:
            name = name[: max(0, room - 1)] + "…"
        return f"{name} <{self.subject}>"


class Unauthenticated(Exception):
    """No valid token: which check failed (never the token or a claim's value)."""


@dataclass(frozen=True)
class PeopleConfig:
    issuer: str
    audience: str = "infoshare"
    roles_claim: str = "roles"  # a dotted path, e.g. realm_access.roles (Keycloak)
    jwks_url: str | None = None  # None: discovered from the issuer's OpenID configuration


class PeopleVerifier:
    """Verifies people's bearer tokens. Blocking (it may fetch the JWKS): call it off the
    event loop. Keys are cached and fetched again when a token names an unknown key id."""

    def __init__(
        self,
        config: PeopleConfig,
        *,
        jwks: jwt.PyJWKClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._jwks = jwks
        self._clock = clock
        self._unreachable_until = 0.0  # after a failed discovery, refuse at once until then

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            if self._clock() < self._unreachable_until:
                raise Unauthenticated("the identity provider cannot be reached just now")
            try:
                url = self.config.jwks_url or discover_jwks_url(self.config.issuer)
            except Unauthenticated:
                # Not again for a while: each request would otherwise wait on it in turn.
                self._unreachable_until = self._clock() + RETRY_DISCOVERY_S
                raise
            self._jwks = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=300, timeout=5)
        return self._jwks

    def verify(self, token: str) -> Person:
        try:
            # A token that is not even a JWT with a key id costs no trip to the issuer.
            if not jwt.get_unverified_header(token).get("kid"):
                raise Unauthenticated("the token names no signing key (kid)")
            key = self._client().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is not for this audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token is from another issuer") from None
        except jwt.PyJWKClientError:
            raise Unauthenticated("the token's signing key is not the issuer's") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid ({type(exc).__name__})") from None
        except jwt.PyJWTError as exc:  # the issuer's key set unusable, a key of no known kind
            raise Unauthenticated(
                f"the issuer's keys cannot be used ({type(exc).__name__})"
            ) from None
        subject = str(claims["sub"])
        if not subject.isprintable() or not 0 < len(subject) <= SUBJECT_MAX:
            raise Unauthenticated("the token's subject is not a usable identifier")
        return Person(
            issuer=str(claims["iss"]),
            subject=subject,
            name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
            roles=_roles(claims, self.config.roles_claim),
        )


def _roles(claims: Mapping[str, Any], path: str) -> frozenset[PersonRole]:
    found: Any = claims
    for part in path.split("."):
        found = found.get(part) if isinstance(found, Mapping) else None
    if isinstance(found, str):
        found = found.split()
    known = {r.value for r in PersonRole}
    return frozenset(PersonRole(r) for r in found or () if isinstance(r, str) and r in known)


def discover_jwks_url(issuer: str, fetch: Callable[[str], bytes] | None = None) -> str:
    """The ``jwks_uri`` of the issuer's OpenID configuration (OIDC Discovery 1.0)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        body = (fetch or _fetch)(url)
        document = json.loads(body)
        jwks_uri, named = document["jwks_uri"], document.get("issuer")
    except (OSError, ValueError, KeyError, TypeError):
        raise Unauthenticated("the identity provider's configuration cannot be read") from None
    if named != issuer:  # OIDC Discovery 1.0, 4.3: the document is the issuer's own
        raise Unauthenticated("the identity provider's configuration names another issuer")
    if not isinstance(jwks_uri, str) or not trusted_url(jwks_uri):
        raise Unauthenticated("the identity provider names no usable jwks_uri (https only)")
    return jwks_uri


def trusted_url(url: str) -> bool:
    """https, or http to a loopback address (a local identity provider)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname is not None and is_loopback(parts.hostname)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (http(s) only, above)
        body: bytes = answer.read(1024 * 1024)
        return body
