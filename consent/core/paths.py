"""Dotted JSON paths into event data, arrays included: ``attendance.codes[*].code``.

A ``[*]`` segment means every element of an array. Reading and writing walk the source and
the output in lockstep, so element *i* of an output array comes from element *i* of the
input array. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

MISSING: Any = object()
Segment = tuple[str, bool]  # (name, is it an array whose every element is visited)


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
    node = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def set_path(out: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def apply(
    src: Any, out: dict[str, Any], path: str, target: str, fn: Callable[[str, Any], Any]
) -> bool:
    """Write ``fn(path, value)`` at ``target`` for every value ``path`` reaches; True if any.

    ``path`` and ``target`` must share everything up to their last ``[*]`` (the loader
    checks), so arrays stay aligned; only the part after it may be renamed.
    """
    head, src_tail = split_at_last_array(path)
    _, dst_tail = split_at_last_array(target)
    return _walk(src, out, segments(head) if head else [], src_tail, dst_tail, path, fn)


def _walk(
    src: Any,
    out: Any,
    prefix: list[Segment],
    src_tail: str,
    dst_tail: str,
    path: str,
    fn: Callable[[str, Any], Any],
) -> bool:
    if not prefix:
        value = get_path(src, src_tail)
        if value is MISSING:
            return False
        set_path(out, dst_tail, fn(path, value))
        return True
    (name, is_array), rest = prefix[0], prefix[1:]
    if not isinstance(src, Mapping) or name not in src:
        return False
    child = src[name]
    if not is_array:
        return _walk(child, out.setdefault(name, {}), rest, src_tail, dst_tail, path, fn)
    if not isinstance(child, list):
        return False
    items = out.setdefault(name, [None] * len(child))
    found = False
    for i, element in enumerate(child):
        if not rest and not src_tail:  # an array of scalars: the element is the value
            items[i] = fn(path, element)
            found = True
            continue
        if items[i] is None:
            items[i] = {}
        found |= _walk(element, items[i], rest, src_tail, dst_tail, path, fn)
    return found


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every leaf's path, arrays as ``[*]``, each path once, in document order."""
    seen: set[str] = set()
    for path in _leaves(data, prefix):
        if path not in seen:
            seen.add(path)
            yield path


def _leaves(node: Any, prefix: str) -> Iterator[str]:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node:
        for element in node:
            yield from _leaves(element, f"{prefix}[*]")
    elif prefix:  # an empty document has no leaves
        yield prefix


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
