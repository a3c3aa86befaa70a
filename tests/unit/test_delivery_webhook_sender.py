"""One webhook POST, against an in-process transport (no network): the timeout bounds the
whole exchange, the answer's body is never read whole, only an endpoint in trouble (5xx,
408, 429, timeouts, connection failures) counts against its circuit breaker, a redirect is
a failed push, and a host that resolves to an internal address is not contacted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from services.delivery.addresses import AddressPolicy
from services.delivery.resolving import EndpointGuard
from services.delivery.webhook import MAX_BODY, Clients, PushOutcome, WebhookSender
from tests.integration.kafka_helpers import eventually

PUBLIC = "93.184.215.14"  # a public address; never contacted (the transport is in-process)


class Trickle(httpx.AsyncByteStream):
    """An answer body that never ends, a byte at a time: each read is quick."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.01)
            self.sent += 1
            yield b"x"


class Endless(httpx.AsyncByteStream):
    """An answer body that never ends, fast."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 1024
            yield b"x" * 1024
            await asyncio.sleep(0)


async def _post(sender: WebhookSender) -> PushOutcome:
    return await sender.post(
        "https://hooks.example.org/x",
        b"{}",
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        idempotency_key="s:1",
        subscription_id="s",
        event_number=1,
        recipient="la-northshire",
    )


def _resolving_to(*addresses: str) -> EndpointGuard:
    async def resolve(host: str) -> list[str]:
        assert host == "hooks.example.org"
        return list(addresses)

    return EndpointGuard(AddressPolicy(), resolver=resolve)


def _answer(code: int) -> httpx.Response:
    return httpx.Response(code, stream=httpx.ByteStream(b"answer"))  # as a server streams it


def _sender(
    handler: httpx.MockTransport, timeout_s: float = 10.0, *, to: tuple[str, ...] = (PUBLIC,)
) -> WebhookSender:
    return WebhookSender(
        httpx.AsyncClient(transport=handler), guard=_resolving_to(*to), timeout_s=timeout_s
    )


async def test_the_timeout_bounds_the_whole_exchange_not_each_read() -> None:
    body = Trickle()
    sender = _sender(httpx.MockTransport(lambda _: httpx.Response(200, stream=body)), 0.3)
    outcome = await asyncio.wait_for(_post(sender), 5)
    assert outcome == PushOutcome(ok=False, error="timed out", endpoint_down=True)


async def test_the_answers_body_is_not_read_whole() -> None:
    body = Endless()
    sender = _sender(httpx.MockTransport(lambda _: httpx.Response(200, stream=body)))
    assert (await asyncio.wait_for(_post(sender), 5)).ok
    assert body.sent <= MAX_BODY + 1024


@pytest.mark.parametrize(
    ("code", "down"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (401, False), (404, False)],
)
async def test_only_trouble_at_the_endpoint_counts_against_its_breaker(
    code: int, down: bool
) -> None:
    outcome = await _post(_sender(httpx.MockTransport(lambda _: _answer(code))))
    assert (outcome.ok, outcome.gone, outcome.endpoint_down) == (False, False, down)
    assert outcome.error == f"HTTP {code}"


async def test_a_connection_failure_counts_and_410_is_gone() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    refused = await _post(_sender(httpx.MockTransport(refuse)))
    assert refused.endpoint_down and refused.error == "request failed (ConnectError)"
    gone = await _post(_sender(httpx.MockTransport(lambda _: _answer(410))))
    assert gone.gone and not gone.endpoint_down


async def test_a_redirect_is_a_failed_push_and_is_not_followed() -> None:
    seen: list[httpx.URL] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(
            307,
            headers={"location": "https://elsewhere.example.org/"},
            stream=httpx.ByteStream(b""),
        )

    outcome = await _post(_sender(httpx.MockTransport(redirect)))
    assert not outcome.ok and outcome.status == 307 and not outcome.endpoint_down
    assert outcome.error == "HTTP 307 (redirects are not followed)"
    assert seen == [httpx.URL("https://hooks.example.org/x")]


@pytest.mark.parametrize(
    ("addresses", "said"),
    [
        (("127.0.0.1",), "a loopback address"),
        (("169.254.169.254",), "a cloud metadata address"),
        ((PUBLIC, "10.0.0.7"), "a private-network address"),  # any one refused: refused
        (("fd00:ec2::254",), "a cloud metadata address"),
        ((), "did not resolve"),
    ],
)
async def test_a_host_resolving_to_an_internal_address_is_not_contacted(
    addresses: tuple[str, ...], said: str
) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _answer(200)

    outcome = await _post(_sender(httpx.MockTransport(record), to=addresses))
    assert sent == []
    assert not outcome.ok and outcome.endpoint_down and outcome.status is None
    assert outcome.error is not None and said in outcome.error
    assert "example" not in outcome.error and all(a not in outcome.error for a in addresses)


async def test_a_push_carries_the_standard_webhooks_headers() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _answer(204)

    assert (await _post(_sender(httpx.MockTransport(record)))).ok
    (request,) = sent
    assert request.headers["webhook-id"] == request.headers["idempotency-key"] == "s:1"
    assert request.headers["webhook-timestamp"].isdigit()
    assert request.headers["webhook-signature"].startswith("v1,")
    assert "infoshare-signature" not in request.headers


async def test_each_recipients_endpoint_has_a_client_of_its_own() -> None:
    clients = Clients(10.0)
    try:
        first = clients("la-northshire", "https://hooks.example.org/a")
        assert clients("la-northshire", "https://hooks.example.org/a") is first
        others = {
            id(clients("la-northshire", "https://hooks.example.org/b")),
            id(clients("nhs-riverside", "https://hooks.example.org/a")),
        }
        assert id(first) not in others and len(others) == 2
    finally:
        await clients.aclose()


def _closed(client: httpx.AsyncClient) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return client.is_closed

    return check


async def test_past_the_most_kept_the_least_recently_used_is_dropped_and_closed_later() -> None:
    clients = Clients(0.05, most=2)
    try:
        oldest = clients("la-northshire", "https://hooks.example.org/1")
        kept = clients("la-northshire", "https://hooks.example.org/2")
        assert clients("la-northshire", "https://hooks.example.org/1") is oldest  # used again
        clients("la-northshire", "https://hooks.example.org/3")  # drops /2, not /1
        assert len(clients) == 2 and not kept.is_closed
        assert clients("la-northshire", "https://hooks.example.org/1") is oldest
        await eventually("the dropped client closed", _closed(kept), wait_s=5)
        assert not oldest.is_closed
    finally:
        await clients.aclose()
