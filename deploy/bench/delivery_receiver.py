"""The webhook receiver and bare endpoints of ``infoshare bench delivery``, run as a process of
its own (``python -m deploy.bench.delivery_receiver PORT``): a plain asyncio server on h11,
so that what it costs per request is small and the same whoever sends.

``POST /hook/<name>`` is a recipient's webhook endpoint: it verifies the Standard Webhooks
signature with the recipient's library (``standardwebhooks``) under the secret registered
for ``<name>``, parses the notification as a recipient would, and counts it; a request
not correctly signed is answered 401 and counted apart. ``GET /inbox`` and ``POST /ack``
are the bare pull baseline: a canned page and a canned acknowledgement, no work. The
benchmark reads and resets the counts under ``/control/``."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

READ = 65536
JSON = [(b"content-type", b"application/json")]


@dataclass
class Counts:
    """What the hooks received since the last reset: correctly signed notifications (time
    and event id each, and the bodies for the bare baseline to send again) and refusals."""

    hooks: dict[str, Webhook] = field(default_factory=dict)
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    bodies: list[tuple[str, str]] = field(default_factory=list)  # (hook name, body)
    refused: int = 0
    page: bytes = b'{"notification_events": [], "next_after": 0}'
    ack: bytes = b'{"last_acknowledged": 0}'

    def hook(self, name: str, headers: dict[str, str], body: bytes) -> int:
        signer = self.hooks.get(name)
        try:
            if signer is None:
                raise WebhookVerificationError("no secret for this hook")
            signer.verify(body, headers, json_parse=False)
        except WebhookVerificationError:
            self.refused += 1
            return 401
        note = orjson.loads(body)
        now = time.time()
        for entry in note["notification_events"]:
            self.arrivals.append((now, entry["focus"]["id"]))
        self.bodies.append((name, body.decode()))
        return 200

    def control(self, method: bytes, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/control/secrets" and method == b"POST":
            self.hooks.update({n: Webhook(s) for n, s in orjson.loads(body).items()})
        elif path == "/control/reset" and method == b"POST":
            self.arrivals, self.bodies, self.refused = [], [], 0
        elif path == "/control/stats":
            return 200, orjson.dumps({"received": len(self.arrivals), "refused": self.refused})
        elif path == "/control/arrivals":
            return 200, orjson.dumps({"arrivals": self.arrivals, "bodies": self.bodies})
        elif path == "/control/page" and method == b"PUT":
            self.page = body
        else:
            return 404, b"{}"
        return 200, b"{}"

    def answer(self, method: bytes, target: str, headers: dict[str, str], body: bytes) -> Any:
        path = target.split("?", 1)[0]
        if path.startswith("/hook/") and method == b"POST":
            return self.hook(path.removeprefix("/hook/"), headers, body), b""
        if path == "/inbox" and method == b"GET":
            return 200, self.page
        if path == "/ack" and method == b"POST":
            return 200, self.ack
        return self.control(method, path, body)


async def _serve(
    counts: Counts,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer_s: float = 0.0,
) -> None:
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body: list[bytes] = []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ))
            elif isinstance(event, h11.Request):
                request, body = event, []
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                headers = {k.decode(): v.decode() for k, v in request.headers}
                status, payload = counts.answer(
                    request.method, request.target.decode(), headers, b"".join(body)
                )
                if answer_s and request.target.startswith(b"/hook/"):
                    await asyncio.sleep(answer_s)  # an endpoint that takes a while to answer
                length = [(b"content-length", str(len(payload)).encode())]
                writer.write(conn.send(h11.Response(status_code=status, headers=JSON + length)))
                writer.write(conn.send(h11.Data(data=payload)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
            else:  # ConnectionClosed, or PAUSED (the client closed after its request)
                break
    except (h11.RemoteProtocolError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, answer_ms: float = 0.0) -> None:
    counts = Counts()
    server = await asyncio.start_server(
        lambda r, w: _serve(counts, r, w, answer_ms / 1000), host="127.0.0.1", port=port
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
