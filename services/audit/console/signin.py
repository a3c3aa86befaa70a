"""The console's side of OpenID Connect: the Authorization Code flow with PKCE (OIDC Core
3.1, RFC 7636 S256). The identity provider's endpoints come from its discovery document;
the ID token it returns is verified like every person's token (services/backbone/people.py:
signature by the issuer's keys, issuer, audience = this client, expiry), and must carry the
nonce this sign-in sent."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from services.audit.console.sessions import SignIn
from services.backbone.people import PeopleVerifier, Person, Unauthenticated, trusted_url

TIMEOUT_S = 10.0
ENDPOINTS_S = 300.0  # the discovery document is read again when this old


class SignInFailed(Exception):
    """The identity provider refused, could not be reached, or answered with something
    that is not a valid ID token for this sign-in (what, never a token or a claim)."""


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str | None = None  # a confidential client's; none: a public one (PKCE)


def challenge(verifier: str) -> str:
    """RFC 7636's S256 code challenge: BASE64URL(SHA-256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcSignIn:
    def __init__(self, people: PeopleVerifier, client: Client) -> None:
        self.people = people
        self.client = client
        self._endpoints: tuple[dict[str, Any], float] | None = None

    def _discovered(self) -> dict[str, Any]:
        held = self._endpoints
        if held is not None and time.monotonic() - held[1] < ENDPOINTS_S:
            return held[0]
        url = self.people.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            answer = httpx.get(url, timeout=TIMEOUT_S, follow_redirects=False)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(
                f"the identity provider's configuration cannot be read ({type(exc).__name__})"
            ) from None
        for name in ("authorization_endpoint", "token_endpoint"):
            value = document.get(name) if isinstance(document, dict) else None
            if not isinstance(value, str) or not trusted_url(value):
                raise SignInFailed(f"the identity provider names no usable {name}")
        found: dict[str, Any] = document
        self._endpoints = (found, time.monotonic())
        return found

    def authorization_url(self, sign_in: SignIn, redirect_uri: str) -> str:
        """Where to send the browser to sign in (blocking: it may read the discovery)."""
        endpoint = str(self._discovered()["authorization_endpoint"])
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile",
                "state": sign_in.state,
                "nonce": sign_in.nonce,
                "code_challenge": challenge(sign_in.verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def finish(self, sign_in: SignIn, code: str, redirect_uri: str) -> Person:
        """Exchange ``code`` for an ID token and verify it (blocking)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client.client_id,
            "code_verifier": sign_in.verifier,
        }
        auth = (
            (self.client.client_id, self.client.client_secret)
            if self.client.client_secret
            else None
        )
        endpoint = str(self._discovered()["token_endpoint"])
        try:
            answer = httpx.post(
                endpoint, data=form, auth=auth, timeout=TIMEOUT_S, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise SignInFailed(
                f"the identity provider cannot be reached ({type(exc).__name__})"
            ) from None
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise SignInFailed(
                f"the identity provider refused the sign-in ({answer.status_code}"
                f"{', ' + str(error)[:64] if isinstance(error, str) else ''})"
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the identity provider gave no ID token")
        try:
            return self.people.verify(id_token, nonce=sign_in.nonce)
        except Unauthenticated as exc:
            raise SignInFailed(f"the ID token is not valid: {exc}") from None
