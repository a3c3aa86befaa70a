"""The agency benchmark's yardstick: a bare FastAPI endpoint that takes a JSON body and does
one plain insert of it into SQLite, served by uvicorn exactly as ``infoshare up`` serves an
agency service (``services/ops/components.py``: its startup objects frozen out of the
collector's reach too). Its database has the same durability as an outbox (``engine_for``:
WAL, synchronous FULL, busy timeout), so the ratio of an agency service to it is what the
service's own work costs: authentication, validation, the person index, the event, the
outbox and its relay.

Run as ``python -m deploy.bench.bare_agency PORT DATABASE``; a benchmark tool, never a
product component.
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI
from sqlalchemy import JSON, Column, Integer, MetaData, Table

from services.backbone.database import engine_for
from services.ops.components import freeze_startup_objects

_METADATA = MetaData()
RECEIVED = Table(
    "received",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("body", JSON, nullable=False),
)


def create_app(database: str) -> FastAPI:
    engine = engine_for(f"sqlite:///{database}")
    _METADATA.create_all(engine)
    app = FastAPI(title="bare insert (benchmark yardstick)")

    @app.post("/received", status_code=202)
    def receive(body: dict[str, Any]) -> dict[str, int]:
        with engine.begin() as conn:
            row = conn.execute(RECEIVED.insert().values(body=body)).inserted_primary_key
        return {"id": int(row[0]) if row else 0}

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str]) -> None:
    port, database = int(argv[0]), argv[1]
    import uvicorn

    app = create_app(database)
    freeze_startup_objects()  # as the services are served
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
