"""A school's CSV export to the events it makes, as one pure function per export: parsed,
checked and mapped where the service runs it, in a worker process for a large upload
(services/backbone/offload.py). What comes back is plain data: the events' JSON-ready dicts
cost a tenth of the parsed rows' models to send from a worker."""

from __future__ import annotations

from dataclasses import dataclass

from services.agency.submission import Outgoing
from services.education import attendance, mapping
from services.education.attendance_csv import parse_attendance
from services.education.exclusions_csv import parse_exclusions
from services.education.native import Period, School


@dataclass(frozen=True)
class UploadEvents:
    rows_read: int
    events: list[Outgoing]


def attendance_events(
    body: bytes, *, school: School, period: Period, threshold: float, school_name: str
) -> UploadEvents:
    """An attendance export's rows, and an attendance concern for each at or below
    ``threshold``; InputRejected naming the first row that cannot be read."""
    rows = parse_attendance(body, school=school, period=period)
    concerns = [r.concern for r in rows if attendance.is_concern(r.concern, threshold=threshold)]
    return UploadEvents(
        len(rows),
        [
            Outgoing(
                mapping.ATTENDANCE_CONCERN,
                mapping.attendance_concern(c, school_name=school_name),
                mapping.attendance_native_id(c),
            )
            for c in concerns
        ],
    )


def exclusion_events(body: bytes, *, school: School, school_name: str) -> UploadEvents:
    """An exclusions export's rows, each an exclusion recorded."""
    rows = parse_exclusions(body, school=school)
    return UploadEvents(
        len(rows),
        [
            Outgoing(
                mapping.EXCLUSION_RECORDED,
                mapping.exclusion_recorded(r.record, school_name=school_name),
                mapping.exclusion_native_id(r.record),
            )
            for r in rows
        ],
    )
