"""Nothing leaks past a protocol, for any event: every value a recipient is given comes
from the place in the event one of its rules names, through that rule (an oracle of its own,
not the code under test), over every shipped protocol, and over the same rules moved into
lists of objects, nested."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest
from hypothesis import event as observe
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.core.consent import ConsentRecord, ConsentStatus, GivenBy, Override
from consent.core.decide import (
    Decision,
    EventFacts,
    Outcome,
    decide,
    field_pseudonym,
)
from consent.core.fields import TransformError, get_path
from consent.core.generalise import generalise, mask
from consent.core.model import (
    ConsentRequirement,
    FieldRule,
    Generalisation,
    Protocol,
    ProtocolSet,
    RecipientRule,
    RuleKind,
)
from consent.core.state import ProtectionPlan, SubjectState
from consent.core.tokens import tokenise
from consent.policy.load import DEFAULT_DIR as PROTOCOL_DIR
from consent.policy.load import load_protocols
from services.backbone.directory import Directory
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from tests.unit.event_samples import valid_data
from tests.unit.factories import (
    LA,
    PLAN_ENDED,
)
from tests.unit.strategies import valid_nhs_numbers
from tests.unit.test_decide import PLAN_BY_LA, PLAN_ELSEWHERE, SUBJECT

# --- Properties over any event ---------------------------------------------------------------

DAY = date(2026, 11, 20)  # the events' date and the day of the decisions
SHIPPED_FILES = sorted(PROTOCOL_DIR.glob("*.yaml"))
PLAN_ENDING = SubjectState(
    ProtectionPlan(LA, valid_data(PLAN_ENDED)["plan"]["plan_id"], "neglect", "2026-11-02")
)
STATES = st.sampled_from([SubjectState(), PLAN_BY_LA, PLAN_ELSEWHERE, PLAN_ENDING])
MISSING = get_path({}, "absent")  # the sentinel get_path returns for a missing path
VALID_FOR = {"year": "2014-11-23", "month": "2014-11-23", "postcode_district": "NS3 9ZD"}
Path_ = tuple[str | int, ...]
Tokens = list[tuple[str, bool]]  # a rule path's fields, each with whether it is an array


@pytest.fixture(scope="module")
def shipped(directory: Directory, schemas: SchemaRegistry) -> ProtocolSet:
    """Every protocol under consent/protocols: one added is drawn from without a change here."""
    loaded = load_protocols(None, directory=directory, schemas=schemas, today=DAY)
    assert len(loaded) == len(SHIPPED_FILES) >= 7
    assert {p.origin for p in loaded} == {f.name for f in SHIPPED_FILES}
    return loaded


def _names(node: Any) -> set[str]:
    """Every property name a schema document declares."""
    if isinstance(node, list):
        return set().union(*map(_names, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set(node.get("properties", {})) if isinstance(node.get("properties"), dict) else set()
    return found.union(*map(_names, node.values()))


@pytest.fixture(scope="module")
def names(shipped: ProtocolSet, schemas: SchemaRegistry) -> st.SearchStrategy[str]:
    """Keys for random data: every field a rule names, every field a schema declares (so
    allowed and disallowed fields alike turn up anywhere), and any text."""
    named = {
        part.removesuffix("[*]")
        for p in shipped
        for r in p.recipients
        for f in r.fields
        for part in (*f.path.split("."), *f.target.split("."))
    }
    declared = set().union(*(_names(schemas.get(t).document) for t in schemas.event_types))
    return st.sampled_from(sorted(named | declared)) | st.text(min_size=1, max_size=6)


LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=12)


def trees(names: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Any JSON: objects, lists of objects, lists of lists, nested, keyed by ``names``."""

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        objects = st.dictionaries(names, inner, max_size=4)
        return objects | st.lists(objects, min_size=1, max_size=3) | st.lists(inner, max_size=3)

    return st.recursive(LEAVES, extend, max_leaves=12)


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``, recursively."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@st.composite
def listed(draw: st.DrawFn, node: Any, names: st.SearchStrategy[str]) -> Any:
    """``node`` with objects in it, at any depth, turned into lists of objects like them:
    itself, copies with other fields laid over (allowed ones and not), and strays (a value
    that is no object, an empty object)."""
    if isinstance(node, list):
        return [draw(listed(item, names)) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: draw(listed(value, names)) for key, value in node.items()}
    if draw(st.integers(0, 3)):
        return out
    others = st.dictionaries(names, LEAVES | st.lists(LEAVES, max_size=2), max_size=3)
    objects = others.map(lambda extra: merged(out, extra))
    return draw(st.lists(objects | LEAVES | st.builds(dict), min_size=1, max_size=3))


def tokens(path: str) -> Tokens:
    return [(p.removesuffix("[*]"), p.endswith("[*]")) for p in path.split(".")]


def reach(node: Any, path: Tokens, at: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Where ``path`` leads in ``node``, each place with its value: through objects, and
    through every element of a list where the path says ``[*]`` (and nowhere else)."""
    if not path:
        return [(at, node)]
    (name, is_array), rest = path[0], path[1:]
    if not isinstance(node, dict) or name not in node:
        return []
    child = node[name]
    if not is_array:
        return reach(child, rest, (*at, name))
    if not isinstance(child, list):
        return []
    return [r for i, item in enumerate(child) for r in reach(item, rest, (*at, name, i))]


def leaves(node: Any, at: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every leaf of a payload with its place, list indices included; an empty object or
    list is a leaf too."""
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in leaves(value, (*at, key))]
    if isinstance(node, list) and node:
        return [leaf for i, value in enumerate(node) for leaf in leaves(value, (*at, i))]
    return [(at, node)]


def spelled(at: Path_) -> str:
    """A place as rule paths spell it: ``("a", 0, "b")`` is ``a[*].b``."""
    return "".join(f".{p}" if isinstance(p, str) else "[*]" for p in at).lstrip(".")


def source_of(at: Path_, rule: FieldRule) -> Path_ | None:
    """Where in the event the value at ``at`` of a payload comes from if ``rule`` put it
    there (or None, if the rule's target is not at or above ``at``): the rule's path, with
    the list indices of ``at``, and whatever lies below its target."""
    k, indices = 0, []
    for name, is_array in tokens(rule.target):
        if k >= len(at) or at[k] != name:
            return None
        k += 1
        if is_array:
            if k >= len(at) or not isinstance(at[k], int):
                return None
            indices.append(at[k])
            k += 1
    out: list[str | int] = []
    for name, is_array in tokens(rule.path):
        out += [name, indices.pop(0)] if is_array else [name]
    return (*out, *at[k:])


def value_at(node: Any, at: Path_) -> Any:
    """The value at a place (list indices included), or MISSING."""
    for part in at:
        if isinstance(part, int):
            found = isinstance(node, list) and part < len(node)
        else:
            found = isinstance(node, dict) and part in node
        if not found:
            return MISSING
        node = node[part]
    return node


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: of the same types too (True is not 1)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


_SHAPES = {
    Generalisation.YEAR: r"\d{4}",
    Generalisation.MONTH: r"\d{4}-\d{2}",
    Generalisation.AGE_BAND: r"0-4|5-10|11-15|16-17|18\+",
    Generalisation.POSTCODE_DISTRICT: r"[A-Z]{1,2}[0-9][A-Z0-9]?",
    Generalisation.POSTCODE_AREA: r"[A-Z]{1,2}",
}


def transformed(
    rule: FieldRule, value: Any, recipient: str, event: EventFacts, keyring: Keyring
) -> Any:
    """What a rule other than allow makes of a source value for the recipient."""
    if rule.kind is RuleKind.PSEUDONYMISE:
        key = keyring.pseudonym[recipient]
        return field_pseudonym(key, recipient, rule.path, str(value), subject_id=event.subject_id)
    if rule.kind is RuleKind.TOKENISE:
        token_key = keyring.token_key()
        assert token_key is not None
        return tokenise(token_key, recipient=recipient, path=rule.path, value=str(value))
    if rule.kind is RuleKind.GENERALISE:
        assert rule.to is not None
        return generalise(value, rule.to, on=DAY)
    if rule.kind is RuleKind.MASK:
        return mask(value)
    return MISSING  # sealed to the recipient's public key: no two seals alike


def accounted_for(
    at: Path_, shown: Any, rule: RecipientRule, event: EventFacts, keyring: Keyring
) -> bool:
    """Whether a rule of the recipient puts ``shown`` at ``at``: an allow rule copies it
    from where its path leads in the event (the same place under its target), any other
    rule puts its transform of the source value exactly at its target."""
    recipient = rule.agency
    for f in rule.fields:
        origin = source_of(at, f)
        if origin is None:
            continue
        value = value_at(event.data, origin)
        if f.kind is RuleKind.ALLOW:
            if value is not MISSING and same(value, shown):
                return True
        elif spelled(at) == f.target and value is not MISSING:
            if f.kind is RuleKind.ENCRYPT:  # sealed anew each time: only not the value itself
                return isinstance(shown, str) and shown != str(value)
            if f.kind is RuleKind.GENERALISE:
                assert f.to is not None
                assert re.fullmatch(_SHAPES[f.to], str(shown)), f"{f.target} = {shown!r}"
            if same(transformed(f, value, recipient, event, keyring), shown):
                return True
    return False


def holds_nothing(at: Path_, shown: Any, rule: RecipientRule) -> bool:
    """An empty payload, or an empty object or list on the way to a rule's target (an
    element of a list the rule found nothing in): no value of the event's."""
    place = spelled(at)
    return shown in ({}, []) and (
        not at or any(f.target.startswith((place + ".", place + "[")) for f in rule.fields)
    )


def rule_set(decision: Decision) -> str:
    return decision.protocol.ref if decision.protocol else "no protocol"


def assert_nothing_leaks(
    decision: Decision, rule: RecipientRule, event: EventFacts, keyring: Keyring
) -> None:
    """Every leaf of the payload is put there by a rule of the recipient's, and every value
    an allow rule reaches in the event is delivered, whole."""
    assert decision.payload is not None
    for at, shown in leaves(decision.payload):
        assert accounted_for(at, shown, rule, event, keyring) or holds_nothing(at, shown, rule), (
            f"{spelled(at)} = {shown!r} is not what a rule of {rule_set(decision)} gives "
            f"{decision.recipient}"
        )
    inside = [g.target for g in rule.fields]
    for f in rule.fields:
        if f.kind is not RuleKind.ALLOW or any(
            t.startswith((f.target + ".", f.target + "[")) for t in inside
        ):
            continue
        for at, value in reach(event.data, tokens(f.path)):
            place = source_of(at, FieldRule(RuleKind.ALLOW, f.target, f.path))
            assert place is not None and same(value_at(decision.payload, place), value), f.path


def consents_for(protocols: ProtocolSet) -> st.SearchStrategy[dict[tuple[str, str], ConsentRecord]]:
    """Consent records a subject may hold for the protocols' purposes: granted, refused or
    withdrawn, for one recipient or all."""
    scopes = sorted({(p.purpose.value, r.agency) for p in protocols for r in p.recipients})
    scopes += sorted({(purpose, "*") for purpose, _ in scopes})
    record = st.builds(
        ConsentRecord,
        record_id=st.just("consent-1"),
        version=st.just(1),
        status=st.sampled_from(ConsentStatus),
        purpose=st.just(""),
        scope=st.just(""),
        given_by=st.sampled_from(GivenBy),
        recorded_by=st.just("practitioner"),
        recorded_at=st.just("2026-11-01T09:00:00Z"),
    )
    return st.dictionaries(st.sampled_from(scopes), record, max_size=2).map(
        lambda found: {
            (purpose, scope): dataclasses.replace(r, purpose=purpose, scope=scope)
            for (purpose, scope), r in found.items()
        }
    )


OVERRIDES = st.none() | st.just(Override("asking would put the child at risk", "ED consultant"))


@st.composite
def events(draw: st.DrawFn, protocols: ProtocolSet, names: st.SearchStrategy[str]) -> EventFacts:
    """Any event a protocol covers: a valid event of its type or none, random data laid
    over it (objects, lists of objects, nested, with fields allowed and not), and objects
    anywhere in it turned into lists of objects; with or without consent or an override."""
    pairs = sorted({(a, t) for p in protocols for a in p.source_agencies for t in p.event_types})
    source, event_type = draw(st.sampled_from(pairs))
    base = draw(st.sampled_from([valid_data(event_type), valid_data(event_type), {}]))
    data = merged(base, draw(st.dictionaries(names, trees(names), max_size=4)))
    data = draw(listed(data, names))
    # Generalisation needs a date or a postcode: the schema guarantees one before the core runs.
    for f in (f for p in protocols for r in p.recipients for f in r.fields if f.to is not None):
        assert f.to is not None
        for at, value in reach(data, tokens(f.path)):
            try:
                generalise(value, f.to, on=DAY)
            except TransformError:
                parent: Any = value_at(data, at[:-1])
                parent[at[-1]] = VALID_FOR[f.to.value]
    subject = subject_identifier(nhs_number=draw(valid_nhs_numbers()))
    consents, override = draw(consents_for(protocols)), draw(OVERRIDES)
    return EventFacts(
        "ev-1", event_type, source, data, subject, DAY, consents=consents, override=override
    )


def check_every_decision(
    protocols: ProtocolSet, keyring: Keyring, event: EventFacts, state: SubjectState
) -> list[Decision]:
    rules = {
        (p.ref, r.agency): r
        for p in protocols
        if p.covers(event.source_agency, event.type)
        for r in p.recipients
    }
    decisions = decide(
        event, protocols, state, keyring.pseudonym, token_key=keyring.token_key(), on=DAY
    )
    for decision in decisions:
        if decision.outcome is Outcome.WITHHELD:
            assert decision.payload is None
            continue
        assert decision.protocol is not None and decision.recipient is not None
        assert_nothing_leaks(
            decision, rules[(decision.protocol.ref, decision.recipient)], event, keyring
        )
    return decisions


@settings(max_examples=150, deadline=None)
@given(data=st.data(), state=STATES)
def test_nothing_leaks_past_a_protocol(
    shipped: ProtocolSet,
    names: st.SearchStrategy[str],
    keyring: Keyring,
    data: st.DataObject,
    state: SubjectState,
) -> None:
    """For every shipped protocol, whatever the event holds (lists of objects included),
    each recipient gets what its rules give and nothing else."""
    event = data.draw(events(shipped, names))
    decisions = check_every_decision(shipped, keyring, event, state)
    observe(f"{sum(d.outcome is Outcome.SHARED for d in decisions)} shared")


def in_lists(protocol: Protocol, *, nested: bool) -> Protocol:
    """``protocol`` with its rules reaching into lists of objects: each rule's first field
    (``nested``: each field but the last) an array, its target alike; no condition and no
    consent asked, so that its rules are applied to every event it covers."""

    def moved(f: FieldRule) -> FieldRule:
        path, target = f.path.split("."), f.target.split(".")
        depth = max(len(path) - 1, 1) if nested else 1
        tail = path[depth:]
        target_tail = target[depth:] if target[:depth] == path[:depth] else target[-len(tail) :]
        arrays = [p + "[*]" for p in path[:depth]]
        return dataclasses.replace(
            f,
            path=".".join([*arrays, *tail]),
            target=".".join([*arrays, *(target_tail if tail else [])]),
        )

    return dataclasses.replace(
        protocol,
        id=f"{protocol.id}-in-{'nested-' if nested else ''}lists",
        consent=ConsentRequirement.NOT_REQUIRED,
        recipients=tuple(
            dataclasses.replace(
                r, condition=None, condition_text=None, fields=tuple(map(moved, r.fields))
            )
            for r in protocol.recipients
        ),
    )


@pytest.fixture(scope="module")
def listing(shipped: ProtocolSet) -> ProtocolSet:
    """The shipped protocols with their rules moved into lists of objects, one level deep
    and nested."""
    return ProtocolSet(tuple(in_lists(p, nested=n) for p in shipped for n in (False, True)))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_nothing_leaks_from_lists_of_objects(
    listing: ProtocolSet, names: st.SearchStrategy[str], keyring: Keyring, data: st.DataObject
) -> None:
    """Where rules reach into lists of objects, each element gives what the rules give
    (at its own index) and nothing else: no other field of it, nothing of another."""
    event = data.draw(events(listing, names))
    decisions = check_every_decision(listing, keyring, event, SubjectState())
    observe(f"{sum(d.outcome is Outcome.SHARED for d in decisions)} shared")


def as_lists(data: Mapping[str, Any], *, nested: bool) -> dict[str, Any]:
    """Each object under the top in a list of its own (``nested``: at every depth)."""

    def wrap(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        return [{k: wrap(v) for k, v in node.items()} if nested else node]

    return {k: wrap(v) for k, v in data.items()}


def test_every_rule_set_is_applied_by_the_properties(
    shipped: ProtocolSet, listing: ProtocolSet, keyring: Keyring
) -> None:
    """The properties above are not vacuous: every recipient of every shipped protocol (and
    of each moved into lists) is shared with, with a payload, for some event they draw from
    (a valid event of a type it covers, in a state they draw, with consent)."""
    grant = ConsentRecord(
        "c", 1, ConsentStatus.GRANTED, "", "", GivenBy.PARENT, "p", "2026-11-01T09:00:00Z"
    )
    everyone = {
        (p.purpose.value, "*"): dataclasses.replace(grant, purpose=p.purpose.value, scope="*")
        for p in shipped
    }
    for protocols, shape in ((shipped, None), (listing, False), (listing, True)):
        shared: set[tuple[str, str]] = set()
        for protocol in protocols:
            for source, event_type in itertools.product(
                sorted(protocol.source_agencies), sorted(protocol.event_types)
            ):
                data = valid_data(event_type)
                data = data if shape is None else as_lists(data, nested=shape)
                event = EventFacts(
                    "ev-1", event_type, source, data, SUBJECT, DAY, consents=everyone
                )
                for state in (SubjectState(), PLAN_BY_LA, PLAN_ENDING):
                    for d in check_every_decision(protocols, keyring, event, state):
                        if d.outcome is Outcome.SHARED and d.payload and d.protocol:
                            shared.add((d.protocol.ref, d.recipient or ""))
        wanted = {
            (p.ref, r.agency)
            for p in protocols
            if shape is None or p.id.endswith("-nested-lists") == shape
            for r in p.recipients
        }
        assert wanted <= shared, sorted(wanted - shared)
