"""The local stack's stores on its PostgreSQL: a database per store, each owned by the
operator (the cluster's superuser), who makes its schema; each component connects as a
login role of its own with only the rights its store declares, on only its own databases.

- an agency service ``<id>``: ``infoshare_outbox_<id>`` (its outbox and inbox: take
  submissions, publish and mark events, keep its inbox and purge it as retention says) and
  ``infoshare_person_index`` (resolve and link children: read and add, never change);
- the consent API: ``infoshare_person_index``'s persons and links, to read (find a child's
  identity);
- delivery: ``infoshare_delivery`` (store deliveries, never change one, delete one only
  once its protocol's retention has run; keep subscriptions and their queues);
- the audit service: ``infoshare_audit`` (read and add records, never change or delete one).

No role may connect to another's database (CONNECT is revoked from PUBLIC), and none may
change a schema. The rights are the stores' own declarations (``OUTBOX_PRIVILEGES``,
``INBOX_PRIVILEGES``, ``PERSON_INDEX_WRITER``/``READER``, ``DELIVERY_PRIVILEGES``, the audit
store's ``SERVICE_PRIVILEGES``), so they change with the code that needs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlmodel import SQLModel

from deploy.devstack.postgres.node import PostgresNode
from services.agency.inbox_store import INBOX_PRIVILEGES, INBOX_TABLES
from services.audit import migrate
from services.backbone.database import create_tables, engine_for
from services.delivery.store import DELIVERY_PRIVILEGES
from services.outbox.store import OUTBOX_PRIVILEGES, OUTBOX_TABLES
from services.personindex.store import (
    PERSON_INDEX_READER,
    PERSON_INDEX_TABLES,
    PERSON_INDEX_WRITER,
)

# The settings each component reads its stores' URLs from (and nothing else may name).
AUDIT_URL = "INFOSHARE_AUDIT_DATABASE_URL"
OUTBOX_URL = "INFOSHARE_OUTBOX_DATABASE_URL"
PERSON_INDEX_URL = "INFOSHARE_PERSON_INDEX_DATABASE_URL"
DELIVERY_URL = "INFOSHARE_DELIVERY_DATABASE_URL"
DATABASE_SETTINGS = (AUDIT_URL, OUTBOX_URL, PERSON_INDEX_URL, DELIVERY_URL)

AUDIT_DB, PERSON_INDEX_DB, DELIVERY_DB = (
    "infoshare_audit",
    "infoshare_person_index",
    "infoshare_delivery",
)


@dataclass
class StackDatabases:
    """Each component's database settings, by its key-role name (``agency:<id>``,
    ``consent``, ``delivery``, ``audit``), and the operator's own URL of the audit store."""

    env: dict[str, dict[str, str]] = field(default_factory=dict)
    audit_owner_url: str = ""

    def of(self, role_name: str) -> Mapping[str, str]:
        return self.env.get(role_name, {})


def _name(prefix: str, agency: str) -> str:
    """A PostgreSQL name for ``agency``'s: ``prefix`` and the id (lower case, ``-`` as
    ``_``), within PostgreSQL's 63 bytes: a longer one ends in a hash of the whole id, so
    that two long ids never share a name."""
    name = prefix + agency.lower().replace("-", "_")
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(agency.encode()).hexdigest()[:12]
    return name.encode()[: 63 - 13].decode(errors="ignore") + "_" + digest


def _schema(owner_url: str, tables: Sequence[str]) -> None:
    engine = engine_for(owner_url)
    try:
        create_tables(engine, [SQLModel.metadata.tables[name] for name in tables])
    finally:
        engine.dispose()


def provision(node: PostgresNode, agencies: Iterable[str]) -> StackDatabases:
    """Make every store's database and schema as the operator, and each component's role
    with its rights; return the settings each component is started with."""
    made = StackDatabases()
    owner = engine_for(node.ensure_database(AUDIT_DB))
    try:
        migrate.upgrade(owner)  # the audit store has versioned migrations
    finally:
        owner.dispose()
    made.audit_owner_url = node.url(AUDIT_DB)
    made.env["audit"] = {
        AUDIT_URL: node.ensure_service_role(
            "infoshare_audit_service", AUDIT_DB, migrate.SERVICE_PRIVILEGES
        )
    }
    _schema(node.ensure_database(DELIVERY_DB), list(DELIVERY_PRIVILEGES))
    made.env["delivery"] = {
        DELIVERY_URL: node.ensure_service_role(
            "infoshare_delivery_service", DELIVERY_DB, DELIVERY_PRIVILEGES
        )
    }
    _schema(node.ensure_database(PERSON_INDEX_DB), PERSON_INDEX_TABLES)
    made.env["consent"] = {
        PERSON_INDEX_URL: node.ensure_service_role(
            "infoshare_consent_service", PERSON_INDEX_DB, PERSON_INDEX_READER
        )
    }
    for agency in agencies:
        role, outbox = _name("infoshare_agency_", agency), _name("infoshare_outbox_", agency)
        _schema(node.ensure_database(outbox), list(dict.fromkeys([*OUTBOX_TABLES, *INBOX_TABLES])))
        made.env[f"agency:{agency}"] = {
            OUTBOX_URL: node.ensure_service_role(
                role, outbox, {**OUTBOX_PRIVILEGES, **INBOX_PRIVILEGES}
            ),
            PERSON_INDEX_URL: node.ensure_service_role(role, PERSON_INDEX_DB, PERSON_INDEX_WRITER),
        }
    return made
