"""Zipkin's server (the trace backend), pinned, fetched once from Maven Central into the
cache, and run on loopback with in-memory storage.

The jar is downloaded beside its final place, its SHA-1 checked against the pin below, and
a marker file written last, so an interrupted or tampered download is never taken for a
complete one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import httpx

from deploy.devstack.broker import BrokerError
from deploy.devstack.broker.node import find_java
from deploy.devstack.observe.errors import ObserveError
from deploy.devstack.observe.process import LocalServer, ServerProcess

VERSION = "3.6.1"
SHA1 = "5800cc1f3d2eb8f38d2d6905d59f9a0414b6d7dd"
JAR = f"zipkin-server-{VERSION}-exec.jar"
URL = f"https://repo1.maven.org/maven2/io/zipkin/zipkin-server/{VERSION}/{JAR}"
_MARKER = ".complete"


def jar_path(cache_dir: Path) -> Path:
    return cache_dir / "zipkin" / VERSION / JAR


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(staging: Path) -> None:
    try:
        with (
            staging.open("wb") as part,
            httpx.stream("GET", URL, follow_redirects=True, timeout=60.0) as response,
        ):
            if response.status_code != 200:
                raise ObserveError(f"Maven Central answered {response.status_code} for {URL}")
            for chunk in response.iter_bytes(1 << 20):
                part.write(chunk)
    except httpx.HTTPError as exc:
        raise ObserveError(f"could not download {URL}: {exc}") from None


def ensure_jar(cache_dir: Path) -> Path:
    """The pinned Zipkin server jar, downloaded and verified on first use (a jar put in its
    place by hand is verified and kept)."""
    target = jar_path(cache_dir)
    marker = target.parent / _MARKER
    if marker.exists() and target.exists():
        return target
    if target.exists() and _sha1(target) == SHA1:
        marker.write_text(SHA1, encoding="utf-8")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    staging = Path(name)
    try:
        try:
            _download(staging)
        except ObserveError as exc:
            raise ObserveError(
                f"{exc}\nCheck the network, or put the jar (SHA-1 {SHA1}) at {target}"
            ) from None
        got = _sha1(staging)
        if got != SHA1:
            raise ObserveError(f"{URL} has SHA-1 {got}, not the pinned {SHA1}: not using it")
        staging.chmod(0o644)  # a temporary file is made private
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)
    marker.write_text(SHA1, encoding="utf-8")
    return target


def _java() -> str:
    try:
        return find_java()
    except BrokerError as exc:
        raise ObserveError(f"Zipkin's server needs Java too: {exc}") from None


class ZipkinServer(LocalServer):
    """Zipkin on ``127.0.0.1:port``, spans kept in memory only, its log in ``state_dir``."""

    def __init__(
        self, *, state_dir: Path, cache_dir: Path, port: int = 9411, max_spans: int | None = None
    ) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.port = port
        self.max_spans = max_spans  # kept in memory, the oldest dropped (Zipkin's MEM_MAX_SPANS)
        self._process: ServerProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans_url(self) -> str:
        """Where an exporter posts spans (OTEL_EXPORTER_ZIPKIN_ENDPOINT)."""
        return f"{self.base_url}/api/v2/spans"

    @property
    def log(self) -> Path:
        return self.state_dir / "zipkin.log"

    def start(self, *, timeout: float = 120.0) -> ZipkinServer:
        """Fetch the jar if need be, start the server, return once GET /health answers."""
        if self._process is None:
            jar = ensure_jar(self.cache_dir)
            # Spring replaces the whole list item when one of its fields is set, so the
            # port and protocol are given again beside the loopback address.
            port = "--armeria.ports[0]"
            self._process = ServerProcess(
                name=f"Zipkin {VERSION}",
                argv=[
                    _java(),
                    *("-Xms64m", "-Xmx512m", "-Djava.awt.headless=true"),
                    # Names its state directory: whoever looks for what a stack left
                    # running (the demo's tests do) finds this JVM by it.
                    f"-Dinfoshare.state={self.state_dir}",
                    *("-jar", str(jar)),
                    f"{port}.ip=127.0.0.1",
                    f"{port}.port={self.port}",
                    f"{port}.protocols[0]=http",
                    "--spring.main.banner-mode=off",
                ],
                port=self.port,
                ready_path="/health",
                log=self.log,
                env={
                    "STORAGE_TYPE": "mem",
                    **({"MEM_MAX_SPANS": str(self.max_spans)} if self.max_spans else {}),
                    "SELF_TRACING_ENABLED": "false",
                    # Spans come over HTTP only: no collector may pick up a broker from the env.
                    **{
                        f"COLLECTOR_{name}_ENABLED": "false"
                        for name in ("KAFKA", "ACTIVEMQ", "RABBITMQ", "PULSAR", "SCRIBE")
                    },
                },
            )
        self._process.start(timeout=timeout)
        return self
