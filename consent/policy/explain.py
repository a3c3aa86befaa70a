"""The sharing map in plain language: who shares what with whom, for which purpose, under
which law. Markdown with a Mermaid diagram, for practitioners and IG officers alike."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from consent.core.model import FieldRule, Protocol, ProtocolSet, RecipientRule, RuleKind
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

ARTICLE6 = {
    "a": "consent",
    "b": "contract",
    "c": "legal obligation",
    "d": "vital interests",
    "e": "public task",
    "f": "legitimate interests",
}
ARTICLE9 = {
    "a": "explicit consent",
    "b": "employment and social protection law",
    "c": "vital interests",
    "d": "not-for-profit bodies",
    "e": "made public",
    "f": "legal claims",
    "g": "substantial public interest",
    "h": "health or social care",
    "i": "public health",
    "j": "archiving, research and statistics",
}
CONSENT = {
    "not_required": "Consent is not required.",
    "required": "Shared only with consent recorded in the registry.",
    "required_unless_override": "Shared with consent, or without it when a "
    "practitioner records why asking would put the child at risk (reviewed by IG).",
}
IDENTITY = {
    "identified": "identified (real identifiers)",
    "pseudonymised": "pseudonymised (a stable pseudonym of its own, no identifiers)",
    "anonymised": "anonymised (no subject key at all)",
}


def duration_words(iso: str) -> str:
    units = {"Y": "year", "M": "month", "W": "week", "D": "day"}
    parts = re.findall(r"(\d+)([YMWD])", iso)
    return " ".join(f"{n} {units[u]}{'' if n == '1' else 's'}" for n, u in parts) or iso


def _code(text: str) -> str:
    return f"`{text}`"


def field_words(rule: FieldRule, code: Callable[[str], str] = _code) -> str:
    """What a recipient gets of the field ``rule`` names, in words (``code`` marks a path:
    Markdown by default)."""
    name = code(rule.path)
    if rule.kind is RuleKind.ALLOW:
        return name
    if rule.kind is RuleKind.MASK:
        return f"{name}, masked (only that it is there)"
    if rule.kind is RuleKind.GENERALISE:
        assert rule.to is not None
        return f"{name} as {rule.to.value.replace('_', ' ')} ({code(str(rule.target))})"
    if rule.kind is RuleKind.PSEUDONYMISE:
        return f"a pseudonym instead of {name} ({code(str(rule.target))})"
    if rule.kind is RuleKind.TOKENISE:
        return f"a reversible token instead of {name} ({code(str(rule.target))})"
    return f"{name}, encrypted so only the recipient can read it ({code(str(rule.target))})"


def _leaves(node: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}{name}"
        if isinstance(child, Mapping) and child.get("properties"):
            yield from _leaves(child, path + ".")
        else:
            yield path


def _never(protocol: Protocol, rule: RecipientRule, schemas: SchemaRegistry) -> list[str]:
    used = [f.path for f in rule.fields]
    leaves = {leaf for t in protocol.event_types for leaf in _leaves(schemas.get(t).document)}
    return sorted(
        leaf for leaf in leaves if not any(leaf == u or leaf.startswith(u + ".") for u in used)
    )


def basis_words(protocol: Protocol) -> str:
    basis = protocol.lawful_basis
    words = f"UK GDPR Art 6(1)({basis.article6}) {ARTICLE6.get(basis.article6, '')}"
    if basis.article9:
        words += f"; Art 9(2)({basis.article9}) {ARTICLE9.get(basis.article9, '')}"
    if basis.dpa2018_schedule1:
        words += f"; DPA 2018 Schedule 1 {basis.dpa2018_schedule1}"
    return words


def _diagram(protocols: ProtocolSet, directory: Directory) -> list[str]:
    lines = ["```mermaid", "flowchart LR"]
    for agency in directory:
        lines.append(f'  {agency.id.replace("-", "_")}["{agency.name}"]')
    for p in protocols:
        for source in sorted(p.source_agencies):
            for r in p.recipients:
                label = f"{p.id}: {r.identity.value}"
                if p.consent.value != "not_required":
                    label += ", consent"
                lines.append(
                    f'  {source.replace("-", "_")} -- "{label}" --> {r.agency.replace("-", "_")}'
                )
    lines.append("```")
    return lines


def _access_back(directory: Directory) -> list[str]:
    told = [f"**{a.name}**" for a in directory if a.access_back]
    if not told:
        return []
    verb, own = ("is", "its") if len(told) == 1 else ("are", "their")
    return [
        f"Access back (`deploy/agencies.yaml`): {', '.join(told)} {verb} told, for each of "
        f"{own} events shared with another recipient, who received it under which protocol, "
        "at which identity level, and the names of the fields (`infoshare.access_back`; no "
        "identifier, no value).",
        "",
    ]


def explain(protocols: ProtocolSet, directory: Directory, schemas: SchemaRegistry) -> str:
    name = {a.id: a.name for a in directory}
    out = [
        "# Sharing map",
        "",
        "Who shares what with whom, for which purpose, under which law. Written by "
        "`infoshare protocols explain` from the protocol files; anything a protocol does "
        "not name is never shared.",
        "",
        *_diagram(protocols, directory),
        "",
        *_access_back(directory),
    ]
    for p in sorted(protocols, key=lambda p: p.id):
        sources = ", ".join(name.get(a, a) for a in sorted(p.source_agencies))
        out += [
            f"## {p.title}",
            "",
            f"`{p.ref}`, owned by {p.owner}. Purpose: **{p.purpose.value.replace('_', ' ')}**."
            f" Lawful basis: {basis_words(p)}. {CONSENT[p.consent.value]}",
            f"In force {p.valid_from or 'from the start'} to {p.valid_until or 'no end date'};"
            f" review due {p.review_date or 'not set'}.",
            "",
            f"**{sources}** shares {', '.join(f'`{t}`' for t in sorted(p.event_types))}:",
            "",
        ]
        for r in p.recipients:
            # The description is for people; the CEL beside it is what the processor applies.
            when = (
                f" when {r.condition_text or 'its condition holds'} (`{r.condition.source}`)"
                if r.condition
                else ""
            )
            keep = f"; may keep it for {duration_words(r.retention)}" if r.retention else ""
            out.append(
                f"- with **{name.get(r.agency, r.agency)}**{when}, "
                f"{IDENTITY[r.identity.value]}{keep}:"
            )
            out += [f"  - {field_words(f)}" for f in r.fields]
            never = _never(p, r, schemas)
            if never:
                out.append(f"  - never: {', '.join(f'`{n}`' for n in never)}")
        out.append("")
    return "\n".join(out)
