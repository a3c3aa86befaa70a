"""Only children: infoshare shares about children, so an agency service refuses an event
about a subject who was not a child on the event's date (pure: canonical event data in, a
refusal or nothing out).

- A child is under ``ADULT_AGE`` (18) on the event's date: the attendance's arrival, the
  plan's start, the concern's date, each event type's own (``EVENT_DATES``).
- Social care may share about care leavers up to a configured age (``care_leavers_to``,
  25 by default for social care services; settings say it).
- An unborn child is a child: a pre-birth concern or plan (``unborn``), or a date of birth
  after the event's date.
- An event that carries no date of birth (a plan ending, a case closing) is about a child
  an earlier event named, and is not judged again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

ADULT_AGE = 18
CARE_LEAVERS_TO = 25  # the Children and Social Work Act 2017: support up to 25

# The field holding each event type's own date (the first one present is used).
EVENT_DATES: Mapping[str, tuple[str, ...]] = {
    "health.unscheduled_care.attendance": ("attendance.arrival_time",),
    "health.appointment.was_not_brought": ("appointment.date",),
    "health.safeguarding.concern": ("concern.start_date",),
    "education.attendance.concern": ("attendance.period.start",),
    "education.exclusion.recorded": ("exclusion.start_date",),
    "education.missing_education.reported": (
        "missing_education.reported_date",
        "missing_education.last_seen_date",
    ),
    "education.safeguarding.concern": ("concern.date",),
    "socialcare.child_protection_plan.started": ("plan.start_date",),
    "socialcare.looked_after.started": ("episode.start_date",),
    "socialcare.assessment.completed": ("assessment.start_date", "assessment.completion_date"),
    "socialcare.referral.received": ("referral.received_date",),
}
UNBORN_FLAGS = ("plan.unborn", "concern.unborn")


class NotAChild(ValueError):
    """The subject was not a child on the event's date (the message names no value)."""


def check_child(
    event_type: str, data: Mapping[str, Any], *, received: date, oldest: int = ADULT_AGE
) -> None:
    """Raise NotAChild if ``data``'s subject was ``oldest`` or older on the event's date
    (``received`` where the event has no date of its own: a term's attendance figures)."""
    if any(_at(data, flag) is True for flag in UNBORN_FLAGS):
        return
    born = _day(_at(data, "subject.date_of_birth"))
    if born is None:
        return
    on = next(
        (d for d in (_day(_at(data, path)) for path in EVENT_DATES.get(event_type, ())) if d),
        received,
    )
    if born > on:  # not yet born on the event's date: unborn
        return
    if age_on(born, on) >= oldest:
        under = f"under {oldest}" if oldest == ADULT_AGE else f"a care leaver under {oldest}"
        raise NotAChild(
            f"infoshare shares about children: the subject was not a child ({under}) on the "
            "event's date"
        )


def age_on(born: date, on: date) -> int:
    """Whole years from ``born`` to ``on`` (a 29 February birthday comes on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _at(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _day(value: Any) -> date | None:
    """A date from a schema's date or date-time string (validated before this is asked)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
