"""An authorization request (OIDC Core 3.1.2.1, PKCE per RFC 7636), checked: who asks (a
registered client and one of its redirect URIs) first, since until both are known good an
error must not be sent anywhere (3.1.2.6); then the rest, whose errors go back to the
client at its redirect URI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from deploy.devstack.identity.clients import Client
from deploy.devstack.identity.codes import PKCE_VALUE

# The parameters carried through the login form, in its hidden fields.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)
MAX_VALUE = 2048  # characters of state, nonce or scope a request may carry
MAX_FORM_BYTES = 64 * 1024


class UnknownClient(Exception):
    """No registered client, or a redirect URI it did not register: answered with a page."""


class RedirectedError(Exception):
    """An error the client hears at its redirect URI (RFC 6749 4.1.2.1)."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None):
        super().__init__(error, description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str

    def hidden_fields(self) -> dict[str, str]:
        """The request as the login form carries it."""
        fields = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        return {k: v for k, v in fields.items() if v is not None}


def single_values(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """Parameters by name, and the names given more than once (RFC 6749 3.1: an error)."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name in values:
            repeated.add(name)
        values[name] = value
    return values, repeated


def form_pairs(body: bytes) -> list[tuple[str, str]] | None:
    """The fields of an application/x-www-form-urlencoded body; None when it is not one."""
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except ValueError:  # not UTF-8, or too many fields
        return None


def parse(pairs: Iterable[tuple[str, str]], clients: Mapping[str, Client]) -> AuthorizationRequest:
    """The authorization request ``pairs`` make; UnknownClient or RedirectedError if none."""
    values, repeated = single_values(pairs)
    client = clients.get(values.get("client_id", ""))
    if client is None or "client_id" in repeated:
        raise UnknownClient("The application asking is not a client this provider knows.")
    redirect_uri = values.get("redirect_uri", "")
    if "redirect_uri" in repeated or not client.allows(redirect_uri):
        raise UnknownClient("The address to return to is not one this application registered.")
    state = None if "state" in repeated else values.get("state")

    def refuse(error: str, description: str) -> RedirectedError:
        return RedirectedError(error, description, redirect_uri, state)

    if repeated & set(CARRIED):
        raise refuse("invalid_request", f"{sorted(repeated)[0]} is given more than once")
    if any(len(values.get(n, "")) > MAX_VALUE for n in ("state", "nonce", "scope")):
        raise refuse("invalid_request", "a parameter is too long")
    response_type = values.get("response_type")
    if not response_type:
        raise refuse("invalid_request", "response_type is missing")
    if response_type != "code":
        raise refuse("unsupported_response_type", "only the code flow (response_type=code)")
    scope = values.get("scope", "")
    if "openid" not in scope.split():
        raise refuse("invalid_scope", "the scope must include openid")
    if values.get("response_mode", "query") != "query":
        raise refuse("invalid_request", "only response_mode=query")
    if values.get("code_challenge_method") != "S256" or "code_challenge" not in values:
        raise refuse("invalid_request", "PKCE is required: code_challenge_method=S256")
    challenge = values["code_challenge"]
    if len(challenge) != 43 or not PKCE_VALUE.match(challenge):
        raise refuse("invalid_request", "code_challenge is not an S256 challenge")
    if "none" in values.get("prompt", "").split():
        raise refuse("login_required", "no one is signed in here")  # no sessions are kept
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=values.get("nonce"),
        code_challenge=challenge,
    )


def redirect_to(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """``redirect_uri`` with ``params`` added to any query it has (OAuth 2.0 3.1.2)."""
    parts = urlsplit(redirect_uri)
    added = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))
