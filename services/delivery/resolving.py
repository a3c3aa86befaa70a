"""A webhook endpoint's host name resolved and judged, when a subscription is made and again
before every push (a name may be pointed elsewhere at any time). The push then connects to
the addresses judged here and no others (:mod:`services.delivery.pinning`).

The resolver is injected: :func:`system_resolver` asks the operating system; tests give one
they control.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from services.backbone.hosts import LOOPBACK_NAMES
from services.delivery.addresses import AddressPolicy, IPAddress, parse_address
from services.delivery.errors import EndpointRefused

Resolver = Callable[[str], Awaitable[Sequence[str]]]  # host name -> its IP addresses
RESOLVE_TIMEOUT_S = 5.0


async def system_resolver(host: str) -> Sequence[str]:
    """Every address the system's resolver gives ``host`` for a TCP connection."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@functools.lru_cache(maxsize=4096)  # asked before every push, where parsing showed in profiles
def host_of(url: str) -> str:
    """The host of ``url`` as the HTTP client connects to it (IDNA ASCII, lower case, an
    IPv6 address without brackets)."""
    try:
        host = httpx.URL(url).raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError):
        host = ""
    if not host:
        raise EndpointRefused("endpoint.url", "not a valid absolute URL")
    return host


@dataclass(frozen=True)
class EndpointGuard:
    policy: AddressPolicy
    resolver: Resolver = system_resolver
    timeout_s: float = RESOLVE_TIMEOUT_S

    async def addresses(self, url: str, *, agency: str) -> tuple[str, tuple[str, ...]]:
        """The host of ``url`` and the addresses it resolves to now, if ``agency`` may push
        to every one of them; EndpointRefused otherwise (naming the rule, never the host or
        an address)."""
        host = host_of(url)
        found = await self._resolve(host)
        ips = [parse_address(a) for a in found]
        if not ips or any(ip is None for ip in ips):
            raise EndpointRefused("endpoint.unresolvable", "the endpoint's host did not resolve")
        checked: list[IPAddress] = [ip for ip in ips if ip is not None]
        kind = self.policy.refusal(checked, agency=agency)
        if kind is not None:
            raise EndpointRefused(
                "endpoint.internal",
                f"the endpoint's host resolves to {kind.value}: webhooks go to the public "
                "internet only",
            )
        return host, tuple(dict.fromkeys(str(ip) for ip in checked))

    async def _resolve(self, host: str) -> Sequence[str]:
        literal = parse_address(host)
        if literal is not None:
            return [str(literal)]
        if host.rstrip(".") in LOOPBACK_NAMES:  # this machine, whatever a resolver says
            return ["127.0.0.1", "::1"]
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.resolver(host)
        except TimeoutError:
            raise EndpointRefused(
                "endpoint.unresolvable", "the endpoint's host did not resolve in time"
            ) from None
        except OSError:  # socket.gaierror and the like: no such name, no resolver
            raise EndpointRefused(
                "endpoint.unresolvable", "the endpoint's host did not resolve"
            ) from None
