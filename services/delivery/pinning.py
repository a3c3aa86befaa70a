"""Connections to the checked addresses only: against DNS rebinding.

A host name is resolved and judged (:mod:`services.delivery.resolving`); if the HTTP client
then resolved it again, a hostile name server could answer differently the second time
(an internal address) and the check would be for nothing. So the client never resolves:
its network backend connects to the addresses pinned for the host by :func:`pinned`, and
refuses a host nothing was pinned for. Everything else stays keyed to the host name: the
Host header, TLS SNI and certificate verification, and the pool's kept-alive connections
(one is only ever made to an address checked for its host).

Pins live in a context variable: they hold for the task that pushes, inside its ``with
pinned(...)`` block (httpcore connects in the requesting task).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

_PINS: ContextVar[Mapping[str, tuple[str, ...]] | None] = ContextVar("webhook_pins", default=None)


@contextmanager
def pinned(host: str, addresses: Sequence[str]) -> Iterator[None]:
    """Within the block, connections to ``host`` go to ``addresses`` (in order, the next if
    one fails), and to nothing else."""
    token = _PINS.set({host.lower(): tuple(addresses)})
    try:
        yield
    finally:
        _PINS.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = (_PINS.get() or {}).get(host.lower())
        if not addresses:
            raise httpcore.ConnectError("no checked address for this host")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool on a :class:`PinnedBackend`; no proxies."""

    def __init__(self, *, limits: httpx.Limits, verify: ssl.SSLContext | None = None) -> None:
        """``verify``: the CAs to trust (default: certifi's); certificates are always
        checked."""
        super().__init__(verify=verify or True, trust_env=False, limits=limits)
        # httpx takes no network backend: its pool is made again, as httpx makes it, with
        # ours (httpx is pinned; tests/unit/test_delivery_pinning.py connects through this).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify or True, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=PinnedBackend(),
        )
