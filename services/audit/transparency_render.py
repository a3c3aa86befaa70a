"""The transparency report as Markdown, as a self-contained HTML page (no script, every value
escaped, a Content-Security-Policy that allows its own style only) and as CSV (one row per
published figure, every cell safe to open in a spreadsheet). Pure: a report in, text out;
the renderers see only the figures the report publishes."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import re

from services.audit.disclosures import inert, iso
from services.audit.transparency import Figure, Line, Report, Section, Table

TITLE = "Information sharing: transparency report"
SECTIONS = {
    Section.DECISIONS: (
        "Sharing decisions",
        "Each decision to share an event with a recipient, to withhold it, or to suppress it "
        "(a repeat of one already decided), by protocol and version, purpose, the agency the "
        "record came from, the recipient, outcome and reason code. No protocol: none covered "
        "the event. Decisions under a safeguarding override are counted in the next section, "
        "not here.",
    ),
    Section.OVERRIDES: (
        "Safeguarding overrides",
        "Records shared under a safeguarding override, by what the information governance "
        "officer who reviewed the override found, as this report was made: justified, "
        "not_justified, follow_up (open questions), or pending (not reviewed yet).",
    ),
    Section.RE_IDENTIFICATIONS: (
        "Re-identifications",
        "Pseudonymised values turned back into the identifier by an information governance "
        "officer (each recorded before it was given), by the recipient that held the token; "
        "withheld: refused.",
    ),
    Section.RECALLS: (
        "Recalls",
        "Disclosures recalled after they were made, by protocol and recipient.",
    ),
}
HEADINGS = {
    "protocol_id": "Protocol",
    "protocol_version": "Version",
    "purpose": "Purpose",
    "source_agency": "From",
    "recipient": "Recipient",
    "outcome": "Outcome",
    "reason_code": "Reason code",
}
NONE = "—"


def preamble(report: Report) -> list[str]:
    m, p = report.min_count, report.period
    return [
        f"Period: {p.first.isoformat()} to {p.last.isoformat()} (whole days in UTC, both "
        f"included). Made {iso(report.made_at)} from the audit trail.",
        f"Counts from 1 to {m - 1} are shown as <{m}, and a total that includes one as * (not "
        "published), so that no small number can be worked out by subtraction. No child, "
        "person or record is named: only organisations, protocols, purposes, outcomes and "
        "reason codes.",
    ]


def trail_reads(report: Report) -> str:
    return (
        'Reads of the audit trail and of consent records by named people (decision "accessed"):'
        f" {report.trail_reads.text(report.min_count)}. They disclose nothing to anyone "
        "outside and are not counted above."
    )


def _totals_heading(table: Table) -> tuple[str, str]:
    return (HEADINGS[table.total_by] if table.total_by else "Total", "Count")


# Markdown ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def md(text: str) -> str:
    """``text`` as Markdown shows it, never as markup, a link or a table's cell break."""
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", text)) if text else NONE


def _md_table(headings: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return [
        "| " + " | ".join(md(h) for h in headings) + " |",
        "|" + "---|" * len(headings),
        *("| " + " | ".join(md(c) for c in row) + " |" for row in rows),
    ]


def as_markdown(report: Report) -> str:
    m = report.min_count
    out = [f"# {md(TITLE)}", "", *(line for p in preamble(report) for line in (md(p), ""))]
    for table in report.tables:
        title, note = SECTIONS[table.section]
        out += [f"## {md(title)}", "", md(note), ""]
        if table.lines:
            headings = (*(HEADINGS[c] for c in table.columns), "Count")
            out += [*_md_table(headings, [_row(line, m) for line in table.lines]), ""]
        else:
            out += ["None in this period.", ""]
        out += [*_md_table(_totals_heading(table), [_row(t, m) for t in table.totals]), ""]
    out += ["## Looks at the trail", "", md(trail_reads(report)), ""]
    return "\n".join(out)


def _row(line: Line, min_count: int) -> tuple[str, ...]:
    return (*line.labels, line.figure.text(min_count))


# HTML -------------------------------------------------------------------------------------

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;"
    "color:#1b1b1b}table{border-collapse:collapse;margin:0 0 1.5rem}th,td{border:1px solid "
    "#b1b4b6;padding:.3rem .6rem;text-align:left}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:600;padding:.3rem 0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'"


def _h(text: str) -> str:
    return html.escape(_CONTROL.sub(" ", text)) if text else NONE


def _html_table(caption: str, headings: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f'<th scope="col">{_h(h)}</th>' for h in headings)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_h(c)}</td>" for c in row[:-1])
        + f'<td class="n">{_h(row[-1])}</td></tr>'
        for row in rows
    )
    return (
        f"<table><caption>{_h(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def as_html(report: Report) -> str:
    """A page that stands alone: no script, no request for anything, every value escaped."""
    m = report.min_count
    parts = [f"<h1>{_h(TITLE)}</h1>", *(f"<p>{_h(p)}</p>" for p in preamble(report))]
    for table in report.tables:
        title, note = SECTIONS[table.section]
        parts += [f"<h2>{_h(title)}</h2>", f"<p>{_h(note)}</p>"]
        if table.lines:
            headings = (*(HEADINGS[c] for c in table.columns), "Count")
            parts.append(_html_table(title, headings, [_row(x, m) for x in table.lines]))
        else:
            parts.append("<p>None in this period.</p>")
        rows = [_row(t, m) for t in table.totals]
        parts.append(_html_table(f"{title}: totals", _totals_heading(table), rows))
    parts += ["<h2>Looks at the trail</h2>", f"<p>{_h(trail_reads(report))}</p>"]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{_h(TITLE)}</title><style>{STYLE}</style></head>\n<body><main>\n"
        + "\n".join(parts)
        + "\n</main></body></html>\n"
    )


# CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "section",
    "period_first",
    "period_last",
    "protocol_id",
    "protocol_version",
    "purpose",
    "source_agency",
    "recipient",
    "outcome",
    "reason_code",
    "count",
)


def as_csv(report: Report) -> str:
    """One row per published figure (``<5`` a small count, ``*`` a total not published);
    totals in sections named ``<section>_total``. RFC 4180, CRLF line ends, cells inert."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    m = report.min_count
    period = {
        "period_first": report.period.first.isoformat(),
        "period_last": report.period.last.isoformat(),
    }

    def write(section: str, labels: dict[str, str], figure: Figure) -> None:
        row = {"section": section, **period, **labels, "count": figure.text(m)}
        writer.writerow({k: inert(_CONTROL.sub(" ", v)) for k, v in row.items()})

    for table in report.tables:
        for line in table.lines:
            write(table.section, dict(zip(table.columns, line.labels, strict=True)), line.figure)
        for t in table.totals:
            labels = {table.total_by: t.labels[0]} if table.total_by else {}
            write(f"{table.section}_total", labels, t.figure)
    write(Section.TRAIL_READS, {}, report.trail_reads)
    return out.getvalue()
