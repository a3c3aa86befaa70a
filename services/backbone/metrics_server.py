"""``GET /metrics`` for a process with no HTTP API of its own (the processor): a small
threaded WSGI server on a thread of its own, so a scrape never waits on a busy event loop,
and behind the same optional bearer token as every service's ``/metrics``."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from services.backbone.errors import ConfigurationError
from services.backbone.metering import Metrics, scrape_allowed


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a scraper's address is all it would say, every few seconds."""


class MetricsServer:
    def __init__(self, metrics: Metrics, *, host: str, port: int, token: str | None) -> None:
        exposition = make_wsgi_app(metrics.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if not scrape_allowed(environ.get("HTTP_AUTHORIZATION"), token):
                start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer")])
                return [b"a valid bearer token is required\n"]
            answer: Iterable[bytes] = exposition(environ, start_response)
            return answer

        try:
            self._server: WSGIServer = make_server(host, port, app, handler_class=_Quiet)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror}); set INFOSHARE_PORT "
                "to a free port, or 0 for none"
            ) from None
        self.port = self._server.server_port  # the one chosen, if asked for port 0
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
