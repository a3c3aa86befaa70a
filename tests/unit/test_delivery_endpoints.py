"""Which webhook endpoints a subscription may name: https, and (against server-side request
forgery) no internal address, unless the loopback setting allows this machine."""

from __future__ import annotations

import pytest

from services.delivery.endpoints import breaker_key, check_endpoint
from services.delivery.errors import InvalidSubscription


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "https://172.16.0.1/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/hook",
        "https://240.0.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://2130706433/hook",
        "https://127.1/hook",
        "https://0x7f.0.0.1/hook",
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidSubscription) as caught:
        check_endpoint(url, allow_http_loopback=False)
    assert caught.value.rule == "endpoint.internal"


def test_loopback_only_when_the_setting_allows_it() -> None:
    for url in ("http://127.0.0.1:9/hook", "https://localhost:9/hook", "http://[::1]:9/x"):
        assert check_endpoint(url, allow_http_loopback=True) == url
    with pytest.raises(InvalidSubscription):  # the setting is for loopback, not a LAN
        check_endpoint("https://10.0.0.5/hook", allow_http_loopback=True)


def test_public_addresses_and_names_pass() -> None:
    for url in ("https://hooks.example.org/x", "https://8.8.8.8/x", "https://[2001:4860::1]/x"):
        assert check_endpoint(url, allow_http_loopback=False) == url


def test_breakers_are_per_agency_and_origin() -> None:
    assert breaker_key("a", "https://H.example:443/x") == breaker_key("a", "https://h.example/y")
    assert breaker_key("a", "https://h.example/x") != breaker_key("b", "https://h.example/x")


def test_a_refusal_names_the_kind_of_address_never_the_address() -> None:
    for url, said in (
        ("https://169.254.169.254/latest", "a cloud metadata address"),
        ("https://[fe80::1]/hook", "a link-local address"),
        ("https://100.64.1.2/hook", "a carrier-grade NAT address"),
        ("https://localhost/hook", "a loopback address"),
    ):
        with pytest.raises(InvalidSubscription) as caught:
            check_endpoint(url, allow_http_loopback=False)
        assert said in caught.value.message and url.split("/")[2] not in caught.value.message


def test_private_network_addresses_only_for_a_recipient_allowed_them() -> None:
    for url in ("https://10.0.0.5/hook", "https://[fd00::1]/hook", "https://100.64.0.1/x"):
        assert check_endpoint(url, allow_http_loopback=False, allow_private=True) == url
    for url in ("https://169.254.169.254/x", "https://[fe80::1]/x", "https://127.0.0.1/x"):
        # Never metadata or link-local; loopback has a setting of its own.
        with pytest.raises(InvalidSubscription):
            check_endpoint(url, allow_http_loopback=False, allow_private=True)
    with pytest.raises(InvalidSubscription) as caught:  # private allows no plain http
        check_endpoint("http://10.0.0.5/hook", allow_http_loopback=True, allow_private=True)
    assert caught.value.rule == "endpoint.https_required"
