"""Parse one protocol document into a Protocol, reporting every problem with its line.

Checks that need the event schemas or other protocols live in ``checks``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from consent.core.conditions import Condition, ConditionError
from consent.core.model import (
    ConsentRequirement,
    FieldRule,
    Generalisation,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    Purpose,
    RecipientRule,
    RuleKind,
)
from consent.core.retention import Duration
from consent.policy.yaml_marks import Marked
from consent.policy.yaml_marks import Path as DocPath
from services.backbone.directory import Directory

ARTICLE6 = frozenset("abcdef")
ARTICLE9 = frozenset("abcdefghij")
REQUIRED = (
    "id",
    "version",
    "title",
    "owner",
    "purpose",
    "lawful_basis",
    "consent",
    "sources",
    "recipients",
)
# Every key a protocol may use, per level: a misspelt key (`wen:` for `when:`) must be an
# error, or the rule it was meant to add silently does nothing.
TOP_KEYS = frozenset({*REQUIRED, "valid_from", "valid_until", "review_date"})
BASIS_KEYS = frozenset({"article6", "article9", "dpa2018_schedule1"})
SOURCE_KEYS = frozenset({"agencies", "event_types"})
RECIPIENT_KEYS = frozenset(
    {"agency", "group", "identity", "retention", "when", "when_description", "fields"}
)
RULE_EXTRA_KEYS = frozenset({"as", "to"})
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,80}$")
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    rule: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning" if self.warning else "error"
        return f"{self.file}:{self.line}: {kind} [{self.rule}] {self.message}"


class _Doc:
    """A document being parsed: reads values by path and records problems at their line."""

    def __init__(self, marked: Marked, file: str, problems: list[Problem]) -> None:
        self.marked, self.file, self.problems = marked, file, problems
        self.start = len(problems)

    def problem(self, path: DocPath, rule: str, message: str, *, warning: bool = False) -> None:
        where = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
        text = f"{where}: {message}" if where else message
        self.problems.append(Problem(self.file, self.marked.line(path), rule, text, warning))

    @property
    def failed(self) -> bool:
        return any(not p.warning for p in self.problems[self.start :])

    def known_keys(self, path: DocPath, raw: Mapping[str, Any], allowed: frozenset[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.problem(
                    (*path, key),
                    "unknown-key",
                    f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                )

    def enum(self, path: DocPath, value: Any, kind: type[E], rule: str) -> E | None:
        try:
            return kind(str(value))
        except ValueError:
            self.problem(path, rule, f"must be one of {', '.join(k.value for k in kind)}")
            return None

    def date(self, path: DocPath, value: Any) -> date | None:
        if value is None:
            return None
        if isinstance(value, date):
            return value
        self.problem(path, "type", "must be a date (YYYY-MM-DD)")
        return None

    def typed(self, path: DocPath, value: Any, kind: type, what: str) -> bool:
        if isinstance(value, kind) and not isinstance(value, bool):
            return True
        self.problem(path, "type", f"must be {what}")
        return False


def _field_rule(doc: _Doc, raw: Any, path: DocPath) -> FieldRule | None:
    if not isinstance(raw, Mapping):
        doc.problem(path, "type", "a field rule is a mapping")
        return None
    kinds = [k for k in RuleKind if k.value in raw]
    if len(kinds) != 1:
        names = ", ".join(k.value for k in RuleKind)
        doc.problem(path, "field-rule", f"name exactly one of {names}")
        return None
    kind = kinds[0]
    extra = RULE_EXTRA_KEYS if kind is RuleKind.GENERALISE else RULE_EXTRA_KEYS - {"to"}
    doc.known_keys(path, raw, extra | {kind.value})
    to = None
    if kind is RuleKind.GENERALISE:
        to = doc.enum((*path, "to"), raw.get("to"), Generalisation, "field-rule")
        if to is None:
            return None
    renames = kind in (
        RuleKind.GENERALISE,
        RuleKind.PSEUDONYMISE,
        RuleKind.TOKENISE,
        RuleKind.ENCRYPT,
    )
    if renames and "as" not in raw:
        doc.problem(path, "field-rule", f"{kind.value} needs 'as' (the field the recipient sees)")
        return None
    source = str(raw[kind.value])
    target = str(raw.get("as", source))
    return FieldRule(kind, source, target, to, line=doc.marked.line(path))


def _condition(doc: _Doc, raw: Mapping[str, Any], path: DocPath) -> Condition | None:
    if "when" not in raw:
        return None
    try:
        return Condition.compile(str(raw["when"]))
    except ConditionError as exc:
        doc.problem((*path, "when"), "condition", f"CEL: {exc}")
        return None


def _recipients(doc: _Doc, raw: Any, path: DocPath, directory: Directory) -> list[RecipientRule]:
    if not isinstance(raw, Mapping):
        doc.problem(path, "type", "a recipient is a mapping")
        return []
    doc.known_keys(path, raw, RECIPIENT_KEYS)
    if ("agency" in raw) == ("group" in raw):
        doc.problem(path, "recipient", "name exactly one of agency or group")
        return []
    agencies = (
        [str(raw["agency"])]
        if "agency" in raw
        else list(directory.groups.get(str(raw["group"]), ()))
    )
    if "group" in raw and not agencies:
        doc.problem((*path, "group"), "unknown-agency", f"unknown group {raw['group']!r}")
    for agency in agencies:
        if agency not in directory:
            doc.problem((*path, "agency"), "unknown-agency", f"unknown agency {agency!r}")
    identity = doc.enum((*path, "identity"), raw.get("identity"), IdentityLevel, "identity")
    retention = raw.get("retention")
    if retention is not None and not _is_duration(str(retention)):
        doc.problem((*path, "retention"), "retention", "must be an ISO 8601 duration (P2Y)")
    fields_raw = raw.get("fields")
    if not isinstance(fields_raw, list) or not fields_raw:
        doc.problem(path, "field-rule", "no field rules (a recipient must be given something)")
        fields_raw = []
    rules = [_field_rule(doc, item, (*path, "fields", i)) for i, item in enumerate(fields_raw)]
    condition = _condition(doc, raw, path)
    if identity is None or any(r is None for r in rules):
        return []
    return [
        RecipientRule(
            agency=agency,
            identity=identity,
            fields=tuple(r for r in rules if r is not None),
            condition=condition,
            condition_text=str(raw["when_description"]) if "when_description" in raw else None,
            retention=None if retention is None else str(retention),
            line=doc.marked.line(path),
        )
        for agency in agencies
    ]


def _is_duration(text: str) -> bool:
    try:
        Duration.parse(text)
    except ValueError:
        return False
    return True


def _lawful_basis(doc: _Doc, raw: Mapping[str, Any]) -> LawfulBasis:
    article6 = str(raw.get("article6", ""))
    article9 = raw.get("article9")
    if article6 not in ARTICLE6:
        doc.problem(("lawful_basis", "article6"), "lawful-basis", "Art 6(1) basis must be a-f")
    if article9 is not None and str(article9) not in ARTICLE9:
        doc.problem(("lawful_basis", "article9"), "lawful-basis", "Art 9(2) condition must be a-j")
    schedule1 = raw.get("dpa2018_schedule1")
    return LawfulBasis(
        article6=article6,
        article9=None if article9 is None else str(article9),
        dpa2018_schedule1=None if schedule1 is None else str(schedule1),
    )


def parse_protocol(
    marked: Marked,
    *,
    file: str,
    directory: Directory,
    problems: list[Problem],
    known_event_types: Callable[[str], bool],
    today: date,
) -> Protocol | None:
    doc = _Doc(marked, file, problems)
    raw = marked.value
    if not isinstance(raw, Mapping):
        doc.problem((), "type", "a protocol is a YAML mapping")
        return None
    doc.known_keys((), raw, TOP_KEYS)
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        doc.problem((), "required", f"missing {', '.join(missing)}")
        return None
    if not _ID.match(str(raw["id"])):
        doc.problem(("id",), "type", "id must be lower-case letters, digits and hyphens")
    doc.typed(("version",), raw["version"], int, "a whole number")
    for key in ("sources", "lawful_basis"):
        doc.typed((key,), raw[key], Mapping, "a mapping")
    if not isinstance(raw["recipients"], list) or not raw["recipients"]:
        doc.problem(("recipients",), "recipient", "must list at least one recipient")
    if doc.failed:
        return None
    doc.known_keys(("sources",), raw["sources"], SOURCE_KEYS)
    doc.known_keys(("lawful_basis",), raw["lawful_basis"], BASIS_KEYS)
    sources = raw["sources"]
    agencies = sources.get("agencies")
    event_types = sources.get("event_types")
    for key, value in (("agencies", agencies), ("event_types", event_types)):
        if not isinstance(value, list) or not value:
            doc.problem(("sources", key), "type", "must be a non-empty list")
    if doc.failed:
        return None
    for i, agency in enumerate(agencies):
        if str(agency) not in directory:
            doc.problem(("sources", "agencies", i), "unknown-agency", f"unknown agency {agency!r}")
    for i, event_type in enumerate(event_types):
        if not known_event_types(str(event_type)):
            doc.problem(
                ("sources", "event_types", i),
                "unknown-event-type",
                f"unknown event type {event_type!r}",
            )
    purpose = doc.enum(("purpose",), raw["purpose"], Purpose, "purpose")
    consent = doc.enum(("consent",), raw["consent"], ConsentRequirement, "consent")
    basis = _lawful_basis(doc, raw["lawful_basis"])
    recipients = [
        rule
        for i, item in enumerate(raw["recipients"])
        for rule in _recipients(doc, item, ("recipients", i), directory)
    ]
    dates = {k: doc.date((k,), raw.get(k)) for k in ("valid_from", "valid_until", "review_date")}
    until, review = dates["valid_until"], dates["review_date"]
    if until is not None and until < today:
        doc.problem(("valid_until",), "expired", f"the agreement expired on {until}")
    if review is not None and review < today:
        doc.problem(("review_date",), "review", f"review was due on {review}", warning=True)
    if doc.failed or purpose is None or consent is None:
        return None
    return Protocol(
        id=str(raw["id"]),
        version=int(raw["version"]),
        title=str(raw["title"]),
        owner=str(raw["owner"]),
        purpose=purpose,
        lawful_basis=basis,
        source_agencies=frozenset(str(a) for a in agencies),
        event_types=frozenset(str(t) for t in event_types),
        recipients=tuple(recipients),
        consent=consent,
        valid_from=dates["valid_from"],
        valid_until=dates["valid_until"],
        review_date=dates["review_date"],
        origin=file,
    )
