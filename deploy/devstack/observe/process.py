"""A backend server run as a child process of ours: its own output goes to a log file, it
runs in a session of its own (a Ctrl-C aimed at us reaches it only through :meth:`stop`),
and it counts as started once an HTTP address of its answers 200."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from deploy.devstack.broker.node import port_open
from deploy.devstack.observe.errors import ObserveError
from services.backbone.private_files import open_private

LOG_TAIL = 15  # lines of the server's log quoted when it does not start


def log_tail(log: Path, lines: int = LOG_TAIL) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class ServerProcess:
    """One server process: ``argv`` run with ``env`` added to ours, listening on
    ``127.0.0.1:port``, ready when ``ready_path`` answers 200."""

    def __init__(
        self,
        *,
        name: str,
        argv: Sequence[str],
        port: int,
        ready_path: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.ready_url = f"http://127.0.0.1:{port}{ready_path}"
        self.log = log
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float) -> None:
        """Start the server unless it runs; return once it answers, or stop it and say why."""
        if self.running:
            return
        if port_open(self.port):
            raise ObserveError(
                f"port {self.port} is taken by another process: stop it or choose another "
                f"port for {self.name}"
            )
        with open_private(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:  # Ctrl-C too: the child is in a session of its own
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while not _answers(self.ready_url):
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ObserveError(
                    f"{self.name} exited with status {code} while starting; the end of "
                    f"{self.log}:\n{log_tail(self.log)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ObserveError(
                    f"{self.name} did not answer {self.ready_url} within {timeout:.0f}s; "
                    f"the end of {self.log}:\n{log_tail(self.log)}"
                )
            time.sleep(0.1)

    def stop(self, *, timeout: float = 20.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); False if not running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return True


class LocalServer:
    """What every backend we run shares: stop it, or use it as a context manager. A
    subclass sets ``_process`` in ``start``."""

    _process: ServerProcess | None = None

    def start(self, *, timeout: float = 60.0) -> Self:
        raise NotImplementedError

    def stop(self) -> bool:
        """Stop the server; False if it was not running. What it held in memory is gone."""
        return self._process is not None and self._process.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
