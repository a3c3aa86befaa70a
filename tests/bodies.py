"""A request body sent in pieces, counting the pieces the server has asked for: how a test
tells that a service stopped reading a body at its limit rather than after reading it all."""

from __future__ import annotations

from collections.abc import AsyncIterator

SECRET = b"9990000123"  # what a body might hold (an NHS number), never to be echoed


class Pieces:
    """``total`` bytes of ``fill`` sent ``size`` bytes at a time (chunked, unless the request
    says a length)."""

    def __init__(self, total: int, *, size: int = 64 * 1024, fill: bytes = SECRET) -> None:
        self.body = (fill * (total // len(fill) + 1))[:total]
        self.size = size
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for at in range(0, len(self.body), self.size):
            self.sent += 1
            yield self.body[at : at + self.size]
