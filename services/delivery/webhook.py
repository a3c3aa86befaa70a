"""The HTTP edge of webhook push: one signed POST, its outcome in our terms.

An outcome's error text names what went wrong (a status code, a timeout, a connection
failure), never the endpoint's answer: a receiver could echo what it was sent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from services.delivery.signing import HEADER, IDEMPOTENCY_HEADER, sign

USER_AGENT = "infoshare-delivery/0.1"


# Answers that say the endpoint itself is in trouble: they count towards its circuit
# breaker. Any other 4xx is about this one request; it is retried, but trips nothing.
_ENDPOINT_TROUBLE = {408, 429}
MAX_BODY = 4096  # bytes of an answer read (and dropped) before the connection is closed


@dataclass(frozen=True)
class PushOutcome:
    ok: bool  # 2xx: delivered
    gone: bool = False  # 410: the receiver wants no more: turn the subscription off
    error: str | None = None
    endpoint_down: bool = False  # a timeout, connection failure, 5xx, 408 or 429
    status: int | None = None  # the HTTP status code, if there was an answer


def _outcome(code: int) -> PushOutcome:
    if 200 <= code < 300:
        return PushOutcome(ok=True, status=code)
    if code == 410:
        return PushOutcome(ok=False, gone=True, error="HTTP 410 Gone", status=code)
    down = code >= 500 or code in _ENDPOINT_TROUBLE
    return PushOutcome(ok=False, error=f"HTTP {code}", endpoint_down=down, status=code)


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient, *, timeout_s: float = 10.0) -> None:
        self._client = client
        self._timeout_s = timeout_s  # for the whole exchange, not per read

    @property
    def timeout_s(self) -> float:
        """The longest one push can take."""
        return self._timeout_s

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
            async with (
                asyncio.timeout(self._timeout_s),
                self._client.stream("POST", url, content=body, headers=headers) as response,
            ):
                # The answer's body means nothing to us: read a little (so a small answer
                # keeps the connection reusable), never all of it.
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_BODY:
                        break
                code = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return PushOutcome(ok=False, error="timed out", endpoint_down=True)
        except httpx.HTTPError as exc:
            return PushOutcome(
                ok=False, error=f"request failed ({type(exc).__name__})", endpoint_down=True
            )
        return _outcome(code)


def client(timeout_s: float) -> httpx.AsyncClient:
    """The client pushes go through: no redirects followed (a redirect could take a child's
    data elsewhere), no proxies or .netrc from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )
