"""A Bundle's entries and the references between resources. Pure functions.

Accepted Bundle types: ``transaction``, ``batch``, ``collection`` and ``message``. Every
entry is checked before anything is mapped, so one bad entry rejects the whole Bundle
(even a ``batch``, which FHIR would let succeed entry by entry: a child's record is never
half-applied). The rules, each named in the 422 ``type``:

| rule                  | the Bundle is refused when                                          |
| --------------------- | ------------------------------------------------------------------- |
| bundle.type           | Bundle.type is not one of the four above                            |
| bundle.entry_type     | an entry is not Encounter, Flag, Appointment or a supporting type   |
| bundle.entry_request  | a transaction/batch entry is not POST/PUT; another has one (bdl-3)  |
| bundle.message_header | a message does not start with its MessageHeader                     |
| bundle.full_url       | two entries share a fullUrl (bdl-7); a fullUrl disagrees with an id |
| bundle.duplicate_id   | two entries are the same resource type with the same id             |
| bundle.empty          | no entry is an Encounter, Flag or Appointment                       |

A reference resolves, in order, to a resource contained in the referring one (``#id``), to
the entry whose fullUrl it equals (``urn:uuid:...`` or an absolute URL), or to the entry of
that type and id (``Patient/123``, matched on the resource id or a fullUrl ending in it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.backbone.errors import InputRejected
from services.health.fhir_parse import MAPPED, Loc, body_loc

BUNDLE_TYPES = ("transaction", "batch", "collection", "message")
WRITE_METHODS = ("POST", "PUT")
_RELATIVE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]+)?$")
_RESTFUL = re.compile(r"://.*/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")


def _restful(url: str | None) -> tuple[str, str] | None:
    """(type, id) of a RESTful absolute fullUrl (``http://host/fhir/Patient/123``)."""
    found = _RESTFUL.search(url or "")
    return (found.group(1), found.group(2)) if found else None


@dataclass(frozen=True)
class Located:
    """A resource and where it sits in the request body (the ``loc`` of its errors)."""

    resource: Any
    loc: Loc
    full_url: str | None = None

    @property
    def kind(self) -> str:
        return str(self.resource.get_resource_type())


class References:
    """Resolves references against a resource's contained resources and a Bundle's entries
    (none for a single resource, which may only use contained resources or identifiers)."""

    def __init__(self, entries: Sequence[Located] = ()) -> None:
        self._by_url = {e.full_url: e for e in entries if e.full_url}
        self._by_id = {(e.kind, e.resource.id): e for e in entries if e.resource.id}
        for e in entries:
            restful = _restful(e.full_url)
            if restful and restful[0] == e.kind:
                self._by_id.setdefault(restful, e)

    def resolve(self, reference: str, owner: Located) -> Located | None:
        """The resource ``reference`` names, seen from ``owner``, or None."""
        if reference.startswith("#"):
            for i, contained in enumerate(owner.resource.contained or []):
                if contained.id == reference[1:]:
                    return Located(contained, (*owner.loc, "contained", i))
            return None
        if reference in self._by_url:
            return self._by_url[reference]
        relative = _RELATIVE.match(reference)
        if relative:
            return self._by_id.get((relative.group(1), relative.group(2)))
        return None


def reference_type(reference: str) -> str | None:
    """The resource type a literal reference names in its text (``Patient/1``, a RESTful
    URL), or None (``urn:uuid:...``, ``#id``)."""
    relative = _RELATIVE.match(reference)
    if relative:
        return relative.group(1)
    restful = _restful(reference)
    return restful[0] if restful else None


def _check_request(bundle: Bundle, i: int, entry: Any) -> None:
    transactional = bundle.type in ("transaction", "batch")
    if transactional and (entry.request is None or entry.request.method not in WRITE_METHODS):
        raise InputRejected(
            body_loc("entry", i, "request"),
            f"every {bundle.type} entry must create or update (request.method POST or PUT)",
            "bundle.entry_request",
        )
    if not transactional and entry.request is not None:
        raise InputRejected(
            body_loc("entry", i, "request"),
            f"a {bundle.type} Bundle's entries carry no request (FHIR bdl-3)",
            "bundle.entry_request",
        )


def _check_identity(i: int, entry: Any, seen: dict[Any, int]) -> None:
    resource, url = entry.resource, entry.fullUrl
    if url and url in seen:
        raise InputRejected(
            body_loc("entry", i, "fullUrl"),
            f"the same fullUrl as entry {seen[url]} (FHIR bdl-7)",
            "bundle.full_url",
        )
    key = (resource.get_resource_type(), resource.id)
    if resource.id and key in seen:
        raise InputRejected(
            body_loc("entry", i, "resource", "id"),
            f"the same resource type and id as entry {seen[key]}",
            "bundle.duplicate_id",
        )
    restful = _restful(url)
    if restful and resource.id and restful != (resource.get_resource_type(), resource.id):
        raise InputRejected(
            body_loc("entry", i, "fullUrl"),
            "the fullUrl must end in the resource's type and id",
            "bundle.full_url",
        )
    if url:
        seen[url] = i
    if resource.id:
        seen[key] = i


def bundle_entries(bundle: Bundle) -> list[Located]:
    """Every entry of a validated Bundle, located, once the Bundle rules above hold."""
    if bundle.type not in BUNDLE_TYPES:
        raise InputRejected(
            body_loc("type"), "Bundle.type must be one of " + ", ".join(BUNDLE_TYPES), "bundle.type"
        )
    entries: list[Located] = []
    seen: dict[Any, int] = {}
    for i, entry in enumerate(bundle.entry or []):
        _check_request(bundle, i, entry)
        if entry.resource is None:
            raise InputRejected(
                body_loc("entry", i, "resource"),
                "every entry needs a resource",
                "bundle.entry_type",
            )
        is_header = entry.resource.get_resource_type() == "MessageHeader"
        if is_header != (bundle.type == "message" and i == 0):
            raise InputRejected(
                body_loc("entry", i, "resource", "resourceType"),
                "a message Bundle starts with its MessageHeader, and only a message has one",
                "bundle.message_header",
            )
        _check_identity(i, entry, seen)
        entries.append(Located(entry.resource, ("entry", i, "resource"), entry.fullUrl))
    if not any(e.kind in MAPPED for e in entries):
        raise InputRejected(
            body_loc("entry"),
            "the Bundle holds no " + ", ".join(MAPPED) + " to map",
            "bundle.empty",
        )
    return entries


def native_id(located: Located) -> str:
    """The event's native id: the resource's type and logical id, or its entry's fullUrl."""
    key = located.resource.id or located.full_url
    if not key:
        raise InputRejected(
            body_loc(*located.loc, "id"),
            f"the {located.kind} needs an id (its id in your system) so that sending it again "
            "is recognised as the same record; in a Bundle, an entry fullUrl will do",
            "resource.id",
        )
    return f"{located.kind}/{key}"


def short_id(located: Located) -> str:
    """The record's own id for the event data: its id, else the fullUrl's last segment."""
    return str(located.resource.id or (located.full_url or "").rsplit(":", 1)[-1].rsplit("/")[-1])
