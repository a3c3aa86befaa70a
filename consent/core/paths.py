"""Dotted JSON paths into event data, arrays included: ``attendance.codes[*].code``.

A ``[*]`` segment means every element of an array. Reading and writing walk the source and
the output in lockstep, so element *i* of an output array comes from element *i* of the
input array. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MISSING: Any = object()
Segment = tuple[str, bool]  # (name, is it an array whose every element is visited)
_MAPS = (dict, Mapping)  # dict first: JSON gives dicts, and the ABC check is slow


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

    def apply(self, src: Any, out: dict[str, Any], fn: Callable[[str, Any], Any]) -> bool:
        return self._walk(src, out, self.prefix, fn)

    def _walk(
        self, src: Any, out: Any, prefix: tuple[Segment, ...], fn: Callable[[str, Any], Any]
    ) -> bool:
        if not prefix:
            value = _get(src, self.src)
            if value is MISSING:
                return False
            _set(out, self.dst, fn(self.path, value))
            return True
        (name, is_array), rest = prefix[0], prefix[1:]
        if not isinstance(src, _MAPS) or name not in src:
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


@functools.lru_cache(maxsize=8192)
def route(path: str, target: str) -> Route:
    """Cached: rule paths are few and name fields, never values."""
    head, src_tail = split_at_last_array(path)
    _, dst_tail = split_at_last_array(target)
    return Route(
        path,
        tuple(segments(head)) if head else (),
        tuple(src_tail.split(".")),
        tuple(dst_tail.split(".")),
        ends_in_array=not src_tail,
    )


def _get(node: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(node, _MAPS) or part not in node:
            return MISSING
        node = node[part]
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
    if isinstance(node, _MAPS) and node:
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
