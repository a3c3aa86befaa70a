"""Official code lists the local authority's case system sends, each mapped to a category.

A code list is data: its codes, the category infoshare publishes beside each code, the
label the official guide gives it, and where the list comes from. The lists themselves
are in :mod:`.cin_census` (Department for Education children in need census) and
:mod:`.ssda903` (DfE children looked after return). Categories are infoshare's own
groupings, so a recipient can act on ``category`` without learning every code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Code:
    code: str
    category: str
    label: str


@dataclass(frozen=True)
class CodeList:
    """One official code list. ``rule`` names it in a 422 when a code is not on it."""

    name: str
    rule: str
    source: str
    codes: Mapping[str, Code] = field(repr=False)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __iter__(self) -> Iterator[Code]:
        return iter(self.codes.values())

    def __len__(self) -> int:
        return len(self.codes)

    def get(self, code: str) -> Code:
        """The entry for ``code`` (already normalised); KeyError if it is not on the list."""
        return self.codes[code]

    @property
    def categories(self) -> list[str]:
        """Every category, each once, in the order the list first uses it."""
        return list(dict.fromkeys(c.category for c in self))

    def canonical(self, code: str) -> dict[str, str]:
        """The ``{"code", "category"}`` object canonical events carry for ``code``."""
        entry = self.get(code)
        return {"code": entry.code, "category": entry.category}


def normalise_code(raw: str) -> str:
    """Codes as people and exports type them: ``" 3e "`` is ``3E``."""
    return raw.strip().upper()


def code_list(
    *, name: str, rule: str, source: str, rows: Iterable[tuple[str, str, str]]
) -> CodeList:
    """A code list from ``(code, category, label)`` rows; a repeated code is a bug here."""
    codes: dict[str, Code] = {}
    for code, category, label in rows:
        if code in codes or code != normalise_code(code):
            raise ValueError(f"{name}: code {code!r} is repeated or not in normal form")
        codes[code] = Code(code, category, label)
    return CodeList(name=name, rule=rule, source=source, codes=codes)
