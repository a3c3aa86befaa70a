"""The clients the development identity provider signs people in for (the Authorization
Code flow): ``clients.yaml`` in its directory, each client id with the redirect URIs it
registered. Clients are public (no secret): PKCE (S256) is what binds a code to its client.

A redirect URI in a request must equal a registered one exactly (OIDC Core 3.1.2.1), with
one exception for development, after RFC 8252 7.3: when a client registered an ``http``
loopback URI (127.0.0.1, ::1 or localhost), a request may name any port, and any of those
loopback hosts, with the same path and query. So a test or a console on a free port needs
only ``http://127.0.0.1/callback`` (or any port) registered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from services.backbone.errors import ConfigurationError
from services.backbone.hosts import is_loopback
from services.backbone.keyring import write_private
from services.backbone.people import trusted_url

CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,62}$")
FILE = "clients.yaml"


@dataclass(frozen=True)
class Client:
    client_id: str
    redirect_uris: tuple[str, ...]

    def allows(self, redirect_uri: str) -> bool:
        """Whether a request may name ``redirect_uri`` (the module's docstring says when)."""
        if redirect_uri in self.redirect_uris:
            return True
        asked = _loopback(redirect_uri)
        return asked is not None and any(_loopback(uri) == asked for uri in self.redirect_uris)


def _loopback(uri: str) -> tuple[str, str] | None:
    """The path and query of an ``http`` loopback URI (any port); None for any other."""
    try:
        parts = urlsplit(uri)
        _ = parts.port  # one that is not a number is a ValueError
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or not is_loopback(parts.hostname):
        return None
    if parts.fragment or parts.username is not None or parts.password is not None:
        return None
    return parts.path or "/", parts.query


def _usable(uri: str) -> bool:
    try:
        _ = urlsplit(uri).port
    except ValueError:
        return False
    return trusted_url(uri) and "#" not in uri


def load_clients(directory: Path) -> dict[str, Client]:
    """Every registered client of the provider in ``directory``, by client id."""
    path = directory / FILE
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return {
        str(client_id): Client(str(client_id), tuple(str(u) for u in uris or ()))
        for client_id, uris in (doc or {}).items()
    }


def register_client(directory: Path, client_id: str, redirect_uris: list[str]) -> Client:
    """Register ``client_id`` with exactly these redirect URIs (replacing any it had).

    Each must be absolute, without a fragment (OAuth 2.0, RFC 6749 3.1.2), and https, or
    http to a loopback address."""
    if not CLIENT_ID.match(client_id):
        raise ConfigurationError(
            "a client id is 2 to 63 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    if not redirect_uris:
        raise ConfigurationError("give the client at least one redirect URI")
    for uri in redirect_uris:
        if not _usable(uri):
            raise ConfigurationError(
                f"{uri!r} is not a usable redirect URI: https, or http to 127.0.0.1, ::1 or "
                "localhost, and no fragment"
            )
    client = Client(client_id, tuple(dict.fromkeys(redirect_uris)))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    rows = {c.client_id: list(c.redirect_uris) for c in load_clients(directory).values()}
    rows[client_id] = list(client.redirect_uris)
    write_private(directory / FILE, yaml.safe_dump(rows, sort_keys=True))
    return client
