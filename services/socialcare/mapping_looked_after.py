"""Map a period of being looked after, started or ended, to canonical events. Pure.

Every event: ``child.personId`` -> ``subject.la_person_id``, ``child.nhsNumber`` ->
``subject.nhs_number``, ``child.upn`` -> ``subject.upn``; the directory's name of the
authority -> ``authority.name``; ``contact.*`` -> ``authority.contact.*``. A start also
carries ``child.firstName`` / ``lastName`` / ``dateOfBirth`` -> ``subject.given_name`` /
``family_name`` / ``date_of_birth``; an end carries ids only.

| native                 | canonical                                                |
| ---------------------- | -------------------------------------------------------- |
| episode.id             | episode.episode_id (both events)                         |
| episode.startDate      | episode.start_date                                       |
| episode.legalStatus    | episode.legal_status.code / .category (SSDA903 LS)       |
| episode.placementType  | episode.placement.code / .category (SSDA903 PLACE)       |
| episode.endDate        | episode.end_date (socialcare.looked_after.ended)         |
| episode.reasonEnded    | episode.reason_ended.code / .category (SSDA903 REC)      |

Where the child is placed has no field on either side: the native models refuse one and
the event schemas have none.
"""

from __future__ import annotations

from typing import Any

from services.backbone.errors import InputRejected
from services.socialcare.codes import ssda903
from services.socialcare.mapping_common import authority, drop_none, iso, not_before, subject
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted

LOOKED_AFTER_STARTED = "socialcare.looked_after.started"
LOOKED_AFTER_ENDED = "socialcare.looked_after.ended"


def ended_native_id(episode_id: str) -> str:
    """The ended event's native id: the same record as the start, so a suffix tells the two
    apart in the agency's own terms (the event id derives from it)."""
    return f"{episode_id}|ended"


def looked_after_started(native: LookedAfterStarted, *, authority_name: str) -> dict[str, Any]:
    """``socialcare.looked_after.started``: the legal status and the type of placement."""
    episode = native.episode
    return {
        "subject": subject(native.child, full=True),
        "episode": {
            "episode_id": episode.id,
            "start_date": episode.start_date.isoformat(),
            "legal_status": ssda903.LEGAL_STATUS.canonical(episode.legal_status),
            "placement": ssda903.PLACEMENT.canonical(episode.placement_type),
        },
        "authority": authority(authority_name, native.contact),
    }


def looked_after_ended(native: LookedAfterEnded, *, authority_name: str) -> dict[str, Any]:
    """``socialcare.looked_after.ended``. X1 (a new episode starts the same day) is refused:
    it changes the placement or legal status within a period of care, and telling an
    emergency department that care has ended when it has not would be wrong."""
    episode = native.episode
    if episode.reason_ended == ssda903.NEW_EPISODE_SAME_DAY:
        raise InputRejected(
            ["body", "episode", "reasonEnded"],
            "X1 does not end a period of care (the child is still looked after): send the "
            "end of the period of care only",
            "episode.reason_ended.not_an_end",
        )
    not_before(
        episode.end_date,
        episode.start_date,
        loc=["episode", "endDate"],
        what="a period of care cannot end before it started",
        rule="episode.dates.order",
    )
    return {
        "subject": subject(native.child, full=False),
        "episode": drop_none(
            {
                "episode_id": episode.id,
                "start_date": iso(episode.start_date),
                "end_date": episode.end_date.isoformat(),
                "reason_ended": ssda903.REASON_EPISODE_CEASED.canonical(episode.reason_ended),
            }
        ),
        "authority": authority(authority_name, native.contact),
    }
