"""The HTTP edge of webhook push: one signed POST, its outcome in our terms.

An outcome's error text names what went wrong (a status code, a timeout, a connection
failure), never the endpoint's answer: a receiver could echo what it was sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from services.delivery.signing import HEADER, IDEMPOTENCY_HEADER, sign

USER_AGENT = "infoshare-delivery/0.1"


@dataclass(frozen=True)
class PushOutcome:
    ok: bool  # 2xx: delivered
    gone: bool = False  # 410: the receiver wants no more: turn the subscription off
    error: str | None = None


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        secret: str,
        idempotency_key: str,
        subscription_id: str,
        event_number: int | None,
    ) -> PushOutcome:
        """POST ``body`` signed with ``secret`` now; never raises for the endpoint's sake."""
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            HEADER: sign(secret, body, timestamp=int(time.time())),
            IDEMPOTENCY_HEADER: idempotency_key,
            "Infoshare-Subscription": subscription_id,
        }
        if event_number is not None:
            headers["Infoshare-Event-Number"] = str(event_number)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return PushOutcome(ok=False, error="timed out")
        except httpx.HTTPError as exc:
            return PushOutcome(ok=False, error=f"request failed ({type(exc).__name__})")
        code = response.status_code
        if 200 <= code < 300:
            return PushOutcome(ok=True)
        if code == 410:
            return PushOutcome(ok=False, gone=True, error="HTTP 410 Gone")
        return PushOutcome(ok=False, error=f"HTTP {code}")


def client(timeout_s: float) -> httpx.AsyncClient:
    """The client pushes go through: no redirects followed (a redirect could take a child's
    data elsewhere), no proxies or .netrc from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )
