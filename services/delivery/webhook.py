"""The HTTP edge of webhook push: one signed POST, its outcome in our terms.

Before every POST the endpoint's host is resolved again and every address judged
(resolving.py); the POST then connects only to those addresses (pinning.py), so a name
pointed at an internal address after the subscription was made (DNS rebinding) reaches
nothing. Redirects are not followed: a 3xx is a failed push.

The client is aiohttp's: a POST costs about a sixth of the CPU of httpx's here (bench
delivery's receiver, 4 in flight: 80-85 us against 470-490), and a push's CPU is what
bounds deliveries a second.

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

import aiohttp
import certifi

from services.delivery.errors import EndpointRefused
from services.delivery.pinning import PinnedConnector, pinned
from services.delivery.resolving import EndpointGuard
from services.delivery.signing import IDEMPOTENCY_HEADER, signature_headers

USER_AGENT = "infoshare-delivery/0.1"


# Answers that say the endpoint itself is in trouble: they count towards its circuit
# breaker. Any other 4xx is about this one request; it is retried, but trips nothing.
_ENDPOINT_TROUBLE = {408, 429}
MAX_BODY = 4096  # bytes of an answer read (and dropped) before the connection is closed
MAX_CLIENTS = 1024  # endpoints' clients kept (Clients)
CLOSE_MARGIN_S = 1.0  # a dropped client is closed this long after a push on it timed out


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
        client: aiohttp.ClientSession | Callable[[str, str], aiohttp.ClientSession],
        *,
        guard: EndpointGuard,
        timeout_s: float = 10.0,
    ) -> None:
        """``client``: one for every push, or one by recipient and endpoint URL
        (``Clients``)."""
        if isinstance(client, aiohttp.ClientSession):
            shared = client
            self._client_for: Callable[[str, str], aiohttp.ClientSession] = lambda _, __: shared
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
                    code = await _send(client, url, body, headers)
        except EndpointRefused as exc:
            return PushOutcome(ok=False, error=f"refused: {exc.message}", endpoint_down=True)
        except TimeoutError:
            return PushOutcome(ok=False, error="timed out", endpoint_down=True)
        except aiohttp.ClientError as exc:
            return PushOutcome(
                ok=False, error=f"request failed ({type(exc).__name__})", endpoint_down=True
            )
        return _outcome(code)


async def _send(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> int:
    """POST, and the answer's status. A connection that broke after it was made (most
    often a kept-alive one the endpoint closed as it was reused) is tried once more, on
    another connection: the push carries its idempotency key, so the endpoint drops a
    repeat (RFC 9112 9.3.1 allows a retry of a request known to be idempotent)."""
    try:
        return await _post(client, url, body, headers)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: not again
            raise
    return await _post(client, url, body, headers)


async def _post(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> int:
    async with client.post(url, data=body, headers=headers, allow_redirects=False) as answer:
        await _read_some(answer)
        return answer.status


async def _read_some(answer: aiohttp.ClientResponse) -> None:
    """The answer's body means nothing to us: read a little, so that a small answer leaves
    the connection reusable, never all of it (a longer one is dropped with its connection)."""
    read = 0
    while read < MAX_BODY:
        chunk = await answer.content.read(MAX_BODY - read)
        if not chunk:
            return
        read += len(chunk)


def trust() -> ssl.SSLContext:
    """The CAs pushes trust by default: certifi's, with certificates and host names always
    checked."""
    return ssl.create_default_context(cafile=certifi.where())


def client(timeout_s: float, *, verify: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """A client pushes go through (call it with a loop running): connections only to pinned
    addresses (pinning.py), no redirects followed (a redirect could take a child's data
    elsewhere; ``post`` asks for none), no proxies or .netrc from the environment, no
    cookies kept. ``verify``: the CAs to trust (default: :func:`trust`)."""
    return aiohttp.ClientSession(
        connector=PinnedConnector(tls=verify or trust(), limit=100),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


class Clients:
    """A client for each recipient's endpoint, made when first pushed to.

    - A kept-alive connection to an address checked for one recipient never carries another
      recipient's push, nor a push to another endpoint.
    - Each pool holds only its endpoint's connections, a few (the dispatcher's lanes). With
      httpx, whose pool checks every connection it holds on every request, one pool for
      every endpoint cost each push more the more endpoints were busy.
    - At most ``most`` are kept: past that the least recently used is dropped, and closed
      once a push begun on it would have timed out.
    - One TLS context (the CAs to trust) serves them all."""

    def __init__(self, timeout_s: float, *, most: int = MAX_CLIENTS) -> None:
        self._timeout_s = timeout_s
        self._most = most
        self._clients: OrderedDict[tuple[str, str], aiohttp.ClientSession] = OrderedDict()
        self._tls: ssl.SSLContext | None = None
        self._closing: dict[asyncio.Task[None], aiohttp.ClientSession] = {}

    def __call__(self, recipient: str, url: str) -> aiohttp.ClientSession:
        key = (recipient, url)
        found = self._clients.get(key)
        if found is not None:
            self._clients.move_to_end(key)
            return found
        if self._tls is None:
            self._tls = trust()
        made = self._clients[key] = client(self._timeout_s, verify=self._tls)
        while len(self._clients) > self._most:
            _, dropped = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._close_later(dropped))
            self._closing[task] = dropped
            task.add_done_callback(lambda done: self._closing.pop(done, None))
        return made

    async def _close_later(self, dropped: aiohttp.ClientSession) -> None:
        """Close ``dropped`` once a push that took it before it was dropped has ended: its
        timeout began before the drop, so after it (and a margin for the clock's ticks)
        nothing is in flight on it."""
        await asyncio.sleep(self._timeout_s + CLOSE_MARGIN_S)
        await dropped.close()

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client, those dropped and waiting to be closed too."""
        waiting = dict(self._closing)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for c in [*waiting.values(), *self._clients.values()]:
            await c.close()
        self._clients.clear()
