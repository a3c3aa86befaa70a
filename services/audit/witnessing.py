"""The audit service's side of a witness (services/witness): every few seconds, the newest
checkpoint it signed goes to the witness with a consistency proof from the last one the
witness cosigned. A refusal is an alarm (the trail is not what the witness saw), logged at
ERROR with ``ALERT``; a witness that cannot be reached is tried again.

The proof needs the roots of subtrees of the trail: the entry hashes are read once and then
only the new ones, and each perfect subtree's root is remembered, so a proof after the
first costs about log2(size) hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.audit.chain import Checkpoint, node_hash
from services.audit.models import AuditEntry
from services.audit.proofs import consistency_path
from services.audit.sealing import Sealing, stored_checkpoints

log = logging.getLogger(__name__)
EVERY_S = 5.0


@dataclass
class Leaves:
    """The trail's entry hashes, read as the trail grows, and the roots of its perfect
    subtrees once computed (they never change)."""

    hashes: list[bytes] = field(default_factory=list)
    known: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def read(self, engine: Engine, upto: int) -> None:
        with Session(engine) as session:
            rows = session.exec(
                select(AuditEntry.entry_hash)
                .where(col(AuditEntry.seq) > len(self.hashes))
                .where(col(AuditEntry.seq) <= upto)
                .order_by(col(AuditEntry.seq))
            )
            self.hashes += [bytes.fromhex(h) for h in rows]

    def root_of(self, start: int, end: int) -> bytes:
        size = end - start
        if size == 1:
            return self.hashes[start]
        perfect = size & (size - 1) == 0
        if perfect and (start, end) in self.known:
            return self.known[start, end]
        k = size // 2 if perfect else 1 << ((size - 1).bit_length() - 1)
        root = node_hash(self.root_of(start, start + k), self.root_of(start + k, end))
        if perfect:  # it never changes: remember it
            self.known[start, end] = root
        return root


async def witness(
    engine: Engine,
    sealing: Sealing,
    url: str,
    *,
    stop: asyncio.Event,
    every_s: float = EVERY_S,
    client: httpx.AsyncClient | None = None,
) -> None:
    """Have the witness at ``url`` cosign each newer checkpoint until ``stop``."""
    leaves = Leaves()
    http = client or httpx.AsyncClient(base_url=url, timeout=10)
    seen = 0
    try:
        while True:  # a pass, then another every ``every_s`` until ``stop``
            try:
                seen = await _cosign_newest(engine, sealing, http, leaves, seen)
            except httpx.HTTPError as exc:
                log.warning(
                    "the witness could not be reached (%s): trying again", type(exc).__name__
                )
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        if client is None:
            await http.aclose()


async def _cosign_newest(
    engine: Engine, sealing: Sealing, http: httpx.AsyncClient, leaves: Leaves, seen: int
) -> int:
    """Send the newest checkpoint if the witness has not cosigned it; what it has cosigned."""
    if not seen:
        latest = await http.get("/latest")
        seen = latest.json()["checkpoint"]["tree_size"] if latest.status_code == 200 else 0
    public = sealing.public_keys()
    signed = [
        c
        for c in await asyncio.to_thread(stored_checkpoints, engine)
        if c.key_id in public and c.signature_valid(public[c.key_id])
    ]
    newest: Checkpoint | None = max(signed, key=lambda c: c.tree_size, default=None)
    if newest is None or newest.tree_size <= seen:
        return seen
    await asyncio.to_thread(leaves.read, engine, newest.tree_size)
    proof = consistency_path(seen, newest.tree_size, leaves.root_of) if seen else []
    answer = await http.post(
        "/cosign", json={"checkpoint": newest.to_json(), "consistency": [p.hex() for p in proof]}
    )
    if answer.status_code == 409:
        log.error(
            "ALERT the witness refused to cosign the audit trail: %s", answer.json()["detail"]
        )
        return seen
    answer.raise_for_status()
    return newest.tree_size
