"""Which IP addresses a webhook may reach, against server-side request forgery: plain
functions over :mod:`ipaddress`, no I/O.

A push goes to the public internet only. Refused, whatever name leads there: loopback,
private networks (RFC 1918, ULA fc00::/7), carrier-grade NAT (100.64.0.0/10), link-local
(169.254.0.0/16, fe80::/10), the cloud metadata addresses (169.254.169.254, fd00:ec2::254),
unspecified, multicast, and every other range that is not globally routable. An IPv6
address that embeds an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 one.

Two exceptions, both for recipients that are explicitly allowed them: loopback (the
``delivery_webhook_allow_http_loopback`` setting: tests and local trials) and private
networks or carrier-grade NAT (recipient agencies listed in
``delivery_webhook_private_agencies``). Metadata, link-local and the rest are never allowed.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressKind(StrEnum):
    """Why an address is not a public one; the value reads in an error message."""

    METADATA = "a cloud metadata address"
    UNSPECIFIED = "an unspecified address"
    LOOPBACK = "a loopback address"
    LINK_LOCAL = "a link-local address"
    MULTICAST = "a multicast address"
    SHARED = "a carrier-grade NAT address (100.64.0.0/10)"
    PRIVATE = "a private-network address (RFC 1918 or fc00::/7)"
    RESERVED = "a reserved or otherwise non-public address"


# Cloud metadata services: AWS and most others, AWS over IPv6, GCP over IPv6 (inside
# fc00::/7), Alibaba (inside 100.64/10): never allowed, even where private networks are.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "fd20:ce::254", "100.100.100.200")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PRIVATE_KINDS = frozenset({AddressKind.PRIVATE, AddressKind.SHARED})


@functools.lru_cache(maxsize=4096)  # every push parses its endpoint's address: pure, cached
def parse_address(text: str) -> IPAddress | None:
    """An address as a resolver gives it (an IPv6 zone such as ``%eth0`` dropped); None if
    it is not one."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _own_kind(ip: IPAddress) -> AddressKind | None:
    if ip in _METADATA:
        return AddressKind.METADATA
    if ip.is_unspecified:
        return AddressKind.UNSPECIFIED
    if ip.is_loopback:
        return AddressKind.LOOPBACK
    if ip.is_link_local:
        return AddressKind.LINK_LOCAL
    if ip.is_multicast:
        return AddressKind.MULTICAST
    if ip in _SHARED:
        return AddressKind.SHARED
    if any(ip in net for net in _PRIVATE):
        return AddressKind.PRIVATE
    if ip.is_reserved or not ip.is_global:
        return AddressKind.RESERVED
    return None


@functools.lru_cache(maxsize=4096)
def kind_of(ip: IPAddress) -> AddressKind | None:
    """What makes ``ip`` not a public address; None if it is one."""
    inner = _embedded(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    # Such an address is a way to reach the IPv4 one: ::ffff:127.0.0.1 is loopback.
    return _own_kind(inner if inner is not None else ip)


def allowed(kind: AddressKind | None, *, loopback: bool, private: bool) -> bool:
    """Whether an address of ``kind`` may be reached: a public one always, a loopback one
    if ``loopback``, a private-network or carrier-grade NAT one if ``private``."""
    if kind is None:
        return True
    if kind is AddressKind.LOOPBACK:
        return loopback
    return private and kind in _PRIVATE_KINDS


@dataclass(frozen=True)
class AddressPolicy:
    """The exceptions to "public addresses only"."""

    allow_loopback: bool = False
    private_agencies: frozenset[str] = frozenset()

    def allows(self, kind: AddressKind | None, *, agency: str) -> bool:
        return allowed(kind, loopback=self.allow_loopback, private=agency in self.private_agencies)

    def refusal(self, addresses: Iterable[IPAddress], *, agency: str) -> AddressKind | None:
        """Why ``agency``'s webhook may not go to these addresses (all the addresses its
        host resolved to: any one refused refuses them all); None if it may."""
        for ip in addresses:
            kind = kind_of(ip)
            if not self.allows(kind, agency=agency):
                return kind
        return None
