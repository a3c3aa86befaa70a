"""Dotted JSON paths into event data, arrays included: ``attendance.codes[*].code``.

A ``[*]`` segment means every element of an array. Reading and writing walk the source and
the output in lockstep, so element *i* of an output array comes from element *i* of the
input array. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = object()
Segment = tuple[str, bool]  # (name, is it an array whose every element is visited)
# JSON gives dicts and these; only anything else needs the (slow) Mapping ABC check.
_PLAIN = frozenset({str, int, float, bool, type(None), list, tuple})


def is_map(node: Any) -> bool:
    """Whether ``node`` is a mapping: a dict at once, a plain JSON value at once, anything
    else by the ABC (most nodes are dicts or strings, and the ABC check costs ten times)."""
    kind = type(node)
    return kind is dict or (kind not in _PLAIN and isinstance(node, Mapping))


def segments(path: str) -> list[Segment]:
    return [(p[:-3], True) if p.endswith("[*]") else (p, False) for p in path.split(".")]


def split_at_last_array(path: str) -> tuple[str, str]:
    """(the part up to and including the last ``[*]``, the rest): ``a[*].b`` -> (a[*], b)."""
    if "[*]" not in path:
        return "", path
    head, tail = path.rsplit("[*]", 1)
    return head + "[*]", tail.lstrip(".")


def get_path(data: Any, path: str) -> Any:
    """The value at a path without arrays, or MISSING."""
    return _get(data, tuple(path.split(".")))


def set_path(out: dict[str, Any], path: str, value: Any) -> None:
    _set(out, tuple(path.split(".")), value)


def apply(
    src: Any, out: dict[str, Any], path: str, target: str, fn: Callable[[str, Any], Any]
) -> bool:
    """Write ``fn(path, value)`` at ``target`` for every value ``path`` reaches; True if any.

    ``path`` and ``target`` must share everything up to their last ``[*]`` (the loader
    checks), so arrays stay aligned; only the part after it may be renamed.
    """
    return route(path, target).apply(src, out, fn)


@dataclass(frozen=True)
class Route:
    """A rule's path and target, split once: the array prefix they share, and the parts of
    the source and target after it."""

    path: str
    prefix: tuple[Segment, ...]
    src: tuple[str, ...]
    dst: tuple[str, ...]
    ends_in_array: bool  # the path ends in ``[*]``: the array's elements are the values
    get: Callable[[Any], Any] = field(compare=False, repr=False)  # ``src`` from a node

    def apply(self, src: Any, out: dict[str, Any], fn: Callable[[str, Any], Any]) -> bool:
        return self._walk(src, out, self.prefix, fn)

    def reaches(self, src: Any) -> bool:
        """Whether ``apply`` would find a value, without writing anything."""
        if not self.prefix:
            return self.get(src) is not MISSING
        return self._walk(src, {}, self.prefix, _nothing)

    def _walk(
        self, src: Any, out: Any, prefix: tuple[Segment, ...], fn: Callable[[str, Any], Any]
    ) -> bool:
        if not prefix:
            value = self.get(src)
            if value is MISSING:
                return False
            _set(out, self.dst, fn(self.path, value))
            return True
        (name, is_array), rest = prefix[0], prefix[1:]
        if not is_map(src) or name not in src:
            return False
        child = src[name]
        if not is_array:
            return self._walk(child, out.setdefault(name, {}), rest, fn)
        if not isinstance(child, list):
            return False
        items = out.setdefault(name, [None] * len(child))
        found = False
        scalars = not rest and self.ends_in_array
        for i, element in enumerate(child):
            if scalars:
                items[i] = fn(self.path, element)
                found = True
                continue
            if items[i] is None:
                items[i] = {}
            found |= self._walk(element, items[i], rest, fn)
        return found


def _nothing(_path: str, _value: Any) -> None:
    return None


@functools.lru_cache(maxsize=8192)
def route(path: str, target: str) -> Route:
    """Cached: rule paths are few and name fields, never values."""
    head, src_tail = split_at_last_array(path)
    _, dst_tail = split_at_last_array(target)
    parts = tuple(src_tail.split("."))
    return Route(
        path,
        tuple(segments(head)) if head else (),
        parts,
        tuple(dst_tail.split(".")),
        ends_in_array=not src_tail,
        get=_getter(parts),
    )


def _getter(parts: tuple[str, ...]) -> Callable[[Any], Any]:
    """``_get`` for one path, unrolled for the depths rules use (one to three fields) when
    every node is a dict; anything else takes the general way."""
    if len(parts) == 1:
        (a,) = parts

        def get1(node: Any) -> Any:
            return node.get(a, MISSING) if type(node) is dict else _get(node, parts)

        return get1
    if len(parts) == 2:
        a, b = parts

        def get2(node: Any) -> Any:
            if type(node) is dict:
                child = node.get(a, MISSING)
                if type(child) is dict:
                    return child.get(b, MISSING)
                if child is MISSING:
                    return MISSING
            return _get(node, parts)

        return get2
    if len(parts) == 3:
        a, b, c = parts

        def get3(node: Any) -> Any:
            if type(node) is dict:
                child = node.get(a, MISSING)
                if type(child) is dict:
                    grandchild = child.get(b, MISSING)
                    if type(grandchild) is dict:
                        return grandchild.get(c, MISSING)
                    if grandchild is MISSING:
                        return MISSING
                elif child is MISSING:
                    return MISSING
            return _get(node, parts)

        return get3
    return lambda node: _get(node, parts)


def _get(node: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if type(node) is dict:  # nearly always: JSON objects
            node = node.get(part, MISSING)
            if node is MISSING:
                return MISSING
        elif is_map(node) and part in node:
            node = node[part]
        else:
            return MISSING
    return node


def _set(out: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every leaf's path, arrays as ``[*]``, each path once, in document order."""
    found: list[str] = []
    _leaves(data, prefix, found)
    return list(dict.fromkeys(found))


def _leaves(node: Any, prefix: str, found: list[str]) -> None:
    # A list, not a generator: this runs on every event, and a generator costs a frame
    # per level per leaf.
    if is_map(node) and node:
        for key, value in node.items():
            _leaves(value, f"{prefix}.{key}" if prefix else str(key), found)
    elif isinstance(node, list) and node:
        inner = f"{prefix}[*]"
        for element in node:
            _leaves(element, inner, found)
    elif prefix:  # an empty document has no leaves
        found.append(prefix)


@functools.lru_cache(maxsize=8192)
def covering_paths(leaf: str) -> frozenset[str]:
    """Every rule path that covers ``leaf``: the leaf itself and each of its ancestors
    (``a``, ``a.b``, ``a.b[*]`` ... of ``a.b[*].c``). A leaf is covered by a set of rule
    paths when the two meet: one set operation instead of a ``covers`` per rule. Cached:
    an event type's leaf paths are few, and names of fields, never values."""
    cut = [i for i, ch in enumerate(leaf) if ch in ".["]
    return frozenset([leaf, *(leaf[:i] for i in cut)])


def covers(rule_path: str, leaf: str) -> bool:
    """Whether a rule on ``rule_path`` takes care of ``leaf`` (itself or anything inside)."""
    return leaf == rule_path or leaf.startswith(rule_path + ".") or leaf.startswith(rule_path + "[")
