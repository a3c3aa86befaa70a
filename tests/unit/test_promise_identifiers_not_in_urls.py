"""A child's identifiers travel in request bodies, never in URLs, where proxies, access logs
and browser histories would keep them: the consent registry ("identifiers travel in bodies
only, never in URLs") and the audit service ("the NHS number travels in the body, never the
URL"), read from each service's own OpenAPI document. The console's URLs are checked in
tests/integration/test_console.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consent.registry.api import create_app as consent_app
from services.audit.app import AuditSettings
from services.audit.app import create_app as audit_app
from services.backbone.settings import HttpSettings

# Parts of a parameter's name that say it could hold something that identifies a child.
IDENTIFYING = (
    "nhs",
    "upn",
    "person",
    "name",
    "birth",
    "dob",
    "postcode",
    "address",
    "identifier",
    "child",
    "pupil",
    "patient",
)
IDENTIFIERS = ("nhs_number", "upn", "la_person_id")  # the identifiers a child is named by


def _consent_document(keyring_path: Path, tmp_path: Path) -> dict[str, Any]:
    settings = HttpSettings(
        keyring_file=keyring_path,
        person_index_database_url=f"sqlite:///{tmp_path / 'index.db'}",
        kafka_bootstrap="127.0.0.1:9",  # never reached: the document needs no broker
        kafka_security_protocol="PLAINTEXT",
    )
    return consent_app(settings).openapi()


def _audit_document(keyring_path: Path, tmp_path: Path) -> dict[str, Any]:
    settings = AuditSettings(
        keyring_file=keyring_path,
        audit_database_url=f"sqlite:///{tmp_path / 'audit.db'}",
        audit_checkpoint_file=tmp_path / "checkpoints.jsonl",
    )
    return audit_app(settings).openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a $ref followed to the component it names."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def url_parameters_that_could_identify(doc: dict[str, Any]) -> list[str]:
    """Every path or query parameter whose name, or the path's own text, could carry an
    identifier of a child."""
    found = []
    for method, path, operation in _operations(doc):
        for segment in path.lower().split("/"):
            if any(part in segment for part in IDENTIFYING):
                found.append(f"{method} {path}: path segment {segment!r}")
        for parameter in operation.get("parameters", []):
            name = parameter["name"].lower().replace("-", "_")
            if parameter["in"] in ("path", "query") and any(p in name for p in IDENTIFYING):
                found.append(f"{method} {path}: {parameter['in']} parameter {name!r}")
    return found


def body_fields(doc: dict[str, Any], method: str, path: str) -> set[str]:
    """Every field name of an operation's JSON request body, nested ones too."""
    body = doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
    names: set[str] = set()
    pending = [body["schema"]]
    seen: set[str] = set()
    while pending:
        schema = pending.pop()
        if "$ref" in schema:
            if schema["$ref"] in seen:
                continue
            seen.add(schema["$ref"])
        schema = _schema(doc, schema)
        names |= set(schema.get("properties", {}))
        pending += schema.get("properties", {}).values()
        pending += schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("oneOf", [])
    return names


@pytest.fixture
def consent_document(keyring_path: Path, tmp_path: Path) -> dict[str, Any]:
    return _consent_document(keyring_path, tmp_path)


@pytest.fixture
def audit_document(keyring_path: Path, tmp_path: Path) -> dict[str, Any]:
    return _audit_document(keyring_path, tmp_path)


def test_the_consent_registry_takes_identifiers_in_bodies_only(
    consent_document: dict[str, Any],
) -> None:
    assert url_parameters_that_could_identify(consent_document) == []
    # And the operations that name a child do take it, in the body.
    assert "nhs_number" in body_fields(consent_document, "POST", "/consents")
    assert "nhs_number" in body_fields(consent_document, "POST", "/consents/search")


def test_the_audit_service_takes_the_child_in_the_body_never_the_url(
    audit_document: dict[str, Any],
) -> None:
    assert url_parameters_that_could_identify(audit_document) == []
    for path in ("/audit/disclosure-report", "/audit/decisions/search"):
        assert set(IDENTIFIERS) <= body_fields(audit_document, "POST", path), path


def test_an_identifier_in_a_url_would_be_found() -> None:
    # The walk itself can fail: a document with an identifier in a query or a path is caught.
    doc: dict[str, Any] = {
        "paths": {
            "/consents": {"get": {"parameters": [{"name": "nhs_number", "in": "query"}]}},
            "/children/{child_id}": {"get": {"parameters": [{"name": "id", "in": "path"}]}},
            "/audit/decisions": {"get": {"parameters": [{"name": "LA-Person-Id", "in": "query"}]}},
            "/ok": {"get": {"parameters": [{"name": "limit", "in": "query"}]}},
        }
    }
    assert url_parameters_that_could_identify(doc) == [
        "GET /consents: query parameter 'nhs_number'",
        "GET /children/{child_id}: path segment 'children'",
        "GET /children/{child_id}: path segment '{child_id}'",
        "GET /audit/decisions: query parameter 'la_person_id'",
    ]
