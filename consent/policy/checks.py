"""Checks of a protocol against the event schemas, and of protocols against each other.

- every field a rule names is defined by the schema of an event type the protocol covers;
- a generalisation suits its field (dates to year, month or age band; postcodes to district
  or area);
- a pseudonymised or anonymised recipient is never `allow`ed or `mask`ed an identifying
  field (schemas mark them ``x-identifying``), and an anonymised one gets no pseudonym;
- special-category data (schemas mark it ``x-special-category``) is shared only under an
  Art 9(2) condition, and (b), (g), (h), (i), (j) also name their DPA 2018 Schedule 1
  condition (DPA 2018 s10);
- two rules of one recipient do not contradict (one path handled two ways, or two rules
  writing one target);
- two protocols do not give one recipient the same events at different identity levels.

Checks that protect children (free text, the fields conditions name, scope) are in
``checks_children``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consent.core.model import (
    Generalisation,
    IdentityLevel,
    Protocol,
    RecipientRule,
    RuleKind,
)
from consent.core.paths import split_at_last_array
from consent.policy.parse import Problem
from services.backbone.schemas import SchemaRegistry

IDENTIFYING = "x-identifying"
NEVER_SHARED = "x-never-shared"
SPECIAL = "x-special-category"
NEEDS_SCHEDULE1 = frozenset("bghij")
_DATES = (Generalisation.YEAR, Generalisation.MONTH, Generalisation.AGE_BAND)


def nodes_along(schema: Mapping[str, Any], path: str) -> list[Mapping[str, Any]] | None:
    """The schema nodes along ``path`` (``a.b[*].c``), or None if it is not defined."""
    node: Any = schema
    trail = [node]
    for part in path.split("."):
        name, is_array = (part[:-3], True) if part.endswith("[*]") else (part, False)
        props = node.get("properties") if isinstance(node, Mapping) else None
        if not isinstance(props, Mapping) or name not in props:
            return None
        node = props[name]
        if is_array:
            if not isinstance(node, Mapping) or node.get("type") != "array":
                return None
            node = node.get("items", {})
        trail.append(node)
    return trail


def carries(node: Any, mark: str) -> bool:
    """Whether ``node`` or anything inside it carries ``mark``."""
    if not isinstance(node, Mapping):
        return False
    inner = [*(node.get("properties") or {}).values(), node.get("items")]
    return node.get(mark) is True or any(carries(n, mark) for n in inner)


def _generalisable(node: Mapping[str, Any], path: str, to: Generalisation) -> bool:
    if to in _DATES:
        return node.get("format") in ("date", "date-time")
    return path.rsplit(".", 1)[-1] == "postcode"


def _check_rules(
    protocol: Protocol,
    rule: RecipientRule,
    schemas: list[Mapping[str, Any]],
    problems: list[Problem],
) -> None:
    def report(line: int, code: str, message: str) -> None:
        problems.append(Problem(protocol.origin, line, code, f"{rule.agency}: {message}"))

    hidden = rule.identity is not IdentityLevel.IDENTIFIED
    for f in rule.fields:
        if split_at_last_array(f.path)[0] != split_at_last_array(f.target)[0]:
            report(
                f.line,
                "array-target",
                f"{f.target} must keep the arrays of {f.path} "
                "(only the part after the last [*] may be renamed)",
            )
        trails = [t for s in schemas if (t := nodes_along(s, f.path)) is not None]
        if not trails:
            report(
                f.line,
                "unknown-field",
                f"{f.path} is not defined by the schema of any event type the protocol covers",
            )
            continue
        leaf_nodes = [t[-1] for t in trails]
        on_path = any(n.get(NEVER_SHARED) is True for t in trails for n in t)
        if on_path or any(carries(t[-1], NEVER_SHARED) for t in trails):
            report(f.line, "never-shared", f"{f.path} is never shared with anyone")
            continue
        if f.to is not None and not all(_generalisable(n, f.path, f.to) for n in leaf_nodes):
            report(f.line, "generalise", f"{f.path} cannot be generalised to {f.to.value}")
        # Encrypted values open for the recipient: they reveal as much as allow does.
        revealing = f.kind in (RuleKind.ALLOW, RuleKind.MASK, RuleKind.ENCRYPT)
        # Identifying if the field, anything inside it, or anything it sits inside is marked.
        identifying = any(
            any(n.get(IDENTIFYING) is True for n in t) or carries(t[-1], IDENTIFYING)
            for t in trails
        )
        if hidden and revealing and identifying:
            report(
                f.line,
                "identifying-field",
                f"a {rule.identity.value} recipient cannot get {f.path}",
            )
        if rule.identity is IdentityLevel.ANONYMISED and f.kind in (
            RuleKind.PSEUDONYMISE,
            RuleKind.TOKENISE,
        ):
            report(
                f.line,
                "identifying-field",
                f"an anonymised recipient gets no pseudonym or token ({f.path})",
            )
        special = any(
            any(n.get(SPECIAL) is True for n in t) or carries(t[-1], SPECIAL) for t in trails
        )
        basis = protocol.lawful_basis
        if special and basis.article9 is None:
            report(
                f.line,
                "special-category",
                f"{f.path} is special-category data: lawful_basis needs an article9 condition",
            )
        elif special and basis.article9 in NEEDS_SCHEDULE1 and not basis.dpa2018_schedule1:
            report(
                f.line,
                "special-category",
                f"Art 9(2)({basis.article9}) needs its DPA 2018 Schedule 1 condition",
            )
    _check_overlaps(rule, report)


def _check_overlaps(rule: RecipientRule, report: Any) -> None:
    def inside(a: str, b: str) -> bool:
        return a == b or a.startswith(b + ".") or a.startswith(b + "[")

    fields = rule.fields
    for i, a in enumerate(fields):
        for b in fields[i + 1 :]:
            if (inside(a.path, b.path) or inside(b.path, a.path)) and (
                a.kind is not b.kind or a.to is not b.to
            ):
                report(
                    b.line,
                    "contradiction",
                    f"{b.path} is also handled by another rule ({a.kind.value} {a.path})",
                )
            if inside(a.target, b.target) or inside(b.target, a.target):
                report(b.line, "contradiction", f"two rules write {b.target}")


def _check_protocol(protocol: Protocol, problems: list[Problem]) -> None:
    """Checks of one protocol as a whole: its recipients, its law and its dates."""

    def report(line: int, code: str, message: str) -> None:
        problems.append(Problem(protocol.origin, line, code, message))

    seen: set[str] = set()
    for rule in protocol.recipients:
        if rule.agency in seen:
            report(
                rule.line,
                "contradiction",
                f"{rule.agency} is a recipient twice (directly or through a group)",
            )
        seen.add(rule.agency)
    basis, consent = protocol.lawful_basis, protocol.consent.value
    first = protocol.recipients[0].line if protocol.recipients else 1
    if (basis.article6 == "a" or basis.article9 == "a") and consent == "not_required":
        report(
            first,
            "lawful-basis",
            "a consent basis (Art 6(1)(a) or 9(2)(a)) needs consent: required",
        )
    if basis.article6 == "f":
        report(
            first,
            "lawful-basis",
            "Art 6(1)(f) legitimate interests is not available to "
            "public authorities performing their tasks",
        )
    if protocol.valid_from and protocol.valid_until and protocol.valid_from > protocol.valid_until:
        report(first, "validity", "valid_from is after valid_until")


def check_protocols(protocols: Iterable[Protocol], schemas: SchemaRegistry) -> list[Problem]:
    """Every problem found across a parsed protocol set."""
    problems: list[Problem] = []
    protocols = list(protocols)
    for protocol in protocols:
        _check_protocol(protocol, problems)
    seen: dict[tuple[str, str, str], tuple[Protocol, RecipientRule]] = {}
    ids: dict[str, Protocol] = {}
    for protocol in protocols:
        if protocol.id in ids:
            problems.append(
                Problem(
                    protocol.origin,
                    1,
                    "duplicate-id",
                    f"protocol id {protocol.id} is also defined in {ids[protocol.id].origin}",
                )
            )
        ids[protocol.id] = protocol
        event_schemas = [schemas.get(t).document for t in sorted(protocol.event_types)]
        for rule in protocol.recipients:
            _check_rules(protocol, rule, event_schemas, problems)
            for agency in protocol.source_agencies:
                for event_type in protocol.event_types:
                    key = (agency, event_type, rule.agency)
                    other = seen.get(key)
                    if other and other[0].consent is not protocol.consent:
                        # A warning: their conditions may never both hold (CP-IS and early
                        # help split children by whether a plan is active), which no check
                        # can prove, so a person must confirm it.
                        problems.append(
                            Problem(
                                protocol.origin,
                                rule.line,
                                "consent-overlap",
                                f"{rule.agency} gets {event_type} from {agency} with consent "
                                f"{protocol.consent.value} here but {other[0].consent.value} "
                                f"under {other[0].ref} ({other[0].origin}): make sure their "
                                "conditions never both hold, or one bypasses the other's consent",
                                warning=True,
                            )
                        )
                    if other and other[1].identity is not rule.identity:
                        problems.append(
                            Problem(
                                protocol.origin,
                                rule.line,
                                "contradiction",
                                f"{rule.agency} gets {event_type} from {agency} "
                                f"{rule.identity.value} here but {other[1].identity.value} under "
                                f"{other[0].ref} ({other[0].origin})",
                            )
                        )
                    seen.setdefault(key, (protocol, rule))
    return problems
