"""One webhook POST, against an in-process transport (no network): the timeout bounds the
whole exchange, the answer's body is never read whole, and only an endpoint in trouble
(5xx, 408, 429, timeouts, connection failures) counts against its circuit breaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.delivery.webhook import MAX_BODY, PushOutcome, WebhookSender


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
        secret="whsec_x",
        idempotency_key="s:1",
        subscription_id="s",
        event_number=1,
    )


def _answer(code: int) -> httpx.Response:
    return httpx.Response(code, stream=httpx.ByteStream(b"answer"))  # as a server streams it


def _sender(handler: httpx.MockTransport, timeout_s: float = 10.0) -> WebhookSender:
    return WebhookSender(httpx.AsyncClient(transport=handler), timeout_s=timeout_s)


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
