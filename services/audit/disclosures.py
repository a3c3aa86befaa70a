"""A child's disclosure report (an accounting of disclosures: who received what about the
child, when, under which agreement, which fields), as rows, CSV or a FHIR R4 AuditEvent
Bundle shaped on IHE BALP PrivacyDisclosure. Pure: entries in, documents out."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

ACTION_SYSTEM = "https://infoshare.example/fhir/CodeSystem/audit-action"
AGENCY_SYSTEM = "https://infoshare.example/fhir/NamingSystem/agency"
SUBJECT_SYSTEM = "https://infoshare.example/fhir/NamingSystem/audit-subject-key"
PURPOSE_SYSTEM = "https://infoshare.example/fhir/CodeSystem/purpose"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"

COLUMNS = (
    "recorded_at",
    "occurred_at",
    "action",  # disclose, amend, recall, recall_purge, ...
    "decision",
    "recipient",
    "source_agency",
    "event_type",
    "protocol_id",
    "protocol_version",
    "purpose",
    "lawful_basis",
    "identity_level",
    "fields_disclosed",
    "fields_pseudonymised",
    "fields_withheld",
    "consent_record_id",
    "override_role",
    "reason",
    "audit_id",
)


def rows(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per decision, oldest first, the report's columns only."""
    return [{c: e.get(c) for c in COLUMNS} for e in entries]


def as_csv(entries: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV (RFC 4180), every cell safe to open in a spreadsheet (:func:`inert`).
    Lines end in CRLF, so that a cell holding either CR or LF is quoted: with LF alone a
    lone CR went unquoted, and a spreadsheet took it for the end of the row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows(entries):
        writer.writerow({k: inert(_cell(v)) for k, v in row.items()})
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (CSV injection, OWASP):
    one that begins with ``= + - @``, a tab or a carriage return gets a leading ``'``.
    Reasons and roles come from agencies' requests and cannot be trusted to be inert."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(map(str, value))
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_fhir_bundle(entries: Sequence[Mapping[str, Any]], *, subject_key: str) -> dict[str, Any]:
    """A FHIR R4 Bundle (type collection) of AuditEvents, validated by fhir.resources."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": iso(datetime.now(UTC)),
        "entry": [
            {"fullUrl": f"urn:uuid:{e['audit_id']}", "resource": audit_event(e, subject_key)}
            for e in entries
        ],
    }
    Bundle.model_validate(bundle)  # raises if the shape is not valid FHIR R4
    return bundle


def audit_event(e: Mapping[str, Any], subject_key: str) -> dict[str, Any]:
    shared = e.get("decision") == "shared"
    details = [
        {
            "type": name,
            "valueString": ", ".join(e[name]) if isinstance(e[name], list) else str(e[name]),
        }
        for name in (
            "protocol_id",
            "protocol_version",
            "lawful_basis",
            "identity_level",
            "fields_disclosed",
            "fields_pseudonymised",
            "fields_withheld",
            "consent_record_id",
            "override_role",
            "event_type",
            "trace_id",
        )
        if e.get(name) not in (None, [], "")
    ]
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": e["audit_id"],
        "type": {
            "system": LIFECYCLE,
            "code": "transmit",
            "display": "Transmit Record Lifecycle Event",
        },
        "subtype": [{"system": ACTION_SYSTEM, "code": e.get("action") or "disclose"}],
        "action": "E",
        "recorded": iso(e["recorded_at"]),
        "outcome": "0" if shared else "4",
        "outcomeDesc": f"{e.get('decision')}: {e.get('reason')}",
        "agent": [
            _agent(e.get("source_agency"), requestor=False, role="source"),
            _agent(e.get("recipient"), requestor=True, role="recipient"),
        ],
        "source": {"observer": {"display": e.get("actor") or "infoshare"}},
        "entity": [
            {
                "what": {"identifier": {"system": SUBJECT_SYSTEM, "value": subject_key}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "detail": details,
            }
        ],
    }
    if e.get("occurred_at"):
        event["period"] = {"start": iso(e["occurred_at"])}
    if e.get("purpose"):
        event["purposeOfEvent"] = [{"coding": [{"system": PURPOSE_SYSTEM, "code": e["purpose"]}]}]
    return event


def _agent(agency: str | None, *, requestor: bool, role: str) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "requestor": requestor,
        "role": [{"text": role}],
    }
    if agency:
        agent["who"] = {"identifier": {"system": AGENCY_SYSTEM, "value": agency}}
    else:
        agent["who"] = {"display": "no recipient (no protocol covered the event)"}
    return agent
