"""Apply a recipient's field rules to event data. Allow-list: what no rule names is dropped.

Rules name dotted JSON paths, arrays included (``codes[*].code``). Every value placed in
the output is a copy, so the input is never changed and no two recipients' payloads share
an object. Field lists name paths, never values.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from consent.core.generalise import TransformError, generalise, mask
from consent.core.model import FieldRule, Generalisation, RuleKind
from consent.core.paths import covering_paths, get_path, leaf_paths, route, set_path

__all__ = ["Projection", "TransformError", "get_path", "leaf_paths", "project", "set_path"]
Keyed = Callable[[str, str], str]  # (path, value) -> pseudonym or token


@dataclass(slots=True)
class Projection:
    payload: dict[str, Any]
    disclosed: tuple[str, ...]
    pseudonymised: tuple[str, ...]
    withheld: tuple[str, ...]
    tokenised: tuple[str, ...] = ()
    encrypted: tuple[str, ...] = ()


def _refuse(_path: str, _value: str) -> str:
    raise TransformError("no key is configured for this rule")


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _copy(_path: str, value: Any) -> Any:
    """An allowed value, copied: most are scalars, which are immutable."""
    return value if type(value) in _ATOMIC else copy.deepcopy(value)


@functools.lru_cache(maxsize=4096)
def _withheld(leaves: tuple[str, ...], taken: frozenset[str]) -> tuple[str, ...]:
    """The leaves no consumed rule path covers. Cached: an event type's leaves and a
    recipient's rules are few, and both are field names, never values."""
    return tuple(p for p in leaves if taken.isdisjoint(covering_paths(p)))


# Where a rule's target is listed: allow, mask and generalise are disclosed (in rule order).
_DISCLOSED, _PSEUDONYMISED, _TOKENISED, _ENCRYPTED = range(4)
_SLOTS = {
    RuleKind.ALLOW: _DISCLOSED,
    RuleKind.MASK: _DISCLOSED,
    RuleKind.GENERALISE: _DISCLOSED,
    RuleKind.PSEUDONYMISE: _PSEUDONYMISED,
    RuleKind.TOKENISE: _TOKENISED,
    RuleKind.ENCRYPT: _ENCRYPTED,
}
# Each kind as a small int: comparing enum members costs a descriptor call each in 3.11.
# From _KEYED_FROM on, the int picks the keyed transform (pseudonymise, tokenise, encrypt).
_ALLOW, _MASK, _GENERALISE, _KEYED_FROM = 0, 1, 2, 3
_CODES = {
    RuleKind.ALLOW: _ALLOW,
    RuleKind.MASK: _MASK,
    RuleKind.GENERALISE: _GENERALISE,
    RuleKind.PSEUDONYMISE: _KEYED_FROM,
    RuleKind.TOKENISE: _KEYED_FROM + 1,
    RuleKind.ENCRYPT: _KEYED_FROM + 2,
}


class CompiledRules:
    """A recipient's field rules compiled once (when its protocol loads): each rule's route
    parsed, its kind and target fixed. ``project`` then costs a walk per rule and nothing
    else per event."""

    __slots__ = ("steps",)

    def __init__(self, rules: tuple[FieldRule, ...]) -> None:
        self.steps = tuple(
            (route(r.path, r.target), _SLOTS[r.kind], r.target, _CODES[r.kind], r.to) for r in rules
        )

    def project(
        self,
        data: Mapping[str, Any],
        *,
        pseudonymise: Keyed,
        tokenise: Keyed = _refuse,
        encrypt: Keyed = _refuse,
        on: date | None = None,
        leaves: tuple[str, ...] | None = None,
    ) -> Projection:
        """Apply the rules to ``data``; see ``project``."""
        when = on or date.today()
        payload: dict[str, Any] = {}
        consumed: list[str] = []
        lists: tuple[list[str], ...] = ([], [], [], [])
        keyed = (pseudonymise, tokenise, encrypt)
        for way, slot, target, code, to in self.steps:
            if code == _ALLOW:
                fn: Callable[[str, Any], Any] = _copy
            elif code == _MASK:
                fn = _mask
            elif code == _GENERALISE:
                fn = _generaliser(to, when)
            else:
                fn = _keyed(keyed[code - _KEYED_FROM])
            if way.apply(data, payload, fn):
                consumed.append(way.path)
                lists[slot].append(target)
        all_leaves = leaves if leaves is not None else tuple(leaf_paths(data))
        return Projection(
            payload=payload,
            disclosed=tuple(lists[_DISCLOSED]),
            pseudonymised=tuple(lists[_PSEUDONYMISED]),
            withheld=_withheld(all_leaves, frozenset(consumed)),
            tokenised=tuple(lists[_TOKENISED]),
            encrypted=tuple(lists[_ENCRYPTED]),
        )

    def outline(
        self,
        data: Mapping[str, Any],
        *,
        pseudonymise: Keyed,
        tokenise: Keyed,
        encrypt: Keyed,
        on: date | None = None,
    ) -> Projection:
        """What ``project`` would list, without building the payload: each rule's path is
        only followed, except a generalisation's, which is applied (it can fail on a
        value). A keyed transform is called once, with an empty value, per rule that finds
        a value (it can fail for want of a key). No payload; ``withheld`` is not worked out.
        For dry runs."""
        when = on or date.today()
        lists: tuple[list[str], ...] = ([], [], [], [])
        scratch: dict[str, Any] = {}
        keyed = (pseudonymise, tokenise, encrypt)
        for way, slot, target, code, to in self.steps:
            if code == _GENERALISE:
                found = way.apply(data, scratch, _generaliser(to, when))
            else:
                found = way.reaches(data)
                if found and code >= _KEYED_FROM:
                    keyed[code - _KEYED_FROM](way.path, "")
            if found:
                lists[slot].append(target)
        return Projection(
            payload={},
            disclosed=tuple(lists[_DISCLOSED]),
            pseudonymised=tuple(lists[_PSEUDONYMISED]),
            withheld=(),
            tokenised=tuple(lists[_TOKENISED]),
            encrypted=tuple(lists[_ENCRYPTED]),
        )


def _mask(_path: str, value: Any) -> str:
    return mask(value)


def _keyed(transform: Keyed) -> Callable[[str, Any], Any]:
    return lambda p, v: transform(p, str(v))


def _generaliser(to: Generalisation | None, when: date) -> Callable[[str, Any], Any]:
    assert to is not None  # the loader requires a generalisation's ``to``
    return lambda _p, v: generalise(v, to, on=when)


@functools.lru_cache(maxsize=1024)
def compiled(rules: tuple[FieldRule, ...]) -> CompiledRules:
    """``rules`` compiled, for callers that hold rules rather than a plan (cached)."""
    return CompiledRules(rules)


def project(
    data: Mapping[str, Any],
    rules: tuple[FieldRule, ...],
    *,
    pseudonymise: Keyed,
    tokenise: Keyed = _refuse,
    encrypt: Keyed = _refuse,
    on: date | None = None,
    leaves: tuple[str, ...] | None = None,
) -> Projection:
    """Apply ``rules`` to ``data``. ``pseudonymise`` and ``tokenise`` are the recipient's
    keyed transforms; ``on`` is the date age bands are computed for (the event's date);
    ``leaves`` is ``leaf_paths(data)`` when the caller has it already (one event, many
    recipients)."""
    return compiled(rules).project(
        data, pseudonymise=pseudonymise, tokenise=tokenise, encrypt=encrypt, on=on, leaves=leaves
    )
