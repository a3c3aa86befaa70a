"""What the policy core promises that its other tests left open, each found by a mutant
`make mutate` saw survive (docs/mutation.md): retention rules and bounds, a purge's counts,
log and audit record, times read as UTC wherever the process runs, tokens' prefix and key
ids, a data key's window bounds, and field pseudonyms that never link across recipients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consent.core.decide import field_pseudonym, pseudonym
from consent.core.fields import TransformError, project
from consent.core.model import FieldRule, Generalisation, RuleKind
from consent.core.purge_log import LastPurge, counted, finish, run_audit
from consent.core.retention import (
    Duration,
    Held,
    RetentionRules,
    Tally,
    as_utc,
    purge_audit,
)
from consent.core.sealed import DataKeys
from consent.core.state import ProtectionPlan
from consent.core.tokens import TokenError, detokenise, key_id_of, tokenise
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import Key, keyed_id
from services.backbone.sealed import NONCE_BYTES
from tests.retention_protocols import protocol

LA, ED, SCHOOL = "la-northshire", "nhs-riverside-ed", "school-hillside"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


# -- retention --


def test_retention_rules_hold_each_version_and_the_newest_per_protocol() -> None:
    rules = RetentionRules.of(
        [
            protocol("p", 2, (ED, "P1Y")),
            protocol("p", 3, (ED, None)),
            protocol("p", 1, (ED, "P2Y"), (SCHOOL, "P6M")),
            protocol("q", 1, (LA, "P30D")),
        ]
    )
    assert rules.exact == {
        ("p", 1, ED): Duration(years=2),
        ("p", 1, SCHOOL): Duration(months=6),
        ("p", 2, ED): Duration(years=1),
        ("p", 3, ED): None,
        ("q", 1, LA): Duration(days=30),
    }
    # Read in any order, the newest version's terms win; a version that states none
    # (p@3 for the ED) leaves what it gets kept.
    assert rules.newest == {
        ("p", ED): None,
        ("p", SCHOOL): Duration(months=6),
        ("q", LA): Duration(days=30),
    }
    assert rules.retention("p@9", SCHOOL) == Duration(months=6)


@pytest.mark.parametrize(
    ("text", "start", "shortest"),
    [
        ("P1Y", datetime(2026, 3, 1, tzinfo=UTC), 365),
        ("P1M", datetime(2026, 2, 1, tzinfo=UTC), 28),
        ("P1W", datetime(2026, 2, 1, tzinfo=UTC), 7),
        ("P1D", datetime(2026, 2, 1, tzinfo=UTC), 1),
    ],
)
def test_the_shortest_bound_is_met_by_some_start(text: str, start: datetime, shortest: int) -> None:
    """Bounds no looser than the calendar: a store asks for what may be due with them."""
    d = Duration.parse(text)
    assert d.shortest() == timedelta(days=shortest) == d.after(start) - start


@pytest.mark.parametrize(
    ("text", "start", "longest"),
    [
        ("P1Y", datetime(2024, 1, 1, tzinfo=UTC), 366),
        ("P1M", datetime(2026, 1, 1, tzinfo=UTC), 31),
        ("P1W", datetime(2026, 1, 1, tzinfo=UTC), 7),
        ("P1D", datetime(2026, 1, 1, tzinfo=UTC), 1),
    ],
)
def test_the_longest_bound_is_met_by_some_start(text: str, start: datetime, longest: int) -> None:
    d = Duration.parse(text)
    assert d.longest() == timedelta(days=longest) == d.after(start) - start


def test_a_durations_bounds_add_up_its_parts() -> None:
    d = Duration(years=1, months=2, weeks=3, days=4)
    assert d.shortest() == timedelta(days=365 + 2 * 28 + 21 + 4)
    assert d.longest() == timedelta(days=366 + 2 * 31 + 21 + 4)


@pytest.mark.usefixtures("new_york")
def test_times_are_taken_as_utc_whatever_the_processs_zone() -> None:
    """A time read back without its offset is UTC, not the server's local time; one with an
    offset is the same instant, in UTC."""
    naive = datetime(2026, 7, 1, 9, 0)
    assert as_utc(naive) == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    moved = as_utc(datetime(2026, 7, 1, 11, 0, tzinfo=timezone(timedelta(hours=2))))
    assert moved == datetime(2026, 7, 1, 9, 0, tzinfo=UTC) and moved.utcoffset() == timedelta(0)
    assert moved.tzinfo is UTC
    # UTC by another name (pydantic's parse of "Z", say) is the same instant, unchanged.
    other = datetime(2026, 7, 1, 9, 0, tzinfo=timezone(timedelta(0), "Z"))
    assert as_utc(other) == datetime(2026, 7, 1, 9, 0, tzinfo=UTC) and as_utc(
        other
    ).utcoffset() == timedelta(0)


# -- a purge's counts, log and audit record --


def test_a_tally_counts_by_recipient_and_protocol() -> None:
    tally = Tally()
    tally.add([Held(1, ED, "p@1", NOW), Held(2, ED, None, NOW)])
    tally.count(LA, "q@1", 3)
    tally.count(LA, "q@1", 2)
    tally.count(LA, None, 1)
    tally.count(SCHOOL, "p@1", 0)  # nothing purged: not a row of its own
    assert tally.rows() == [[LA, "-", 1], [LA, "q@1", 5], [ED, "-", 1], [ED, "p@1", 1]]
    assert tally.by_recipient() == {ED: 2, LA: 6}
    again = Tally.of(tally.rows())
    again.merge([[LA, "q@1", "2"]])
    assert again.rows() == [[LA, "-", 1], [LA, "q@1", 7], [ED, "-", 1], [ED, "p@1", 1]]


def test_a_purges_reason_names_recipients_unless_it_is_one_recipients() -> None:
    tally = Tally.of([[LA, "q@1", 1]])
    assert tally.reason("deliveries", one="delivery") == (
        "purged 1 delivery held past its retention (q@1 to la-northshire: 1)"
    )
    assert tally.reason("deliveries") == (
        "purged 1 deliveries held past its retention (q@1 to la-northshire: 1)"
    )
    two = Tally.of([[LA, "q@1", 2]])
    assert two.reason("deliveries", one="delivery", by_recipient=False) == (
        "purged 2 deliveries held past their retention (q@1: 2)"
    )


def test_one_recipients_purge_is_audited_as_that_recipients() -> None:
    record = purge_audit(
        run_id="r1",
        purged_at=NOW,
        tally=Tally.of([[LA, "q@1", 1]]),
        noun="received items",
        one="received item",
        actor="infoshare-inbox-la",
        recipient=LA,
    )
    assert (record.recorded_at, record.occurred_at, record.recipient) == (NOW, NOW, LA)
    assert record.reason == "purged 1 received item held past its retention (q@1: 1)"
    assert record.actor == "infoshare-inbox-la" and record.audit_id == "r1"


@dataclass
class _Run:
    """A store's purge log row."""

    id: str = "run-1"
    purged_at: datetime = datetime(2026, 6, 15, 12, 0)  # read back without its offset
    actor: str = "infoshare-delivery"
    counts: list[list[str | int]] = field(default_factory=list)
    total: int = 0
    finished: bool = False
    audited_at: datetime | None = None


def test_a_purge_log_counts_as_it_deletes_and_tells_its_audit_record() -> None:
    run = _Run()
    counted(run, ED, "p@1", 2)
    counted(run, LA, None, 1)
    counted(run, ED, "p@1", 1)
    assert (run.counts, run.total) == ([[LA, "-", 1], [ED, "p@1", 3]], 4)
    finish(run, NOW)
    assert run.finished and run.audited_at is None  # its record is still to go out
    record = run_audit(run, noun="deliveries", one="delivery")
    assert (record.audit_id, record.occurred_at, record.actor) == ("run-1", NOW, run.actor)
    assert record.recipient is None
    assert record.reason == (
        "purged 4 deliveries held past their retention "
        "(- to la-northshire: 1, p@1 to nhs-riverside-ed: 3)"
    )
    assert run_audit(run, noun="items", recipient=LA).recipient == LA
    last = LastPurge.of(run)
    assert last == LastPurge(NOW, 4, "infoshare-delivery", False, {ED: 3, LA: 1})
    run.audited_at = NOW
    assert LastPurge.of(run).audited


def test_a_purge_of_one_item_is_told_in_the_singular() -> None:
    run = _Run()
    counted(run, LA, "q@1", 1)
    assert run_audit(run, noun="deliveries", one="delivery").reason == (
        "purged 1 delivery held past its retention (q@1 to la-northshire: 1)"
    )


def test_a_purge_that_removed_nothing_counts_as_audited_at_its_end() -> None:
    run = _Run()
    finish(run, NOW)
    assert run.finished and run.audited_at == NOW
    assert LastPurge.of(run) == LastPurge(NOW, 0, "infoshare-delivery", True, {})


# -- tokens, sealed values, pseudonyms --

TOKEN_KEY = Key("token.2026-06", bytes(range(64)))  # a dotted id: ids are the keyring's


def test_a_token_names_its_key_even_a_dotted_one_and_reverses() -> None:
    token = tokenise(TOKEN_KEY, recipient=LA, path="subject.upn", value="A123")
    assert key_id_of(token) == "token.2026-06"
    keys = {TOKEN_KEY.key_id: TOKEN_KEY}
    assert detokenise(keys, recipient=LA, path="subject.upn", token=token) == "A123"


def test_a_token_is_the_same_in_every_release() -> None:
    """A golden vector: a recipient links its records by token, so the same value must keep
    giving the same token (unpadded base64url, as first issued)."""
    token = tokenise(Key("token-1", bytes(64)), recipient=LA, path="subject.upn", value="A123")
    assert token == "tok1.token-1.38i9pv1hSNc8pDCzGXhlYuIAPb4"


@pytest.mark.parametrize("prefix", ["tok0", "tok2", "TOK1", ""])
def test_a_token_of_another_kind_is_refused_whatever_follows(prefix: str) -> None:
    token = tokenise(TOKEN_KEY, recipient=LA, path="subject.upn", value="A123")
    other = prefix + token[len("tok1") :]
    with pytest.raises(TokenError, match="not an infoshare token"):
        key_id_of(other)
    with pytest.raises(TokenError, match="not an infoshare token"):
        detokenise({TOKEN_KEY.key_id: TOKEN_KEY}, recipient=LA, path="subject.upn", token=other)


def test_a_data_keys_window_holds_from_one_value_to_what_its_nonce_counts() -> None:
    public = {LA: X25519PrivateKey.generate().public_key()}
    one = DataKeys(public, window_values=1)
    first, second = (one.seal(recipient=LA, path="a", value="v") for _ in range(2))
    assert one.wrapped == 2 and first.split(".")[1] != second.split(".")[1]
    DataKeys(public, window_values=2 ** (8 * NONCE_BYTES) - 1)
    for refused in (0, 2 ** (8 * NONCE_BYTES)):
        with pytest.raises(ValueError, match="from 1 value up"):
            DataKeys(public, window_values=refused)
    DataKeys(public, window_seconds=0.5)
    for never in (0.0, -1.0):
        with pytest.raises(ValueError, match="positive time"):
            DataKeys(public, window_seconds=never)


PSEUDONYM_KEY = Key("pseudonym-1", b"k" * 32)


def test_a_pseudonymised_field_is_keyed_by_recipient_path_and_value() -> None:
    """Stable for one recipient, unlinkable across recipients, and different for another
    field or value."""
    value = field_pseudonym(PSEUDONYM_KEY, LA, "subject.upn", "A123")
    assert value == keyed_id(PSEUDONYM_KEY.secret, f"pseudonym:{LA}", "subject.upn=A123")
    others = {
        field_pseudonym(PSEUDONYM_KEY, ED, "subject.upn", "A123"),
        field_pseudonym(PSEUDONYM_KEY, LA, "subject.other", "A123"),
        field_pseudonym(PSEUDONYM_KEY, LA, "subject.upn", "A124"),
    }
    assert value not in others and len(others) == 3


def test_an_nhs_number_without_a_subject_id_is_the_subjects_pseudonym() -> None:
    got = field_pseudonym(PSEUDONYM_KEY, LA, "subject.nhs_number", "9434765919")
    subject = subject_identifier(nhs_number="9434765919")
    assert got == pseudonym(PSEUDONYM_KEY, LA, subject)
    assert field_pseudonym(
        PSEUDONYM_KEY, LA, "subject.nhs_number", "9434765919", subject_id="person-7"
    ) == pseudonym(PSEUDONYM_KEY, LA, "person-7")


def test_project_gives_age_bands_for_the_day_it_is_given() -> None:
    rule = FieldRule(RuleKind.GENERALISE, "dob", "age", Generalisation.AGE_BAND)
    got = project({"dob": "2010-09-01"}, (rule,), pseudonymise=_unused, on=date(2026, 6, 1))
    assert got.payload == {"age": "11-15"} and got.disclosed == ("age",)


@pytest.mark.parametrize("kind", [RuleKind.TOKENISE, RuleKind.ENCRYPT])
def test_a_keyed_rule_given_no_key_refuses_rather_than_copy(kind: RuleKind) -> None:
    with pytest.raises(TransformError, match="no key is configured for this rule"):
        project({"upn": "A123"}, (FieldRule(kind, "upn", "upn"),), pseudonymise=_unused)


def _unused(_path: str, _value: str) -> str:
    raise AssertionError("no field is pseudonymised here")


def test_a_plan_read_back_without_who_started_it_says_none() -> None:
    plan = ProtectionPlan(LA, "plan-1", "neglect", date(2026, 1, 5).isoformat())
    again = ProtectionPlan.from_bytes(plan.to_bytes())
    assert again == plan and again.started_by is None
