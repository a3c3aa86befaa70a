"""Recipient conditions in CEL (Common Expression Language), over the event and the
processor's subject state. Compiled and type-checked once when protocols load.

Variables:
- ``event``: ``{"type", "source", "data"}`` (the canonical event; ``data`` per its schema);
- ``state``: the subject's state, e.g. ``state.protection_plan`` with ``authority``,
  ``plan_id``, ``category`` and ``start_date`` while a plan is active (absent otherwise);
- ``recipient``: the recipient agency id being decided for.

An expression that fails at run time (a field absent from this event, say) does not hold:
the recipient is withheld from, never shared with by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel

from consent.core.cel_subset import Evaluator, compile_subset

_ENV: Any = None


def _env() -> Any:
    global _ENV  # built on first use, never at import
    if _ENV is None:
        _ENV = cel.NewEnv(
            variables={"event": cel.Type.DYN, "state": cel.Type.DYN, "recipient": cel.Type.STRING}
        )
    return _ENV


class ConditionError(ValueError):
    """A condition that does not compile, or does not give a boolean."""


@dataclass(frozen=True)
class Condition:
    source: str
    _program: Any = field(repr=False, compare=False)
    # The same expression as Python closures when it stays within the subset protocols use
    # (consent/core/cel_subset.py): about 1 µs instead of 14. None: CEL evaluates it.
    _fast: Evaluator | None = field(default=None, repr=False, compare=False)

    @classmethod
    def compile(cls, source: str) -> Condition:
        try:
            program = _env().compile(source)
        except RuntimeError as exc:
            message = str(exc).removeprefix("INVALID_ARGUMENT: ").split("\n")[0]
            raise ConditionError(message) from None
        if program.return_type().name() not in ("bool", "BOOL", "dyn", "DYN"):
            raise ConditionError(f"gives {program.return_type().name()}, not a boolean")
        return cls(source, program, compile_subset(source))

    @property
    def compiled_to_python(self) -> bool:
        return self._fast is not None

    def checked_expression(self) -> Any:
        """The CEL library's own checked expression, serialised: what the fields a condition
        names are read from (consent/policy/condition_refs.py)."""
        return self._program.serialize()

    def holds(
        self, *, event: Mapping[str, Any], state: Mapping[str, Any], recipient: str
    ) -> bool | None:
        """True or False; None if it cannot be evaluated for this event (counts as False)."""
        if self._fast is not None:
            value = self._fast(event, state, recipient)
            return value if type(value) is bool else None
        return self.holds_in_cel(event=event, state=state, recipient=recipient)

    def holds_in_cel(
        self, *, event: Mapping[str, Any], state: Mapping[str, Any], recipient: str
    ) -> bool | None:
        """``holds`` as the CEL library evaluates it, whatever the expression."""
        result = self._program.eval(data={"event": event, "state": state, "recipient": recipient})
        value = result.value()
        return value if isinstance(value, bool) else None
