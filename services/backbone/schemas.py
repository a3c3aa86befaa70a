"""Event contracts: the JSON Schema 2020-12 files under ``schemas/``, one per type and version.

File layout ``schemas/<event type>/v<version>.json``; each file's ``$id`` is the event's
CloudEvents ``dataschema``. Schemas are checked against the 2020-12 meta-schema when loaded,
so a broken contract stops the service at start, not at the first event.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from services.backbone.errors import ConfigurationError, SchemaViolation, UnknownEventType

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    version: int
    uri: str
    document: Mapping[str, Any]
    validator: Draft202012Validator
    fast: Any  # jsonschema_rs validator of the same document, formats checked

    def validate(self, data: Any) -> None:
        """Raise SchemaViolation naming the first failing field and rule.

        jsonschema-rs decides in about 2 µs; only a record it rejects goes through the
        reference validator (about 300 µs), to name the field and rule. A unit property
        checks that the two agree on valid and broken events alike."""
        if self.fast.is_valid(data):
            return
        error = next(iter(sorted(self.validator.iter_errors(data), key=_error_order)), None)
        if error is None:
            return
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        raise SchemaViolation(
            f"{self.event_type} v{self.version}: {path}: {_describe(error)}",
            path=path,
            rule=str(error.validator),
        )


def _describe(error: Any) -> str:
    """The rule broken, without the offending value: it may be a person's identifier."""
    if error.validator in ("required", "additionalProperties"):
        return str(error.message)  # names properties, never values
    if error.validator == "enum":
        return "must be one of " + ", ".join(map(str, error.validator_value))
    if error.validator == "format":
        return f"must be a valid {error.validator_value}"
    return f"must satisfy {error.validator}: {error.validator_value!r}"


def _error_order(error: Any) -> tuple[int, str]:
    return (len(error.absolute_path), str(error.absolute_path))


class SchemaRegistry:
    """The schemas of every event type, keyed by (type, version) and by ``$id``."""

    def __init__(self, schemas: list[EventSchema]) -> None:
        self._by_type = {(s.event_type, s.version): s for s in schemas}
        self._by_uri = {s.uri: s for s in schemas}

    @classmethod
    def load(cls, directory: Path | None = None) -> SchemaRegistry:
        directory = directory or DEFAULT_DIR
        if not directory.is_dir():
            raise ConfigurationError(f"schema directory {directory} does not exist")
        schemas: list[EventSchema] = []
        checker = FormatChecker()
        # jsonschema-rs takes dates the reference and Python refuse (the year 0000, a sign
        # or "/" among a year's digits, a leap second): for dates it asks the reference.
        dates: dict[str, Callable[..., bool]] = {
            f: functools.partial(checker.conforms, format=f) for f in ("date", "date-time")
        }
        for path in sorted(directory.glob("*/v*.json")):
            match = _VERSION_FILE.match(path.name)
            if not match:
                continue
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                Draft202012Validator.check_schema(doc)
            except (json.JSONDecodeError, SchemaError) as exc:
                raise ConfigurationError(f"{path}: not a valid JSON Schema 2020-12: {exc}") from exc
            uri = doc.get("$id")
            if not isinstance(uri, str) or not uri.endswith(f"/{path.parent.name}/{path.name}"):
                raise ConfigurationError(
                    f"{path}: $id must end with /{path.parent.name}/{path.name}"
                )
            schemas.append(
                EventSchema(
                    event_type=path.parent.name,
                    version=int(match.group(1)),
                    uri=uri,
                    document=doc,
                    validator=Draft202012Validator(doc, format_checker=checker),
                    fast=jsonschema_rs.validator_for(doc, validate_formats=True, formats=dates),
                )
            )
        if not schemas:
            raise ConfigurationError(f"no schemas found under {directory}")
        return cls(schemas)

    def get(self, event_type: str, version: int = 1) -> EventSchema:
        try:
            return self._by_type[(event_type, version)]
        except KeyError:
            raise UnknownEventType(f"no schema for {event_type} v{version}") from None

    def by_uri(self, uri: str) -> EventSchema:
        try:
            return self._by_uri[uri]
        except KeyError:
            raise UnknownEventType(f"no schema registered as {uri}") from None

    @property
    def event_types(self) -> list[str]:
        return sorted({t for t, _ in self._by_type})
