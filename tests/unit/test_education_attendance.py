"""Which attendance gives concern: the threshold (DfE persistent absence by default), the
absence levels, and the figures derived from the sessions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.education import attendance
from services.education.attendance_csv import parse_attendance
from services.education.native import AttendanceConcern
from tests.unit.education_samples import AUTUMN, SCHOOL, sample, sample_json


def concern(possible: int, authorised: int, unauthorised: int = 0) -> AttendanceConcern:
    doc: dict[str, Any] = copy.deepcopy(sample_json("attendance-concern.json"))
    doc |= {
        "possibleSessions": possible,
        "authorisedAbsences": authorised,
        "unauthorisedAbsences": unauthorised,
        "absenceCodes": [],
    }
    del doc["attendancePercentage"]
    return AttendanceConcern.model_validate(doc)


def concerns_in_sample(threshold: float) -> list[str]:
    rows = parse_attendance(sample("attendance.csv"), school=SCHOOL, period=AUTUMN)
    return [
        r.concern.pupil.forename or ""
        for r in rows
        if attendance.is_concern(r.concern, threshold=threshold)
    ]


def test_the_default_threshold_is_dfe_persistent_absence() -> None:
    assert attendance.DEFAULT_THRESHOLD == 90.0
    # Ollie (97.3%) attends well; Sam joined after the period (no possible session);
    # Rowan is at exactly 90.0%: missing 10% of sessions is persistent absence.
    assert concerns_in_sample(90.0) == ["Maisie", "Ruby", "Zoë", "Rowan"]


@pytest.mark.parametrize(
    ("threshold", "names"),
    [
        (50.0, ["Ruby"]),
        # compared on the sessions, not the rounded figure: Maisie's 88.5% is 131/148, 88.51%
        (88.5, ["Ruby"]),
        (88.6, ["Maisie", "Ruby"]),
        (89.9, ["Maisie", "Ruby", "Zoë"]),  # Zoë: 133/148, 89.86%
        (95.0, ["Maisie", "Ruby", "Zoë", "Rowan"]),
        (100.0, ["Maisie", "Ollie", "Ruby", "Zoë", "Rowan"]),
    ],
)
def test_a_threshold_per_upload(threshold: float, names: list[str]) -> None:
    assert concerns_in_sample(threshold) == names


@pytest.mark.parametrize(
    ("possible", "missed", "level", "percentage"),
    [
        (148, 14, "not_persistent", 90.5),
        (140, 14, "persistent", 90.0),
        (148, 17, "persistent", 88.5),
        (148, 73, "persistent", 50.7),
        (148, 74, "severe", 50.0),
        (148, 148, "severe", 0.0),
        (1, 0, "not_persistent", 100.0),
    ],
)
def test_absence_levels_and_percentage(
    possible: int, missed: int, level: str, percentage: float
) -> None:
    c = concern(possible, missed)
    assert attendance.absence_level(c) == level
    assert attendance.attendance_percentage(c) == percentage
    assert attendance.sessions_missed(c) == missed


def test_sessions_missed_counts_authorised_and_unauthorised() -> None:
    c = concern(148, 9, 8)
    assert attendance.sessions_missed(c) == 17
    assert attendance.is_concern(c)


def test_no_possible_session_never_gives_concern() -> None:
    c = concern(0, 0)
    assert not attendance.is_concern(c, threshold=100.0)
    assert attendance.absence_level(c) == "not_persistent"


@given(st.integers(1, 1000).flatmap(lambda p: st.tuples(st.just(p), st.integers(0, p))))
def test_at_the_default_threshold_a_concern_is_exactly_persistent_absence(
    sessions: tuple[int, int],
) -> None:
    """Exact on session counts, never fooled by floating point at the 90% line."""
    possible, missed = sessions
    c = concern(possible, missed)
    persistent = missed * 10 >= possible
    assert attendance.is_concern(c) is persistent
    assert (attendance.absence_level(c) != "not_persistent") is persistent
