"""Background tasks a service cannot live without (ingestion, inbox readers).

If one fails, the service stops itself rather than answer health checks while doing
nothing: the supervisor (``infoshare up``, or systemd, or Kubernetes) starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


def critical_task(coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coro, name=name)

    def _done(finished: asyncio.Task[None]) -> None:
        if finished.cancelled() or finished.exception() is None:
            return
        # The type only: an exception's text may quote data.
        log.critical(
            "%s failed (%s); stopping so that the supervisor restarts this service",
            name,
            type(finished.exception()).__name__,
        )
        os.kill(os.getpid(), signal.SIGTERM)

    task.add_done_callback(_done)
    return task
