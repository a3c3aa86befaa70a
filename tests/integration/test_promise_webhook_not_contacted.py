"""A webhook subscription's endpoint is resolved and checked when the subscription is made,
but "the endpoint is never contacted to check it" (README, "Subscriptions and delivery
channels"): making one opens no connection to it, of any kind. The delivery app runs
without its lifespan (no dispatcher), so nothing but the create request could contact it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest

from services.delivery.app import create_app
from services.delivery.settings import DeliverySettings
from tests.integration.test_delivery_harness import ATTENDANCE, LA, token

NAME = "hooks.infoshare.test"  # resolved by the test's resolver, to the listener


class Listener:
    """A TCP endpoint on loopback that records every connection made to it, whatever is
    sent (or nothing), and answers any request 200 so a check would not hang on it."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    async with Listener() as served:
        yield served


async def test_making_a_webhook_subscription_never_contacts_the_endpoint(
    listener: Listener, keyring_path: Path, tmp_path: Path
) -> None:
    looked_up: list[str] = []

    async def resolver(host: str) -> Sequence[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    settings = DeliverySettings(
        keyring_file=keyring_path,
        delivery_database_url=f"sqlite:///{tmp_path / 'delivery.db'}",
        delivery_webhook_allow_http_loopback=True,
    )
    app = create_app(settings, resolver=resolver)
    endpoints = [
        f"http://127.0.0.1:{listener.port}/hook",
        f"https://{NAME}:{listener.port}/hook",  # a TLS handshake is a contact too
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery"
    ) as api:
        for endpoint in endpoints:
            body = {
                "event_types": [ATTENDANCE],
                "channel": "webhook",
                "endpoint": endpoint,
                "heartbeat_period": 60,
            }
            made = await api.post(
                f"/recipients/{LA}/subscriptions", json=body, headers=token(keyring_path, LA)
            )
            assert made.status_code == 201, made.text
        listed = await api.get(f"/recipients/{LA}/subscriptions", headers=token(keyring_path, LA))
        assert sorted(s["endpoint"] for s in listed.json()) == sorted(endpoints)

    assert NAME in looked_up  # the endpoint's host was checked ...
    assert listener.connections == 0  # ... and the endpoint never contacted

    # The listener does see a contact: a plain request to it is counted.
    async with httpx.AsyncClient() as client:
        assert (await client.head(endpoints[0])).status_code == 200
    assert listener.connections == 1
