"""The part of CEL that sharing protocols use, compiled to Python closures with CEL's
semantics; anything outside it is left to the CEL library.

Evaluating a condition through the library costs about 14 µs, most of it converting the
event on every call; a closure over the same expression costs about 1 µs. The subset:
``event``, ``state`` and ``recipient``; field selection; ``has()``; ``!``, ``&&``, ``||``,
``==``, ``!=``; ``.startsWith()``; parentheses; string literals without escapes, decimal
integers, ``true``, ``false`` and ``null``. ``compile_subset`` gives None for anything else
(a ternary, ``in``, a macro, an escape in a string ...), and the caller evaluates with CEL.

CEL's semantics kept here, each checked against the library by a property test:
- selecting a field a map lacks, or selecting on a non-map, is an error;
- ``has(a.b)`` is an error when ``a`` is, or is not a map;
- ``&&`` and ``||`` absorb an error when the other side decides (``false && error`` is
  false, ``error || true`` is true), in either order;
- ``==`` compares across numeric types, never a bool with a number, and lists and maps
  element by element;
- ``!`` and ``startsWith`` on the wrong type are errors.

Pure: no I/O, nothing at import time beyond compiling one regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Evaluator = Callable[[Mapping[str, Any], Mapping[str, Any], str], Any]
_Node = Callable[[tuple[Any, Any, str]], Any]


class _Error:
    """CEL's error value: it flows through expressions instead of raising."""

    __slots__ = ()


ERROR: Any = _Error()

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"[^"\\\n]*"|'[^'\\\n]*')
    | (?P<int>[0-9]+(?![0-9A-Za-z_.]))
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>&&|\|\||==|!=|[!().,])
    )""",
    re.VERBOSE,
)
_VARIABLES = {"event": 0, "state": 1, "recipient": 2}
_RESERVED = frozenset(
    {"in", "as", "break", "const", "continue", "else", "for", "function", "if", "import",
     "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)  # fmt: skip
_INT64 = 2**63


class _Outside(Exception):
    """The expression uses something outside the subset."""


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if match is None or match.lastgroup is None:
            raise _Outside
        out.append((match.lastgroup, match[match.lastgroup]))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, text: str) -> bool:
        if self.peek() == ("op", text):
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise _Outside

    def whole(self) -> _Node:
        node = self.disjunction()
        if self.peek()[0] != "end":
            raise _Outside
        return node

    def disjunction(self) -> _Node:
        operands = [self.conjunction()]
        while self.take("||"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else _logical(operands, decisive=True)

    def conjunction(self) -> _Node:
        operands = [self.relation()]
        while self.take("&&"):
            operands.append(self.relation())
        return operands[0] if len(operands) == 1 else _logical(operands, decisive=False)

    def relation(self) -> _Node:
        node = self.unary()
        for op, negate in (("==", False), ("!=", True)):
            if self.take(op):
                node = _equals(node, self.unary(), negate)
                break
        if self.peek() in (("op", "=="), ("op", "!=")):
            raise _Outside  # a chained relation: rare, and left to CEL
        return node

    def unary(self) -> _Node:
        if self.take("!"):
            if self.peek() == ("op", "!"):
                raise _Outside  # CEL folds !!x at parse time; leave it to CEL
            return _not(self.member())
        return self.member()

    def member(self) -> _Node:
        node = self.primary()
        while self.take("."):
            kind, name = self.peek()
            if kind != "ident" or name in _RESERVED:
                raise _Outside
            self.at += 1
            if self.take("("):
                if name != "startsWith":
                    raise _Outside
                argument = self.disjunction()
                self.expect(")")
                node = _starts_with(node, argument)
            else:
                node = _select(node, name)
        return node

    def primary(self) -> _Node:
        kind, text = self.peek()
        self.at += 1
        if kind == "str":
            return _constant(text[1:-1])
        if kind == "int":
            value = int(text)
            if value >= _INT64:
                raise _Outside
            return _constant(value)
        if kind == "ident":
            if text in ("true", "false", "null"):
                return _constant({"true": True, "false": False, "null": None}[text])
            if text == "has" and self.take("("):
                return self.has()
            if text in _VARIABLES:
                index = _VARIABLES[text]
                return lambda env: env[index]
            raise _Outside
        if (kind, text) == ("op", "("):
            node = self.disjunction()
            self.expect(")")
            return node
        raise _Outside

    def has(self) -> _Node:
        target = self.member_path()
        self.expect(")")
        return target

    def member_path(self) -> _Node:
        """``has()``'s argument: a field selection, whose last field is tested, not read."""
        kind, name = self.peek()
        if kind != "ident" or name not in _VARIABLES:
            raise _Outside
        self.at += 1
        index = _VARIABLES[name]
        node: _Node = lambda env: env[index]  # noqa: E731
        fields: list[str] = []
        while self.take("."):
            kind, field = self.peek()
            if kind != "ident" or field in _RESERVED:
                raise _Outside
            self.at += 1
            fields.append(field)
        if not fields:
            raise _Outside
        for field in fields[:-1]:
            node = _select(node, field)
        return _has(node, fields[-1])


def _constant(value: Any) -> _Node:
    return lambda _env: value


def _select(node: _Node, name: str) -> _Node:
    def select(env: tuple[Any, Any, str]) -> Any:
        value = node(env)
        if type(value) is dict or isinstance(value, Mapping):
            return value.get(name, ERROR)
        return ERROR

    return select


def _has(node: _Node, name: str) -> _Node:
    def has(env: tuple[Any, Any, str]) -> Any:
        value = node(env)
        if type(value) is dict or isinstance(value, Mapping):
            return name in value
        return ERROR

    return has


def _not(node: _Node) -> _Node:
    def negate(env: tuple[Any, Any, str]) -> Any:
        value = node(env)
        return (not value) if type(value) is bool else ERROR

    return negate


def _logical(operands: list[_Node], decisive: bool) -> _Node:
    """``&&`` (decisive False) or ``||`` (decisive True) over a chain, in a loop (a chain of
    a thousand terms must not recurse a thousand deep): any operand equal to the decisive
    value decides, whatever the others are (errors included); otherwise all must be the
    other bool, or the result is an error."""
    other = not decisive
    chain = tuple(operands)

    def combine(env: tuple[Any, Any, str]) -> Any:
        result = other
        for operand in chain:
            value = operand(env)
            if value is decisive:
                return decisive
            if value is not other:
                result = ERROR
        return result

    return combine


def _starts_with(node: _Node, argument: _Node) -> _Node:
    def starts_with(env: tuple[Any, Any, str]) -> Any:
        text, prefix = node(env), argument(env)
        if type(text) is str and type(prefix) is str:
            return text.startswith(prefix)
        return ERROR

    return starts_with


def _equals(left: _Node, right: _Node, negate: bool) -> _Node:
    def equals(env: tuple[Any, Any, str]) -> Any:
        a, b = left(env), right(env)
        if a is ERROR or b is ERROR:
            return ERROR
        same = cel_equal(a, b)
        return same if same is ERROR else same is not negate

    return equals


_NUMBERS = (int, float)


def cel_equal(a: Any, b: Any) -> Any:
    """CEL's heterogeneous equality over JSON-like values: True, False or ERROR."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS):
        if type(a) is not type(b):  # CEL compares an int with a double as doubles
            return float(a) == float(b)
        return a == b
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        return _all_equal(zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if a.keys() != b.keys():
            return False
        return _all_equal((a[k], b[k]) for k in a)
    return False


def _all_equal(pairs: Any) -> Any:
    for x, y in pairs:
        same = cel_equal(x, y)
        if same is not True:
            return same
    return True


def compile_subset(source: str) -> Evaluator | None:
    """A closure ``(event, state, recipient) -> value`` for ``source``, or None if it uses
    anything outside the subset. A value that is not a bool means the condition cannot be
    evaluated for that event, as with CEL's error values."""
    try:
        node = _Parser(_tokens(source)).whole()
    except (_Outside, IndexError):
        return None

    def evaluate(event: Mapping[str, Any], state: Mapping[str, Any], recipient: str) -> Any:
        return node((event, state, recipient))

    return evaluate
