"""How long a recipient may keep what it was given, and what a store holds past that.

A protocol's recipient rule may say ``retention: P2Y`` (an ISO 8601 duration). Every store
that keeps deliveries for a recipient (the delivery service's log, an agency's inbox) keeps
each one until its retention has run, counted from when the store received it, and then
purges it. This module decides; the stores find, delete and count. No I/O.

A delivery names the protocol it was shared under (``id@version``). Its retention is the
one that protocol version states for the recipient; a version no longer loaded takes what
the protocol's newest loaded version states for the recipient (the owner changed the terms,
and the newest terms govern what is still held). A delivery under no protocol (an access-
back notice), under a protocol no longer loaded, or to a recipient the protocol does not
state a retention for, has none: it is kept, and the operator's report counts it apart.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from consent.core.model import Protocol
from services.backbone.audit_contract import AuditOutcome, AuditRecord

# The forms a protocol may write (consent/policy/parse.py refuses any other): whole years,
# months, weeks and days, at least one of them, in that order.
_DURATION = re.compile(r"^P(?=\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
PURGE_ACTION = "retention_purge"
PURGE_CODE = "retention.purged"


@dataclass(frozen=True)
class Duration:
    """A calendar duration: P1M from 31 January ends on the last day of February."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``P2Y``, ``P6M``, ``P30D``, ``P1Y6M``...; ValueError for anything else (times of
        day, fractions and signs are not retention periods)."""
        found = _DURATION.match(text)
        if found is None:
            raise ValueError(f"not an ISO 8601 duration of years, months, weeks or days: {text!r}")
        years, months, weeks, days = (int(part or 0) for part in found.groups())
        return cls(years, months, weeks, days)

    def after(self, moment: datetime) -> datetime:
        """``moment`` plus this duration: months first (the day kept, or the month's last
        day if it has fewer), then weeks and days."""
        months = moment.month - 1 + self.months + 12 * self.years
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        shifted = moment.replace(year=year, month=month, day=day)
        return shifted + timedelta(weeks=self.weeks, days=self.days)

    def shortest(self) -> timedelta:
        """No ``after(t) - t`` is shorter (a month is at least 28 days, a year 365): what
        received before ``now - shortest()`` may be due, and nothing received later is."""
        return timedelta(days=365 * self.years + 28 * self.months + 7 * self.weeks + self.days)

    def longest(self) -> timedelta:
        """No ``after(t) - t`` is longer: what was received before ``now - longest()`` is
        due."""
        return timedelta(days=366 * self.years + 31 * self.months + 7 * self.weeks + self.days)

    def __str__(self) -> str:
        parts = zip((self.years, self.months, self.weeks, self.days), "YMWD", strict=True)
        return "P" + ("".join(f"{n}{unit}" for n, unit in parts if n) or "0D")


def split_ref(ref: str) -> tuple[str, int | None]:
    """A protocol ref ``id@version`` as (id, version); a ref without a version, (ref, None)."""
    name, at, version = ref.rpartition("@")
    if not at or not version.isdigit():
        return ref, None
    return name, int(version)


@dataclass(frozen=True)
class RetentionRules:
    """Each protocol version's retention per recipient, and the newest loaded version's per
    protocol id (for deliveries under a version no longer loaded)."""

    exact: Mapping[tuple[str, int, str], Duration | None] = field(default_factory=dict)
    newest: Mapping[tuple[str, str], Duration | None] = field(default_factory=dict)

    @classmethod
    def of(cls, protocols: Iterable[Protocol]) -> RetentionRules:
        """The rules a protocol set states (a set that loaded: its retentions are valid)."""
        exact: dict[tuple[str, int, str], Duration | None] = {}
        newest: dict[tuple[str, str], tuple[int, Duration | None]] = {}
        for protocol in protocols:
            for rule in protocol.recipients:
                kept = Duration.parse(rule.retention) if rule.retention else None
                exact[(protocol.id, protocol.version, rule.agency)] = kept
                known = newest.get((protocol.id, rule.agency))
                if known is None or known[0] < protocol.version:
                    newest[(protocol.id, rule.agency)] = (protocol.version, kept)
        return cls(exact, {k: v for k, (_, v) in newest.items()})

    def retention(self, protocol: str | None, recipient: str) -> Duration | None:
        """How long ``recipient`` may keep what it got under ``protocol`` (a ref); None:
        no retention is stated or known, so it is kept."""
        if not protocol:
            return None
        name, version = split_ref(protocol)
        if version is not None and (name, version, recipient) in self.exact:
            return self.exact[(name, version, recipient)]
        return self.newest.get((name, recipient))


@dataclass(frozen=True)
class Held:
    """One item a store holds for a recipient: the store's own key for it, the protocol it
    was shared under and when the store received it."""

    key: int
    recipient: str
    protocol: str | None
    received_at: datetime


def held_until(item: Held, rules: RetentionRules) -> datetime | None:
    """When ``item``'s retention runs out; None: it is kept."""
    kept = rules.retention(item.protocol, item.recipient)
    return None if kept is None else kept.after(as_utc(item.received_at))


def is_due(item: Held, rules: RetentionRules, now: datetime) -> bool:
    """Whether ``item`` is held past its retention at ``now`` (due once it runs out)."""
    until = held_until(item, rules)
    return until is not None and until <= as_utc(now)


def due(items: Iterable[Held], rules: RetentionRules, now: datetime) -> list[Held]:
    """The items held past their retention at ``now``, in the order given."""
    return [item for item in items if is_due(item, rules, now)]


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class Tally:
    """What one purge run removed, by recipient and protocol: counts only."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def of(cls, rows: Iterable[Iterable[object]]) -> Tally:
        """The counts a purge log keeps (``[[recipient, protocol, n], ...]``)."""
        tally = cls()
        tally.merge(rows)
        return tally

    def add(self, items: Iterable[Held]) -> None:
        self.counts.update((i.recipient, i.protocol or "-") for i in items)

    def count(self, recipient: str, protocol: str | None, n: int) -> None:
        if n:
            self.counts[(recipient, protocol or "-")] += n

    def merge(self, rows: Iterable[Iterable[object]]) -> None:
        """Counts kept as ``[[recipient, protocol, n], ...]`` (a purge log's JSON) added."""
        for recipient, protocol, n in rows:
            self.counts[(str(recipient), str(protocol))] += int(str(n))

    def by_recipient(self) -> dict[str, int]:
        found: Counter[str] = Counter()
        for (recipient, _), n in self.counts.items():
            found[recipient] += n
        return dict(found)

    def rows(self) -> list[list[str | int]]:
        return [[r, p, n] for (r, p), n in sorted(self.counts.items())]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reason(self, noun: str, *, one: str | None = None, by_recipient: bool = True) -> str:
        """``purged 3 deliveries held past their retention (p@1 to la-x: 2, ...)``: protocols,
        recipients and counts, never an id or a value (``one``: the noun for one item)."""
        if not self.total:
            return f"purged 0 {noun}: none was held past its retention"
        their = "its" if self.total == 1 else "their"
        if self.total == 1 and one:
            noun = one
        parts = ", ".join(
            f"{protocol}{f' to {recipient}' if by_recipient else ''}: {n}"
            for (recipient, protocol), n in sorted(self.counts.items(), key=_by_protocol)
        )
        return f"purged {self.total} {noun} held past {their} retention ({parts})"


@dataclass
class Holding:
    """What one store holds for one recipient: how many items, how many are due for purge
    now, and how many have no retention stated or known (kept)."""

    recipient: str
    held: int = 0
    due: int = 0
    kept: int = 0


def _by_protocol(entry: tuple[tuple[str, str], int]) -> tuple[str, str]:
    (recipient, protocol), _ = entry
    return protocol, recipient


def purge_audit(
    *,
    run_id: str,
    purged_at: datetime,
    tally: Tally,
    noun: str,
    one: str | None = None,
    actor: str,
    recipient: str | None = None,
) -> AuditRecord:
    """The one audit record of a purge run of one store (for ``audit.activity``): counts by
    protocol (and recipient), never a delivery's id, key or content. ``run_id`` is its
    audit id, so sending it again after a crash is stored once."""
    return AuditRecord(
        audit_id=run_id,
        recorded_at=purged_at,
        occurred_at=purged_at,
        action=PURGE_ACTION,
        decision=AuditOutcome.RECORDED,
        reason_code=PURGE_CODE,
        reason=tally.reason(noun, one=one, by_recipient=recipient is None),
        actor=actor,
        recipient=recipient,
    )
