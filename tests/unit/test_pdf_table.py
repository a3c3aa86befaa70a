"""Wrapping a table cell's text: nothing lost, nothing wider than its column."""

from __future__ import annotations

from fpdf import FPDF
from hypothesis import given
from hypothesis import strategies as st

from services.audit.pdf_table import measure_for, wrap


def _measure_at_7pt() -> tuple[FPDF, float]:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=7)
    return pdf, pdf.get_string_width("m")


PDF, EM = _measure_at_7pt()
MEASURE = measure_for(PDF)
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz._-/(),;:0123456789'\"", min_size=1)


def test_the_width_of_a_string_is_what_fpdf2_says() -> None:
    for text in ["", "la-northshire", "Fields pseudonymised", "caf\u00e9 \u00a3 ()"]:
        assert abs(MEASURE(text) - PDF.get_string_width(text)) < 1e-9


def test_words_wrap_at_spaces_and_long_identifiers_after_their_dots() -> None:
    width = MEASURE("attendance.arrival_")
    assert wrap("the site and the time", MEASURE("the site and"), MEASURE) == [
        "the site and",
        "the time",
    ]
    assert wrap("attendance.arrival_time, site", width, MEASURE) == [
        "attendance.arrival_",
        "time, site",
    ]
    assert wrap("s.47 first line\nsecond", MEASURE("s.47 first line"), MEASURE) == [
        "s.47 first line",
        "second",
    ]
    assert wrap("", width, MEASURE) == [""]


@given(
    st.lists(WORDS, max_size=30).map(" ".join),
    st.floats(min_value=0.5, max_value=40),
)
def test_wrapping_loses_no_character_and_keeps_lines_inside_the_column(
    text: str, ems: float
) -> None:
    width = ems * EM
    lines = wrap(text, width, MEASURE)
    assert "".join("".join(lines).split()) == "".join(text.split())
    for line in lines:
        assert MEASURE(line) <= width or len(line) == 1
