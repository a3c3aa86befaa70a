"""Named people: practitioners and IG officers prove who they are with an OIDC bearer JWT
from the organisation's identity provider, verified against its published keys (JWKS).

Checked on every request: the signature (asymmetric algorithms only, so a token signed with
the JWKS as an HMAC secret is refused), the issuer, the audience, the expiry (and
not-before), and a subject. What a person may do comes from the roles claim. The
embedded default (``infoshare users``, deploy/devstack/identity) is an identity provider of
this shape for development; production points INFOSHARE_OIDC_ISSUER at the organisation's.

The issuer's key set is kept and fetched again when it is five minutes old
(``JWKS_LIFESPAN_S``) or a token names a key id it lacks, no more often than every 30 s
(``RETRY_DISCOVERY_S``). When the issuer cannot be reached (no connection, a timeout, an
answer other than 200), the keys it last gave are still used, for at most an hour past their
five minutes (``STALE_JWKS_S``), so a short outage of the identity provider does not lock
everyone out; after that tokens are refused until it answers. An answer it does give is
believed, even one without usable keys (keys withdrawn are withdrawn at once).

A token, a claim value or a name never reaches a log: a refusal says which check failed.
"""

from __future__ import annotations

import hmac
import http.client
import json
import logging
import threading
import time
import urllib.error
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
RETRY_DISCOVERY_S = 30.0  # the issuer is asked no more often: when down, or for a new kid
JWKS_LIFESPAN_S = 300.0  # the issuer's key set is fetched again when this old
STALE_JWKS_S = 3600.0  # and, while the issuer cannot be reached, still used this much longer

log = logging.getLogger(__name__)


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
    event loop. How the issuer's keys are kept: the module's docstring."""

    def __init__(
        self,
        config: PeopleConfig,
        *,
        fetch: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._fetch = fetch  # None: _fetch, over the network
        self._clock = clock
        self._jwks_url = config.jwks_url  # None until discovered
        self._held: tuple[jwt.PyJWKSet, float] | None = None  # last key set, when fetched
        self._refusal = "the identity provider cannot be reached just now"  # while none held
        self._ask_after = float("-inf")  # the issuer is not asked again before this
        self._asking = threading.Lock()  # one request asks the issuer at a time

    def _key(self, kid: str) -> jwt.PyJWK:
        """The issuer's signing key ``kid``, from the key set held, fetched again first when
        that is due (none, too old, or without ``kid``) and the issuer may be asked."""
        held = self._held
        if held is None or self._clock() - held[1] >= JWKS_LIFESPAN_S or not _named(held[0], kid):
            # While another request asks, this one verifies with the keys held meanwhile, or
            # waits for the answer when none are held.
            if self._asking.acquire(blocking=held is None):
                try:
                    if self._clock() >= self._ask_after:
                        self._refresh()
                finally:
                    self._asking.release()
            held = self._held
        if held is None:
            raise Unauthenticated(self._refusal)
        if self._clock() - held[1] >= JWKS_LIFESPAN_S + STALE_JWKS_S:
            raise Unauthenticated("the identity provider cannot be reached just now")
        key = _named(held[0], kid)
        if key is None:
            raise Unauthenticated("the token's signing key is not the issuer's")
        return key

    def _refresh(self) -> None:
        """Ask the issuer for its key set (discovering where, the first time). When it cannot
        be reached, the set held stays, for its stale time; an answer it gives replaces it."""
        now = self._clock()
        self._ask_after = now + RETRY_DISCOVERY_S
        try:
            if self._jwks_url is None:
                self._jwks_url = discover_jwks_url(self.config.issuer, self._fetch)
            body = (self._fetch or _fetch)(self._jwks_url)
        except Unauthenticated as exc:  # no usable OpenID configuration (so no keys held yet)
            log.warning("the identity provider's keys cannot be found: %s", exc)
            self._refusal = str(exc)
            return
        except (OSError, http.client.HTTPException) as exc:  # down, a timeout, not a 200
            if self._held is None:
                log.warning("the identity provider cannot be reached (%s)", type(exc).__name__)
                self._refusal = "the identity provider cannot be reached just now"
            else:
                left = self._held[1] + JWKS_LIFESPAN_S + STALE_JWKS_S - now
                log.warning(
                    "the identity provider cannot be reached (%s): the keys it last gave are"
                    " used for %d s more",
                    type(exc).__name__,
                    max(0, left),
                )
            return
        try:
            document = json.loads(body)
            keys = jwt.PyJWKSet.from_dict(document if isinstance(document, dict) else {})
        except (ValueError, TypeError, KeyError, jwt.PyJWTError) as exc:
            log.warning("the identity provider's key set cannot be used (%s)", type(exc).__name__)
            self._held = None  # the issuer's own answer: keys it no longer gives are not used
            self._refusal = f"the issuer's keys cannot be used ({type(exc).__name__})"
            return
        self._held = (keys, now)

    def verify(self, token: str, *, nonce: str | None = None) -> Person:
        """The person ``token`` names. With ``nonce`` (an ID token from a sign-in this
        service began), the token must carry that nonce too (OIDC Core 3.1.3.7)."""
        try:
            # A token that is not even a JWT with a key id costs no trip to the issuer.
            kid = jwt.get_unverified_header(token).get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthenticated("the token names no signing key (kid)")
            key = self._key(kid)
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
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid ({type(exc).__name__})") from None
        except jwt.PyJWTError as exc:  # the issuer's key set unusable, a key of no known kind
            raise Unauthenticated(
                f"the issuer's keys cannot be used ({type(exc).__name__})"
            ) from None
        given = str(claims.get("nonce", "")).encode()
        if nonce is not None and not hmac.compare_digest(given, nonce.encode()):
            raise Unauthenticated("the token is not from this sign-in (nonce)")
        subject = str(claims["sub"])
        if not subject.isprintable() or not 0 < len(subject) <= SUBJECT_MAX:
            raise Unauthenticated("the token's subject is not a usable identifier")
        return Person(
            issuer=str(claims["iss"]),
            subject=subject,
            name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
            roles=_roles(claims, self.config.roles_claim),
        )


def _named(keys: jwt.PyJWKSet, kid: str) -> jwt.PyJWK | None:
    """The key ``kid`` of the set, if it is one for signatures."""
    return next(
        (k for k in keys.keys if k.key_id == kid and k.public_key_use in ("sig", None)), None
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # a redirect is an answer other than 200: the URL's own body or nothing


_opener = urllib.request.build_opener(_NoRedirect)


def _fetch(url: str) -> bytes:
    """The body at ``url`` (a 200 answer, up to 1 MiB); OSError when there is none."""
    try:
        with _opener.open(url, timeout=5) as answer:  # http(s) only, above
            body: bytes = answer.read(1024 * 1024)
            return body
    except urllib.error.HTTPError as exc:  # an OSError, holding the answer open
        exc.close()
        raise
