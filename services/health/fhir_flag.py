"""A safeguarding Flag to the canonical ``health.safeguarding.concern``.

| FHIR Flag                                                | canonical                            |
| -------------------------------------------------------- | ------------------------------------ |
| subject (see fhir_patient)                               | subject.*                            |
| id (or the entry's fullUrl)                              | concern.flag_id                      |
| code.coding[SNOMED CT, a listed safeguarding concept]    | concern.code {system, code, display} |
| (that concept, fhir_codes.SAFEGUARDING_CONCEPTS)         | concern.category, concern.unborn     |
| code.text, else the coding's display                     | concern.summary                      |
| period.start (the date part, in its own offset)          | concern.start_date                   |
| author: ODS identifier, or the Organization it references | concern.raised_by {ods_code, name}  |

Only an ``active`` Flag is published. An ``inactive`` or ``entered-in-error`` Flag is
refused with 422 ``flag.status`` rather than ignored, so the sender knows nothing was
shared (there is no event yet for a concern withdrawn). A Flag whose code names no listed
safeguarding concept is refused (``flag.code``): a health alert that is not a
safeguarding concern must never reach a local authority as one. Flag.category (safety,
clinical, ...) is not used.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.backbone.errors import InputRejected
from services.health.fhir_bundle import Located, References, native_id, short_id
from services.health.fhir_codes import SAFEGUARDING_CONCEPTS, SAFEGUARDING_CONCERN, SNOMED
from services.health.fhir_encounter import ods_code
from services.health.fhir_parse import Mapped, body_loc
from services.health.fhir_patient import subject_of

SUMMARY_MAX = 2000


def _status(flag: Located) -> None:
    if flag.resource.status != "active":
        raise InputRejected(
            body_loc(*flag.loc, "status"),
            "only an active Flag is a safeguarding concern to share (Flag.status active)",
            "flag.status",
        )


def _concept(flag: Located) -> tuple[str, Any]:
    for coding in flag.resource.code.coding or []:
        if coding.system == SNOMED and coding.code in SAFEGUARDING_CONCEPTS:
            return str(coding.code), coding
    raise InputRejected(
        body_loc(*flag.loc, "code", "coding"),
        "Flag.code needs a SNOMED CT safeguarding concept from the documented list",
        "flag.code",
    )


def _start(flag: Located) -> str:
    period = flag.resource.period
    start = period.start if period else None
    if isinstance(start, datetime):
        return start.date().isoformat()
    if isinstance(start, date):
        return start.isoformat()
    raise InputRejected(
        body_loc(*flag.loc, "period", "start"),
        "Flag.period.start (when the concern was raised) must be a full date or date and time",
        "flag.period",
    )


def safeguarding_concern(flag: Located, refs: References) -> Mapped:
    """The concern an active safeguarding Flag raises, or InputRejected naming the rule."""
    _status(flag)
    code, coding = _concept(flag)
    known = SAFEGUARDING_CONCEPTS[code]
    start = _start(flag)
    resource = flag.resource
    subject = subject_of(
        resource.subject, owner=flag, refs=refs, element=("subject",), rule="flag.subject"
    )
    key = native_id(flag)
    display = coding.display or known.display
    summary = resource.code.text or display
    if len(summary) > SUMMARY_MAX:
        raise InputRejected(
            body_loc(*flag.loc, "code", "text"),
            f"Flag.code.text is the concern's summary: at most {SUMMARY_MAX} characters",
            "flag.summary",
        )
    concern: dict[str, Any] = {
        "flag_id": short_id(flag),
        "category": known.category,
        "unborn": known.unborn,
        "start_date": start,
        "code": {"system": SNOMED, "code": code, "display": display},
        "summary": summary,
    }
    raised_by = ods_code(resource.author, owner=flag, refs=refs)
    if raised_by is not None:
        concern["raised_by"] = {"ods_code": raised_by[0], "name": raised_by[1]}
    return Mapped(SAFEGUARDING_CONCERN, {"subject": subject, "concern": concern}, key)
