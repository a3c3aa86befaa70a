"""Starting the embedded identity provider's server as a process of its own, and waiting
until it answers (the local stack, and the tests' people fixture)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from deploy.devstack.identity.provider import DevIdentityProvider, ensure_provider
from services.backbone.errors import ConfigurationError


def launch(
    directory: Path, issuer: str, log: Path, *, timeout: float = 60.0
) -> subprocess.Popen[bytes]:
    """Serve ``directory``'s provider at ``issuer`` (http://127.0.0.1:PORT); return once it
    answers, or stop it and raise ConfigurationError naming the log."""
    port = issuer.rsplit(":", 1)[1]
    with log.open("wb") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.devstack.identity", str(directory), port],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if client.get(f"{issuer}/healthz").status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    stop(process)
    raise ConfigurationError(f"the identity provider did not start; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def identity_provider(directory: Path) -> Iterator[DevIdentityProvider]:
    """An identity provider with the starter people, served on a free loopback port for
    the block's length (benchmarks; tests have their own fixture)."""
    from deploy.devstack.ports import free_listen_port

    issuer = f"http://127.0.0.1:{free_listen_port(1)}"
    provider = ensure_provider(directory, issuer)
    directory.mkdir(parents=True, exist_ok=True)
    process = launch(directory, issuer, directory / "server.log")
    try:
        yield provider
    finally:
        stop(process)
