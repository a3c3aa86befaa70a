"""Runs Debian's PostgreSQL as a cluster of infoshare's own on loopback (production store)."""

from services.pgserver.errors import PostgresError
from services.pgserver.node import PgStatus, PostgresNode

__all__ = ["PgStatus", "PostgresError", "PostgresNode"]
