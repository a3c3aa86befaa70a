"""The person index's matching rules: identifiers decide, demographics only without them,
two people are never merged, and links never move."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from services.personindex.matching import (
    Conflict,
    Demographics,
    Presented,
    Resolved,
    Unidentified,
    resolve,
)

NHS_A, NHS_B = "9434765919", "9990000123"
UPN_A = "B801200005001"
MAISIE = Demographics("Test-Child", "Maisie", date(2016, 4, 9), "ns1 4ap")


def _index() -> tuple[dict[str, str], Callable[[], str]]:
    counter = itertools.count(1)
    return {}, lambda: f"p{next(counter)}"


def _apply(person_of: dict[str, str], outcome: Resolved | Conflict | Unidentified) -> None:
    if isinstance(outcome, Resolved):
        for key in outcome.new_links:
            assert key not in person_of  # links never move
            person_of[key] = outcome.person


def test_identifiers_link_and_then_find_the_same_person() -> None:
    person_of, new = _index()
    first = resolve(Presented(nhs_number=NHS_A, la_person=("la-n", "77")), person_of, new)
    assert isinstance(first, Resolved) and first.by == "new"
    _apply(person_of, first)
    by_la = resolve(Presented(la_person=("la-n", "77"), upn=UPN_A), person_of, new)
    assert isinstance(by_la, Resolved)
    assert (by_la.person, by_la.by, by_la.new_links) == (
        first.person,
        "identifier",
        (f"upn:{UPN_A}",),
    )
    # The same LA id at another authority is another person.
    other = resolve(Presented(la_person=("la-s", "77")), person_of, new)
    assert isinstance(other, Resolved) and other.person != first.person


def test_identifiers_of_two_people_on_one_record_are_flagged_never_merged() -> None:
    person_of, new = _index()
    _apply(person_of, resolve(Presented(nhs_number=NHS_A), person_of, new))
    _apply(person_of, resolve(Presented(upn=UPN_A), person_of, new))
    before = dict(person_of)
    clash = resolve(Presented(nhs_number=NHS_A, upn=UPN_A), person_of, new)
    assert isinstance(clash, Conflict) and clash.persons == ("p1", "p2")
    _apply(person_of, clash)
    assert person_of == before


def test_demographics_match_only_exactly_and_only_without_identifiers() -> None:
    person_of, new = _index()
    _apply(person_of, resolve(Presented(nhs_number=NHS_A, demographics=MAISIE), person_of, new))
    typed_differently = Demographics("TESTCHILD", "maisie", date(2016, 4, 9), "NS14AP")
    found = resolve(Presented(demographics=typed_differently), person_of, new)
    assert isinstance(found, Resolved) and (found.person, found.by) == ("p1", "demographics")
    another_day = Demographics("Test-Child", "Maisie", date(2016, 4, 10), "NS1 4AP")
    unmatched = resolve(Presented(demographics=another_day), person_of, new)
    assert isinstance(unmatched, Resolved) and (unmatched.person, unmatched.by) == ("p2", "new")
    # A new identifier arriving with matching demographics links, but asks for a look.
    linked = resolve(Presented(upn=UPN_A, demographics=MAISIE), person_of, new)
    assert isinstance(linked, Resolved) and linked.person == "p1"
    assert linked.review == "identifiers linked on a demographic match"
    # An identifier of another person wins over demographics, which stay where they were.
    _apply(person_of, resolve(Presented(nhs_number=NHS_B), person_of, new))
    twin = resolve(Presented(nhs_number=NHS_B, demographics=MAISIE), person_of, new)
    assert isinstance(twin, Resolved) and twin.person != "p1"
    assert twin.review == "the same demographics are linked to another person"


def test_an_invalid_identifier_never_links_and_names_nobody() -> None:
    person_of, new = _index()
    outcome = resolve(Presented(nhs_number="9434765910", upn="A801200005001"), person_of, new)
    assert isinstance(outcome, Unidentified) and person_of == {}


identifiers = st.builds(
    Presented,
    nhs_number=st.sampled_from([None, NHS_A, NHS_B, "9990000239"]),
    upn=st.sampled_from([None, UPN_A, "B801200005002"]),
    la_person=st.sampled_from([None, ("la-n", "1"), ("la-n", "2"), ("la-s", "1")]),
    demographics=st.sampled_from([None, MAISIE]),
)


@given(st.lists(identifiers, max_size=25))
def test_no_key_ever_names_two_people_and_a_record_resolves_the_same_twice(
    records: list[Presented],
) -> None:
    person_of, new = _index()
    for presented in records:
        outcome = resolve(presented, person_of, new)
        _apply(person_of, outcome)  # asserts links never move
        again = resolve(presented, person_of, new)
        if isinstance(outcome, Resolved):
            assert isinstance(again, Resolved) and again.person == outcome.person
            assert again.new_links == ()
        else:
            assert type(again) is type(outcome)
