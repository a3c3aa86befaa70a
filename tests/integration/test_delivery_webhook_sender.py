"""One webhook POST, to an endpoint on loopback that answers from a script: the timeout
bounds the whole exchange, the answer's body is never read whole, only an endpoint in
trouble (5xx, 408, 429, timeouts, connection failures) counts against its circuit breaker,
a redirect is a failed push, a host that resolves to an internal address is not contacted,
and each recipient's endpoint has a client of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest

from services.delivery.addresses import AddressPolicy
from services.delivery.resolving import EndpointGuard
from services.delivery.webhook import Clients, PushOutcome, WebhookSender, client
from tests.integration.kafka_helpers import eventually

HOST = "hooks.example.org"
PUBLIC = "93.184.215.14"  # a public address; never contacted (the guard refuses first)
Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Endpoint:
    """An HTTP/1.1 endpoint on 127.0.0.1: records each request (target, headers, body) and
    answers it with ``answer``."""

    answer: Answer
    port: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            fields = (line.partition(":") for line in head[1:] if line)
            headers = {k.strip().lower(): v.strip() for k, _, v in fields}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((head[0].split(" ")[1], headers, body))
            await self.answer(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away: what a push that stops reading does
        finally:
            writer.close()


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[Endpoint]:
    endpoint = Endpoint(answer)
    listening = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0)
    endpoint.port = listening.sockets[0].getsockname()[1]
    try:
        yield endpoint
    finally:
        listening.close()


def status(code: int, *, extra: bytes = b"") -> Answer:
    body = b"" if code == 204 else b"answer"  # a 204 has none

    async def answer(writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (code, len(body), extra)
        writer.write(head + body)
        await writer.drain()

    return answer


def endless(*, pause_s: float) -> Answer:
    """A 200 whose body never ends (it claims 10 GB): a byte every ``pause_s``, or as fast
    as the socket takes it."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
        chunk = b"x" if pause_s else b"x" * 65536
        while True:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause_s)

    return answer


def _guard(*addresses: str, policy: AddressPolicy | None = None) -> EndpointGuard:
    async def resolve(host: str) -> list[str]:
        assert host == HOST
        return list(addresses)

    return EndpointGuard(policy or AddressPolicy(allow_loopback=True), resolver=resolve)


async def _post(
    endpoint: Endpoint, guard: EndpointGuard, timeout_s: float = 10.0, *, times: int = 1
) -> PushOutcome:
    """Push ``times`` through one client; the last one's outcome."""
    async with client(timeout_s) as http:
        sender = WebhookSender(http, guard=guard, timeout_s=timeout_s)
        for _ in range(times):
            outcome = await sender.post(
                f"http://{HOST}:{endpoint.port}/x",
                b"{}",
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                idempotency_key="s:1",
                subscription_id="s",
                event_number=1,
                recipient="la-northshire",
            )
        return outcome


async def test_the_timeout_bounds_the_whole_exchange_not_each_read() -> None:
    async with serving(endless(pause_s=0.01)) as endpoint:
        outcome = await asyncio.wait_for(_post(endpoint, _guard("127.0.0.1"), 0.3), 5)
    assert outcome == PushOutcome(ok=False, error="timed out", endpoint_down=True)


async def test_the_answers_body_is_not_read_whole() -> None:
    async with serving(endless(pause_s=0)) as endpoint:
        assert (await asyncio.wait_for(_post(endpoint, _guard("127.0.0.1")), 5)).ok


@pytest.mark.parametrize(
    ("code", "down"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (401, False), (404, False)],
)
async def test_only_trouble_at_the_endpoint_counts_against_its_breaker(
    code: int, down: bool
) -> None:
    async with serving(status(code)) as endpoint:
        outcome = await _post(endpoint, _guard("127.0.0.1"))
    assert (outcome.ok, outcome.gone, outcome.endpoint_down) == (False, False, down)
    assert outcome.error == f"HTTP {code}" and outcome.status == code


async def test_a_connection_failure_counts_and_410_is_gone() -> None:
    async with serving(status(200)) as closed:
        pass  # nothing listens on its port now
    refused = await _post(closed, _guard("127.0.0.1"))
    assert refused.endpoint_down and refused.error == "request failed (ClientConnectorError)"
    async with serving(status(410)) as endpoint:
        gone = await _post(endpoint, _guard("127.0.0.1"))
    assert gone.gone and not gone.endpoint_down


async def test_a_redirect_is_a_failed_push_and_is_not_followed() -> None:
    moved = status(307, extra=b"Location: /elsewhere\r\n")
    async with serving(moved) as endpoint:
        outcome = await _post(endpoint, _guard("127.0.0.1"))
    assert not outcome.ok and outcome.status == 307 and not outcome.endpoint_down
    assert outcome.error == "HTTP 307 (redirects are not followed)"
    assert [target for target, _, _ in endpoint.requests] == ["/x"]


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
    async with serving(status(200)) as endpoint:
        outcome = await _post(endpoint, _guard(*addresses, policy=AddressPolicy()))
    assert endpoint.requests == []
    assert not outcome.ok and outcome.endpoint_down and outcome.status is None
    assert outcome.error is not None and said in outcome.error
    assert "example" not in outcome.error and all(a not in outcome.error for a in addresses)


async def test_a_push_carries_the_standard_webhooks_headers_and_no_cookie() -> None:
    """A cookie an endpoint sets is not kept: nothing one push's answer says rides on the
    next."""
    async with serving(status(204, extra=b"Set-Cookie: seen=1; Path=/\r\n")) as endpoint:
        assert (await _post(endpoint, _guard("127.0.0.1"), times=2)).ok
    for _, headers, _ in endpoint.requests:
        assert headers["webhook-id"] == headers["idempotency-key"] == "s:1"
        assert headers["webhook-timestamp"].isdigit()
        assert headers["webhook-signature"].startswith("v1,")
        assert "infoshare-signature" not in headers and "cookie" not in headers
    assert len(endpoint.requests) == 2


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


def _closed(session: aiohttp.ClientSession) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return session.closed

    return check


async def test_past_the_most_kept_the_least_recently_used_is_dropped_and_closed_later() -> None:
    clients = Clients(0.05, most=2)
    try:
        oldest = clients("la-northshire", "https://hooks.example.org/1")
        kept = clients("la-northshire", "https://hooks.example.org/2")
        assert clients("la-northshire", "https://hooks.example.org/1") is oldest  # used again
        clients("la-northshire", "https://hooks.example.org/3")  # drops /2, not /1
        assert len(clients) == 2 and not kept.closed
        assert clients("la-northshire", "https://hooks.example.org/1") is oldest
        await eventually("the dropped client closed", _closed(kept), wait_s=5)
        assert not oldest.closed
    finally:
        await clients.aclose()


async def test_closing_closes_the_clients_dropped_and_waiting_too() -> None:
    clients = Clients(30.0, most=1)
    dropped = clients("la-northshire", "https://hooks.example.org/1")
    kept = clients("la-northshire", "https://hooks.example.org/2")  # drops /1, to close later
    assert not dropped.closed
    await clients.aclose()
    assert dropped.closed and kept.closed and len(clients) == 0
