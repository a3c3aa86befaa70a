"""An identity provider for development and the demo: named users with roles, each signing
in as themselves with a short-lived OIDC-shaped JWT (EdDSA), and the JWKS that verifies them.

Kept in a directory (``<state>/identity``): ``signing.pem`` (0600), ``users.yaml`` and
``issuer`` (the URL its server answers on). Production does not use this: the services
point INFOSHARE_OIDC_ISSUER at the organisation's identity provider instead.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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

    def users(self) -> list[User]:
        path = self.directory / "users.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        return [
            User(name, str(row["display_name"]), tuple(PersonRole(r) for r in row["roles"]))
            for name, row in (doc or {}).items()
        ]

    def add_user(self, name: str, roles: list[PersonRole], display_name: str | None) -> User:
        if not USER_NAME.match(name):
            raise ConfigurationError(
                "a user name is 2 to 63 lower-case letters, digits, '.', '_' or '-'"
            )
        if not roles:
            raise ConfigurationError("give the user at least one role")
        user = User(name, display_name or name, tuple(dict.fromkeys(roles)))
        rows = {u.name: _row(u) for u in self.users()}
        rows[name] = _row(user)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.directory / "users.yaml", yaml.safe_dump(rows, sort_keys=True))
        return user

    def token(self, name: str, *, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
        user = next((u for u in self.users() if u.name == name), None)
        if user is None:
            raise ConfigurationError(f"no user {name!r} (add one: infoshare users add)")
        kid, key = self._key()
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
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
            "response_types_supported": ["id_token"],
        }


def _row(user: User) -> dict[str, Any]:
    return {"display_name": user.display_name, "roles": [r.value for r in user.roles]}


# The people a fresh local stack has, so the demo and the README's examples act as someone.
STARTER_PEOPLE = (
    ("asha.patel", "Asha Patel", (PersonRole.PRACTITIONER,)),
    ("sam.okafor", "Sam Okafor", (PersonRole.IG_OFFICER,)),
)
PRACTITIONER, IG_OFFICER = (name for name, _, _ in STARTER_PEOPLE)


def ensure_provider(directory: Path, issuer: str) -> DevIdentityProvider:
    """The provider in ``directory``, answering as ``issuer``, with the starter people."""
    provider = DevIdentityProvider(directory)
    provider.create(issuer)
    known = {u.name for u in provider.users()}
    for name, display_name, roles in STARTER_PEOPLE:
        if name not in known:
            provider.add_user(name, list(roles), display_name)
    return provider
