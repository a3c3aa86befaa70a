"""Connections to the checked addresses only: against DNS rebinding.

A host name is resolved and judged (:mod:`services.delivery.resolving`); if the HTTP client
then resolved it again, a hostile name server could answer differently the second time
(an internal address) and the check would be for nothing. So the client never resolves:

- its connector sends a request only while addresses are pinned for the request's host by
  :func:`pinned`, and refuses any other (a kept-alive connection included);
- its resolver answers a host name with the addresses pinned for it, nothing else;
- an address written as the host is pinned as itself (the guard judged it).

Everything else stays keyed to the host name: the Host header, TLS SNI and certificate
verification, and the pool's kept-alive connections (one is only ever made to an address
checked for its host).

Pins live in a context variable: they hold for the task that pushes, inside its ``with
pinned(...)`` block. aiohttp connects and, with its name cache off, resolves in the
requesting task, so they are that push's own.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

if TYPE_CHECKING:  # aiohttp's connector interface, for the override's signature
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

_PINS: ContextVar[Mapping[str, tuple[str, ...]] | None] = ContextVar("webhook_pins", default=None)
NOT_PINNED = "no checked address for this host"


@contextmanager
def pinned(host: str, addresses: Sequence[str]) -> Iterator[None]:
    """Within the block, connections to ``host`` go to ``addresses`` (in order, the next if
    one fails), and to nothing else."""
    token = _PINS.set({_key(host): tuple(addresses)})
    try:
        yield
    finally:
        _PINS.reset(token)


def _pins_of(host: str) -> tuple[str, ...]:
    return (_PINS.get() or {}).get(_key(host), ())


@functools.lru_cache(maxsize=4096)  # twice a push: pure, cached
def _key(host: str) -> str:
    """A host as pins are kept: a name in lower case, an address in its one canonical
    spelling (the guard parses a URL with httpx, aiohttp with yarl, and they spell an
    address such as ``::FFFF:127.0.0.1`` differently)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


class PinnedResolver(AbstractResolver):
    """A host name's pinned addresses; never a lookup."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = _pins_of(host)
        if not addresses:
            raise OSError(NOT_PINNED)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


class PinnedConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector, its names answered by :class:`PinnedResolver`, and no
    request sent to a host with no pinned address."""

    def __init__(self, *, tls: ssl.SSLContext, limit: int) -> None:
        super().__init__(
            resolver=PinnedResolver(),
            use_dns_cache=False,
            ssl=tls,
            limit=limit,
            limit_per_host=limit,
        )

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109  (aiohttp's interface)
    ) -> Connection:
        if not _pins_of(req.url.raw_host or ""):
            raise aiohttp.ClientConnectorError(req.connection_key, OSError(NOT_PINNED))
        return await super().connect(req, traces, timeout)
