"""Load a directory of protocol YAML files into a checked, immutable protocol set.

A set with any error never loads: every problem is collected, named by file, and raised
together, so a running processor keeps its last good set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from consent.core.model import (
    Condition,
    FieldRule,
    Generalisation,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    Purpose,
    RecipientRule,
    RuleKind,
)
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

DEFAULT_DIR = Path(__file__).resolve().parent / "protocols"
# Schemas mark fields that identify a person or a record about them "x-identifying": such a
# field, or an object holding one, is never `allow`ed to a pseudonymised recipient.
IDENTIFYING_MARK = "x-identifying"
ARTICLE6 = frozenset("abcdef")
ARTICLE9 = frozenset("abcdefghij")


class ProtocolError(Exception):
    """The protocol set is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid protocol set:\n  " + "\n  ".join(problems))
        self.problems = problems


def _schema_node(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    node: Any = schema
    for part in path.split("."):
        props = node.get("properties") if isinstance(node, Mapping) else None
        if not isinstance(props, Mapping) or part not in props:
            return None
        node = props[part]
    return node if isinstance(node, Mapping) else None


def _identifying(schema: Mapping[str, Any], path: str) -> bool:
    """Whether the field at ``path``, or anything inside it, is marked identifying."""
    node = _schema_node(schema, path)

    def marked(n: Any) -> bool:
        if not isinstance(n, Mapping):
            return False
        props = n.get("properties")
        inner = props.values() if isinstance(props, Mapping) else ()
        return n.get(IDENTIFYING_MARK) is True or any(marked(p) for p in inner)

    return node is not None and marked(node)


def _generalisable(node: Mapping[str, Any], path: str, to: Generalisation) -> bool:
    """Dates (format date or date-time) coarsen to year or month; postcodes to district."""
    if to is Generalisation.POSTCODE_DISTRICT:
        return path.rsplit(".", 1)[-1] == "postcode"
    return node.get("format") in ("date", "date-time")


def _check_against_schemas(
    rule: FieldRule, where: str, event_schemas: list[Mapping[str, Any]], problems: list[str]
) -> None:
    nodes = [n for s in event_schemas if (n := _schema_node(s, rule.path)) is not None]
    if not nodes:
        problems.append(f"{where}: {rule.path} is not defined by the events' schemas")
    elif rule.to is not None and not all(_generalisable(n, rule.path, rule.to) for n in nodes):
        problems.append(f"{where}: {rule.path} cannot be generalised to {rule.to.value}")


def _field_rule(raw: Any, where: str, problems: list[str]) -> FieldRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: a field rule is a mapping")
        return None
    kinds = [k for k in RuleKind if k.value in raw]
    if len(kinds) != 1:
        problems.append(f"{where}: name exactly one of allow, generalise, pseudonymise")
        return None
    kind = kinds[0]
    path = str(raw[kind.value])
    to = None
    if kind is RuleKind.GENERALISE:
        try:
            to = Generalisation(str(raw.get("to")))
        except ValueError:
            problems.append(f"{where}: generalise needs to: year, month or postcode_district")
            return None
    if kind is not RuleKind.ALLOW and "as" not in raw:
        problems.append(f"{where}: {kind.value} needs 'as' (the field the recipient sees)")
        return None
    return FieldRule(kind=kind, path=path, target=str(raw.get("as", path)), to=to)


def _recipient(
    raw: Any,
    where: str,
    event_schemas: list[Mapping[str, Any]],
    directory: Directory,
    problems: list[str],
) -> RecipientRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: a recipient is a mapping")
        return None
    agency = str(raw.get("agency"))
    if agency not in directory:
        problems.append(f"{where}: unknown agency {agency!r}")
    try:
        identity = IdentityLevel(str(raw.get("identity")))
        condition = Condition(str(raw.get("when", Condition.ALWAYS.value)))
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    rules: list[FieldRule] = []
    for i, item in enumerate(raw.get("fields") or []):
        rule = _field_rule(item, f"{where}.fields[{i}]", problems)
        if rule is None:
            continue
        _check_against_schemas(rule, f"{where}.fields[{i}]", event_schemas, problems)
        if (
            identity is IdentityLevel.PSEUDONYMISED
            and rule.kind is RuleKind.ALLOW
            and any(_identifying(s, rule.path) for s in event_schemas)
        ):
            problems.append(
                f"{where}.fields[{i}]: a pseudonymised recipient cannot get {rule.path}"
            )
        rules.append(rule)
    if not rules:
        problems.append(f"{where}: no field rules (a recipient must be given something)")
    return RecipientRule(agency, identity, condition, tuple(rules))


def parse_protocol(
    doc: Any, *, origin: str, directory: Directory, schemas: SchemaRegistry, problems: list[str]
) -> Protocol | None:
    if not isinstance(doc, Mapping):
        problems.append(f"{origin}: not a YAML mapping")
        return None
    start = len(problems)
    required = (
        "id",
        "version",
        "title",
        "owner",
        "purpose",
        "lawful_basis",
        "sources",
        "recipients",
    )
    missing = [k for k in required if k not in doc]
    if missing:
        problems.append(f"{origin}: missing {', '.join(missing)}")
        return None
    for key in ("sources", "lawful_basis"):
        if not isinstance(doc[key], Mapping):
            problems.append(f"{origin}: {key} must be a mapping")
    if not isinstance(doc["version"], int) or doc["version"] < 1:
        problems.append(f"{origin}: version must be a positive whole number")
    if not isinstance(doc["recipients"], list) or not doc["recipients"]:
        problems.append(f"{origin}: recipients must list at least one recipient")
    if len(problems) > start:
        return None
    sources = doc["sources"]
    for key in ("agencies", "event_types"):
        if not isinstance(sources.get(key), list) or not sources.get(key):
            problems.append(f"{origin}: sources.{key} must be a non-empty list")
    if len(problems) > start:
        return None
    agencies = frozenset(str(a) for a in sources.get("agencies") or [])
    event_types = frozenset(str(t) for t in sources.get("event_types") or [])
    for agency in sorted(agencies - set(directory.agencies)):
        problems.append(f"{origin}: sources.agencies: unknown agency {agency!r}")
    event_schemas = []
    for event_type in sorted(event_types):
        if event_type not in schemas.event_types:
            problems.append(f"{origin}: sources.event_types: unknown event type {event_type!r}")
        else:
            event_schemas.append(schemas.get(event_type).document)
    basis = doc["lawful_basis"]
    article6 = str(basis.get("article6", ""))
    article9 = basis.get("article9")
    if article6 not in ARTICLE6:
        problems.append(f"{origin}: lawful_basis.article6 must be one of a-f")
    if article9 is not None and str(article9) not in ARTICLE9:
        problems.append(f"{origin}: lawful_basis.article9 must be one of a-j")
    try:
        purpose = Purpose(str(doc["purpose"]))
    except ValueError:
        problems.append(f"{origin}: purpose must be one of {', '.join(p.value for p in Purpose)}")
        return None
    recipients = [
        _recipient(raw, f"{origin}: recipients[{i}]", event_schemas, directory, problems)
        for i, raw in enumerate(doc["recipients"] or [])
    ]
    if len(problems) > start:
        return None
    return Protocol(
        id=str(doc["id"]),
        version=int(doc["version"]),
        title=str(doc["title"]),
        owner=str(doc["owner"]),
        purpose=purpose,
        lawful_basis=LawfulBasis(
            article6=article6,
            article9=None if article9 is None else str(article9),
            dpa2018_schedule1=basis.get("dpa2018_schedule1"),
        ),
        source_agencies=agencies,
        event_types=event_types,
        recipients=tuple(r for r in recipients if r is not None),
    )


def load_protocols(
    directory_path: Path | None, *, directory: Directory, schemas: SchemaRegistry
) -> tuple[Protocol, ...]:
    """Every protocol in ``directory_path`` (``*.yaml``), or ProtocolError listing all problems."""
    root = directory_path or DEFAULT_DIR
    problems: list[str] = []
    protocols: list[Protocol] = []
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise ProtocolError([f"{root}: no protocol files (*.yaml)"])
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path.name}: cannot be read as YAML: {exc}")
            continue
        try:
            protocol = parse_protocol(
                doc, origin=path.name, directory=directory, schemas=schemas, problems=problems
            )
        except (TypeError, ValueError, AttributeError) as exc:  # a value of an unexpected shape
            problems.append(f"{path.name}: malformed protocol: {exc}")
            continue
        if protocol is not None:
            protocols.append(protocol)
    refs = [p.id for p in protocols]
    problems += [
        f"protocol id {r!r} is defined twice"
        for r in sorted({r for r in refs if refs.count(r) > 1})
    ]
    if problems:
        raise ProtocolError(problems)
    return tuple(protocols)
