"""The person index's storage, on SQLite and PostgreSQL: identifiers seen together link one
child; a record whose identifiers name two children links nothing and is queued for
review; services resolving at once agree; nothing is stored in clear."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from deploy.cli.main import app
from services.backbone.keyring import Keyring
from services.personindex.matching import Demographics, Presented
from services.personindex.store import PersonIndex

NHS_A, NHS_B = "9990000123", "9990000239"
UPN_A = "H999400116001"
LA = ("la-northshire", "NS-104233")


@pytest.fixture
def index(database_url: str, keyring: Keyring) -> PersonIndex:
    idx = PersonIndex(database_url, keyring.require_routing())
    idx.create_schema()
    return idx


def one(
    index: PersonIndex, agency: str = "school-oakfield", **presented: object
) -> tuple[str | None, str]:
    (r,) = index.resolve_all([Presented(**presented)], agency=agency)  # type: ignore[arg-type]
    return r.identity, r.outcome


def test_a_child_first_known_by_nhs_number_keeps_it_as_identity(index: PersonIndex) -> None:
    assert one(index, "nhs-riverside-ed", nhs_number=NHS_A) == (f"nhs:{NHS_A}", "new")
    # The authority's record carries both: the LA id is linked to the same child.
    assert one(index, "la-northshire", nhs_number=NHS_A, la_person=LA) == (
        f"nhs:{NHS_A}",
        "identifier",
    )
    # A school that knows the child by UPN only, once a record has linked the UPN.
    assert one(index, upn=UPN_A) == (f"upn:{UPN_A}", "new")
    assert index.identity_of(f"la:{LA[0]}:{LA[1]}") == f"nhs:{NHS_A}"
    assert index.identity_of(f"nhs:{NHS_B}") is None


def test_a_upn_founded_child_keeps_its_identity_when_the_nhs_number_arrives(
    index: PersonIndex,
) -> None:
    assert one(index, upn=UPN_A) == (f"upn:{UPN_A}", "new")
    assert one(index, "la-northshire", nhs_number=NHS_A, upn=UPN_A) == (
        f"upn:{UPN_A}",
        "identifier",
    )
    # Now the ED's NHS-number-only record is about the same subject.
    assert one(index, "nhs-riverside-ed", nhs_number=NHS_A) == (f"upn:{UPN_A}", "identifier")
    assert index.reviews() == []


def test_identifiers_of_two_children_are_flagged_never_merged(index: PersonIndex) -> None:
    one(index, nhs_number=NHS_A)
    one(index, upn=UPN_A)
    identity, outcome = one(index, "la-northshire", nhs_number=NHS_A, upn=UPN_A)
    assert (identity, outcome) == (f"nhs:{NHS_A}", "conflict")  # keyed by its own identifier
    assert index.identity_of(f"upn:{UPN_A}") == f"upn:{UPN_A}"  # nothing moved
    (review,) = index.reviews()
    assert review.kind == "conflict" and len(review.persons) == 2
    assert review.key_kinds == ["nhs", "upn"] and review.source_agency == "la-northshire"
    closed = index.close_review(review.id or 0, by="ig-officer", note="two children: typo")
    assert closed.status == "resolved" and index.reviews() == []
    with pytest.raises(ValueError, match="closed already"):
        index.close_review(review.id or 0, by="ig-officer", note="again")


def test_a_demographic_match_links_and_asks_a_person_to_check(index: PersonIndex) -> None:
    demo = Demographics("Testchild", "Maisie", date(2016, 4, 9), "NS1 4AB")
    one(index, "nhs-riverside-ed", nhs_number=NHS_A, demographics=demo)
    same = Demographics("TESTCHILD", "maisie", date(2016, 4, 9), "ns14ab")
    assert one(index, upn=UPN_A, demographics=same) == (f"nhs:{NHS_A}", "demographics")
    (review,) = index.reviews()
    assert review.kind == "demographic_match" and review.key_kinds == ["upn"]
    other = Demographics("Testchild", "Maisie", date(2016, 4, 10), "NS1 4AB")
    assert one(index, nhs_number=NHS_B, demographics=other) == (f"nhs:{NHS_B}", "new")


def test_one_request_resolves_its_records_in_order(index: PersonIndex) -> None:
    results = index.resolve_all(
        [Presented(nhs_number=NHS_A, upn=UPN_A), Presented(upn=UPN_A), Presented()],
        agency="school-oakfield",
    )
    assert [(r.identity, r.outcome) for r in results] == [
        (f"nhs:{NHS_A}", "new"),
        (f"nhs:{NHS_A}", "identifier"),
        (None, "unidentified"),
    ]


def test_services_resolving_at_once_agree(database_url: str, keyring: Keyring) -> None:
    """Two services (two index objects, two engines) link the same new child at once."""
    first = PersonIndex(database_url, keyring.require_routing())
    first.create_schema()
    second = PersonIndex(database_url, keyring.require_routing())
    found: list[str | None] = []
    start = threading.Barrier(8)

    def resolve(idx: PersonIndex, presented: Presented) -> None:
        start.wait()
        found.append(idx.resolve_all([presented], agency="school-oakfield")[0].identity)

    threads = [
        threading.Thread(
            target=resolve,
            args=(first if i % 2 else second, Presented(nhs_number=NHS_A, upn=UPN_A)),
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [f"nhs:{NHS_A}"] * 8
    assert first.reviews() == []


def test_nothing_is_stored_in_clear(index: PersonIndex) -> None:
    demo = Demographics("Testchild", "Maisie", date(2016, 4, 9), "NS1 4AB")
    one(index, "la-northshire", nhs_number=NHS_A, upn=UPN_A, la_person=LA, demographics=demo)
    one(index, nhs_number=NHS_B, upn=UPN_A)  # a conflict, queued
    dump: list[str] = []
    with index.engine.connect() as conn:
        for table in ("person_index_person", "person_index_link", "person_index_review"):
            dump.extend(str(row) for row in conn.execute(text(f"SELECT * FROM {table}")))  # noqa: S608
    blob = "\n".join(dump)
    for clear in (NHS_A, NHS_B, UPN_A, LA[1], "Testchild", "Maisie", "2016-04-09", "NS1"):
        assert clear not in blob, clear


def test_the_review_queue_from_the_command_line(
    tmp_path: Path, keyring_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    index = PersonIndex(url, keyring.require_routing())
    index.create_schema()
    one(index, nhs_number=NHS_A)
    one(index, upn=UPN_A)
    one(index, "la-northshire", nhs_number=NHS_A, upn=UPN_A)
    monkeypatch.setenv("INFOSHARE_KEYRING_FILE", str(keyring_path))
    monkeypatch.setenv("INFOSHARE_PERSON_INDEX_DATABASE_URL", url)
    runner = CliRunner()
    listed = runner.invoke(app, ["persons", "reviews"])
    assert listed.exit_code == 0, listed.output
    assert "conflict" in listed.output and "from la-northshire" in listed.output
    assert NHS_A not in listed.output and UPN_A not in listed.output
    review_id = str(index.reviews()[0].id)
    closed = runner.invoke(
        app, ["persons", "close", review_id, "--by", "ig-officer", "--note", "two children"]
    )
    assert closed.exit_code == 0, closed.output
    assert "no matches waiting" in runner.invoke(app, ["persons", "reviews"]).output
    again = runner.invoke(app, ["persons", "close", review_id, "--by", "x", "--note", "y"])
    assert again.exit_code == 1 and "closed already" in again.output
    assert (
        runner.invoke(app, ["persons", "close", "999", "--by", "x", "--note", "y"]).exit_code == 1
    )


def test_a_record_sent_again_is_queued_once_with_its_event(index: PersonIndex) -> None:
    one(index, nhs_number=NHS_A)
    one(index, upn=UPN_A)
    for _ in range(3):
        index.resolve_all(
            [Presented(nhs_number=NHS_A, upn=UPN_A)], agency="la-northshire", event_ids=["ev-1"]
        )
    (review,) = index.reviews()
    assert review.event_id == "ev-1"


NHS_POOL = ["9990000123", "9990000239", "9990000344"]
UPN_POOL = ["H999400116001", "X999400116002"]
FAMILY = Demographics("Testchild", "Maisie", date(2016, 4, 9), "NS3 9ZD")
records = st.builds(
    Presented,
    nhs_number=st.none() | st.sampled_from(NHS_POOL),
    upn=st.none() | st.sampled_from(UPN_POOL),
    la_person=st.none() | st.just(LA),
    demographics=st.none() | st.just(FAMILY),
)


TWO_CHILDREN = [
    Presented(nhs_number=NHS_POOL[0]),
    Presented(upn=UPN_POOL[0]),
    Presented(nhs_number=NHS_POOL[0], upn=UPN_POOL[0]),  # names both: a conflict
]


@settings(max_examples=80, deadline=None)
@given(st.lists(records, min_size=1, max_size=8))
@example(batch=TWO_CHILDREN * 2)  # the conflict's event sent twice in one batch
def test_a_batch_resolves_as_its_records_would_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, keyring: Keyring, batch: list[Presented]
) -> None:
    """Group commit resolves many records in one transaction, in memory between one read
    and one write: what it decides, links and queues must be what resolving the same
    records one transaction each decides (reading its links back from the database)."""
    root = tmp_path_factory.mktemp("batch")
    together, alone = (
        PersonIndex(f"sqlite:///{root / name}.db", keyring.require_routing())
        for name in ("together", "alone")
    )
    for idx in (together, alone):
        idx.create_schema()
    ids = [f"event-{i % 3}" for i in range(len(batch))]  # some events sent again
    got = together.resolve_all(batch, agency="school-oakfield", event_ids=ids)
    want = [
        alone.resolve_all([r], agency="school-oakfield", event_ids=[i])[0]
        for r, i in zip(batch, ids, strict=True)
    ]
    assert got == want

    def held(idx: PersonIndex) -> tuple[object, ...]:
        with idx.engine.connect() as conn:
            return tuple(
                sorted(tuple(row) for row in conn.execute(text(query)))
                for query in (
                    "SELECT key, person, kind FROM person_index_link",
                    "SELECT id FROM person_index_person",
                    "SELECT kind, reason, event_id FROM person_index_review",
                )
            )

    assert held(together) == held(alone)
