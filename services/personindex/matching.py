"""The person index's matching rules, pure (no I/O): which person an agency's record is
about, given the identifiers it carries and the links the index holds.

The rules, in order (docs/person-index.md says why):

1. **Identifiers.** An NHS number, a UPN or an authority's person id (``la:<agency>:<id>``)
   already linked to a person names that person. These are *strong* keys.
2. **Never two people.** If a record's strong keys name two different people, nothing is
   linked and the record is flagged for review (``Conflict``): a mistyped number must not
   merge two children's histories.
3. **Demographics, only without identifiers.** If no strong key is linked yet, an exact
   match on all of normalised family name, given name, date of birth and postcode names the
   person linked to those demographics. That match is reported (``by="demographics"``) so
   a person can check it; a partial match never counts.
4. **Otherwise a new person.** Every key of the record is linked to them. A record with no
   valid identifier and no demographics names nobody (``Unidentified``): it makes no one.
5. **Links never move.** A key linked to one person is never relinked to another; a
   demographic key that points elsewhere is left as it is and the disagreement flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from services.backbone.identifiers import (
    la_person_identifier,
    nhs_number_problem,
    normalise_nhs_number,
    upn_identifier,
    upn_problem,
)


@dataclass(frozen=True)
class Demographics:
    family_name: str
    given_name: str
    birth_date: date
    postcode: str

    def key(self) -> str:
        """Exact after normalisation: case, accents, spaces and punctuation do not count."""
        return "demo:" + "|".join(
            (
                _letters(self.family_name),
                _letters(self.given_name),
                self.birth_date.isoformat(),
                re.sub(r"\s", "", self.postcode).upper(),
            )
        )


def _letters(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).casefold()
    return "".join(c for c in folded if c.isalpha())


@dataclass(frozen=True)
class Presented:
    """What one agency record says about who the child is."""

    nhs_number: str | None = None
    upn: str | None = None
    la_person: tuple[str, str] | None = None  # (authority agency id, its person id)
    demographics: Demographics | None = None

    def strong_keys(self) -> list[str]:
        """The valid identifiers, canonical (an invalid one is the caller's 422, not ours)."""
        keys = []
        if self.nhs_number and nhs_number_problem(self.nhs_number) is None:
            keys.append("nhs:" + normalise_nhs_number(self.nhs_number))
        if self.upn and upn_problem(self.upn) is None:
            keys.append(upn_identifier(self.upn))
        if self.la_person and self.la_person[1].strip():
            keys.append(la_person_identifier(*self.la_person))
        return keys


@dataclass(frozen=True)
class Resolved:
    person: str
    by: str  # "identifier" | "demographics" | "new"
    new_links: tuple[str, ...]  # keys to link to ``person``
    review: str | None = None  # why a person should look at it, though it was resolved


@dataclass(frozen=True)
class Conflict:
    persons: tuple[str, ...]
    reason: str
    keys: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Unidentified:
    reason: str = "the record carries no valid identifier and no demographics"


def resolve(
    presented: Presented, person_of: Mapping[str, str], new_person: Callable[[], str]
) -> Resolved | Conflict | Unidentified:
    """Apply the rules to ``presented`` against the index's links (``person_of``: key to
    person). Pure: the caller stores ``new_links`` (or the conflict) in one transaction."""
    strong = presented.strong_keys()
    demo = presented.demographics.key() if presented.demographics else None
    if not strong and demo is None:
        return Unidentified()
    named = sorted({person_of[k] for k in strong if k in person_of})
    if len(named) > 1:
        return Conflict(
            tuple(named),
            "the record's identifiers are linked to different people",
            tuple(k for k in strong if k in person_of),
        )
    if named:
        person, by = named[0], "identifier"
    elif demo is not None and demo in person_of:
        person, by = person_of[demo], "demographics"
    else:
        person, by = new_person(), "new"
    links = [k for k in strong if k not in person_of]
    review = None
    if demo is not None:
        if demo not in person_of:
            links.append(demo)
        elif person_of[demo] != person:
            review = "the same demographics are linked to another person"
    if by == "demographics" and strong:
        review = review or "identifiers linked on a demographic match"
    return Resolved(person, by, tuple(links), review)
