"""Jaeger (a standard OTLP trace backend), pinned, built once from the Go module proxy into
the cache, and run on loopback with in-memory storage.

Zipkin cannot show span links; Jaeger shows the link from each recipient's delivery trace to
the event's trace. The build is ``go get -tool`` of the pinned module into a module of our
own, then ``go build``: the Go toolchain checks every module it fetches against the
checksum database. The binary is built beside its final place and a marker written last, so
an interrupted build is never taken for a complete one. Without Go, Jaeger is not there and
the stack and the demo carry on with Zipkin alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from deploy.devstack.observe.errors import ObserveError
from deploy.devstack.observe.process import LocalServer, ServerProcess

VERSION = "v1.75.0"
MODULE = "github.com/jaegertracing/jaeger"
PROGRAM = f"{MODULE}/cmd/jaeger"
_MARKER = ".complete"
BUILD_MINUTES = 10  # on two cores, with an empty module cache: about five


def binary_path(cache_dir: Path) -> Path:
    return cache_dir / "jaeger" / VERSION / "jaeger"


def find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.exists() else None


def built(cache_dir: Path) -> Path | None:
    """The pinned binary if a complete build is in the cache."""
    target = binary_path(cache_dir)
    return target if (target.parent / _MARKER).exists() and target.exists() else None


def _go(go: str, args: list[str], cwd: Path) -> None:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    try:
        done = subprocess.run(
            [go, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_MINUTES * 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ObserveError(f"go {args[0]} of Jaeger took over {BUILD_MINUTES} minutes") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise ObserveError(f"go {' '.join(args)} failed:\n{tail}")


def ensure_binary(cache_dir: Path, say: Callable[[str], None] = lambda _m: None) -> Path:
    """The pinned Jaeger binary, built on first use (a few minutes) and kept in the cache."""
    found = built(cache_dir)
    if found is not None:
        return found
    go = find_go()
    if go is None:
        raise ObserveError(
            f"Jaeger {VERSION} is built from the Go module proxy, and Go is not installed "
            "(https://go.dev/dl/); traces still go to Zipkin"
        )
    target = binary_path(cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A directory of this build's own: two builds at once (two test runs) never meet.
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        (work / "go.mod").write_text("module infoshare.local/jaeger\n\ngo 1.24\n", encoding="utf-8")
        say(f"building Jaeger {VERSION} from the Go module proxy (once; a few minutes)")
        _go(go, ["get", "-tool", f"{PROGRAM}@{VERSION}"], work)
        _go(go, ["build", "-trimpath", "-o", str(work / "jaeger"), PROGRAM], work)
        (work / "jaeger").replace(target)  # whole or not at all
        (target.parent / _MARKER).write_text(VERSION, encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def config(*, otlp_port: int, query_port: int, health_port: int) -> str:
    """Jaeger's collector configuration: OTLP over HTTP in, memory storage, the query API
    and UI, a health check; everything on loopback, no telemetry port of its own."""
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{health_port}
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:0
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
"""


class JaegerServer(LocalServer):
    """Jaeger on loopback: OTLP/HTTP on ``otlp_port``, the UI and query API on
    ``query_port``; traces in memory only, its log in ``state_dir``."""

    def __init__(
        self, *, state_dir: Path, cache_dir: Path, otlp_port: int, query_port: int, health_port: int
    ) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.otlp_port, self.query_port, self.health_port = otlp_port, query_port, health_port
        self._process: ServerProcess | None = None

    @property
    def base_url(self) -> str:
        """The UI and the query API (``/api/v3/traces/{trace id}``)."""
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def otlp_url(self) -> str:
        """Where an exporter sends spans (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)."""
        return f"http://127.0.0.1:{self.otlp_port}/v1/traces"

    @property
    def log(self) -> Path:
        return self.state_dir / "jaeger.log"

    def start(self, *, timeout: float = 60.0) -> JaegerServer:
        """Start the server (building it first if need be); return once its query API
        answers."""
        if self._process is None:
            binary = ensure_binary(self.cache_dir)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            conf = self.state_dir / "jaeger.yaml"
            conf.write_text(
                config(
                    otlp_port=self.otlp_port,
                    query_port=self.query_port,
                    health_port=self.health_port,
                ),
                encoding="utf-8",
            )
            self._process = ServerProcess(
                name=f"Jaeger {VERSION}",
                argv=[str(binary), "--config", str(conf)],
                port=self.query_port,
                ready_path="/api/services",
                log=self.log,
                env={},
            )
        self._process.start(timeout=timeout)
        return self

    def spans(
        self,
        *,
        trace_id: str | None = None,
        service: str | None = None,
        operation: str | None = None,
        limit: int = 1000,
        since: str = "2000-01-01T00:00:00Z",
    ) -> list[dict[str, Any]]:
        """Spans as OTLP JSON objects, each with its ``service`` added: one trace's by id,
        or (up to ``limit`` traces' begun ``since``, RFC 3339) by service and operation.
        Empty if none (yet)."""
        if trace_id is not None:
            answer = httpx.get(f"{self.base_url}/api/v3/traces/{trace_id}", timeout=10.0)
        else:
            query = {
                "query.start_time_min": since,
                "query.start_time_max": "2100-01-01T00:00:00Z",
                "query.num_traces": str(limit),
                **({"query.service_name": service} if service else {}),
                **({"query.operation_name": operation} if operation else {}),
            }
            answer = httpx.get(f"{self.base_url}/api/v3/traces", params=query, timeout=10.0)
        if answer.status_code == 404:
            return []
        answer.raise_for_status()
        found = []
        for resource in answer.json()["result"]["resourceSpans"]:
            named = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
            service_name = named.get("service.name", {}).get("stringValue", "")
            for scope in resource["scopeSpans"]:
                found += [{**span, "service": service_name} for span in scope["spans"]]
        return found

    def linked_from(self, trace_id: str, *, service: str, operation: str) -> dict[str, str]:
        """Span ids in ``trace_id`` that a span of another trace (``service``,
        ``operation``) links to, each with that trace's id. Only traces begun since
        ``trace_id`` began are searched: a store a whole test run shares holds many."""
        starts = [int(s["startTimeUnixNano"]) for s in self.spans(trace_id=trace_id)]
        if not starts:
            return {}
        began = datetime.fromtimestamp(min(starts) / 1e9 - 1, UTC)
        since = began.strftime("%Y-%m-%dT%H:%M:%SZ")
        linked = {}
        for span in self.spans(service=service, operation=operation, since=since):
            for link in span.get("links", []):
                if link["traceId"] == trace_id and span["traceId"] != trace_id:
                    linked[link["spanId"]] = span["traceId"]
        return linked
