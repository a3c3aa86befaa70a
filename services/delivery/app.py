"""Composition root of the delivery service: a pull inbox over HTTP for every recipient.

Each recipient's ``deliver.<agency>`` topic is its Kafka channel; this service reads them
all (read_committed) and serves them with a cursor, for recipients that pull.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Query

from services.backbone.http import create_service_app
from services.backbone.settings import HttpSettings
from services.backbone.tasks import critical_task
from services.delivery.inbox import Inbox, consume_into


def create_app(settings: HttpSettings | None = None) -> FastAPI:
    settings = settings or HttpSettings()
    directory = settings.directory()
    topics = settings.topics()
    inboxes = {agency.id: Inbox() for agency in directory}
    stop = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        readers = [
            critical_task(
                consume_into(
                    inbox,
                    topic=topics.deliver(agency),
                    bootstrap=settings.kafka_bootstrap,
                    stop=stop,
                ),
                name=f"inbox reader {agency}",
            )
            for agency, inbox in inboxes.items()
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*readers, return_exceptions=True)  # failures already reported

    app = create_service_app(
        title="infoshare: delivery service",
        description="Pull inbox per recipient agency, read from its deliver.<agency> topic.",
        lifespan=lifespan,
        health=lambda: {"recipients": {a: len(i) for a, i in inboxes.items()}},
    )

    @app.get(
        "/recipients/{agency}/inbox",
        tags=["pull inbox"],
        summary="Deliveries for one recipient after a cursor, in order",
    )
    async def inbox(
        agency: str,
        after: int = Query(0, ge=0, description="the last number already seen"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        if agency not in inboxes:
            raise HTTPException(status_code=404, detail=f"unknown recipient {agency!r}")
        items = [r.public() for r in inboxes[agency].after(after, limit)]
        return {
            "agency": agency,
            "items": items,
            "next_cursor": items[-1]["number"] if items else after,
        }

    return app
