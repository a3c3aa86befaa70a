"""Who reads the audit trail: an IG officer, signed in as themselves, sees every decision;
an agency, with its API token, sees the decisions about the data it published and nothing
else."""

from __future__ import annotations

from dataclasses import dataclass

from services.backbone.keyring import Keyring
from services.backbone.people import PeopleVerifier, PersonRole
from services.backbone.people_http import person_of


@dataclass(frozen=True)
class Reader:
    actor: str
    agency: str | None  # None: an IG officer, across agencies


def reader(authorization: str | None, keyring: Keyring, people: PeopleVerifier | None) -> Reader:
    """The agency an API token belongs to, or the IG officer a person's token names; else
    401 (403 for a person who is not an IG officer)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token:
        agency = keyring.agency(token)
        if agency is not None:
            return Reader(f"agency:{agency}", agency)
    officer = person_of(people, authorization, PersonRole.IG_OFFICER)
    return Reader(f"ig-officer:{officer.actor}"[:128], None)
