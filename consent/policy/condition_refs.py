"""The fields a recipient condition reads, taken from the CEL library's own checked syntax
tree (not from the text), so ``has()`` arguments, macros and brackets count as well.

The library hands the tree over as a serialised ``cel.expr.CheckedExpr`` protocol buffer
(``cel/expr/checked.proto`` and ``syntax.proto`` in cel-spec); Python has no generated
classes for it, so the few messages needed are read here from the wire format. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator

from consent.core.conditions import Condition

# Field numbers from cel-spec's syntax.proto and checked.proto.
_ANY_VALUE, _CHECKED_EXPR = 2, 4
_CONST, _IDENT, _SELECT, _CALL, _LIST, _STRUCT, _COMPREHENSION = 3, 4, 5, 6, 7, 8, 9
_STRING, _INT = 6, 3  # Constant.string_value, Constant.int64_value
_INDEX = "_[_]"
ROOTS = frozenset({"event", "state"})
Fields = dict[int, list[bytes | int]]
Path = tuple[str, ...]
Scope = dict[str, Path | None]  # comprehension variables: the path each one stands for


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(buf: bytes) -> Fields:
    """One message's fields by number: varints as ints, length-delimited ones as bytes."""
    out: Fields = {}
    at = 0
    while at < len(buf):
        key, at = _varint(buf, at)
        wire = key & 7
        value: bytes | int
        if wire == 0:
            value, at = _varint(buf, at)
        elif wire == 2:
            size, at = _varint(buf, at)
            value, at = buf[at : at + size], at + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = buf[at : at + size], at + size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        out.setdefault(key >> 3, []).append(value)
    return out


def _one(fields: Fields, number: int) -> bytes:
    value = fields.get(number, [b""])[0]
    return value if isinstance(value, bytes) else b""


def _text(fields: Fields, number: int) -> str:
    return _one(fields, number).decode()


def _path(expr: bytes, bound: Scope) -> Path | None:
    """``event.data.a.b`` as ("event", "data", "a", "b"): an identifier of a variable (or a
    comprehension variable over such a path) followed by selections and constant indexes."""
    fields = _fields(expr)
    if _IDENT in fields:
        name = _text(_fields(_one(fields, _IDENT)), 1)
        return bound.get(name, (name,) if name in ROOTS else None)
    if _SELECT in fields:
        select = _fields(_one(fields, _SELECT))
        base = _path(_one(select, 1), bound)
        return None if base is None else (*base, _text(select, 2))
    if _CALL in fields:
        call = _fields(_one(fields, _CALL))
        args = [a for a in call.get(3, []) if isinstance(a, bytes)]
        if _text(call, 2) != _INDEX or len(args) != 2:
            return None
        base, key = _path(args[0], bound), _fields(args[1])
        constant = _fields(_one(key, _CONST)) if _CONST in key else {}
        if base is None or not constant:
            return None
        if _STRING in constant:
            return (*base, _text(constant, _STRING))
        return _element(base) if _INT in constant else None
    return None


def _element(path: Path | None) -> Path | None:
    """An element of the list at ``path``: ``event.data.reasons[*]``."""
    if path is None or len(path) < 3:  # only a field of event.data or state is a list
        return None
    return (*path[:-1], path[-1] + "[*]")


def _children(fields: Fields, bound: Scope) -> Iterator[tuple[bytes, Scope]]:
    """The sub-expressions of one node, each with the comprehension variables in scope."""
    exprs: list[bytes] = []
    if _SELECT in fields:
        exprs.append(_one(_fields(_one(fields, _SELECT)), 1))
    elif _CALL in fields:
        call = _fields(_one(fields, _CALL))
        exprs += [a for n in (1, 3) for a in call.get(n, []) if isinstance(a, bytes)]
    elif _LIST in fields:
        exprs += [e for e in _fields(_one(fields, _LIST)).get(1, []) if isinstance(e, bytes)]
    elif _STRUCT in fields:
        for entry in _fields(_one(fields, _STRUCT)).get(2, []):
            parts = _fields(entry) if isinstance(entry, bytes) else {}
            exprs += [p for n in (3, 4) for p in parts.get(n, []) if isinstance(p, bytes)]
    elif _COMPREHENSION in fields:
        loop = _fields(_one(fields, _COMPREHENSION))
        over = _path(_one(loop, 2), bound)
        inner = {**bound, _text(loop, 3): None}  # the accumulator is no event field
        # Over a list, the variable is an element: `items.exists(i, i.code == "x")`.
        inner[_text(loop, 1)] = _element(over)
        if _text(loop, 8):
            inner[_text(loop, 8)] = None
        yield _one(loop, 2), bound
        yield _one(loop, 4), bound
        for number in (5, 6, 7):
            yield _one(loop, number), inner
    for expr in exprs:
        yield expr, bound


def _walk(expr: bytes, bound: Scope, out: list[Path]) -> None:
    if not expr:
        return
    fields = _fields(expr)
    if _IDENT in fields and _text(_fields(_one(fields, _IDENT)), 1) in bound:
        return  # a comprehension variable alone: its range is named where it is given
    path = _path(expr, bound)
    if path is not None:
        out.append(path)
        return
    for child, scope in _children(fields, bound):
        _walk(child, scope, out)


def referenced_paths(condition: Condition) -> list[str]:
    """Every field path under ``event`` or ``state`` that ``condition`` reads or tests (each
    selection chain whole, in order, once): ``event.data.subject.nhs_number``,
    ``state.protection_plan``, ``event.data.reasons[*].code``."""
    # The program the condition was compiled to serialises its checked tree in an Any.
    checked = _one(_fields(condition.checked_expression()), _ANY_VALUE)
    out: list[Path] = []
    _walk(_one(_fields(checked), _CHECKED_EXPR), {}, out)
    return list(dict.fromkeys(".".join(p) for p in out))
