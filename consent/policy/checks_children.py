"""Checks of one protocol that protect the children it is about (beyond ``checks``):

- free text (schemas mark it ``x-free-text``: clinical notes, a safeguarding lead's
  summary, a justification) never reaches a pseudonymised or anonymised recipient in a form
  that shows its content (``allow``, ``generalise``, ``encrypt``): prose can name or describe
  a child whatever the identity level. ``mask`` shows only that the field is there, and a
  pseudonym or token only whether two values are equal, so those remain allowed;
- every field a ``when`` condition names exists: under ``event.data`` in the schema of at
  least one event type the protocol covers (a path none has is a misspelling, and the
  condition would never hold); under ``state`` in the subject state the processor keeps
  (consent/core/state.py). A path some covered types lack is allowed: conditions such as
  ``event.type != "x" || event.data.only_in_x`` tell event types apart that way;
- a warning for each covered event type whose schema has no ``subject.date_of_birth`` and
  no ``unborn`` flag: nothing in such an event shows that its subject is a child (a plan or
  a period of care can end on the 18th birthday), so a person must confirm it.

These need the document's lines as well as the parsed protocol: a ``when`` and each event
type are reported on their own line.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, get_args, get_type_hints

from consent.core.model import IdentityLevel, Protocol, RuleKind
from consent.core.retention import Duration
from consent.core.state import SubjectState
from consent.policy.checks import NEVER_SHARED, carries, nodes_along
from consent.policy.condition_refs import referenced_paths
from consent.policy.parse import Problem
from consent.policy.yaml_marks import Marked
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import TRANSIT_RETENTION_MS

FREE_TEXT = "x-free-text"
_SHOWS_CONTENT = frozenset({RuleKind.ALLOW, RuleKind.GENERALISE, RuleKind.ENCRYPT})
_ENVELOPE = ("type", "source")  # what `event` holds besides data (consent/core/decide.py)
Schema = Mapping[str, Any]


def _free_text_in(node: Any, path: str) -> list[str]:
    """The free-text fields at or under ``node`` (which sits at ``path``)."""
    if not isinstance(node, Mapping):
        return []
    if node.get(FREE_TEXT) is True:
        return [path]
    inner = [(f"{path}.{k}", n) for k, n in (node.get("properties") or {}).items()]
    inner.append((f"{path}[*]", node.get("items")))
    return [found for p, n in inner for found in _free_text_in(n, p)]


def _check_free_text(protocol: Protocol, schemas: list[Schema], problems: list[Problem]) -> None:
    for rule in protocol.recipients:
        if rule.identity is IdentityLevel.IDENTIFIED:
            continue
        for f in rule.fields:
            trails = [t for s in schemas if (t := nodes_along(s, f.path)) is not None]
            if f.kind not in _SHOWS_CONTENT or any(
                carries(t[-1], NEVER_SHARED) or any(n.get(NEVER_SHARED) is True for n in t)
                for t in trails
            ):
                continue  # an unknown or never-shared field is refused by ``checks``
            found = sorted({p for t in trails for p in _free_text_in(t[-1], f.path)})
            if not found:
                continue
            what = "is free text" if found == [f.path] else f"holds free text ({', '.join(found)})"
            level = rule.identity.value
            who = f"an {level}" if rule.identity is IdentityLevel.ANONYMISED else f"a {level}"
            problems.append(
                Problem(
                    protocol.origin,
                    f.line,
                    "free-text",
                    f"{rule.agency}: {who} recipient cannot {f.kind.value} {f.path}: it {what}, "
                    "which can name or describe the child whatever the identity level (mask "
                    "shows only that it is there)",
                )
            )


@functools.cache
def state_schema(kind: type = SubjectState) -> Schema:
    """The subject state conditions read (``SubjectState.as_cel``) as a schema: each field
    of the dataclass a property, a dataclass field an object of its own fields."""
    hints = get_type_hints(kind)
    props: dict[str, Schema] = {}
    for f in dataclasses.fields(kind):
        types = [t for t in (get_args(hints[f.name]) or (hints[f.name],)) if t is not type(None)]
        inner = types[0] if len(types) == 1 else None
        is_record = isinstance(inner, type) and dataclasses.is_dataclass(inner)
        props[f.name] = state_schema(inner) if is_record and inner is not None else {}
    return {"type": "object", "properties": props}


def _suggestion(schemas: list[Schema], prefix: str, path: str) -> str:
    """`` (did you mean ...?)`` for the first part of ``path`` no schema has, if one is close."""
    parts = path.split(".")
    for i in range(len(parts)):
        if any(nodes_along(s, ".".join(parts[: i + 1])) is not None for s in schemas):
            continue
        parents = [[s] if i == 0 else nodes_along(s, ".".join(parts[:i])) for s in schemas]
        names = {n for t in parents if t for n in (t[-1].get("properties") or {})}
        close = difflib.get_close_matches(parts[i].removesuffix("[*]"), sorted(names), n=1)
        return f" (did you mean {'.'.join([prefix, *parts[:i], *close])}?)" if close else ""
    return ""


def _unknown(path: str, event_types: list[str], schemas: list[Schema]) -> str | None:
    """Why ``path`` (``event...`` or ``state...``) names no field, or None if it names one."""
    root, _, rest = path.partition(".")
    if root == "state":
        if not rest or nodes_along(state_schema(), rest) is not None:
            return None
        return "which the subject state does not have" + _suggestion(
            [state_schema()], "state", rest
        )
    head, _, inner = rest.partition(".")
    if not rest or (head in _ENVELOPE and not inner):
        return None
    if head in _ENVELOPE:
        return f"but event.{head} is text, with no fields"
    if head != "data":
        return "but event has only type, source and data"
    if not inner or any(nodes_along(s, inner) is not None for s in schemas):
        return None
    return f"which no schema of {', '.join(event_types)} has" + _suggestion(
        schemas, "event.data", inner
    )


def _check_conditions(
    protocol: Protocol, marked: Marked, schemas: list[Schema], problems: list[Problem]
) -> None:
    event_types = sorted(protocol.event_types)
    compiled = {r.condition.source: r.condition for r in protocol.recipients if r.condition}
    for i, raw in enumerate(marked.value["recipients"]):
        condition = compiled.get(str(raw.get("when"))) if isinstance(raw, Mapping) else None
        if condition is None:
            continue
        who = raw.get("agency", raw.get("group"))
        for path in referenced_paths(condition):
            why = _unknown(path, event_types, schemas)
            if why is not None:
                line = marked.line(("recipients", i, "when"))
                problems.append(
                    Problem(
                        protocol.origin,
                        line,
                        "condition-field",
                        f"{who}: when names {path}, {why}",
                    )
                )


def _has_unborn(node: Any) -> bool:
    if not isinstance(node, Mapping):
        return False
    props = node.get("properties") or {}
    flag = props.get("unborn")
    if isinstance(flag, Mapping) and flag.get("type") == "boolean":
        return True
    return any(_has_unborn(n) for n in [*props.values(), node.get("items")])


def _check_scope(
    protocol: Protocol, marked: Marked, registry: SchemaRegistry, problems: list[Problem]
) -> None:
    for i, event_type in enumerate(marked.value["sources"]["event_types"]):
        schema = registry.get(str(event_type)).document
        if nodes_along(schema, "subject.date_of_birth") is not None or _has_unborn(schema):
            continue
        problems.append(
            Problem(
                protocol.origin,
                marked.line(("sources", "event_types", i)),
                "scope",
                f"{event_type} has no subject.date_of_birth and no unborn flag, so nothing in "
                "it shows that its subject is a child: confirm that every subject it can "
                "carry is one this protocol for children may be about",
                warning=True,
            )
        )


def _check_retention(protocol: Protocol, marked: Marked, problems: list[Problem]) -> None:
    """A retention shorter than Kafka keeps a delivery on the recipient's topic: infoshare's
    stores purge on time, but the topic's copy outlives the rule (Kafka deletes by age per
    topic, not per record)."""
    kept_days = TRANSIT_RETENTION_MS // (24 * 3600 * 1000)
    for i, raw in enumerate(marked.value["recipients"]):
        retention = raw.get("retention") if isinstance(raw, Mapping) else None
        if retention is None:
            continue
        try:
            if Duration.parse(str(retention)).longest() >= timedelta(days=kept_days):
                continue
        except ValueError:  # reported by the parser
            continue
        who = raw.get("agency") or raw.get("group")
        problems.append(
            Problem(
                protocol.origin,
                marked.line(("recipients", i, "retention")),
                "retention",
                f"{who} may keep what it gets for {retention}, but its Kafka topic "
                f"keeps each delivery {kept_days} days (so a reader can survive an outage): "
                "infoshare's stores purge on time; a recipient reading its topic must delete "
                "its own copy, and the topic's copy goes at the topic's retention",
                warning=True,
            )
        )


def check_children(protocol: Protocol, marked: Marked, registry: SchemaRegistry) -> list[Problem]:
    """The problems of one parsed protocol (``marked`` is the document it was parsed from)."""
    schemas = [registry.get(t).document for t in sorted(protocol.event_types)]
    problems: list[Problem] = []
    _check_free_text(protocol, schemas, problems)
    _check_conditions(protocol, marked, schemas, problems)
    _check_scope(protocol, marked, registry, problems)
    _check_retention(protocol, marked, problems)
    return problems
