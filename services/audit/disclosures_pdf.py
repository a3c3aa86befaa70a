"""A child's disclosure report as a printable PDF (landscape A4): the same rows as the JSON
and CSV forms, under a title, the audit subject key, who it was produced for and when, and
counts by decision. Pure: entries in, bytes out.

Only the report's own columns are printed, never free text such as an override's
justification, and the child appears only as the keyed audit subject key."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fpdf import FPDF

from services.audit import disclosures
from services.audit.pdf_table import WrappedTable

FONT = "Helvetica"  # a core font: nothing to embed, but only latin-1 can be drawn
_TOTAL_PAGES = "{nb}"

# (heading, share of the table's width: millimetres on landscape A4 inside 10 mm margins)
HEADINGS = (
    ("Recorded (UTC)", 17),
    ("Decision", 18),
    ("Recipient", 21),
    ("Source agency", 21),
    ("Event type", 23),
    ("Protocol (version)", 26),
    ("Lawful basis", 24),
    ("Identity level", 20),
    ("Fields disclosed", 27),
    ("Fields pseudonymised", 22),
    ("Fields withheld", 24),
    ("Reason", 34),
)

# Typography that latin-1 lacks but has a plain stand-in for; the rest goes through NFKD.
_STAND_INS = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2026": "...",
        "\u2022": "*",
        "\u2023": "*",
        "\u2043": "-",
        "\u2020": "+",
        "\u2122": "(TM)",
        "\u20ac": "EUR",
        "\u2192": "->",
        "\u2190": "<-",
        "\u0141": "L",
        "\u0142": "l",
        "\u0110": "D",
        "\u0111": "d",
        "\u0131": "i",
        "\u0152": "OE",
        "\u0153": "oe",
        "\u200b": "",
        "\u200d": "",
        "\ufeff": "",
    }
)


def latin1_safe(text: str) -> str:
    """``text`` with every character a core PDF font can draw: dashes, curly quotes and the
    like become their plain forms, accented letters outside latin-1 lose the accent, control
    characters become spaces, and anything else (an emoji) becomes ``?`` so the reader can
    see that something was there."""
    if text.isprintable() and max(text, default=" ") < "\u0100":
        return text  # the usual case, and worth the shortcut: every cell passes through here
    out: list[str] = []
    for char in text.translate(_STAND_INS):
        if char in "\n\t":
            out.append(" " if char == "\t" else char)
        elif unicodedata.category(char) == "Cc":
            out.append(" ")
        elif ord(char) < 256:
            out.append(char)
        else:
            plain = unicodedata.normalize("NFKD", char).translate(_STAND_INS)
            kept = "".join(c for c in plain if ord(c) < 256 and not unicodedata.combining(c))
            out.append(kept or "?")
    return "".join(out)


def summary(entries: Sequence[Mapping[str, Any]]) -> str:
    """How many decisions were ``shared``, ``withheld`` and other, the others by name."""
    by_decision = Counter(str(e.get("decision")) for e in entries)
    shared, withheld = by_decision.pop("shared", 0), by_decision.pop("withheld", 0)
    others = ", ".join(f"{name} {n}" for name, n in sorted(by_decision.items()))
    return (
        f"Decisions: {len(entries)} (shared {shared}, withheld {withheld}, "
        f"other {by_decision.total()}{': ' + others if others else ''})"
    )


def as_pdf(
    entries: Sequence[Mapping[str, Any]],
    *,
    subject_key: str,
    produced_at: datetime,
    produced_for: str,
) -> bytes:
    """The disclosure report for one child as PDF bytes: one table row per decision, oldest
    first, its headings repeated on every page, and "page X of Y" at the foot of each."""
    pdf = _ReportPdf(subject_key)
    pdf.add_page()
    pdf.set_font(FONT, style="B", size=16)
    pdf.cell(text="Disclosure report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9)
    for line in (
        f"Audit subject key: {subject_key}",
        f"Produced at {_moment(produced_at)} for {produced_for}",
        summary(entries),
    ):
        pdf.multi_cell(w=0, text=latin1_safe(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    if not entries:
        pdf.multi_cell(w=0, text="No disclosure decisions were found about this child.")
        return bytes(pdf.output())
    widths = [share * pdf.epw / sum(s for _, s in HEADINGS) for _, share in HEADINGS]
    pdf.decisions = WrappedTable(pdf, [heading for heading, _ in HEADINGS], widths)
    pdf.decisions.start()
    for row in disclosures.rows(entries):
        pdf.decisions.row([latin1_safe(cell) for cell in _cells(row)])
    return bytes(pdf.output())


def _cells(row: Mapping[str, Any]) -> list[str]:
    protocol = _text(row["protocol_id"])
    if protocol and row["protocol_version"] is not None:
        protocol += f" (v{row['protocol_version']})"
    reason = _text(row["reason"])
    if row["override_role"]:
        reason += f" [override by {row['override_role']}]"
    return [
        _text(row["recorded_at"]),
        _text(row["decision"]),
        _text(row["recipient"]) or "none",
        _text(row["source_agency"]),
        _text(row["event_type"]),
        protocol,
        _text(row["lawful_basis"]),
        _text(row["identity_level"]),
        _text(row["fields_disclosed"]),
        _text(row["fields_pseudonymised"]),
        _text(row["fields_withheld"]),
        reason,
    ]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _moment(value)
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _moment(moment: datetime) -> str:
    # To the second: the JSON and CSV forms keep the full precision.
    return disclosures.iso(moment.replace(microsecond=0)).replace("T", " ")


class _ReportPdf(FPDF):
    def __init__(self, subject_key: str) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.subject_key = subject_key
        self.decisions: WrappedTable | None = None
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(auto=True, margin=14)
        self.set_title("Disclosure report")
        self.set_creator("infoshare")

    # The total-pages alias is on only from a page's footer to the next page's header, so
    # that a "{nb}" in the data (the officer's name, say) is printed as it is. fpdf2 puts the
    # page count in for it on output, after the last footer, if it is on then.
    def header(self) -> None:
        self.alias_nb_pages("")
        if self.decisions:
            self.decisions.draw_headings()

    def footer(self) -> None:
        self.alias_nb_pages(_TOTAL_PAGES)
        self.set_y(-10)
        self.set_font(FONT, size=7)
        self.cell(w=0, text=latin1_safe(f"Disclosure report, audit subject key {self.subject_key}"))
        self.set_x(self.l_margin)
        self.cell(w=0, text=f"page {self.page_no()} of {_TOTAL_PAGES}", align="R")
