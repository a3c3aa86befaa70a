"""Drive the processor as operations would meet it: a real process on a real broker, killed,
paused, doubled, while the broker itself is crashed and restarted. Then read every output
topic back and compare with what the protocols say each recipient must receive."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from services.backbone import envelope, kafka
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from services.cli import scenario
from tests.unit.factories import ATTENDANCE, LA, PLAN_STARTED, attendance_data, plan_started_data

T = TypeVar("T")
ED_SOURCE = "nhs-riverside-ed"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def nhs_numbers(count: int, start: int = 999_200_000) -> Iterator[str]:
    """Valid test-range NHS numbers (modulus 11), skipping bases whose check digit is 10."""
    base = start
    made = 0
    while made < count:
        digits = f"{base:09d}"
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        base += 1
        if check == 10:
            continue
        made += 1
        yield digits + str(0 if check == 11 else check)


@dataclass(frozen=True)
class Child:
    nhs_number: str
    on_plan: bool

    @property
    def subject_id(self) -> str:
        return subject_identifier(nhs_number=self.nhs_number)


@dataclass
class Workload:
    """Children, half on a plan, each attending ``per_child`` times in arrival order."""

    children: list[Child]
    per_child: int
    authority_name: str

    @classmethod
    def make(cls, *, events: int, children: int, authority_name: str) -> Workload:
        kids = [Child(n, i % 2 == 0) for i, n in enumerate(nhs_numbers(children))]
        return cls(kids, max(1, events // children), authority_name)

    @property
    def attendances(self) -> int:
        return self.per_child * len(self.children)

    @staticmethod
    def arrival(seq: int) -> str:
        return (T0 + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def plan_events(self) -> Iterator[tuple[Child, str, dict[str, Any]]]:
        for child in self.children:
            if child.on_plan:
                data = plan_started_data(_template(child), authority_name=self.authority_name)
                yield child, PLAN_STARTED, data

    def attendance_events(self) -> Iterator[tuple[Child, str, dict[str, Any]]]:
        """Round-robin over children, so every partition is busy all the way through."""
        templates = {c.nhs_number: attendance_data(_template(c)) for c in self.children}
        for seq in range(self.per_child):
            for child in self.children:
                data = orjson.loads(orjson.dumps(templates[child.nhs_number]))
                data["attendance"]["arrival_time"] = self.arrival(seq)
                data["attendance"]["encounter_id"] = f"ED-{child.nhs_number[-6:]}-{seq}"
                yield child, ATTENDANCE, data


def _template(child: Child) -> scenario.Child:
    return scenario.Child(
        child.nhs_number, f"NS-{child.nhs_number[-6:]}", "Test", "Child", "2016-04-09", "NS1 4AP"
    )


async def publish(
    events: Iterator[tuple[Child, str, dict[str, Any]]],
    *,
    bootstrap: str,
    topics: Topics,
    keyring: Keyring,
    schemas: SchemaRegistry,
    progress: Callable[[int], None] = lambda n: None,
    sample_every: int = 0,
    samples: list[Sent] | None = None,
) -> int:
    """Publish as the agency services do (CloudEvents binary, routing key), in bulk; every
    ``sample_every``-th record is also kept in ``samples``, to be published again."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    routing = keyring.require_routing()
    sent: list[asyncio.Future[object]] = []
    count = 0
    try:
        for child, event_type, data in events:
            agency = ED_SOURCE if event_type == ATTENDANCE else LA
            event = envelope.CloudEvent(
                type=event_type,
                source=envelope.agency_source(agency),
                data=data,
                key=routing_key(routing, child.subject_id),
                dataschema=schemas.get(event_type).uri,
                id=str(uuid.uuid4()),
            )
            key, value, headers = envelope.encode(event)
            topic = topics.source(agency)
            sent.append(await producer.send(topic, value, key=key, headers=headers))
            count += 1
            if sample_every and samples is not None and count % sample_every == 0:
                samples.append(Sent(topic, key, value, list(headers)))
            if len(sent) >= 5000:
                await asyncio.gather(*sent)
                sent.clear()
                progress(count)
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return count


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


async def publish_again(records: list[Sent], *, bootstrap: str) -> int:
    """The same records once more, as a publisher retrying after a lost acknowledgement."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        sent = [
            await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(records)


class ProcessorProcess:
    """``infoshare run processor`` as a child process of its own session."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log = log_dir / f"processor-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = False

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", "run", "processor"],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        os.kill(self.proc.pid, sig)

    def kill9(self) -> None:
        self.killed = True
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit status (None if it was never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGCONT)
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def committed(bootstrap: str, group: str, topics: list[str]) -> int:
    """How many input records the group has committed across ``topics`` (0 if unreachable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        offsets = await asyncio.wait_for(admin.list_consumer_group_offsets(group), 5)
    except Exception:
        return -1
    finally:
        await admin.close()
    return sum(m.offset for tp, m in offsets.items() if tp.topic in topics and m.offset > 0)


async def wait_for_progress(
    bootstrap: str,
    group: str,
    topics: list[str],
    target: int,
    *,
    wait_s: float,
    report: Callable[[str], None],
    alive: Callable[[], bool] = lambda: True,
) -> int:
    """Poll the group's committed offsets until they reach ``target``."""
    deadline = time.monotonic() + wait_s
    done = -1
    while time.monotonic() < deadline:
        done = await committed(bootstrap, group, topics)
        if done >= target:
            report(f"committed {done}/{target}")
            return done
        assert alive(), "every processor has exited"
        await asyncio.sleep(0.5)
    raise AssertionError(f"only {done} of {target} inputs committed after {wait_s:.0f}s")
