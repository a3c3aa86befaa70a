"""The IG console's pages, served by the audit service under /console, put together: sign-in
through the organisation's identity provider (signing.py), the search and a child's
disclosure report (search_pages.py), the override queue, consent history and access log
(oversight.py), the protocols and sharing map (protocol_pages.py) and the trail's integrity
(integrity_page.py). Only IG officers; every look is recorded in the trail. A child's
identifier travels in form bodies only, never a URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from consent.policy import explain
from services.audit.console import web
from services.audit.console.base import Console
from services.audit.console.forms import KINDS
from services.audit.console.integrity_page import add_integrity_routes
from services.audit.console.oversight import add_oversight_routes
from services.audit.console.protocol_pages import add_protocol_routes
from services.audit.console.search_pages import add_search_routes
from services.audit.console.sessions import Sessions
from services.audit.console.signing import SignInOptions, add_signing_routes
from services.audit.integrity import Integrity
from services.audit.models import ReviewOutcome
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome
from services.backbone.key_reload import KeyringSource
from services.backbone.people import PeopleVerifier

NAV = (
    ("search", "/console/search", "Search disclosures"),
    ("overrides", "/console/overrides", "Override reviews"),
    ("consent", "/console/consent", "Consent"),
    ("protocols", "/console/protocols", "Protocols"),
    ("integrity", "/console/integrity", "Integrity"),
    ("access", "/console/access", "Access log"),
)


@dataclass(frozen=True)
class ConsoleOptions:
    sign_in: SignInOptions = field(default_factory=SignInOptions)
    idle_s: float = 900.0
    max_s: float = 8 * 3600.0
    clock: Callable[[], float] = time.monotonic


def add_console(
    app: FastAPI,
    store: AuditStore,
    keys: KeyringSource,
    people: PeopleVerifier | None,
    *,
    integrity: Integrity,
    protocols: Callable[[], Any],
    options: ConsoleOptions | None = None,
) -> None:
    options = options or ConsoleOptions()
    env = web.environment()
    env.globals.update(
        nav=NAV,
        kinds=KINDS,
        decisions=[o.value for o in AuditOutcome],
        outcomes=[o.value for o in ReviewOutcome],
        exports=[("csv", "CSV"), ("pdf", "PDF"), ("fhir", "FHIR Bundle")],
        basis_words=explain.basis_words,
        field_words=explain.field_words,
        duration_words=explain.duration_words,
        consent_words=explain.CONSENT,
        identity_words=explain.IDENTITY,
        plain=str,
    )
    console = Console(
        env,
        Sessions(options.clock, idle_s=options.idle_s, max_s=options.max_s),
        store,
        keys,
        integrity,
        protocols,
        options.sign_in.public_url,
    )
    add_signing_routes(app, console, people, options.sign_in)
    add_search_routes(app, console)
    add_oversight_routes(app, console)
    add_protocol_routes(app, console)
    add_integrity_routes(app, console)
