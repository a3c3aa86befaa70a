"""Free loopback ports for the servers a stack, a benchmark or a test starts."""

from __future__ import annotations

import contextlib
import secrets
import socket


class NoFreePort(RuntimeError):
    """No run of free ports was found."""


def free_port() -> int:
    """A port the OS says is free on loopback now, in the ephemeral range: only for an address
    where nothing is meant to listen. A server should have ``listen_socket`` (or, for one
    that binds the port itself, ``free_listen_port``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Below Linux's ephemeral range (32768 and up): a port the OS hands out for an outgoing
# connection (say a Kafka client's) can never take one of these between the check and the
# moment a server we start binds it.
LISTEN_PORTS = range(20000, 32000)


def free_listen_port(span: int = 1, *, attempts: int = 50) -> int:
    """The first of ``span`` consecutive ports, below the ephemeral range, that are all free
    to bind on loopback now: for a server this process will start (PostgreSQL, Kafka, HTTP)."""
    for _ in range(attempts):
        first = LISTEN_PORTS.start + secrets.randbelow(len(LISTEN_PORTS) - span + 1)
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + span):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return first
    raise NoFreePort(f"no {span} consecutive free ports in {LISTEN_PORTS} after {attempts} tries")


def listen_socket(*, attempts: int = 50) -> socket.socket:
    """A loopback TCP socket bound, not yet listening, to a free port below the ephemeral
    range: the port is held from now on, so nothing can take it before the server this
    process starts listens on it (hand the socket over, as uvicorn's ``sockets=``); until
    then a connection to it is refused, as to a server that is down."""
    for _ in range(attempts):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", LISTEN_PORTS.start + secrets.randbelow(len(LISTEN_PORTS))))
        except OSError:
            sock.close()
            continue
        return sock
    raise NoFreePort(f"no free port in {LISTEN_PORTS} after {attempts} tries")
