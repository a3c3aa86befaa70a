"""The processes of a stack and how to run each one (``infoshare run NAME``)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from services.backbone import logs, telemetry
from services.backbone.key_roles import Role


@dataclass(frozen=True)
class Component:
    name: str
    port: int | None
    agency_id: str | None = None
    description: str = ""

    @property
    def role(self) -> Role:
        """Whose keys it holds (services/backbone/key_roles.py)."""
        return Role.AGENCY if self.agency_id else Role(self.name)


COMPONENTS = (
    Component("processor", 8140, description="consent-and-policy processor (GET /metrics)"),
    Component("audit", 8120, description="audit store and IG search API"),
    Component("consent", 8130, description="consent registry API"),
    Component("delivery", 8110, description="subscriptions: webhook push and pull inbox"),
    Component("socialcare", 8101, "la-northshire", "children's social care service"),
    Component("health", 8102, "nhs-riverside-ed", "health service (FHIR R4)"),
    Component("education", 8103, "school-oakfield", "education service (MIS CSV and JSON)"),
)
BY_NAME = {c.name: c for c in COMPONENTS}


def _app_factory(name: str) -> Callable[[], FastAPI]:
    # Imported here so that `infoshare kafka status` does not pay for FastAPI and FHIR.
    if name == "audit":
        from services.audit.app import create_app as audit_app

        return audit_app
    if name == "consent":
        from consent.registry.api import create_app as consent_app

        return consent_app
    if name == "delivery":
        from services.delivery.app import create_app as delivery_app

        return delivery_app
    if name == "socialcare":
        from services.socialcare.app import create_app as socialcare_app

        return socialcare_app
    if name == "education":
        from services.education.app import create_app as education_app

        return education_app
    from services.health.app import create_app as health_app

    return health_app


def delivery_env(env: MutableMapping[str, str]) -> None:
    """Defaults of the delivery component where the environment sets none: its notification
    log beside the keyring (a stack's state directory, so that a stack never resumes from
    another broker's offsets)."""
    keyring = env.get("INFOSHARE_KEYRING_FILE")
    if keyring:
        db = Path(keyring).resolve().parent / "delivery.db"
        env.setdefault("INFOSHARE_DELIVERY_DATABASE_URL", f"sqlite:///{db}")


def freeze_startup_objects() -> None:
    """Move what starting made (modules, classes, the app, its schemas and FHIR models) out
    of the garbage collector's reach: it lives as long as the process, and a full collection
    no longer walks it. In the health service a full collection took about 45 ms, a pause
    every request then waited through (its p99 at half its rate: 58 to 96 ms before, 18 to 29
    ms after)."""
    gc.collect()
    gc.freeze()


def run_component(name: str) -> None:
    """Run one component in the foreground until SIGINT/SIGTERM. Settings come from the env."""
    # A supervisor that waits on signals (infoshare up) may have them blocked; we must not.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    logs.configure_logging(f"infoshare-{name}")
    from pydantic import ValidationError

    from consent.policy.load import ProtocolError
    from services.backbone.errors import ConfigurationError

    try:
        telemetry.setup_tracing(f"infoshare-{name}")
        if name == "processor":
            from consent.processor.main import serve
            from consent.processor.settings import ProcessorSettings

            settings = ProcessorSettings()
            freeze_startup_objects()
            asyncio.run(serve(settings))
            return
        from services.backbone.settings import HttpSettings

        if name == "delivery":
            delivery_env(os.environ)
        http = HttpSettings()
        app = _app_factory(name)()
    except (ConfigurationError, ProtocolError) as exc:
        raise SystemExit(f"infoshare {name}: cannot start: {exc}") from None
    except ValidationError as exc:
        fields = ", ".join(
            f"INFOSHARE_{'_'.join(map(str, e['loc'])).upper()} ({e['msg']})" for e in exc.errors()
        )
        raise SystemExit(f"infoshare {name}: cannot start: settings: {fields}") from None
    import uvicorn

    freeze_startup_objects()
    # Access logs are off: URLs may one day carry search terms about a person.
    # log_config=None: uvicorn's own lines go through our JSON, redacting handler too.
    uvicorn.run(
        app,
        host=http.host,
        port=http.port,
        log_level="warning",
        access_log=False,
        log_config=None,
    )
