"""The HTTP edge of webhook push: one signed POST, its outcome in our terms.

Before every POST the endpoint's host is resolved again and every address judged
(resolving.py); the POST then connects only to those addresses (pinning.py), so a name
pointed at an internal address after the subscription was made (DNS rebinding) reaches
nothing. Redirects are not followed: a 3xx is a failed push.

An outcome's error text names what went wrong (a status code, a timeout, a connection
failure, a refused address), never the endpoint's answer (a receiver could echo what it was
sent), nor its host or addresses.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from services.delivery.errors import EndpointRefused
from services.delivery.pinning import PinnedTransport, pinned
from services.delivery.resolving import EndpointGuard
from services.delivery.signing import IDEMPOTENCY_HEADER, signature_headers

USER_AGENT = "infoshare-delivery/0.1"


# Answers that say the endpoint itself is in trouble: they count towards its circuit
# breaker. Any other 4xx is about this one request; it is retried, but trips nothing.
_ENDPOINT_TROUBLE = {408, 429}
MAX_BODY = 4096  # bytes of an answer read (and dropped) before the connection is closed
MAX_CLIENTS = 1024  # endpoints' clients kept (Clients)


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
    if 300 <= code < 400:
        return PushOutcome(ok=False, error=f"HTTP {code} (redirects are not followed)", status=code)
    down = code >= 500 or code in _ENDPOINT_TROUBLE
    return PushOutcome(ok=False, error=f"HTTP {code}", endpoint_down=down, status=code)


class WebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient | Callable[[str, str], httpx.AsyncClient],
        *,
        guard: EndpointGuard,
        timeout_s: float = 10.0,
    ) -> None:
        """``client``: one for every push, or one by recipient and endpoint URL
        (``Clients``)."""
        if isinstance(client, httpx.AsyncClient):
            shared = client
            self._client_for: Callable[[str, str], httpx.AsyncClient] = lambda _, __: shared
        else:
            self._client_for = client
        self._guard = guard
        self._timeout_s = timeout_s  # for the whole exchange (name lookup too), not per read

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
        recipient: str,
    ) -> PushOutcome:
        """POST ``body`` signed with ``secret`` now to ``recipient``'s endpoint, if its host
        resolves to addresses that recipient may reach; never raises for the endpoint's
        sake."""
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signature_headers(secret, body, msg_id=idempotency_key, timestamp=int(time.time())),
            IDEMPOTENCY_HEADER: idempotency_key,
            "Infoshare-Subscription": subscription_id,
        }
        if event_number is not None:
            headers["Infoshare-Event-Number"] = str(event_number)
        client = self._client_for(recipient, url)
        try:
            async with asyncio.timeout(self._timeout_s):
                host, addresses = await self._guard.addresses(url, agency=recipient)
                with pinned(host, addresses):
                    async with client.stream("POST", url, content=body, headers=headers) as answer:
                        # The answer's body means nothing to us: read a little (so a small
                        # answer keeps the connection reusable), never all of it.
                        read = 0
                        async for chunk in answer.aiter_raw():
                            read += len(chunk)
                            if read >= MAX_BODY:
                                break
                        code = answer.status_code
        except EndpointRefused as exc:
            return PushOutcome(ok=False, error=f"refused: {exc.message}", endpoint_down=True)
        except (TimeoutError, httpx.TimeoutException):
            return PushOutcome(ok=False, error="timed out", endpoint_down=True)
        except httpx.HTTPError as exc:
            return PushOutcome(
                ok=False, error=f"request failed ({type(exc).__name__})", endpoint_down=True
            )
        return _outcome(code)


def client(timeout_s: float, *, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client pushes go through: connections only to pinned addresses (pinning.py), no
    redirects followed (a redirect could take a child's data elsewhere), no proxies or
    .netrc from the environment. ``verify``: the CAs to trust (default: certifi's)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
        transport=PinnedTransport(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            verify=verify,
        ),
    )


class Clients:
    """A client for each recipient's endpoint, made when first pushed to.

    - A kept-alive connection to an address checked for one recipient never carries another
      recipient's push, nor a push to another endpoint.
    - Each pool holds only its endpoint's connections, a few (the dispatcher's lanes).
      httpcore checks every connection a pool holds on every request, so one pool for every
      endpoint cost each push more the more endpoints were busy (bench delivery: about a
      quarter of the service's CPU with 4 subscriptions).
    - At most ``most`` are kept: past that the least recently used is dropped, and closed
      once a push begun on it would have timed out.
    - One TLS context (the CAs to trust) serves them all."""

    def __init__(self, timeout_s: float, *, most: int = MAX_CLIENTS) -> None:
        self._timeout_s = timeout_s
        self._most = most
        self._clients: OrderedDict[tuple[str, str], httpx.AsyncClient] = OrderedDict()
        self._tls: ssl.SSLContext | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __call__(self, recipient: str, url: str) -> httpx.AsyncClient:
        key = (recipient, url)
        found = self._clients.get(key)
        if found is not None:
            self._clients.move_to_end(key)
            return found
        if self._tls is None:
            self._tls = httpx.create_ssl_context(verify=True, trust_env=False)
        made = self._clients[key] = client(self._timeout_s, verify=self._tls)
        while len(self._clients) > self._most:
            _, dropped = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._close_later(dropped))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return made

    async def _close_later(self, dropped: httpx.AsyncClient) -> None:
        await asyncio.sleep(self._timeout_s)
        await dropped.aclose()

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        for task in list(self._closing):
            task.cancel()
        for c in self._clients.values():
            await c.aclose()
        self._clients.clear()
