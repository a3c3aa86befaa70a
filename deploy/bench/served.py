"""What a benchmark starts beside its broker: one infoshare service, run as ``infoshare up``
runs it, and helper processes (a yardstick, a receiver) waited for until they answer."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import httpx

from deploy.devstack.broker import BrokerNode
from deploy.devstack.stack import Stack, free_ports_config


def service_stack(
    state: Path,
    cache_dir: Path,
    node: BrokerNode,
    service: str,
    *,
    namespace: str,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """A stack of ``service`` alone on ``node``, on free ports, its topics under a
    namespace of its own (``namespace`` and a clock reading); not started yet."""
    config = free_ports_config(
        state,
        cache_dir,
        bootstrap=node.bootstrap,
        admin=node.admin_access(),
        namespace=f"{namespace}{time.monotonic_ns()}.",
        only=(service,),
        extra_env=extra_env or {},
    )
    return Stack(config)


def wait_answering(
    url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 60.0
) -> None:
    """Return once ``url`` answers 200; RuntimeError naming ``what`` if ``process`` exits
    first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start (exit {process.poll()})")
