"""The project's own PostgreSQL listens "on 127.0.0.1 only" (README, "PostgreSQL"): the
running server says so itself, and no other address of this machine reaches it."""

from __future__ import annotations

import socket

import sqlalchemy

from deploy.devstack.postgres import PostgresNode


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (none on an isolated host)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, a route is chosen
        except OSError:
            return []
        found = probe.getsockname()[0]
    return [found] if not found.startswith("127.") else []


def test_the_server_listens_on_loopback_only(postgres: PostgresNode) -> None:
    engine = sqlalchemy.create_engine(postgres.url("postgres"))
    try:
        with engine.connect() as db:
            said = db.execute(sqlalchemy.text("SHOW listen_addresses")).scalar_one()
    finally:
        engine.dispose()
    assert said == "127.0.0.1"
    for address in _other_addresses():
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, postgres.port)) != 0, address
