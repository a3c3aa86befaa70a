"""People for tests: the embedded identity provider served on a port of the worker's own,
so the services under test verify real tokens against a real JWKS over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.devstack.identity.provider import IG_OFFICER, PRACTITIONER, DevIdentityProvider

__all__ = ["IG_OFFICER", "PRACTITIONER", "People"]


@dataclass(frozen=True)
class People:
    issuer: str
    provider: DevIdentityProvider

    def token(self, name: str) -> str:
        return self.provider.token(name)

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}


def of_stack(state_dir: Path, issuer: str) -> People:
    """The people of a running stack (its state directory's identity provider)."""
    return People(issuer, DevIdentityProvider(state_dir / "identity"))


IG = f"person:{IG_OFFICER}"
OFFICER = "Sam Okafor <sam.okafor>"  # the starter IG officer, as records name them
PRACTITIONER_ACTOR = "Asha Patel <asha.patel>"  # the starter practitioner
PERSON_PRACTITIONER = f"person:{PRACTITIONER}"


def stack_token(state_dir: Path, credentials: str) -> str:
    """A bearer token on a running stack: a person's (``person:<login>``, from its identity
    provider) or an agency's (a token file under the state directory)."""
    if credentials.startswith("person:"):
        provider = DevIdentityProvider(state_dir / "identity")
        return provider.token(credentials.removeprefix("person:"), ttl_s=600)
    return (state_dir / credentials).read_text().strip()
