"""Errors raised while installing, starting or stopping PostgreSQL."""


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, started or stopped; the message says what to do."""
