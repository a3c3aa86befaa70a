"""Drive the processor as operations would meet it: a real process on a real broker, killed,
paused, doubled, while the broker itself is crashed and restarted. Then read every output
topic back and compare with what the protocols say each recipient must receive."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from deploy.devstack.principals import StackPrincipals
from services.backbone import kafka
from services.backbone.kafka_access import ENV_NAMES, KafkaAccess
from services.backbone.topics import Topics


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
                [sys.executable, "-m", "services.ops.run", "processor"],
                # Never the test's own Kafka principal: the one ``env`` names.
                env={**without_kafka_principal(os.environ), **self.env},
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


def without_kafka_principal(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ENV_NAMES}


def processor_environment(
    admin: KafkaAccess,
    principals: StackPrincipals,
    topics: Topics,
    keyring_path: Path,
    **extra: str,
) -> dict[str, str]:
    """A processor's settings: its own principal on the brokers ``admin`` reaches, the
    topics' namespace, partitions and replication, the keyring, no metrics port (several
    processors share the host)."""
    return {
        **principals.env(admin, principals.names.processor),
        "INFOSHARE_TOPIC_NAMESPACE": topics.namespace,
        "INFOSHARE_TOPIC_PARTITIONS": str(topics.partitions),
        "INFOSHARE_TOPIC_REPLICATION": str(topics.replication),
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
        "INFOSHARE_PORT": "0",
        **extra,
    }


class Progress:
    """How many input records a group has committed, asked of one admin client kept between
    questions (made again after a failure: the broker is crashed on purpose)."""

    def __init__(self, access: KafkaAccess) -> None:
        self.access = access
        self._admin: AIOKafkaAdminClient | None = None

    async def committed(self, group: str, topics: list[str]) -> int:
        """Committed input records across ``topics``; -1 if the broker does not answer."""
        try:
            if self._admin is None:
                self._admin = kafka.admin(self.access, request_timeout_ms=5000)
                await asyncio.wait_for(self._admin.start(), 5)
            offsets = await asyncio.wait_for(self._admin.list_consumer_group_offsets(group), 5)
        except Exception:
            await self.close()
            return -1
        return sum(m.offset for tp, m in offsets.items() if tp.topic in topics and m.offset > 0)

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


async def wait_for_progress(
    progress: Progress,
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
        done = await progress.committed(group, topics)
        if done >= target:
            report(f"committed {done}/{target}")
            return done
        assert alive(), "every processor has exited"
        await asyncio.sleep(0.5)
    raise AssertionError(f"only {done} of {target} inputs committed after {wait_s:.0f}s")
