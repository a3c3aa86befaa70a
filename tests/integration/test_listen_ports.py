"""Ports for the servers a stack or a test starts: free to bind, and below the ephemeral
range, so that no outgoing connection can take one before the server binds it; a test's
webhook receiver holds its port from the start, so nothing at all can."""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
from pathlib import Path

import httpx
import pytest

from deploy.devstack.ports import LISTEN_PORTS, free_listen_port, listen_socket
from deploy.devstack.stack import free_ports_config
from services.ops.components import COMPONENTS
from tests import backends
from tests.integration.test_delivery_harness import Receiver


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


def _bind(port: int, *, reuse: bool) -> None:
    """Bind ``port`` as another process would: a probe (``reuse`` False) or a server (which
    sets SO_REUSEADDR)."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
        other.bind(("127.0.0.1", port))


@pytest.mark.parametrize("reuse", [False, True])
def test_a_listen_socket_holds_its_port_until_the_server_listens(reuse: bool) -> None:
    with listen_socket() as held:
        port = held.getsockname()[1]
        assert port in LISTEN_PORTS
        with pytest.raises(OSError, match="in use"):
            _bind(port, reuse=reuse)
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))  # bound, not listening: as a server down
        held.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


@pytest.mark.parametrize("reuse", [False, True])
async def test_a_webhook_receiver_holds_its_port_until_it_serves_on_it(reuse: bool) -> None:
    receiver = Receiver(secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    assert receiver.port in LISTEN_PORTS
    with pytest.raises(OSError, match="in use"):
        _bind(receiver.port, reuse=reuse)  # nobody else can take it before it starts
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(receiver.url, content=b"{}")  # down: refused
        await receiver.start()
        try:
            answered = await client.post(receiver.url, content=b"{}")
        finally:
            await receiver.stop()
        assert answered.status_code == 401  # unsigned: the receiver itself answered
        assert len(receiver.requests) == 1
        with pytest.raises(httpx.ConnectError):
            await client.post(receiver.url, content=b"{}")  # stopped


def test_a_test_broker_is_given_ports_below_the_ephemeral_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test stops and starts its own broker on the same ports: while it is down no client
    # connection's local port may take one (tests/e2e/test_exactly_once_faults.py).
    made: list[dict[str, object]] = []

    class Node:
        def __init__(self, **kwargs: object) -> None:
            made.append(kwargs)

        def start(self) -> None:
            pass

    monkeypatch.setattr(backends, "BrokerNode", Node)
    backends.start_kafka(tmp_path)
    (kwargs,) = made
    ports = [kwargs[k] for k in ("port", "controller_port", "tls_port")]
    assert all(p in LISTEN_PORTS for p in ports), ports
