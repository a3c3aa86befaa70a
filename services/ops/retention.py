"""Retention across the stores that hold deliveries for recipients, for an operator: what
each holds per recipient, what is due for purge now and the last purge (``infoshare
retention report``), and a purge on demand (``infoshare retention purge``), audited as the
services' own periodic runs are.

The stores are found through the services' settings: the delivery log at
``INFOSHARE_DELIVERY_DATABASE_URL``, each agency's inbox in its service's database
(``INFOSHARE_OUTBOX_DATABASE_URL``, else beside the keyring), unless the caller names them.
A report never creates a store: one that does not exist is said to be missing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from consent.core.purge_log import LastPurge
from consent.core.retention import Holding, RetentionRules, Tally
from services.agency import inbox_retention
from services.agency.inbox_store import Inbox
from services.backbone import kafka
from services.backbone.audit_contract import AuditRecord
from services.backbone.database import engine_for
from services.backbone.kafka_access import KafkaAccess
from services.backbone.lease import Lease
from services.delivery import retention as delivery_retention
from services.delivery.store import DeliveryStore

DELIVERY = "delivery"
LEASE_TTL = delivery_retention.LEASE_TTL


@dataclass(frozen=True)
class Store:
    """A store that holds deliveries: the delivery log, or one agency's inbox."""

    name: str  # "delivery" or "inbox:<agency>"
    url: str = field(repr=False)
    agency: str | None = None  # an inbox's agency
    topic: str | None = None  # an inbox's delivery topic


@dataclass
class StoreReport:
    store: str
    holdings: list[Holding] = field(default_factory=list)
    last: LastPurge | None = None
    problem: str | None = None  # missing or unreadable: nothing else is known

    def to_json(self) -> dict[str, Any]:
        last = self.last
        return {
            "store": self.store,
            "problem": self.problem,
            "recipients": [
                {"recipient": h.recipient, "held": h.held, "due": h.due, "no_retention": h.kept}
                for h in self.holdings
            ],
            "last_purge": None
            if last is None
            else {
                "at": last.at.isoformat(),
                "purged": last.total,
                "by_recipient": dict(last.by_recipient),
                "by": last.actor,
                "audited": last.audited,
            },
        }


def missing(url: str) -> bool:
    """An SQLite store whose file does not exist (opening it would create it)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return False
    database = parsed.database or ""
    return bool(database) and database != ":memory:" and not Path(database).exists()


def _inbox(store: Store) -> tuple[Inbox, str]:
    assert store.agency is not None and store.topic is not None
    return Inbox(engine_for(store.url), store.topic), store.agency


def report(stores: Sequence[Store], rules: RetentionRules, *, now: datetime) -> list[StoreReport]:
    """Per store and recipient: items held, due for purge at ``now``, without a retention;
    and each store's last purge. A store missing or unreadable is reported so, by the error's
    kind only (its text may quote a URL)."""
    found = []
    for store in stores:
        result = StoreReport(store.name)
        if missing(store.url):
            result.problem = "missing (its service has not run yet)"
            found.append(result)
            continue
        try:
            if store.agency is None:
                log = DeliveryStore(store.url)
                result.holdings = delivery_retention.holdings(log, rules, now=now)
                result.last = delivery_retention.last_purge(log)
            else:
                inbox, agency = _inbox(store)
                result.holdings = inbox_retention.holdings(inbox, agency, rules, now=now)
                result.last = inbox_retention.last_purge(inbox)
        except SQLAlchemyError as exc:
            result.problem = f"unreadable ({type(exc).__name__}; a store of an earlier version "
            result.problem += "is brought up to date when its service starts)"
        found.append(result)
    return found


def purge(
    stores: Sequence[Store], rules: RetentionRules, *, now: datetime, actor: str
) -> tuple[dict[str, Tally], list[str]]:
    """Purge what each store holds past its retention now; each run logged in its store,
    its audit record not yet sent (:func:`send_audits`). Missing stores are passed over, and
    so is a store its service is purging now (it holds the store's retention lease): the
    names of those come back second."""
    done, busy = {}, []
    for store in stores:
        if missing(store.url):
            continue
        if store.agency is None:
            log = DeliveryStore(store.url)
            log.create_schema()  # what an earlier version's store lacks
            lease = Lease(log.engine, name=delivery_retention.LEASE, ttl=LEASE_TTL)
            if not lease.hold():
                busy.append(store.name)
                continue
            try:
                _, done[store.name] = delivery_retention.purge(log, rules, now=now, actor=actor)
            finally:
                lease.release()
        else:
            inbox, agency = _inbox(store)
            inbox.create_schema()
            lease = Lease(inbox.engine, name=inbox_retention.lease_name(inbox), ttl=LEASE_TTL)
            if not lease.hold():
                busy.append(store.name)
                continue
            try:
                _, done[store.name] = inbox_retention.purge(
                    inbox, agency, rules, now=now, actor=actor
                )
            finally:
                lease.release()
    return done, busy


async def send_audits(
    stores: Sequence[Store],
    access: KafkaAccess,
    audit_topic: str,
    *,
    now: Callable[[], datetime],
) -> int:
    """Send every store's purge audit records not yet sent (to ``audit.activity``), as the
    services do at each run; how many were sent. KafkaError if Kafka is away: the records
    stay unsent, and each service sends its own at its next run."""
    producer = kafka.producer(access)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise

    async def send(record: AuditRecord) -> None:
        await producer.send_and_wait(
            audit_topic, record.model_dump_json().encode(), key=b"retention"
        )

    sent = 0
    try:
        for store in stores:
            if missing(store.url):
                continue
            if store.agency is None:
                log = DeliveryStore(store.url)
                sent += await delivery_retention.send_audits(log, send, now=now)
            else:
                inbox, agency = _inbox(store)
                sent += await inbox_retention.send_audits(inbox, send, agency=agency, now=now)
    finally:
        await producer.stop()
    return sent


def stores_of(
    *,
    delivery_url: str | None,
    inbox_urls: Mapping[str, str],
    inbox_topics: Mapping[str, str],
) -> list[Store]:
    """The stores to look at: the delivery log (if its URL is known) and each agency's
    inbox (``inbox_urls``: agency -> its service's database; ``inbox_topics``: agency ->
    its delivery topic)."""
    stores = [Store(DELIVERY, delivery_url)] if delivery_url else []
    for agency, url in sorted(inbox_urls.items()):
        stores.append(Store(f"inbox:{agency}", url, agency, inbox_topics[agency]))
    return stores
