"""The recipient's side of ``infoshare bench delivery``: waiting on progress, the pull
loop (the same against the service and the bare endpoint), the bare webhook loop, and the
service's CPU time."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson

from services.delivery.signing import IDEMPOTENCY_HEADER, idempotency_key, signature_headers
from services.delivery.webhook import USER_AGENT

STALL_S = 60.0  # no progress this long: the run has failed
Signed = tuple[bytes, dict[str, str]]


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def until(what: str, progress: Callable[[], Awaitable[int]], target: int) -> None:
    """Wait until ``progress()`` reaches ``target``; fail if it stops moving for STALL_S."""
    last, moved = -1, time.monotonic()
    while (now := await progress()) < target:
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > STALL_S:
            raise RuntimeError(f"{what}: stuck at {now} of {target}")
        await asyncio.sleep(0.05)


async def pull(
    http: httpx.AsyncClient, get: str, ack: str, auth: dict[str, str], *, page: int, items: int
) -> tuple[int, bytes]:
    """A recipient's loop: read a page after the last acknowledged, acknowledge it, until
    ``items`` are read or a page is empty; (pages read, the first page's bytes)."""
    read, pages, first = 0, 0, b""
    while read < items:
        answer = await http.get(get, params={"limit": page}, headers=auth)
        answer.raise_for_status()
        found = orjson.loads(answer.content)
        events = found["notification_events"]
        if not events:
            break
        first = first or answer.content
        read, pages = read + len(events), pages + 1
        acked = await http.post(ack, json={"through": found["next_after"]}, headers=auth)
        acked.raise_for_status()
    return pages, first


def sign_again(bodies: list[tuple[str, str]], secrets: dict[str, str]) -> dict[str, list[Signed]]:
    """The bodies a receiver got, by hook, in order, with the headers the service sends
    (webhook.py), signed now under each hook's secret."""
    per_hook: dict[str, list[Signed]] = {}
    now = int(time.time())
    for name, text in bodies:
        body = text.encode()
        note = orjson.loads(body)
        number = note["notification_events"][0]["event_number"]
        key = idempotency_key(note["subscription"], number)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signature_headers(secrets[name], body, msg_id=key, timestamp=now),
            IDEMPOTENCY_HEADER: key,
            "Infoshare-Subscription": note["subscription"],
            "Infoshare-Event-Number": str(number),
        }
        per_hook.setdefault(name, []).append((body, headers))
    return per_hook


async def push_bare(receiver: httpx.AsyncClient, per_hook: dict[str, list[Signed]]) -> None:
    """One worker per hook, each posting its bodies in order (as the service pushes a
    subscription's), all over one keep-alive client."""

    async def worker(name: str) -> None:
        for body, headers in per_hook[name]:
            answer = await receiver.post(f"/hook/{name}", content=body, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"the receiver answered {answer.status_code}")

    await asyncio.gather(*(worker(name) for name in per_hook))
