"""Read a MIS CSV export (SIMS, Arbor, Bromcom) into a header and rows. Pure, no I/O.

What real exports do, and what this reader does about it:
- UTF-8 with or without a byte order mark (Excel's "CSV UTF-8"), else Windows-1252 (Excel's
  plain "CSV" on Windows): both are read; anything else is refused;
- CRLF or LF line ends, quoted fields holding commas, quotes or line breaks (RFC 4180);
- blank lines anywhere are skipped; empty cells after the last column are ignored;
- header names match whatever their case, spacing and punctuation (``Legal_Surname``,
  ``legal surname``), through documented aliases; unknown columns are ignored.

Every problem is an :class:`InputRejected` naming the row (its line in the file, the
header being line 1) and the column by its documented name, never a cell's value.
Over-large uploads raise :class:`UploadTooLarge` (HTTP 413).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.backbone.errors import InputRejected, InputTooLarge

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000


class UploadTooLarge(InputTooLarge):
    """An upload over :data:`MAX_BYTES` or :data:`MAX_ROWS`: refused whole, unread."""


def too_large_bytes() -> UploadTooLarge:
    return UploadTooLarge(["body"], "the upload is larger than 5 MB", "upload.too_large")


@dataclass(frozen=True)
class Column:
    """A column a parser reads: its documented header and the headers that also mean it."""

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = False

    def matches(self, header: str) -> bool:
        return header == normalise_header(self.name) or header in self.aliases


@dataclass(frozen=True)
class Row:
    number: int  # the line it starts on (the header is line 1 when the file starts with it)
    cells: tuple[str, ...]

    def cell(self, index: int | None) -> str:
        """The cell's text without surrounding spaces; "" if absent or the row is short."""
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index].strip()


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]  # normalised
    rows: tuple[Row, ...]


def normalise_header(text: str) -> str:
    """``" Legal_Surname "`` -> ``"legal surname"``; ``"Attendance (%)"`` -> ``"attendance %"``.

    Keeps ``% / \\ #`` (attendance codes and percentages); any other run of punctuation or
    space becomes one space."""
    return re.sub(r"[^a-z0-9%/\\#]+", " ", text.lower()).strip()


def decode(body: bytes) -> str:
    """UTF-8 (a byte order mark dropped), else Windows-1252; InputRejected if neither."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputRejected(
            ["body"], "the upload is UTF-16 text: export it as CSV (UTF-8) instead", "csv.encoding"
        )
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError:
        raise InputRejected(
            ["body"], "the upload is neither UTF-8 nor Windows-1252 text", "csv.encoding"
        ) from None


def _blank(cells: Sequence[str]) -> bool:
    return all(not c.strip() for c in cells)


def _trimmed(cells: list[str]) -> tuple[str, ...]:
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return tuple(cells[:end])


def read_table(body: bytes, *, max_rows: int = MAX_ROWS) -> Table:
    """The header and the non-blank rows of a CSV upload."""
    if len(body) > MAX_BYTES:
        raise too_large_bytes()
    if "\x00" in (text := decode(body)):
        raise InputRejected(["body"], "the upload holds NUL characters: not CSV", "csv.syntax")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    headers: tuple[str, ...] | None = None
    rows: list[Row] = []
    line = 1
    try:
        for cells in reader:
            number, line = line, reader.line_num + 1
            if _blank(cells):
                continue
            if headers is None:
                headers = tuple(normalise_header(c) for c in _trimmed(cells))
                continue
            row = Row(number, _trimmed(cells))
            if len(row.cells) > len(headers):
                raise InputRejected(
                    ["row", number],
                    f"row {number}: more cells than the header has columns",
                    "csv.extra_cells",
                )
            if len(rows) == max_rows:
                raise UploadTooLarge(
                    ["body"], f"the upload has more than {max_rows} rows", "upload.too_many_rows"
                )
            rows.append(row)
    except csv.Error:
        raise InputRejected(
            ["row", line], f"row {line}: not valid CSV (check its quotes)", "csv.syntax"
        ) from None
    if headers is None:
        raise InputRejected(["body"], "the upload has no header row", "csv.empty")
    return Table(headers, tuple(rows))


def locate(table: Table, columns: Sequence[Column]) -> dict[str, int]:
    """Where each column is: documented name -> index. Refuses a required column missing,
    or one column given twice (``Surname`` and ``Legal Surname``)."""
    found: dict[str, int] = {}
    for column in columns:
        at = [i for i, h in enumerate(table.headers) if column.matches(h)]
        if len(at) > 1:
            raise InputRejected(
                ["header", column.name],
                f"column {column.name} appears more than once (or under two of its names)",
                "csv.duplicate_column",
            )
        if at:
            found[column.name] = at[0]
        elif column.required:
            raise InputRejected(
                ["header", column.name], f"missing column {column.name}", "csv.missing_column"
            )
    return found
