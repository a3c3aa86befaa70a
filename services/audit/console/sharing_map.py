"""The sharing map, pure: who shares what with whom under which protocol, from the protocol
set, as rows for a table and as an SVG drawn on the server (publishers on the left,
recipients on the right, a line per protocol between them). And each protocol's dates:
a review or an expiry near (or past) is a warning."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from consent.core.model import Protocol

REVIEW_SOON = timedelta(days=60)
EXPIRY_SOON = timedelta(days=90)


@dataclass(frozen=True)
class Link:
    source: str
    recipient: str
    protocol: str  # id@version
    identity: str


def links(protocols: Iterable[Protocol]) -> list[Link]:
    out = {
        Link(source, rule.agency, p.ref, rule.identity.value)
        for p in protocols
        for source in p.source_agencies
        for rule in p.recipients
    }
    return sorted(out, key=lambda x: (x.source, x.recipient, x.protocol))


def warnings(protocol: Protocol, today: date) -> list[str]:
    """What an IG officer must act on about ``protocol``'s dates, today."""
    out = []
    if protocol.valid_until is not None:
        if protocol.valid_until < today:
            out.append(f"expired on {protocol.valid_until.isoformat()}: nothing is shared under it")
        elif protocol.valid_until - today <= EXPIRY_SOON:
            out.append(f"expires on {protocol.valid_until.isoformat()}: renew or retire it")
    if protocol.valid_from is not None and protocol.valid_from > today:
        out.append(f"not in force until {protocol.valid_from.isoformat()}")
    if protocol.review_date is not None:
        if protocol.review_date < today:
            out.append(f"review overdue since {protocol.review_date.isoformat()}")
        elif protocol.review_date - today <= REVIEW_SOON:
            out.append(f"review due on {protocol.review_date.isoformat()}")
    return out


ROW_H, WIDTH, BOX_W, TOP = 44, 960, 260, 20


def svg(found: list[Link]) -> str:
    """The map as an SVG document fragment (escaped text; presentation attributes only, so
    the page's Content-Security-Policy needs no inline style)."""
    sources = sorted({x.source for x in found})
    recipients = sorted({x.recipient for x in found})
    rows = max(len(sources), len(recipients), 1)
    height = TOP * 2 + rows * ROW_H
    y_of_source = {name: TOP + i * ROW_H + ROW_H // 2 for i, name in enumerate(sources)}
    y_of_recipient = {name: TOP + i * ROW_H + ROW_H // 2 for i, name in enumerate(recipients)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="map-title" class="map">',
        '<title id="map-title">Sharing map: publishing agencies on the left, recipients on '
        "the right, a line for each protocol that shares from one to the other</title>",
    ]
    for link in found:
        y1, y2 = y_of_source[link.source], y_of_recipient[link.recipient]
        dash = ' stroke-dasharray="6 4"' if link.identity != "identified" else ""
        parts.append(
            f'<line x1="{BOX_W}" y1="{y1}" x2="{WIDTH - BOX_W}" y2="{y2}" stroke="#1d3f72" '
            f'stroke-width="2"{dash}><title>{escape(link.source)} to {escape(link.recipient)}: '
            f"{escape(link.protocol)} ({escape(link.identity)})</title></line>"
        )
    for names, x, anchor in ((y_of_source, 0, "start"), (y_of_recipient, WIDTH - BOX_W, "start")):
        for name, y in names.items():
            parts.append(
                f'<rect x="{x}" y="{y - 16}" width="{BOX_W}" height="32" rx="4" fill="#f3f4f5" '
                f'stroke="#1b1b1b"/><text x="{x + 10}" y="{y + 5}" font-size="15" '
                f'fill="#1b1b1b" text-anchor="{anchor}">{escape(name)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
