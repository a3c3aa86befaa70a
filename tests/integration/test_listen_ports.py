"""Ports for the servers a stack or a test starts: free to bind, and below the ephemeral
range, so that no outgoing connection can take one before the server binds it."""

from __future__ import annotations

import contextlib
import secrets
import socket
from pathlib import Path

import pytest

from deploy.devstack.ports import LISTEN_PORTS, free_listen_port
from deploy.devstack.stack import free_ports_config
from services.ops.components import COMPONENTS


def test_listen_ports_lie_below_the_ephemeral_range() -> None:
    low, _high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert LISTEN_PORTS.stop <= int(low)


@pytest.mark.parametrize("span", [1, 21])
def test_a_block_of_free_ports_can_all_be_bound(span: int) -> None:
    first = free_listen_port(span)
    assert LISTEN_PORTS.start <= first and first + span <= LISTEN_PORTS.stop
    with contextlib.ExitStack() as held:
        for port in range(first, first + span):
            held.enter_context(socket.socket()).bind(("127.0.0.1", port))


def test_a_busy_port_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_listen_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        other = free_listen_port()
        assert other != taken
        picks = iter([taken - LISTEN_PORTS.start, other - LISTEN_PORTS.start])
        monkeypatch.setattr(secrets, "randbelow", lambda _n: next(picks))
        assert free_listen_port() == other


def test_a_free_ports_config_gives_every_server_its_own_port(tmp_path: Path) -> None:
    config = free_ports_config(tmp_path, tmp_path, postgres=True)
    assert config.postgres_port is not None
    ports = [*config.ports.values(), config.kafka_port, config.controller_port]
    ports.append(config.postgres_port)
    servers = [c for c in COMPONENTS if c.port is not None]
    # Zipkin, Jaeger's three, Prometheus and the identity provider; Kafka's two, PostgreSQL's.
    assert len(set(ports)) == len(ports) == len(servers) + 6 + 3
    assert all(p in LISTEN_PORTS for p in ports)
    assert free_ports_config(tmp_path, tmp_path).postgres_port is None
