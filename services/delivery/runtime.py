"""What the routes and background tasks of one delivery service share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from fastapi import HTTPException

from services.backbone.key_reload import KeyringSource
from services.backbone.keyring import Keyring
from services.delivery import subscriptions
from services.delivery.auth import calling_agency
from services.delivery.breaker import BreakerBoard
from services.delivery.dispatcher import Changes
from services.delivery.observe import DeliveryTelemetry
from services.delivery.resolving import EndpointGuard
from services.delivery.settings import DeliverySettings
from services.delivery.store import DeliveryStore
from services.delivery.tables import SubscriptionRow

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Runtime:
    settings: DeliverySettings
    store: DeliveryStore
    keys: KeyringSource  # recipients' token hashes as the file says now (no restart to revoke)
    event_types: frozenset[str]
    agencies: frozenset[str]
    changes: Changes
    breakers: BreakerBoard
    guard: EndpointGuard  # webhook hosts resolved and judged (SSRF)
    telemetry: DeliveryTelemetry | None = None

    @property
    def keyring(self) -> Keyring:
        return self.keys.current()

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store call off the event loop (SQLite and psycopg block)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def owned(self, authorization: str | None, sub_id: str) -> SubscriptionRow:
        """The subscription, if the caller's agency holds it: 401, 404 or 403 otherwise."""
        caller = calling_agency(authorization, self.keyring)
        row = await self.db(subscriptions.get, self.store, sub_id)
        if row.agency != caller:
            raise HTTPException(403, detail="this subscription belongs to another agency")
        return row
