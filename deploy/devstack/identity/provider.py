"""An identity provider for development and the demo: named users with roles, each signing
in as themselves with a short-lived OIDC-shaped JWT (EdDSA), and the JWKS that verifies them.

Kept in a directory (``<state>/identity``): ``signing.pem`` (0600), ``users.yaml`` (0600:
names, roles and scrypt hashes of passwords), ``issuer`` (the URL its server answers on),
``clients.yaml`` (clients.py) and ``starter-logins.txt`` (0600: the starter people's
passwords, for the demo to show). A person without a password (one added before passwords
were, or without one) has tokens from ``infoshare users token`` but cannot use the login page.
Production does not use this: the services point INFOSHARE_OIDC_ISSUER at the organisation's
identity provider instead.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.devstack.identity.clients import register_client
from deploy.devstack.identity.passwords import (
    PasswordError,
    hash_password,
    new_password,
    verify_password,
)
from services.backbone.errors import ConfigurationError
from services.backbone.keyring import write_private
from services.backbone.people import PersonRole

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
DEFAULT_TTL_S = 3600
AUDIENCE = "infoshare"


@dataclass(frozen=True)
class User:
    name: str  # the login, also the token's subject
    display_name: str
    roles: tuple[PersonRole, ...]


class DevIdentityProvider:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def issuer(self) -> str:
        try:
            return (self.directory / "issuer").read_text(encoding="utf-8").strip()
        except OSError:
            raise ConfigurationError(
                f"no identity provider in {self.directory}: start the stack (`infoshare up`)"
            ) from None

    def create(self, issuer: str) -> None:
        """Make the signing key (once) and record the issuer URL."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_file = self.directory / "signing.pem"
        if not key_file.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_private(key_file, pem.decode())
            write_private(self.directory / "kid", f"dev-{secrets.token_hex(4)}\n")
        write_private(self.directory / "issuer", issuer + "\n")

    def _key(self) -> tuple[str, Ed25519PrivateKey]:
        try:
            pem = (self.directory / "signing.pem").read_bytes()
            kid = (self.directory / "kid").read_text(encoding="utf-8").strip()
        except OSError:
            raise ConfigurationError(f"no identity provider in {self.directory}") from None
        key = serialization.load_pem_private_key(pem, None)
        assert isinstance(key, Ed25519PrivateKey)
        return kid, key

    def _rows(self) -> dict[str, dict[str, Any]]:
        path = self.directory / "users.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        return {str(name): dict(row) for name, row in (doc or {}).items()}

    def users(self) -> list[User]:
        return [_user(name, row) for name, row in self._rows().items()]

    def user(self, name: str) -> User | None:
        row = self._rows().get(name)
        return None if row is None else _user(name, row)

    def check_password(self, name: str, password: str) -> User | None:
        """The person ``name`` if ``password`` is theirs; None otherwise, at the same cost
        whether they exist, have a password, or not."""
        row = self._rows().get(name)
        stored = row.get("password_hash") if row is not None else None
        ok = verify_password(stored if isinstance(stored, str) else None, password)
        return _user(name, row) if ok and row is not None else None

    def add_user(
        self,
        name: str,
        roles: list[PersonRole],
        display_name: str | None,
        *,
        password: str | None = None,
    ) -> User:
        """Add a person, or change their roles and display name. ``password`` sets their
        login page password (kept as a hash only); None keeps the one they have, if any."""
        if not USER_NAME.match(name):
            raise ConfigurationError(
                "a user name is 2 to 63 lower-case letters, digits, '.', '_' or '-'"
            )
        if not roles:
            raise ConfigurationError("give the user at least one role")
        user = User(name, display_name or name, tuple(dict.fromkeys(roles)))
        rows = self._rows()
        row = _row(user)
        hashed = rows.get(name, {}).get("password_hash")
        if password is not None:
            try:
                hashed = hash_password(password)
            except PasswordError as exc:
                raise ConfigurationError(str(exc)) from None
        if hashed is not None:
            row["password_hash"] = hashed
        rows[name] = row
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.directory / "users.yaml", yaml.safe_dump(rows, sort_keys=True))
        return user

    def token(
        self,
        name: str,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        now: float | None = None,
        audience: str = AUDIENCE,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A JWT naming ``name`` (iss, aud, sub, name, roles, iat, exp, jti), signed EdDSA,
        with ``extra_claims`` added (an ID Token's nonce and auth_time); those never replace
        the claims above."""
        user = self.user(name)
        if user is None:
            raise ConfigurationError(f"no user {name!r} (add one: infoshare users add)")
        kid, key = self._key()
        issued = int(now if now is not None else time.time())
        claims = {
            **(extra_claims or {}),
            "iss": self.issuer,
            "aud": audience,
            "sub": user.name,
            "name": user.display_name,
            "roles": [r.value for r in user.roles],
            "iat": issued,
            "exp": issued + ttl_s,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        kid, key = self._key()
        public = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": kid, "use": "sig", "alg": "EdDSA"}]}

    def openid_configuration(self) -> dict[str, Any]:
        issuer = self.issuer
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks.json",
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "subject_types_supported": ["public"],
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": list(CLAIMS),
            "authorization_response_iss_parameter_supported": True,
        }


CLAIMS = ("iss", "aud", "sub", "name", "roles", "iat", "exp", "jti", "auth_time", "nonce")


def _user(name: str, row: Mapping[str, Any]) -> User:
    return User(name, str(row["display_name"]), tuple(PersonRole(r) for r in row["roles"]))


def _row(user: User) -> dict[str, Any]:
    return {"display_name": user.display_name, "roles": [r.value for r in user.roles]}


# The people a fresh local stack has, so the demo and the README's examples act as someone.
STARTER_PEOPLE = (
    ("asha.patel", "Asha Patel", (PersonRole.PRACTITIONER,)),
    ("sam.okafor", "Sam Okafor", (PersonRole.IG_OFFICER,)),
)
PRACTITIONER, IG_OFFICER = (name for name, _, _ in STARTER_PEOPLE)


STARTER_LOGINS = "starter-logins.txt"
# The IG console (the audit service's /console) as a client of this provider: a redirect back
# to it on loopback, on whatever port the audit service listens (clients.py's loopback rule).
CONSOLE_CLIENT = "infoshare-ig-console"
CONSOLE_REDIRECTS = ["http://127.0.0.1/console/callback", "http://localhost/console/callback"]


def ensure_provider(directory: Path, issuer: str) -> DevIdentityProvider:
    """The provider in ``directory``, answering as ``issuer``, with the starter people and
    the IG console registered as a client. A starter person made here, or found without a
    password, is given a random one, written to ``starter-logins.txt`` (0600) for
    ``starter_logins`` to read."""
    provider = DevIdentityProvider(directory)
    provider.create(issuer)
    rows = provider._rows()
    logins = starter_logins(directory)
    for name, display_name, roles in STARTER_PEOPLE:
        if name in rows and "password_hash" in rows[name]:
            continue
        logins[name] = new_password()
        row = rows.get(name)
        if row is None:
            provider.add_user(name, list(roles), display_name, password=logins[name])
        else:
            user = _user(name, row)
            provider.add_user(name, list(user.roles), user.display_name, password=logins[name])
    text = "".join(f"{name} {password}\n" for name, password in logins.items())
    write_private(directory / STARTER_LOGINS, text)
    register_client(directory, CONSOLE_CLIENT, CONSOLE_REDIRECTS)
    return provider


def starter_logins(directory: Path) -> dict[str, str]:
    """The starter people's logins, user name to password, as ``ensure_provider`` made them
    (empty when it has not run in ``directory``). Development and the demo only."""
    try:
        text = (directory / STARTER_LOGINS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    pairs = (line.split(" ", 1) for line in text.splitlines() if " " in line)
    return {name: password for name, password in pairs}
