"""A bordered table of wrapped text on an fpdf2 page, drawn line by line.

fpdf2's own ``table()`` runs its character-by-character line breaker twice per cell (about
15 ms a row of this report, half a minute for 2,000 rows) and refuses a row taller than a
page. Here words are measured from a per-character width cache, a word too long for its
column breaks after ``.``, ``-``, ``_`` or ``/`` (else anywhere), the heading row repeats on
every page, and a row taller than a page continues on the next."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fpdf import FPDF

Measure = Callable[[str], float]
_C1 = range(0x7F, 0xA0)  # control characters: no glyph, no width

# A word's pieces, each ending after a run of the characters a line may break after.
_PIECES = re.compile(r"[^./_\-]*[./_\-]+|[^./_\-]+")


@dataclass(frozen=True)
class TableStyle:
    font: str = "Helvetica"
    size: float = 7
    line_height: float = 3.2
    padding: float = 0.8
    heading_fill: int = 225
    border: float = 0.1


DEFAULT_STYLE = TableStyle()


def measure_for(pdf: FPDF) -> Measure:
    """The width of a string in the font set on ``pdf`` now, summed from its characters'
    widths, taken once (a core font has no kerning, so the sum is exact). Measure the whole
    string through fpdf2 instead and wrapping a few thousand rows takes seconds."""
    widths = {chr(c): pdf.get_string_width(chr(c)) for c in range(32, 256) if c not in _C1}

    def measure(text: str) -> float:
        return sum(widths[c] if c in widths else pdf.get_string_width(c) for c in text)

    return measure


def wrap(text: str, width: float, measure: Measure) -> list[str]:
    """``text`` as lines no wider than ``width``, broken at spaces and newlines; a word
    wider than a whole line is broken after its dots, dashes, underscores and slashes, and
    a piece of it still too wide, anywhere."""
    lines: list[str] = []
    space = measure(" ")
    for paragraph in text.split("\n"):
        line, used = "", 0.0
        for word in paragraph.split():
            word_width = measure(word)
            if line and used + space + word_width <= width:
                line, used = f"{line} {word}", used + space + word_width
                continue
            if line:
                lines.append(line)
            line, used = word, word_width
            if word_width > width:
                lines.extend(_break_word(word, width, measure))
                line = lines.pop()
                used = measure(line)
        lines.append(line)
    return lines


def _break_word(word: str, width: float, measure: Measure) -> list[str]:
    lines = [""]
    for piece in _PIECES.findall(word):
        if measure(lines[-1] + piece) <= width:
            lines[-1] += piece
            continue
        lines.append(piece)
        while measure(lines[-1]) > width and len(lines[-1]) > 1:
            rest = lines.pop()
            cut = _fit(rest, width, measure)
            lines += [rest[:cut], rest[cut:]]
    return [line for line in lines if line]


def _fit(text: str, width: float, measure: Measure) -> int:
    """How many of ``text``'s first characters fit in ``width`` (at least one)."""
    used = 0.0
    for cut, char in enumerate(text):
        used += measure(char)
        if used > width:
            return max(cut, 1)
    return len(text)


class WrappedTable:
    """Draws rows on ``pdf`` under a heading row that ``pdf.add_page()`` repeats: the
    document's ``header()`` calls :meth:`draw_headings` while the table is open."""

    def __init__(
        self,
        pdf: FPDF,
        headings: Sequence[str],
        widths: Sequence[float],
        style: TableStyle = DEFAULT_STYLE,
    ) -> None:
        self.pdf, self.widths, self.style = pdf, tuple(widths), style
        self.open = False
        pdf.set_font(style.font, style="B", size=style.size)
        self._headings = self._wrap_all(headings, measure_for(pdf))
        pdf.set_font(style.font, size=style.size)
        self._measure = measure_for(pdf)

    def start(self) -> None:
        """Draw the heading row here; from now on every new page starts with it."""
        if self._lines_on_fresh_page() < 1:
            raise ValueError("the heading row leaves no room on a page for any row")
        self.open = True
        self.draw_headings()

    def draw_headings(self) -> None:
        if self.open:
            self._draw(self._headings, heading=True)

    def row(self, cells: Sequence[str]) -> None:
        """One row; it moves to the next page if it does not fit in what is left of this
        one, and is split across pages only if it is taller than a page."""
        pending = self._wrap_all(cells, self._measure)
        while pending:
            room = self._lines_left()
            tallest = max(len(lines) for lines in pending)
            if tallest > room and (room < 1 or tallest <= self._lines_on_fresh_page()):
                self.pdf.add_page()
                continue
            self._draw([lines[:room] for lines in pending], heading=False)
            pending = [lines[room:] for lines in pending]
            if not any(pending):
                return

    def _wrap_all(self, cells: Sequence[str], measure: Measure) -> list[list[str]]:
        inner = [w - 2 * self.style.padding for w in self.widths]
        return [wrap(text, width, measure) for text, width in zip(cells, inner, strict=True)]

    def _lines_left(self) -> int:
        pdf, s = self.pdf, self.style
        return int((pdf.h - pdf.b_margin - pdf.get_y() - 2 * s.padding) // s.line_height)

    def _lines_on_fresh_page(self) -> int:
        s = self.style
        heading = max(len(lines) for lines in self._headings) * s.line_height + 2 * s.padding
        top = self.pdf.t_margin + heading
        return int((self.pdf.h - self.pdf.b_margin - top - 2 * s.padding) // s.line_height)

    def _draw(self, cells: Sequence[Sequence[str]], *, heading: bool) -> None:
        pdf, s = self.pdf, self.style
        height = max(1, *(len(lines) for lines in cells)) * s.line_height + 2 * s.padding
        x, y = pdf.l_margin, pdf.get_y()
        pdf.set_font(s.font, style="B" if heading else "", size=s.size)
        pdf.set_line_width(s.border)
        pdf.set_fill_color(s.heading_fill)
        for lines, width in zip(cells, self.widths, strict=True):
            pdf.rect(x, y, width, height, style="DF" if heading else "D")
            # Baseline of each line: its middle, lowered by about a third of the font size.
            baseline = y + s.padding + s.line_height / 2 + 0.3 * pdf.font_size
            for i, line in enumerate(lines):
                if line:
                    pdf.text(x + s.padding, baseline + i * s.line_height, line)
            x += width
        pdf.set_font(s.font, size=s.size)
        pdf.set_xy(pdf.l_margin, y + height)
