"""The agency directory: who takes part, what kind of body each is, which publish, and which
are told when their records are shared (access-back)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from services.backbone.errors import ConfigurationError

AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "deploy" / "agencies.yaml"


class AgencyKind(StrEnum):
    EDUCATION = "education"
    SOCIALCARE = "socialcare"
    HEALTH = "health"
    ANALYTICS = "analytics"

    @property
    def publishes(self) -> bool:
        """Agencies of this kind publish source events (analytics only receives)."""
        return self is not AgencyKind.ANALYTICS


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    kind: AgencyKind
    # Told, on its own delivery topic, which recipients received each of its events (as
    # CP-IS tells a local authority that an ED has seen its plan). Publishers only.
    access_back: bool = False


@dataclass(frozen=True)
class Directory:
    agencies: Mapping[str, Agency]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Agency]:
        return iter(self.agencies.values())

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self.agencies

    def get(self, agency_id: str) -> Agency:
        try:
            return self.agencies[agency_id]
        except KeyError:
            raise ConfigurationError(f"unknown agency {agency_id!r}") from None

    @property
    def publishers(self) -> list[Agency]:
        return [a for a in self if a.kind.publishes]


def parse_directory(doc: Any, *, origin: str = "agencies file") -> Directory:
    rows = doc.get("agencies") if isinstance(doc, Mapping) else None
    if not isinstance(rows, list) or not rows:
        raise ConfigurationError(f"{origin}: expected a non-empty 'agencies' list")
    agencies: dict[str, Agency] = {}
    for index, row in enumerate(rows):
        where = f"{origin}: agencies[{index}]"
        if not isinstance(row, Mapping):
            raise ConfigurationError(f"{where} is not a mapping")
        agency_id = str(row.get("id", ""))
        if not AGENCY_ID.match(agency_id):
            raise ConfigurationError(f"{where}: id {agency_id!r} must match {AGENCY_ID.pattern}")
        if agency_id in agencies:
            raise ConfigurationError(f"{where}: duplicate id {agency_id!r}")
        try:
            kind = AgencyKind(str(row.get("kind")))
        except ValueError:
            kinds = ", ".join(k.value for k in AgencyKind)
            raise ConfigurationError(f"{where}: kind must be one of {kinds}") from None
        access_back = row.get("access_back", False)
        if not isinstance(access_back, bool):
            raise ConfigurationError(f"{where}: access_back of {agency_id!r} must be true or false")
        if access_back and not kind.publishes:
            raise ConfigurationError(
                f"{where}: access_back of {agency_id!r} needs an agency that publishes "
                f"({kind} agencies do not)"
            )
        agencies[agency_id] = Agency(
            agency_id, str(row.get("name") or agency_id), kind, access_back=access_back
        )
    groups_doc = doc.get("groups") or {}
    if not isinstance(groups_doc, Mapping):
        raise ConfigurationError(f"{origin}: 'groups' maps a group name to agency ids")
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in groups_doc.items():
        unknown = [m for m in members or [] if m not in agencies]
        if not members or unknown:
            raise ConfigurationError(f"{origin}: group {name!r} must list known agencies")
        groups[str(name)] = tuple(str(m) for m in members)
    return Directory(agencies, groups)


def load_directory(path: Path | None = None) -> Directory:
    path = path or DEFAULT_FILE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from exc
    return parse_directory(doc, origin=str(path))
