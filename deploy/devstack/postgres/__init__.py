"""Runs Debian's PostgreSQL as a cluster of infoshare's own on loopback (production store)."""

from deploy.devstack.postgres.errors import PostgresError
from deploy.devstack.postgres.node import PgStatus, PostgresNode

__all__ = ["PgStatus", "PostgresError", "PostgresNode"]
