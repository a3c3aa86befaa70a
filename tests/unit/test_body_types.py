"""A number in a JSON request body is a JSON number, a boolean is true or false, and a date
is ISO 8601 text: other JSON types are refused with 422, as the OpenAPI documents say.
pydantic's lax mode read true as 1, "12" as 12, "yes" as true and 0 as 1 January 1970, and
the fuzzer found a search that took ``"offset": false``. Every such field of every request
body model, nested models too, is checked on its own type."""

from __future__ import annotations

import typing
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from consent.registry.api import ConsentIn, SubjectQuery
from consent.registry.reidentify import ReidentifyIn
from services.agency.routes import RecallRequest
from services.audit.child import ChildQuery
from services.audit.models import OverrideReviewIn
from services.audit.routes_search import ChildSearch
from services.delivery.api_models import AckIn, SubscriptionCreate, SubscriptionUpdate
from services.education import native as education
from services.ops.components import COMPONENTS
from services.socialcare import native, native_cin, native_looked_after
from services.witness.app import CosignIn

BODIES: list[type[BaseModel]] = [
    AckIn,
    ChildQuery,  # text only: listed so that a number added to it is checked
    ChildSearch,
    ConsentIn,
    CosignIn,
    OverrideReviewIn,
    RecallRequest,
    ReidentifyIn,
    SubjectQuery,
    SubscriptionCreate,
    SubscriptionUpdate,
    education.AttendanceConcern,
    education.ChildMissingEducation,
    education.ExclusionRecorded,
    education.SafeguardingConcern,
    native.ChildProtectionPlanEnded,
    native.ChildProtectionPlanStarted,
    native_cin.AssessmentCompleted,
    native_cin.CaseClosed,
    native_cin.ReferralReceived,
    native_looked_after.LookedAfterEnded,
    native_looked_after.LookedAfterStarted,
]


def _inner(annotation: Any) -> list[Any]:
    """The types ``annotation`` is made of (unions, lists and Annotated opened)."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return [annotation]
    if origin is Annotated:
        return _inner(typing.get_args(annotation)[0])
    return [t for arg in typing.get_args(annotation) for t in _inner(arg)]


def fields_of(
    model: type[BaseModel], types: tuple[type, ...], seen: set[type[BaseModel]] | None = None
) -> list[tuple[str, FieldInfo]]:
    """Every field of ``model``, and of the models inside it, of one of ``types``."""
    seen = set() if seen is None else seen
    seen.add(model)
    found = []
    for name, info in model.model_fields.items():
        kinds = _inner(info.annotation)
        if any(k in types for k in kinds):
            found.append((f"{model.__name__}.{name}", info))
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in seen:
                found += fields_of(kind, types, seen)
    return found


def _typed(info: FieldInfo) -> Any:
    """The field's type with its constraints and validators, as the model checks it."""
    if not info.metadata:
        return info.annotation
    return typing.cast(Any, Annotated)[(info.annotation, *info.metadata)]


FIELDS = sorted({n: f for body in BODIES for n, f in fields_of(body, (int, float))}.items())
FLAGS = sorted({n: f for body in BODIES for n, f in fields_of(body, (bool,))}.items())
DATES = sorted({n: f for body in BODIES for n, f in fields_of(body, (date, datetime))}.items())


def test_the_bodies_hold_the_numeric_fields_checked() -> None:
    names = {name for name, _ in FIELDS}
    # Those the issue found, and those of their kind at the time of the fix.
    assert {"ChildSearch.limit", "ChildSearch.offset", "AckIn.through"} <= names
    assert {"SubscriptionCreate.heartbeat_period", "AbsenceCodeCount.sessions"} <= names
    assert {"AttendanceConcern.attendance_percentage", "Exclusion.sessions"} <= names
    assert {name for name, _ in FLAGS} >= {"Concern.referred", "PlanStart.unborn"}
    assert {name for name, _ in DATES} >= {"Pupil.date_of_birth", "ChildSearch.since"}
    assert len(DATES) >= 24


@pytest.mark.parametrize(("name", "info"), FIELDS, ids=[name for name, _ in FIELDS])
@pytest.mark.parametrize("raw", ["true", "false", '"12"', '"1"'])
def test_a_body_number_is_never_true_false_or_text(name: str, info: FieldInfo, raw: str) -> None:
    _refuses(info, raw, taking=["12", "12.0"])


@pytest.mark.parametrize(("name", "info"), FLAGS, ids=[name for name, _ in FLAGS])
@pytest.mark.parametrize("raw", ["0", "1", '"true"', '"yes"', '"N"'])
def test_a_body_boolean_is_true_or_false_only(name: str, info: FieldInfo, raw: str) -> None:
    _refuses(info, raw, taking=["true", "false"])


@pytest.mark.parametrize(("name", "info"), DATES, ids=[name for name, _ in DATES])
@pytest.mark.parametrize("raw", ["0", "86400", '"0"', '"1468"', "true"])
def test_a_body_date_is_iso_text_never_a_number(name: str, info: FieldInfo, raw: str) -> None:
    # pydantic alone reads 0, and "0", as 1 January 1970; a midnight is how some systems
    # write a date
    _refuses(info, raw, taking=['"2026-09-01"', '"2026-09-01T00:00:00"'])


def _refuses(info: FieldInfo, raw: str, *, taking: list[str]) -> None:
    """The field, as its model checks it, refuses the JSON ``raw`` and takes each of
    ``taking``."""
    field: TypeAdapter[Any] = TypeAdapter(_typed(info))
    with pytest.raises(ValidationError):
        field.validate_json(raw)
    for good in taking:
        field.validate_json(good)


def test_text_still_counts_where_numbers_come_as_text() -> None:
    from services.audit.routes_search import DecisionFilters

    assert DecisionFilters.model_validate({"limit": "5", "offset": "10"}).offset == 10


def test_every_json_body_a_service_takes_is_one_checked_here(
    keyring_path: Path, tmp_path: Path
) -> None:
    """BODIES is every model a service reads a JSON request body as, nothing left out and
    nothing stale: read from each service's own OpenAPI document, so a new body model fails
    here until its numbers, booleans and dates are checked above."""
    documents = _documents(keyring_path, tmp_path)
    served = {c.name for c in COMPONENTS if c.name != "processor"}  # its HTTP is /metrics
    assert served <= documents.keys()
    taken = {
        name: service
        for service, document in documents.items()
        for name in _json_bodies(document, service)
    }
    checked = {model.__name__ for model in BODIES}
    assert {f"{taken[name]}: {name}" for name in taken.keys() - checked} == set()
    assert checked - taken.keys() == set()


def _json_bodies(document: dict[str, Any], service: str) -> set[str]:
    """The components each operation's JSON request body names, at any depth (a list of
    them, one of several); an operation whose JSON body names none is a failure."""
    found = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content or path.startswith("/fhir"):
                continue  # FHIR resources are read by the FHIR models, as FHIR types them
            named = _refs(content["application/json"].get("schema", {}))
            assert named, f"{service}: {method.upper()} {path} takes a JSON body of no model"
            found |= named
    return found


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"].rsplit("/", 1)[-1]} if "$ref" in schema else set()
        return found.union(*(_refs(v) for k, v in schema.items() if k != "$ref"))
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema))
    return set()


def _documents(keyring_path: Path, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Every HTTP service's OpenAPI document, from its app (nothing started)."""
    from consent.registry.api import create_app as consent_app
    from services.agency.runtime import AgencyServiceSettings
    from services.audit.app import AuditSettings
    from services.audit.app import create_app as audit_app
    from services.audit.proof_doc import public_keys_document
    from services.backbone.settings import HttpSettings
    from services.delivery.app import create_app as delivery_app
    from services.delivery.settings import DeliverySettings
    from services.education.app import create_app as education_app
    from services.health.app import create_app as health_app
    from services.socialcare.app import create_app as socialcare_app
    from services.witness.app import WitnessSettings, new_witness_key
    from services.witness.app import create_app as witness_app

    def db(name: str) -> str:
        return f"sqlite:///{tmp_path / name}.db"

    def agency(agency_id: str) -> AgencyServiceSettings:
        url = db(agency_id)
        return AgencyServiceSettings(
            agency_id=agency_id,
            keyring_file=keyring_path,
            outbox_database_url=url,
            person_index_database_url=url,
        )

    log_keys = tmp_path / "log-keys.json"
    log_keys.write_bytes(
        orjson.dumps(public_keys_document({"k1": Ed25519PrivateKey.generate().public_key()}))
    )
    new_witness_key(tmp_path / "witness.key")
    apps = {
        "consent": consent_app(
            HttpSettings(
                keyring_file=keyring_path,
                person_index_database_url=db("index"),
                kafka_bootstrap="127.0.0.1:9",  # never reached: the document needs no broker
                kafka_security_protocol="PLAINTEXT",
            )
        ),
        "audit": audit_app(
            AuditSettings(
                keyring_file=keyring_path,
                audit_database_url=db("audit"),
                audit_checkpoint_file=tmp_path / "checkpoints.jsonl",
            )
        ),
        "delivery": delivery_app(
            DeliverySettings(keyring_file=keyring_path, delivery_database_url=db("delivery"))
        ),
        "witness": witness_app(
            WitnessSettings(
                witness_key_file=tmp_path / "witness.key",
                witness_log_keys=log_keys,
                witness_state_file=tmp_path / "cosigned.json",
            )
        ),
        "socialcare": socialcare_app(agency("la-northshire")),
        "health": health_app(agency("nhs-riverside-ed")),
        "education": education_app(agency("school-oakfield")),
    }
    return {name: app.openapi() for name, app in apps.items()}
