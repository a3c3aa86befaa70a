"""The parts of one running agency service, and its settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import Request
from pydantic import Field, SecretStr

from services.agency.children import ADULT_AGE, CARE_LEAVERS_TO
from services.agency.inbox_store import Inbox
from services.agency.sealed import DataKeyCache
from services.agency.submission import Intake
from services.backbone.key_reload import KeyringSource
from services.backbone.offload import Offload
from services.backbone.settings import HttpSettings
from services.outbox.relay import OutboxRelay
from services.outbox.store import OutboxStore
from services.personindex.store import PersonIndex


class AgencyServiceSettings(HttpSettings):
    agency_id: str = Field(description="the agency this service publishes as")
    care_leavers_to: int = Field(
        CARE_LEAVERS_TO,
        ge=ADULT_AGE,
        le=30,
        description="a social care service also accepts care leavers under this age (other "
        "services: children under 18 only; 18 here turns the exception off)",
    )
    outbox_database_url: SecretStr | None = Field(
        None,
        description="the outbox's database (SQLAlchemy URL, a secret: it may carry a "
        "password); default: SQLite beside the keyring file, outbox-<agency>.db",
    )
    protocols_dir: Path | None = Field(
        None,
        description="directory of protocol YAML files, as the processor's (default: the "
        "bundled ones): each received item is purged once its protocol rule's retention has run",
    )
    retention_purge_every_s: float = Field(
        86400.0,
        ge=0,
        description="purge the inbox of items held past their retention at start and this "
        "often (0: only when `infoshare retention purge` is run)",
    )
    parse_workers: int = Field(
        1,
        ge=0,
        le=8,
        description="worker processes that parse a large upload (a CSV or Bundle of 64 KiB "
        "or more) beside the service, so its other requests are not held up meanwhile "
        "(0: parse every upload in the service itself)",
    )
    agency_key_file: Path | None = Field(
        None,
        description="the agency's own X25519 private key (`infoshare keys recipient new`), "
        "to open fields encrypted to it: set only where the agency runs its own service; "
        "the hub never holds it, and without it such fields are shown sealed",
    )

    def outbox_url(self) -> str:
        return self.beside_keyring(self.outbox_database_url, f"outbox-{self.agency_id}.db")

    def private_key_path(self) -> Path | None:
        return self.agency_key_file


@dataclass
class AgencyRuntime:
    settings: AgencyServiceSettings
    keys: KeyringSource  # its API keys as the file says now (revocation needs no restart)
    intake: Intake  # what a submission goes through (services/agency/submission.py)
    relay: OutboxRelay
    private_key: X25519PrivateKey | None
    inbox: Inbox  # what the agency received, in the service's database
    # unwrapped data keys of sealed fields: one HPKE opening per window of the hub's
    data_keys: DataKeyCache = field(default_factory=DataKeyCache)
    # large uploads parsed in worker processes (services/backbone/offload.py)
    offload: Offload = field(default_factory=lambda: Offload(0))
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def agency(self) -> str:
        return self.intake.agency

    @property
    def source_topic(self) -> str:
        return self.intake.source_topic

    @property
    def outbox(self) -> OutboxStore:
        return self.intake.outbox

    @property
    def index(self) -> PersonIndex:
        return self.intake.index


def runtime(request: Request) -> AgencyRuntime:
    rt: AgencyRuntime = request.app.state.runtime
    return rt
