"""Load YAML and remember the line of every value, so problems name ``file:line``.

PyYAML's composer keeps each node's start mark; this builds plain Python values from the
node tree and a map from each value's path (a tuple of keys and indexes) to its line.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present


@dataclass
class Marked:
    """A document and the 1-based line of each path in it."""

    value: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


class StrictYamlError(ValueError):
    """YAML that is valid but not allowed here; ``line`` says where."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], loader: Any, seen: set[int]) -> Any:
    line = node.start_mark.line + 1
    if id(node) in seen:  # the composer resolves an alias to the node it names
        raise StrictYamlError("anchors and aliases are not allowed in protocols", line)
    seen.add(id(node))
    lines[path] = line
    if isinstance(node, yaml.MappingNode):
        out: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise StrictYamlError("a key must be a plain value", key_line)
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                # PyYAML would keep the last value silently; a second `when:` or `fields:`
                # would then change what is shared without anyone reading it.
                raise StrictYamlError(f"key {key!r} appears twice", key_line)
            lines[(*path, key)] = key_line
            out[key] = _build(value_node, (*path, key), lines, loader, seen)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, loader, seen) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_marked(text: str) -> Marked:
    """Parse one YAML document; yaml.YAMLError (with its own line) if it is not YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Marked(None)
        lines: dict[Path, int] = {}
        return Marked(_build(node, (), lines, loader, set()), lines)
    finally:
        loader.dispose()
