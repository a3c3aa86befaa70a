"""A transparency report: what the audit trail says was shared, withheld or suppressed, with
whom, under which protocol and why, over a period, in counts fit to publish. Pure: counted
rows in, a report of published figures out.

A row is a group of records and how many (``n``; a record's own row counts 1), with only
these keys read: decision, action, reason_code, protocol_id, protocol_version, purpose,
source_agency, recipient and, for a safeguarding override, ``review`` (the reason code of
its review record, None while it waits for one). Nothing else a row holds is looked at, so
no subject key, audit id, person or free-text reason can reach the report.

Small-cell suppression: a count from 1 to ``min_count - 1`` is published as a small count
(``<5``). A total is published exactly only when none of its parts is small, else not at
all: parts are 0 or at least ``min_count``, so what is published is a function of what the
published cells show, and no small count can be worked out by subtraction. The sections
count disjoint sets of records, so one section cannot be subtracted from another either.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

# As in services/audit/models.py and reviews.py (which import the database layer; a unit
# test keeps these equal to theirs).
OVERRIDE_CODE = "shared.safeguarding_override"
REVIEW_ACTION = "override_review"
REVIEW_CODE = "override.reviewed"
REVIEW_OUTCOMES = ("justified", "not_justified", "follow_up")
PENDING = "pending"
UNRECORDED = "reviewed (outcome not kept)"  # reviews made before outcomes were kept
RECALL = frozenset({"recall", "recalled"})


class Section(StrEnum):
    DECISIONS = "decisions"
    OVERRIDES = "overrides"
    RE_IDENTIFICATIONS = "re_identifications"
    RECALLS = "recalls"
    TRAIL_READS = "trail_reads"


# Outcomes listed even when none was found (that none was withheld is worth saying), in
# this order, before any others.
ALWAYS: dict[Section, tuple[str, ...]] = {
    Section.DECISIONS: ("shared", "withheld", "suppressed"),
    Section.OVERRIDES: (*REVIEW_OUTCOMES, UNRECORDED, PENDING),
    Section.RE_IDENTIFICATIONS: ("re_identified", "withheld"),
}


def section_of(row: Mapping[str, object]) -> Section | None:
    """The one section a record is counted in, or None: not a disclosure (an override's
    review, counted with its override; a consent recorded; a signing key rotated)."""
    decision, action = row.get("decision"), row.get("action")
    if decision == "accessed":
        return Section.TRAIL_READS
    if decision in RECALL or action in RECALL:
        return Section.RECALLS
    if decision == "re_identified" or action == "re_identify":
        return Section.RE_IDENTIFICATIONS
    if action == REVIEW_ACTION or decision == "recorded":
        return None
    if row.get("reason_code") == OVERRIDE_CODE:
        return Section.OVERRIDES
    return Section.DECISIONS


@dataclass(frozen=True)
class Figure:
    """A number as published: ``exact`` (0, or at least the minimum count), ``small`` (1 to
    the minimum less one; its value is not kept) or ``hidden`` (a total with a small part)."""

    kind: Literal["exact", "small", "hidden"]
    value: int = 0

    def text(self, min_count: int) -> str:
        if self.kind == "small":
            return f"<{min_count}"
        return "*" if self.kind == "hidden" else str(self.value)


HIDDEN = Figure("hidden")


def cell(n: int, min_count: int) -> Figure:
    """One count as published: 0 and counts of at least ``min_count`` exactly, else small."""
    return Figure("exact", n) if n == 0 or n >= min_count else Figure("small")


def total(parts: Iterable[Figure]) -> Figure:
    """The sum of published cells, exact only when none of them is small or hidden."""
    parts = list(parts)
    if any(p.kind != "exact" for p in parts):
        return HIDDEN
    return Figure("exact", sum(p.value for p in parts))


@dataclass(frozen=True)
class Line:
    labels: tuple[str, ...]
    figure: Figure


@dataclass(frozen=True)
class Table:
    section: Section
    columns: tuple[str, ...]  # the labels' names (CSV headers)
    lines: tuple[Line, ...]
    total_by: str | None  # the column totals are by, if any (and always one of every line)
    totals: tuple[Line, ...]


@dataclass(frozen=True)
class Period:
    """Whole days in UTC, both included."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period (records before it are in it)."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_period(first: str, last: str) -> Period:
    """The period from ``first`` to ``last`` (YYYY-MM-DD, both included); ValueError naming
    what is wrong otherwise."""
    days = []
    for name, given in (("--from", first), ("--to", last)):
        try:
            if not _DAY.fullmatch(given):
                raise ValueError
            days.append(date.fromisoformat(given))
        except ValueError:
            raise ValueError(f"{name} {given!r} is not a date (YYYY-MM-DD)") from None
    if days[0] > days[1]:
        raise ValueError(f"--from {first} is after --to {last}")
    return Period(days[0], days[1])


@dataclass(frozen=True)
class Report:
    period: Period
    made_at: datetime
    min_count: int
    tables: tuple[Table, ...]
    trail_reads: Figure

    def figures(self) -> list[Figure]:
        """Every number the report publishes."""
        found = [self.trail_reads]
        for t in self.tables:
            found += [line.figure for line in (*t.lines, *t.totals)]
        return found


Key = tuple[str, ...]
_KEYS: dict[Section, tuple[str, ...]] = {
    Section.DECISIONS: (
        "protocol_id",
        "protocol_version",
        "purpose",
        "source_agency",
        "recipient",
        "decision",
        "reason_code",
    ),
    Section.RE_IDENTIFICATIONS: ("recipient", "protocol_id", "decision"),
    Section.RECALLS: ("protocol_id", "protocol_version", "recipient"),
    Section.TRAIL_READS: (),
}


def count(rows: Iterable[Mapping[str, object]]) -> dict[Section, Counter[Key]]:
    """How many records each section's cells hold (a cell: one combination of its keys)."""
    counted: dict[Section, Counter[Key]] = {s: Counter() for s in Section}
    for row in rows:
        section = section_of(row)
        if section is None:
            continue
        n = int(str(row.get("n", 1)))
        if section is Section.OVERRIDES:
            key: Key = (review_outcome(row.get("review")),)
        else:
            key = tuple(_label(row.get(k)) for k in _KEYS[section])
        counted[section][key] += n
    return counted


def review_outcome(code: object) -> str:
    """What an override's review found, from its review record's reason code."""
    if not code:
        return PENDING
    text = str(code)
    return (
        text.removeprefix(f"{REVIEW_CODE}.") if text.startswith(f"{REVIEW_CODE}.") else UNRECORDED
    )


def build(
    rows: Iterable[Mapping[str, object]], *, period: Period, made_at: datetime, min_count: int = 5
) -> Report:
    """The report of the counted ``rows``: every count below ``min_count`` suppressed, and
    every total that includes one."""
    if min_count < 2:
        raise ValueError("a minimum count below 2 would suppress nothing")
    counted = count(rows)
    for outcome in (*REVIEW_OUTCOMES, PENDING):  # the outcomes an officer chooses from
        counted[Section.OVERRIDES].setdefault((outcome,), 0)

    def table(section: Section, columns: tuple[str, ...], by: str | None = None) -> Table:
        first = ALWAYS.get(section, ())
        lines = tuple(
            Line(key, cell(n, min_count))
            for key, n in sorted(counted[section].items(), key=lambda kv: _order(kv[0], first))
        )
        return Table(section, columns, lines, by, _totals(lines, columns, by, first))

    decisions = _KEYS[Section.DECISIONS]
    return Report(
        period=period,
        made_at=made_at,
        min_count=min_count,
        tables=(
            table(Section.DECISIONS, (*decisions[:5], "outcome", "reason_code"), "outcome"),
            table(Section.OVERRIDES, ("outcome",)),
            table(Section.RE_IDENTIFICATIONS, ("recipient", "protocol_id", "outcome"), "outcome"),
            table(Section.RECALLS, _KEYS[Section.RECALLS]),
        ),
        trail_reads=cell(sum(counted[Section.TRAIL_READS].values()), min_count),
    )


def _totals(
    lines: tuple[Line, ...], columns: tuple[str, ...], by: str | None, always: tuple[str, ...]
) -> tuple[Line, ...]:
    """Totals by the ``by`` column, if any, then the total of every line (labelled "all")."""
    found: tuple[Line, ...] = ()
    if by is not None:
        at = columns.index(by)
        values = sorted({line.labels[at] for line in lines} | set(always), key=_ranker(always))
        found = tuple(
            Line((v,), total(line.figure for line in lines if line.labels[at] == v)) for v in values
        )
    return (*found, Line(("all",), total(line.figure for line in lines)))


def _label(value: object) -> str:
    return "" if value is None else str(value)


def _ranker(first: tuple[str, ...]) -> Callable[[str], tuple[int, int, str]]:
    """A sort key: the ``first`` values in their order, then none, numbers (protocol
    versions) as numbers, then text."""

    def rank(value: str) -> tuple[int, int, str]:
        if value in first:
            return (0, first.index(value), "")
        if not value:
            return (1, 0, "")
        if value.isascii() and value.isdigit():
            return (2, int(value), "")
        return (3, 0, value)

    return rank


def _order(key: Key, first: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    rank = _ranker(first)
    return tuple(rank(v) for v in key)
