"""Only children: the age rule every agency service applies before it accepts an event."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.agency.children import ADULT_AGE, CARE_LEAVERS_TO, NotAChild, age_on, check_child

ED = "health.unscheduled_care.attendance"
TODAY = date(2026, 12, 6)


def attendance(born: str | None, arrived: str = "2026-11-22T18:05:00Z") -> dict[str, Any]:
    subject = {"nhs_number": "9990000239"} | ({"date_of_birth": born} if born else {})
    return {"subject": subject, "attendance": {"arrival_time": arrived}}


@pytest.mark.parametrize(
    ("born", "child"),
    [
        ("1970-06-01", False),  # the published example's adult
        ("2008-11-22", False),  # 18 on the day of the attendance
        ("2008-11-23", True),  # 18 the day after
        ("2014-11-23", True),
        ("2027-01-10", True),  # born after the event: it was about an unborn child
        (None, True),  # no date of birth: not judged again
    ],
)
def test_a_subject_is_a_child_under_18_on_the_events_own_date(
    born: str | None, child: bool
) -> None:
    if child:
        check_child(ED, attendance(born), received=TODAY)
    else:
        with pytest.raises(NotAChild, match="not a child") as refused:
            check_child(ED, attendance(born), received=TODAY)
        assert born is None or born not in str(refused.value)  # names no value


def test_care_leavers_are_accepted_up_to_the_configured_age() -> None:
    data = {
        "subject": {"date_of_birth": "2002-01-01"},
        "episode": {"start_date": "2026-11-21"},
    }
    check_child("socialcare.looked_after.started", data, received=TODAY, oldest=CARE_LEAVERS_TO)
    with pytest.raises(NotAChild, match="care leaver under 25"):
        older = {**data, "subject": {"date_of_birth": "2001-11-20"}}
        check_child(
            "socialcare.looked_after.started", older, received=TODAY, oldest=CARE_LEAVERS_TO
        )
    with pytest.raises(NotAChild, match="under 18"):
        check_child("socialcare.looked_after.started", data, received=TODAY)


def test_an_unborn_child_is_a_child_whatever_else_is_given() -> None:
    plan = {
        "subject": {"date_of_birth": "1990-01-01"},  # a mother's, given by mistake
        "plan": {"start_date": "2026-11-02", "unborn": True},
    }
    check_child("socialcare.child_protection_plan.started", plan, received=TODAY)


def test_an_event_without_a_date_of_its_own_is_judged_on_the_day_it_arrives() -> None:
    concern = {"subject": {"date_of_birth": "2008-12-06"}, "attendance": {}}
    with pytest.raises(NotAChild):  # 18 today
        check_child("education.attendance.concern", concern, received=TODAY)
    check_child("education.attendance.concern", concern, received=TODAY - timedelta(days=1))


@given(st.dates(date(1900, 1, 1), date(2100, 1, 1)), st.integers(0, 120 * 366))
def test_age_is_the_number_of_birthdays_passed(born: date, days: int) -> None:
    on = born + timedelta(days=days)
    if on > date(2200, 1, 1):
        return
    birthdays = sum(1 for year in range(born.year + 1, on.year + 1) if _birthday(born, year) <= on)
    assert age_on(born, on) == birthdays
    assert (age_on(born, on) >= ADULT_AGE) == (on >= _birthday(born, born.year + ADULT_AGE))


def _birthday(born: date, year: int) -> date:
    """The birthday in ``year`` (29 February's on 1 March in other years)."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


def test_a_terms_attendance_is_judged_on_the_terms_first_day() -> None:
    concern = {
        "subject": {"date_of_birth": "2008-10-01"},  # 18 in October
        "attendance": {"period": {"start": "2026-09-03", "end": "2026-12-18"}},
    }
    check_child("education.attendance.concern", concern, received=TODAY)  # 17 on 3 September
