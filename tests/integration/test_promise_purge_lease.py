"""Retention purges run in each service; "replicas sharing a store take turns by a lease"
(README, "Retention"): two replicas of the delivery service's purge loop on one store, on
SQLite and on PostgreSQL, and only the one holding the lease ever purges."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from datetime import timedelta

from consent.core.retention import RetentionRules
from consent.policy.load import retention_rules
from services.backbone.audit_contract import AuditRecord
from services.backbone.directory import Directory
from services.backbone.lease import Lease
from services.backbone.schemas import SchemaRegistry
from services.delivery import retention
from services.delivery.store import DeliveryStore
from tests.integration.kafka_helpers import eventually


async def test_only_the_replica_holding_the_lease_purges(
    database_url: str, directory: Directory
) -> None:
    store = DeliveryStore(database_url)
    store.create_schema()
    rules = retention_rules(None, directory=directory, schemas=SchemaRegistry.load())
    runs: Counter[str] = Counter()

    def rules_for(replica: str) -> RetentionRules:
        runs[replica] += 1  # read afresh at the start of every run
        return rules

    async def send(_: AuditRecord) -> None:
        return None

    stop = asyncio.Event()
    loops = [
        asyncio.create_task(
            retention.keep_purging(
                store,
                functools.partial(rules_for, replica),
                send,
                every_s=0.01,
                stop=stop,
                lease=Lease(store.engine, name=retention.LEASE, ttl=timedelta(minutes=5)),
            )
        )
        for replica in ("a", "b")
    ]

    async def ran_often() -> bool:
        return runs.total() >= 20

    try:
        await eventually("twenty purge runs between the replicas", ran_often)
    finally:
        stop.set()
        await asyncio.gather(*loops)
    assert len(runs) == 1, f"both replicas purged: {dict(runs)}"
