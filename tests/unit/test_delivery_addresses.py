"""Against server-side request forgery: which addresses a webhook may reach, and a host
name resolved (by a resolver the test controls) and refused if any address is refused."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.addresses import AddressKind, AddressPolicy, kind_of, parse_address
from services.delivery.errors import EndpointRefused
from services.delivery.resolving import EndpointGuard

K = AddressKind


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("127.0.0.1", K.LOOPBACK),
        ("127.8.9.10", K.LOOPBACK),
        ("::1", K.LOOPBACK),
        ("169.254.169.254", K.METADATA),
        ("fd00:ec2::254", K.METADATA),
        ("169.254.1.1", K.LINK_LOCAL),
        ("fe80::1%eth0", K.LINK_LOCAL),
        ("10.0.0.1", K.PRIVATE),
        ("172.31.255.254", K.PRIVATE),
        ("192.168.0.1", K.PRIVATE),
        ("fd12:3456::1", K.PRIVATE),
        ("100.64.0.1", K.SHARED),
        ("100.127.255.254", K.SHARED),
        ("0.0.0.0", K.UNSPECIFIED),  # noqa: S104
        ("::", K.UNSPECIFIED),
        ("224.0.0.251", K.MULTICAST),
        ("ff02::fb", K.MULTICAST),
        ("240.0.0.1", K.RESERVED),
        ("255.255.255.255", K.RESERVED),
        ("192.0.2.1", K.RESERVED),  # documentation
        ("0.1.2.3", K.RESERVED),  # "this network"
        ("::ffff:127.0.0.1", K.LOOPBACK),  # IPv4-mapped
        ("::ffff:169.254.169.254", K.METADATA),
        ("64:ff9b::a9fe:a9fe", K.METADATA),  # NAT64
        ("2002:a00:1::1", K.PRIVATE),  # 6to4 of 10.0.0.1
    ],
)
def test_each_kind_of_address(address: str, kind: AddressKind | None) -> None:
    ip = parse_address(address)
    assert ip is not None and kind_of(ip) is kind


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_an_ipv4_address_and_its_mapped_ipv6_form_are_judged_alike(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    assert kind_of(ipaddress.IPv6Address(f"::ffff:{v4}")) is kind_of(v4)


@given(st.integers(min_value=0, max_value=2**24 - 1))
def test_every_address_in_10_8_is_private_and_in_127_8_loopback(n: int) -> None:
    assert kind_of(ipaddress.IPv4Address((10 << 24) | n)) is K.PRIVATE
    assert kind_of(ipaddress.IPv4Address((127 << 24) | n)) is K.LOOPBACK


def test_what_a_recipient_may_be_allowed() -> None:
    policy = AddressPolicy(allow_loopback=True, private_agencies=frozenset({"la"}))
    assert policy.allows(K.PRIVATE, agency="la") and policy.allows(K.SHARED, agency="la")
    assert not policy.allows(K.PRIVATE, agency="ed")
    assert policy.allows(K.LOOPBACK, agency="ed")
    assert not AddressPolicy().allows(K.LOOPBACK, agency="la")
    for never in (K.METADATA, K.LINK_LOCAL, K.UNSPECIFIED, K.MULTICAST, K.RESERVED):
        assert not policy.allows(never, agency="la"), never


class Dns:
    def __init__(self, **answers: Sequence[str]) -> None:
        self.answers = {host.replace("_", "."): list(a) for host, a in answers.items()}
        self.asked: list[str] = []

    async def __call__(self, host: str) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("no such name")
        return self.answers[host]


async def _refusal(guard: EndpointGuard, url: str, agency: str = "la") -> EndpointRefused:
    with pytest.raises(EndpointRefused) as caught:
        await guard.addresses(url, agency=agency)
    return caught.value


async def test_a_host_is_refused_if_any_of_its_addresses_is() -> None:
    dns = Dns(hooks_example_org=["93.184.215.14", "10.9.8.7"])
    refused = await _refusal(
        EndpointGuard(AddressPolicy(), resolver=dns), "https://hooks.example.org/x"
    )
    assert refused.rule == "endpoint.internal" and "private-network" in refused.message
    assert "example" not in refused.message and "10.9.8.7" not in refused.message


async def test_the_checked_addresses_are_returned_for_pinning() -> None:
    dns = Dns(hooks_example_org=["93.184.215.14", "93.184.215.14", "2606:2800::1"])
    guard = EndpointGuard(AddressPolicy(), resolver=dns)
    host, addresses = await guard.addresses("https://Hooks.Example.org:8443/x", agency="la")
    assert (host, addresses) == ("hooks.example.org", ("93.184.215.14", "2606:2800::1"))


async def test_literals_and_localhost_are_not_looked_up() -> None:
    dns = Dns()
    guard = EndpointGuard(AddressPolicy(allow_loopback=True), resolver=dns)
    assert (await guard.addresses("https://[::1]:8443/x", agency="la"))[1] == ("::1",)
    assert (await guard.addresses("http://localhost:9/x", agency="la"))[1] == ("127.0.0.1", "::1")
    assert (await guard.addresses("https://8.8.8.8/x", agency="la"))[1] == ("8.8.8.8",)
    assert dns.asked == []


async def test_an_international_name_is_looked_up_in_ascii() -> None:
    dns = Dns(**{"xn--bcher-kva_example": ["93.184.215.14"]})
    guard = EndpointGuard(AddressPolicy(), resolver=dns)
    await guard.addresses("https://bücher.example/x", agency="la")
    assert dns.asked == ["xn--bcher-kva.example"]


async def test_no_answer_a_bad_answer_or_a_slow_one_is_unresolvable() -> None:
    async def slow(host: str) -> Sequence[str]:
        await asyncio.Event().wait()
        return []

    for guard in (
        EndpointGuard(AddressPolicy(), resolver=Dns()),
        EndpointGuard(AddressPolicy(), resolver=Dns(hooks_example_org=[])),
        EndpointGuard(AddressPolicy(), resolver=Dns(hooks_example_org=["not-an-address"])),
        EndpointGuard(AddressPolicy(), resolver=slow, timeout_s=0.05),
    ):
        refused = await _refusal(guard, "https://hooks.example.org/x")
        assert refused.rule == "endpoint.unresolvable"
